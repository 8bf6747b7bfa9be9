import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AbortError,
  AgentwireError,
  AuthError,
  GatewayError,
  HistoryGapError,
  StateError,
  ValidationError,
} from '../../errors/index.js';
import type { PendingInput } from '../../events/schema.js';
import type { AnswerLog } from '../../transport/interaction.js';
import type { EventLog, LogEntry } from '../../transport/types.js';
import { RunAdmission, submitAdmitted } from '../admission.js';
import { authenticateRequest, type Principal } from '../auth.js';
import { ConnectionTracker } from '../connections.js';
import { Heartbeat } from '../heartbeat.js';
import {
  MAX_TIMER_MS,
  callOnError,
  checker,
  given,
  resolveBodyOptions,
  resolveFrontEndOptions,
  resolveLog,
  resolveRunLimitOptions,
  type BodyOptions,
  type ErrorContext,
  type FrontEndOptions,
  type ResolvedFrontEndOptions,
  type RunLimitOptions,
} from '../options.js';
import { OriginPolicy } from '../origin.js';
import { fromNodeRequest, fromWebRequest, type AuthRequest } from '../request.js';
import { respondNode, respondWeb, toAgentwireError } from '../respond.js';
import { Revocations, type RevocationWatch } from '../revocations.js';
import { NodeSseSink, WebSseSink } from '../sse/sinks.js';
import { STREAM_HEADERS } from '../sse/wire.js';
import { StatsRecorder, type DisconnectReason, type GatewayStats } from '../stats.js';
import { latestActiveRun, planResume, type ResumePosition } from './resume.js';
import { RunStreamSession, settledIdOf, type RunStreamCodec, type RunStreamEnd } from './session.js';
import { threadForbidden } from '../../errors/thread-forbidden.js';
import { isInstance } from '../../errors/guards.js';
import { agentwireCode } from '../../errors/code-of.js';

/**
 * Options of every HTTP surface that starts runs and streams them from the log (AG-UI, useChat):
 * the contract's vocabulary (see `FrontEndOptions`, `BodyOptions`, `RunLimitOptions`) plus the
 * stream bounds.
 */
export interface RunSurfaceOptions extends FrontEndOptions, BodyOptions, RunLimitOptions {
  /** The `EventLog` the agent's bridge writes to (e.g. its `MemoryTransport`): every stream is read from it. Required. */
  log: EventLog;
  /**
   * Live events (in characters of event JSON, ≈ bytes) that may wait for a reader that does not
   * keep up. Past it the stream is cut (`slow_consumer`); the client resumes. Default 4 MiB (four
   * of the largest events, so a burst of legal events never cuts a reader that keeps up).
   */
  maxQueuedBytes?: number;
  /** The same bound in events. Default 20,000. */
  maxQueuedEvents?: number;
  /**
   * After a run settled, how long its `agent_completed` may take to reach `log` before the stream
   * ends with `UNDELIVERED` (a `log` that is not the bridge's transport never gets it). Default 10,000 ms.
   */
  terminalTimeoutMs?: number;
}

/** What a surface adds: its name, its wire (codec, headers) and its defaults. */
export interface RunSurfaceConfig {
  /** Name in option errors (`AguiHandler`, `ChatHandler`). */
  name: string;
  /** `ErrorContext.surface` (`agui`, `ai-sdk`). */
  surface: string;
  heartbeatIntervalMs: number;
  closeTimeoutMs: number;
  /** Methods served besides OPTIONS (CORS `Access-Control-Allow-Methods`). */
  methods: readonly string[];
  /** Answer to an empty POST body. */
  emptyBody: GatewayError;
  /** A new codec (one per stream). */
  codec(): RunStreamCodec;
  /** Response headers of a stream of `runId` (content type, run id). */
  streamHeaders(runId: string): Record<string, string>;
  /**
   * End every stream at a request its run waits on (`RunStreamCodec.pause`) and take the answer
   * from the client's next request (`RunStartSpec.continuation`). False: streams stay open while
   * the run waits (answers arrive over HTTP or WebSocket).
   */
  pauseOnRequest?: boolean;
  /**
   * Cancels a run that does not run in this process (a run queue's `cancel(runId, { userId })`):
   * used when a stream's client leaves (`abortOnDisconnect`) and when a user abandons a request.
   */
  cancelRun?(runId: string, userId: string): Promise<unknown>;
}

/** One answer a continuing request carries: an AI SDK approval response, an AG-UI resume entry. */
export interface RequestResponse {
  requestId: string;
  /** The user gives the request up (AG-UI `status: 'cancelled'`): the run is cancelled; a request already closed (timed out) is only acknowledged. */
  abandon?: boolean;
  /** The answer for the request (its kind decides the shape); throw `ValidationError` for 400. */
  answer(pending: PendingInput): { approved?: boolean | undefined; value?: unknown; reason?: string | undefined };
}

/** A request that answers what a run waits for and continues streaming that run (no new run). */
export interface ContinueRequest {
  threadId: string;
  responses: readonly RequestResponse[];
}

/** How one request is answered: the node and the web handler differ only here. */
export interface RunResponder {
  /** Whether the client already went away. */
  gone(): boolean;
  refuse(error: AgentwireError, headers: Record<string, string>): void;
  /** A body-less answer: 204 (preflight, nothing to resume). */
  empty(status: 204, headers: Record<string, string>): void;
  stream(session: RunStreamSession, headers: Record<string, string>): void;
}

/** What a surface's POST turns into, with the run it starts. */
export interface RunStartSpec<T extends { threadId: string; runId: string }> {
  /** Validates the body into the run (400 on a `ValidationError`); runs after authentication, before the run slot. */
  parse(body: unknown, principal: Principal): T | Promise<T>;
  /** Starts the run (`agent.run(…)`); rejects only before the run's first event. */
  execute(input: T, principal: Principal, signal: AbortSignal): Promise<unknown>;
  /** The run id came from the client: refuse one in use or retained (409 `RUN_ID_CONFLICT`). */
  clientRunId: boolean;
  /** Whether the run id is known elsewhere (the bridge's registry): refused as used. */
  knownRun?(runId: string): boolean;
  /** Cancel the run when this stream's client leaves (or is cut as a slow consumer). */
  abortOnDisconnect: boolean;
  /** The cancellation message for a client that left / does not read. */
  abortMessage(reason: 'client' | 'slow_consumer'): string;
  /**
   * The run goes to a run queue: `execute` resolves once it is queued (not when it ends), the
   * stream opens then, the run slot is given back, and a client that leaves cancels it through
   * `RunSurfaceConfig.cancelRun`.
   */
  queued?: boolean;
  /** The request answers a waiting run instead of starting one (useChat's resend after `addToolApprovalResponse`, AG-UI `resume`). */
  continuation?(input: T): ContinueRequest | undefined;
}

/** What a resume GET asks for. */
export interface ResumeTarget {
  threadId: string;
  /** The run; without it, the run of the position's entry, or (no position) the thread's latest unfinished run. */
  runId?: string | undefined;
  position?: ResumePosition | undefined;
  /** The answer when the run has no retained entry (AG-UI: 404; useChat: 204). */
  notFound: 'not_found' | 'no_content';
}

interface ActiveRun {
  userId: string;
  controller: AbortController;
  settled: Promise<void>;
}

/** Answers one continuing request may carry (distinct requests): each is one call on the log. */
const MAX_RESPONSES = 64;

const STREAM_DEFAULTS = { maxQueuedBytes: 4 * 1024 * 1024, maxQueuedEvents: 20_000, terminalTimeoutMs: 10_000 };

/** Cancels through `controller` (a closure of its own: it must not keep the request's scope, its body, alive). */
function abortWith(controller: AbortController, message: (reason: 'client' | 'slow_consumer') => string): (reason: 'client' | 'slow_consumer') => void {
  return (reason) => controller.abort(new AbortError(message(reason)));
}

/** A run id already in use or retained. */
function runIdConflict(runId: string, why: string): ValidationError {
  return new ValidationError(`Run id "${runId}" ${why}: a run id is used once`, { code: 'RUN_ID_CONFLICT', field: 'runId' });
}

/**
 * The shared machinery of the HTTP surfaces that start runs and stream them from the log (AG-UI,
 * useChat), on the front-end contract: admission (auth → body → validate → run slot), the origin
 * policy, connection limits with the overflow policy, revocation and expiry, one stats shape, the
 * heartbeat, shutdown, and the node / web-standard responders. A surface adds routing, its request
 * schema and its wire (a `RunStreamCodec`).
 */
export class RunSurface {
  readonly log: EventLog;
  readonly options: ResolvedFrontEndOptions;
  private readonly config: RunSurfaceConfig;
  private readonly admission: RunAdmission;
  private readonly origins: OriginPolicy;
  private readonly tracker: ConnectionTracker<RunStreamSession>;
  private readonly recorder = new StatsRecorder();
  /** Revocations that requests still being admitted (auth hook, body, subscription) must see. */
  private readonly revocations = new Revocations();
  private readonly maxQueuedChars: number;
  private readonly maxQueuedEntries: number;
  private readonly terminalTimeoutMs: number;
  /** Streams not finished yet (open, or still being set up), for shutdown and the heartbeat. */
  private readonly live = new Set<RunStreamSession>();
  /** Runs started here that have not settled, by run id. */
  private readonly runs = new Map<string, ActiveRun>();
  /** Client run ids being claimed or running here. */
  private readonly claimed = new Set<string>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly heartbeat: Heartbeat;
  private server: Server | undefined;
  private closed = false;

  constructor(options: RunSurfaceOptions, config: RunSurfaceConfig) {
    this.config = config;
    this.options = resolveFrontEndOptions(options, config);
    this.heartbeat = new Heartbeat(this.options.heartbeatIntervalMs, this.live);
    this.log = resolveLog(options.log, config.name);
    const check = checker(config.name);
    this.maxQueuedChars = check.integer('maxQueuedBytes', given(options.maxQueuedBytes, STREAM_DEFAULTS.maxQueuedBytes), 1);
    this.maxQueuedEntries = check.integer('maxQueuedEvents', given(options.maxQueuedEvents, STREAM_DEFAULTS.maxQueuedEvents), 1);
    this.terminalTimeoutMs = check.integer('terminalTimeoutMs', given(options.terminalTimeoutMs, STREAM_DEFAULTS.terminalTimeoutMs), 1, MAX_TIMER_MS);
    this.admission = new RunAdmission({
      authenticate: this.options.authenticate,
      authTimeoutMs: this.options.authTimeoutMs,
      body: { ...resolveBodyOptions(options, config.name), emptyBody: config.emptyBody },
      runs: resolveRunLimitOptions(options, config.name),
      report: (error, stage) => this.report(error, { surface: config.surface, stage }),
    });
    this.origins = new OriginPolicy(this.options.allowedOrigins, config.methods);
    this.tracker = new ConnectionTracker(this.options);
  }

  /** Runs in progress that this surface started. */
  get activeRuns(): number {
    return this.runs.size;
  }

  /** Run slots held (runs admitted and not settled). */
  get heldSlots(): number {
    return this.admission.slots.size;
  }

  /**
   * Serves a node request with `serve` (the surface's routing), after the URL, origin and
   * preflight checks. The response is completed asynchronously.
   */
  node(req: IncomingMessage, res: ServerResponse, serve: (request: AuthRequest, responder: RunResponder, cors: Record<string, string>) => Promise<void>): void {
    const responder: RunResponder = {
      gone: () => res.destroyed || res.writableEnded,
      refuse: (error, headers) => respondNode(res, error, headers),
      empty: (status, headers) => {
        res.writeHead(status, { 'Cache-Control': 'no-store', ...headers });
        res.end();
      },
      stream: (session, headers) => session.open(new NodeSseSink(res, session, headers)),
    };
    this.dispatch(fromNodeRequest(req), responder, serve).catch((error: unknown) => this.failed(error, responder));
  }

  /** Serves a web-standard request with `serve`; the stream is a `ReadableStream` paced by its reader, `request.signal` ends it. */
  async web(request: Request, serve: (request: AuthRequest, responder: RunResponder, cors: Record<string, string>) => Promise<void>): Promise<Response> {
    let response: Response | undefined;
    const responder: RunResponder = {
      gone: () => request.signal?.aborted === true,
      refuse: (error, headers) => (response = respondWeb(error, headers)),
      empty: (status, headers) => (response = new Response(null, { status, headers: { 'Cache-Control': 'no-store', ...headers } })),
      stream: (session, headers) => {
        const sink = new WebSseSink(session, request.signal);
        response = new Response(sink.stream, { status: 200, headers: { ...STREAM_HEADERS, ...headers } });
        session.open(sink);
      },
    };
    await this.dispatch(fromWebRequest(request), responder, serve).catch((error: unknown) => this.failed(error, responder));
    return response ?? respondWeb(new GatewayError('INTERNAL_ERROR', 'The request failed inside the server'));
  }

  /** Refuses a request (counted, CORS headers added) with `error`. */
  refuse(responder: RunResponder, error: AgentwireError, headers: Record<string, string>): void {
    this.recorder.refused(error.code);
    responder.refuse(error, headers);
  }

  /**
   * POST: admission (auth → body → `parse` → run slot), then the stream subscribes to the run in
   * the log before the run starts; the response opens with the run's first entry (so a run that
   * is refused, e.g. `RUN_ID_CONFLICT` or `THREAD_FORBIDDEN`, still gets its HTTP status).
   */
  async start<T extends { threadId: string; runId: string }>(request: AuthRequest, responder: RunResponder, cors: Record<string, string>, spec: RunStartSpec<T>): Promise<void> {
    this.assertOpen();
    // From here until its stream is registered, a revoke() of the user refuses the request (REVOKED).
    await this.revocations.watching((watch) => this.startWatched(request, responder, cors, spec, watch));
  }

  private async startWatched<T extends { threadId: string; runId: string }>(
    request: AuthRequest,
    responder: RunResponder,
    cors: Record<string, string>,
    spec: RunStartSpec<T>,
    watch: RevocationWatch,
  ): Promise<void> {
    const done = this.tracker.authenticating();
    let admitted;
    try {
      admitted = await this.admission.admit(request, spec.parse, (input) => spec.continuation?.(input) === undefined, watch);
    } finally {
      done();
    }
    const continuation = spec.continuation?.(admitted.input);
    if (continuation) {
      if (responder.gone()) return;
      return this.continueRun(admitted.principal, continuation, responder, cors, spec, watch);
    }
    let handedOver = false;
    try {
      if (responder.gone()) return;
      this.assertOpen();
      const { principal, input } = admitted;
      const { threadId, runId } = input;
      if (spec.clientRunId) await this.claimRunId(runId, spec.knownRun);
      else this.claimed.add(runId);
      let claimHeld = true;
      try {
        // A queued run's watch stays open over the submit (a round trip): admitted once the queue took it.
        const session = this.session(principal, threadId, runId, true, watch, spec.queued !== true);
        let result;
        try {
          result = await session.subscribe(this.log);
        } catch (error) {
          this.discard(session);
          throw error;
        }
        if (session.replay.length > 0) {
          this.discard(session);
          throw runIdConflict(runId, 'has events retained in this thread');
        }
        if (result.status !== 'following' || !session.isOpen || responder.gone()) {
          this.discard(session);
          if (responder.gone()) return;
          throw session.refusal();
        }
        session.plan({ runId, seen: [], rest: [] });
        if (spec.queued) {
          // A queued run: it runs on a worker; the stream opens once the queue took it. A user
          // revoked, or credentials that expired, while the submit was in flight: the run is
          // cancelled at once, 401 REVOKED / TOKEN_EXPIRED.
          const context = { userId: principal.userId, threadId, runId };
          try {
            await submitAdmitted(watch, principal, {
              submit: async () => {
                try {
                  const queuedId = await spec.execute(input, principal, new AbortController().signal);
                  return typeof queuedId === 'string' ? queuedId : runId;
                } catch (error) {
                  throw this.runRefusal(error, context);
                }
              },
              cancel: (queuedId) => this.cancelRun(queuedId, principal.userId, "The user's access was revoked or the credentials expired"),
              report: (error) => this.report(error, { ...context, surface: this.config.surface, stage: 'cancel' }),
            });
          } catch (error) {
            this.discard(session);
            throw error;
          }
          this.streamElsewhere(session, responder, cors, runId, principal.userId, spec);
          return;
        }
        const controller = new AbortController();
        const run = Promise.resolve().then(() => spec.execute(input, principal, controller.signal));
        const settled = run.then(
          () => undefined,
          () => undefined,
        );
        this.runs.set(runId, { userId: principal.userId, controller, settled });
        handedOver = true;
        claimHeld = false;
        void settled.then(() => {
          admitted.release();
          this.claimed.delete(runId);
          this.runs.delete(runId);
          this.checkIdle();
        });
        if (spec.abortOnDisconnect) session.abortRun = abortWith(controller, spec.abortMessage);
        const headers = { ...cors, ...this.config.streamHeaders(runId) };
        const open = () => {
          if (!session.isOpen) return;
          if (responder.gone()) {
            // The client left while the run was starting.
            this.abortFor(session, 'client');
            this.discard(session);
            return;
          }
          responder.stream(session, headers);
        };
        const first = await Promise.race([
          session.openOnFirstEntry(open).then(() => 'entry' as const),
          run.then(
            () => 'settled' as const,
            (error: unknown) => ({ error }),
          ),
        ]);
        if (typeof first === 'object' && !session.started) {
          // run() refused before its first event (a run id in use, another user's thread, invalid input).
          this.discard(session);
          throw this.runRefusal(first.error, { userId: principal.userId, threadId, runId });
        }
        void settled.then(() =>
          session.runSettled(this.terminalTimeoutMs, "The run's events did not reach the event log this handler reads (is `log` the transport of the agent's bridge?)"),
        );
        if (session.opened) return;
        if (!session.isOpen) {
          // Ended before it opened (revoked, replaced, shutdown, or too much arrived unread).
          const reason = session.reason ?? 'client';
          if (reason === 'client' || reason === 'slow_consumer') this.abortFor(session, reason);
          this.discard(session);
          if (!responder.gone()) throw session.refusal();
          return;
        }
        // The run settled without an entry reaching the log yet: open, the terminal watch ends it.
        open();
      } finally {
        if (claimHeld) this.claimed.delete(runId);
      }
    } finally {
      if (!handedOver) admitted.release();
    }
  }

  /**
   * GET resume: authenticate, follow the thread (or the run), let the log decide the position
   * (`planResume`), then 204 (nothing left), 404 / 204 (no such run), 409 `HISTORY_GAP`, or the stream.
   */
  async resume(request: AuthRequest, responder: RunResponder, cors: Record<string, string>, target: ResumeTarget): Promise<void> {
    this.assertOpen();
    await this.revocations.watching((watch) => this.resumeWatched(request, responder, cors, target, watch));
  }

  private async resumeWatched(request: AuthRequest, responder: RunResponder, cors: Record<string, string>, target: ResumeTarget, watch: RevocationWatch): Promise<void> {
    const done = this.tracker.authenticating();
    let principal: Principal;
    try {
      principal = await authenticateRequest(this.options.authenticate, request, {
        timeoutMs: this.options.authTimeoutMs,
        report: (error) => this.report(error, { surface: this.config.surface, threadId: target.threadId, stage: 'authenticate' }),
      });
    } finally {
      done();
    }
    watch.check(principal.userId);
    if (responder.gone()) return;
    this.assertOpen();
    const { userId } = principal;
    const { threadId, position } = target;
    let runId = target.runId;
    if (runId === undefined && position === undefined) {
      runId = await latestActiveRun(this.log, userId, threadId);
      if (runId === undefined) {
        watch.admit(userId);
        return responder.empty(204, cors);
      }
    }
    const session = this.session(principal, threadId, runId, false, watch);
    let plan;
    try {
      const result = await session.subscribe(this.log);
      if (result.status === 'history_gap') plan = { kind: 'gap' as const, gap: result.gap };
      else if (result.status === 'ended' || !session.isOpen) plan = undefined;
      else plan = await planResume(this.log, { userId, threadId, runId }, session.replay, position);
    } catch (error) {
      this.discard(session);
      if (!isInstance(error, AuthError)) this.report(error, { surface: this.config.surface, userId, threadId, stage: 'subscribe' });
      throw error;
    }
    if (!plan || !session.isOpen || responder.gone()) {
      this.discard(session);
      if (responder.gone()) return;
      throw session.refusal();
    }
    if (plan.kind !== 'stream') {
      this.discard(session);
      if (plan.kind === 'gap') {
        this.recorder.disconnected('history_gap');
        const { gap } = plan;
        throw new HistoryGapError(`Cannot resume: ${gap.message}`, { details: { threadId: gap.threadId, requested: gap.requested, reason: gap.reason } });
      }
      if (plan.kind === 'not_found' && target.notFound === 'not_found') {
        throw new GatewayError('NOT_FOUND', `No run "${runId ?? ''}" is retained in thread "${threadId}"`, { field: 'runId' });
      }
      return responder.empty(204, cors);
    }
    try {
      session.plan(plan);
    } catch (error) {
      this.discard(session);
      if (isInstance(error, HistoryGapError)) this.recorder.disconnected('history_gap');
      throw error;
    }
    responder.stream(session, { ...cors, ...this.config.streamHeaders(plan.runId) });
  }

  /**
   * A request that answers what a run waits for (the AI SDK's resend after
   * `addToolApprovalResponse`, AG-UI's `resume`): the stream follows the thread, the requests are
   * found in the log, each answer goes through the log's one answer path (`answerRequest`: only
   * the run's user, once; a `user_answered` event), and the response carries the same run on from
   * right after the request where the earlier stream paused. A request answered before (by this
   * path or another) is skipped when the request answers others too, refused
   * (`ANSWER_ALREADY_GIVEN`, 409) when it answers nothing new. No run slot is taken: the run holds one.
   */
  private async continueRun<T extends { threadId: string; runId: string }>(
    principal: Principal,
    request: ContinueRequest,
    responder: RunResponder,
    cors: Record<string, string>,
    spec: RunStartSpec<T>,
    watch: RevocationWatch,
  ): Promise<void> {
    this.assertOpen();
    const answers = this.log as Partial<AnswerLog>;
    if (typeof answers.answerRequest !== 'function') {
      throw new GatewayError('UNAVAILABLE', "This endpoint's log takes no answers (use a log that implements answerRequest, e.g. MemoryTransport or the Redis log)");
    }
    const { userId } = principal;
    const { threadId } = request;
    const session = this.session(principal, threadId, undefined, true, watch);
    let runId: string | undefined;
    try {
      const result = await session.subscribe(this.log);
      if (result.status === 'history_gap') {
        throw new HistoryGapError(`Cannot continue: ${result.gap.message}`, { details: { threadId, requested: result.gap.requested, reason: result.gap.reason } });
      }
      if (result.status !== 'following' || !session.isOpen || responder.gone()) throw session.refusal();
      const replay = session.replay;
      // The requests, as the log has them; what the log says is answered or closed already.
      const requests = new Map<string, LogEntry>();
      const closed = new Set<string>();
      for (const entry of replay) {
        const { event } = entry;
        if (event.type === 'tool_executing' && event.data.pending) requests.set(event.data.pending.requestId, entry);
        const settled = settledIdOf(event);
        if (settled !== undefined) closed.add(settled);
      }
      const distinct = new Map(request.responses.map((response) => [response.requestId, response] as const));
      if (distinct.size > MAX_RESPONSES) {
        throw new ValidationError(`A request answers at most ${MAX_RESPONSES} requests of a run`, { code: 'INVALID_REQUEST', field: 'requestId' });
      }
      const located = [...distinct.values()].map((response) => {
        const entry = requests.get(response.requestId);
        if (!entry) throw new StateError('ANSWER_UNKNOWN_REQUEST', `No request "${response.requestId}" is retained in thread "${threadId}"`);
        if (runId !== undefined && entry.event.runId !== runId) {
          throw new ValidationError('The answers of one request must answer requests of one run', { code: 'INVALID_REQUEST', field: 'requestId' });
        }
        runId = entry.event.runId;
        return { response, entry };
      });
      if (runId === undefined) throw new ValidationError('Nothing to answer', { code: 'INVALID_REQUEST', field: 'requestId' });
      const resolved: LogEntry[] = [];
      let refusal: AgentwireError | undefined;
      for (const { response, entry } of located) {
        const event = entry.event as Extract<LogEntry['event'], { type: 'tool_executing' }>;
        const pending = event.data.pending!;
        if (response.abandon) {
          // Given up: cancel the run, unless the log already closed the request (timed out, answered).
          if (!closed.has(pending.requestId) && !closed.has(event.data.toolCallId)) await this.cancelRun(runId, userId, 'The user abandoned the request the run waited on');
          resolved.push(entry);
          continue;
        }
        // Revoked (or expired, replaced) since the stream was registered: no further answer is given for the user.
        if (!session.isOpen) throw session.refusal();
        try {
          await answers.answerRequest({ runId, threadId, requestId: pending.requestId, userId, ...response.answer(pending) });
          resolved.push(entry);
        } catch (error) {
          if (agentwireCode(error, StateError) === 'ANSWER_ALREADY_GIVEN' && distinct.size > 1) {
            refusal ??= error as StateError;
            continue;
          }
          throw error;
        }
      }
      if (resolved.length === 0) throw refusal!;
      const runEntries = replay.filter((entry) => entry.event.runId === runId);
      if (runEntries[0]?.event.type !== 'agent_started') {
        throw new HistoryGapError('Cannot continue: the start of this run is no longer retained', { details: { threadId, requested: '', reason: 'trimmed' } });
      }
      // The earlier stream paused right after the first of these requests: carry on from there.
      const cut = Math.min(...resolved.map((entry) => runEntries.indexOf(entry)));
      session.plan({
        runId,
        seen: runEntries.slice(0, cut + 1),
        rest: runEntries.slice(cut + 1),
        continuation: true,
        settled: resolved.map((entry) => (entry.event as Extract<LogEntry['event'], { type: 'tool_executing' }>).data.pending!.requestId),
      });
    } catch (error) {
      this.discard(session);
      if (isInstance(error, HistoryGapError)) this.recorder.disconnected('history_gap');
      else if (!isInstance(error, AgentwireError)) this.report(error, { surface: this.config.surface, userId, threadId, stage: 'answer' });
      throw error;
    }
    this.streamElsewhere(session, responder, cors, runId, userId, spec);
  }

  /**
   * Streams a run this request did not start here (a queued run, a continued one): with
   * `abortOnDisconnect` a client that leaves cancels it (here or through the queue), also one that
   * left while the stream was being prepared.
   */
  private streamElsewhere(
    session: RunStreamSession,
    responder: RunResponder,
    cors: Record<string, string>,
    runId: string,
    userId: string,
    spec: Pick<RunStartSpec<{ threadId: string; runId: string }>, 'abortOnDisconnect' | 'abortMessage'>,
  ): void {
    if (spec.abortOnDisconnect) session.abortRun = this.cancelling(runId, userId, spec.abortMessage);
    if (!session.isOpen || responder.gone()) {
      const reason = session.reason ?? 'client';
      if (reason === 'client' || reason === 'slow_consumer') this.abortFor(session, reason);
      this.discard(session);
      if (!responder.gone()) throw session.refusal();
      return;
    }
    responder.stream(session, { ...cors, ...this.config.streamHeaders(runId) });
  }

  /**
   * Cancels run `runId` of `userId`: a run this surface started here through its controller, any
   * other through `cancelRun` (a run queue). Without either: `UNAVAILABLE` (503).
   */
  private async cancelRun(runId: string, userId: string, message: string): Promise<void> {
    const local = this.runs.get(runId);
    if (local && local.userId === userId) {
      local.controller.abort(new AbortError(message));
      return;
    }
    if (this.config.cancelRun) {
      await this.config.cancelRun(runId, userId);
      return;
    }
    throw new GatewayError('UNAVAILABLE', 'The run does not run in this process and no run queue is configured to cancel it');
  }

  /** A stream's `abortRun`: cancels its run (here or through the queue); failures are reported, never thrown. */
  private cancelling(runId: string, userId: string, message: (reason: 'client' | 'slow_consumer') => string): (reason: 'client' | 'slow_consumer') => void {
    return (reason) => {
      this.cancelRun(runId, userId, message(reason)).catch((error: unknown) => this.report(error, { surface: this.config.surface, userId, runId, stage: 'cancel' }));
    };
  }

  /** Open streams. */
  get connectionCount(): number {
    return this.tracker.size;
  }

  /** The stats of every surface (see `GatewayStats`): `connections.open` counts open streams. */
  stats(): GatewayStats {
    return this.recorder.snapshot({ open: this.tracker.size, authenticating: this.tracker.authenticatingCount, users: this.tracker.users });
  }

  /**
   * Ends every open stream of `userId` (final message `REVOKED`) and cancels the runs this surface
   * started for that user; returns how many streams were closed. The user's requests still being
   * admitted (hook answering, body arriving, stream being set up) are refused with 401 `REVOKED`
   * and start nothing; one whose `queue.submit` was in flight gets its run cancelled at once
   * (`cancelRun`). Make `authenticate` refuse the user's credentials too.
   */
  revoke(userId: string): number {
    // Requests still being admitted (hook answering, body arriving) are refused with REVOKED.
    this.revocations.revoke(userId);
    for (const run of this.runs.values()) {
      if (run.userId === userId) run.controller.abort(new AbortError("The user's access was revoked"));
    }
    return this.tracker.revoke(userId);
  }

  /**
   * Refuses new requests (503 `GATEWAY_CLOSED`), cancels the runs it started and lets their
   * streams carry the cancellation to the end; other streams end at once (final message
   * `GATEWAY_CLOSED`). What is still open after `closeTimeoutMs` is cut. Idempotent.
   */
  async close(shutdownMessage: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const runs = [...this.runs.values()];
    for (const run of runs) run.controller.abort(new AbortError(shutdownMessage));
    for (const session of [...this.live]) {
      if (!session.runId || !this.runs.has(session.runId)) {
        this.tracker.remove(session);
        session.close('shutdown');
      }
    }
    const timeoutMs = this.options.closeTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    await this.whenIdle(timeoutMs);
    if (this.live.size > 0) {
      this.tracker.closeAll('shutdown');
      for (const session of this.live) session.close('shutdown');
      await this.whenIdle(Math.max(50, deadline - Date.now()));
      for (const session of this.live) session.cut('shutdown');
    }
    this.heartbeat.stop();
    await Promise.race([Promise.all(runs.map((run) => run.settled)), new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref())]);
    const server = this.server;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }

  /** Listens on its own `http.Server`: `handle` serves what it routes, anything else gets 404. */
  async listen(port: number, host: string, handle: (req: IncomingMessage, res: ServerResponse) => boolean): Promise<AddressInfo> {
    if (this.closed) throw new StateError('GATEWAY_CLOSED', `${this.config.name} is closed`);
    if (this.server) throw new StateError('ALREADY_LISTENING', `${this.config.name} is already listening`);
    const server = createServer((req, res) => {
      if (handle(req, res)) return;
      const error = new GatewayError('NOT_FOUND', `No route for ${req.method ?? 'GET'} ${(req.url ?? '/').slice(0, 200)}`);
      this.recorder.refused(error.code);
      respondNode(res, error);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  /** Reports an error the surface absorbed (counted in `stats().errors`, passed to `onError`). */
  report(error: unknown, context: ErrorContext): void {
    this.recorder.errors++;
    callOnError(this.options.onError, error, context);
  }

  private async dispatch(
    request: AuthRequest | undefined,
    responder: RunResponder,
    serve: (request: AuthRequest, responder: RunResponder, cors: Record<string, string>) => Promise<void>,
  ): Promise<void> {
    if (!request) return this.refuse(responder, new ValidationError('The request URL is malformed', { code: 'INVALID_REQUEST' }), {});
    const origin = this.origins.check(request);
    if (!origin.ok) return this.refuse(responder, origin.error, {});
    if (request.method === 'OPTIONS') {
      const preflight = this.origins.preflight(request);
      if (preflight.status === 403) return this.refuse(responder, preflight.error, {});
      return responder.empty(204, preflight.headers);
    }
    // Refusals from here on carry the CORS headers, so a page on an allowed origin can read them.
    try {
      await serve(request, responder, origin.headers);
    } catch (error) {
      if (!isInstance(error, AgentwireError)) this.report(error, { surface: this.config.surface, stage: 'request' });
      if (!responder.gone()) this.refuse(responder, toAgentwireError(error), origin.headers);
    }
  }

  private failed(error: unknown, responder: RunResponder): void {
    if (!isInstance(error, AgentwireError)) this.report(error, { surface: this.config.surface, stage: 'request' });
    if (!responder.gone()) this.refuse(responder, toAgentwireError(error), {});
  }

  private assertOpen(): void {
    if (this.closed) throw new StateError('GATEWAY_CLOSED', `${this.config.name} is shutting down; retry later`);
  }

  /** Claims a client-given run id: not running or being claimed here, not in the bridge's registry, not retained in the log. */
  private async claimRunId(runId: string, known: ((runId: string) => boolean) | undefined): Promise<void> {
    if (this.claimed.has(runId)) throw runIdConflict(runId, 'is already in use');
    if (known?.(runId)) throw runIdConflict(runId, 'was already used');
    this.claimed.add(runId);
    const hasRun = (this.log as { hasRun?: (runId: string) => boolean | Promise<boolean> }).hasRun;
    if (typeof hasRun !== 'function') return;
    let retained: boolean;
    try {
      retained = await hasRun.call(this.log, runId);
    } catch (error) {
      this.claimed.delete(runId);
      this.report(error, { surface: this.config.surface, runId, stage: 'claim' });
      throw new GatewayError('UNAVAILABLE', 'Could not check whether the run id is in use; retry later', { headers: { 'Retry-After': '1' } });
    }
    if (retained) {
      this.claimed.delete(runId);
      throw runIdConflict(runId, 'has events retained in the log');
    }
  }

  /** The client answer for a run that `run()` refused before its first event. */
  private runRefusal(error: unknown, context: { userId: string; threadId: string; runId: string }): AgentwireError {
    if (isInstance(error, AuthError)) return threadForbidden(context.threadId, error);
    if (isInstance(error, AgentwireError)) return error;
    this.report(error, { surface: this.config.surface, ...context, stage: 'run' });
    return new GatewayError('INTERNAL_ERROR', 'The run could not be started', { cause: error });
  }

  /**
   * A stream registered for `principal` (limits, expiry, revocation from now on). `watch`: the
   * request's revocation watch, admitted here: a user revoked since the request began is refused
   * (`REVOKED`) before anything is registered. `admit` false (a queued run): only checked here,
   * admitted once the queue took the run (`submitAdmitted`).
   */
  private session(principal: Principal, threadId: string, runId: string | undefined, startedRun: boolean, watch: RevocationWatch, admit = true): RunStreamSession {
    if (admit) watch.admit(principal.userId);
    else watch.check(principal.userId);
    const session: RunStreamSession = new RunStreamSession(
      principal.userId,
      threadId,
      runId,
      this.config.codec(),
      { maxQueuedChars: this.maxQueuedChars, maxQueuedEntries: this.maxQueuedEntries },
      {
        finished: (finished, reason) => this.finished(finished, reason),
        poisoned: (owner, entry, error) => this.poisoned(owner, entry, error),
        hookFailed: (owner, entry, error) => this.reportSerialize(owner, entry, error),
        isolationDrop: () => void this.recorder.isolationDrops++,
        framesSent: (count) => void (this.recorder.framesSent += count),
      },
      startedRun,
    );
    session.pauseOnRequest = this.config.pauseOnRequest === true;
    this.tracker.admit(session, principal);
    this.live.add(session);
    this.heartbeat.start();
    return session;
  }

  /** Forgets a stream that never opened: not counted as a disconnect. */
  private discard(session: RunStreamSession): void {
    this.tracker.remove(session);
    this.live.delete(session);
    session.cut('error');
    session.finished();
    this.checkIdle();
  }

  private finished(session: RunStreamSession, reason: RunStreamEnd): void {
    this.tracker.remove(session);
    if (!this.live.delete(session)) return;
    if (reason !== 'completed') this.recorder.disconnected(reason);
    if (reason === 'client' || reason === 'slow_consumer') this.abortFor(session, reason);
    this.checkIdle();
  }

  /** The stream that started a run ended because its client left or did not read: cancel the run if configured to. */
  private abortFor(session: RunStreamSession, reason: 'client' | 'slow_consumer'): void {
    if (session.startedRun) session.abortRun?.(reason);
  }

  private poisoned(session: RunStreamSession, entry: LogEntry, error: unknown): void {
    this.recorder.poisonedEvents++;
    this.reportSerialize(session, entry, error);
  }

  /** An error met while writing an entry (stage `serialize`). */
  private reportSerialize(session: RunStreamSession, entry: LogEntry, error: unknown): void {
    const event = entry.event as Partial<LogEntry['event']>;
    this.report(error, {
      surface: this.config.surface,
      userId: session.userId,
      threadId: session.threadId,
      ...(typeof event.runId === 'string' && { runId: event.runId }),
      stage: 'serialize',
    });
  }

  private checkIdle(): void {
    if (this.live.size > 0) return;
    this.heartbeat.stop();
    for (const waiter of this.idleWaiters.splice(0)) waiter();
  }

  /** Resolves when no stream is open any more, or after `timeoutMs`. */
  private whenIdle(timeoutMs: number): Promise<void> {
    if (this.live.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref?.();
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

export type { DisconnectReason };
