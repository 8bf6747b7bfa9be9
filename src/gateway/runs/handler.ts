import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod/v4';
import { AuthError, GatewayError, StateError, ValidationError } from '../../errors/index.js';
import { shown } from '../../errors/options.js';
import { assertSubmitterMetadata } from '../../runs/reserved-metadata.js';
import type { RunInfo, RunQueue, RunQueueStats } from '../../runs/types.js';
import { assertUnexpired, authenticateRequest, type Principal } from '../auth.js';
import { readBody, submitAdmitted } from '../admission.js';
import { callOnError, checker, resolveBodyOptions, resolveFrontEndOptions, resolvePath, type BodyOptions, type FrontEndOptions, type ResolvedBodyOptions, type ResolvedFrontEndOptions } from '../options.js';
import { OriginPolicy } from '../origin.js';
import { fromNodeRequest, fromWebRequest, type AuthRequest } from '../request.js';
import { jsonReply, problemOf, webReply, writeNodeReply, type JsonReply } from '../respond.js';
import { Revocations, type RevocationWatch } from '../revocations.js';
import { StatsRecorder, type GatewayStats } from '../stats.js';

export interface RunsHandlerOptions extends Omit<FrontEndOptions, 'maxConnectionsPerUser' | 'maxConnections' | 'userLimitPolicy' | 'heartbeatIntervalMs'>, BodyOptions {
  /** Where runs go: a `MemoryRunQueue` (one process) or a `BullMQRunQueue` (its admission limits hold cluster-wide). */
  queue: RunQueue;
  /** Path the endpoints live under. Default `'/runs'`. */
  path?: string;
  /**
   * Agent names a client may submit to: a non-empty array of names (1-128 characters each).
   * Default: any (a worker ends a run naming an agent it does not serve with `UNKNOWN_AGENT`).
   */
  agents?: readonly string[];
}

/** `GatewayStats` of the run endpoints, with the queue's figures (queue length, wait times, outcomes). */
export interface RunsHandlerStats extends GatewayStats {
  queue: RunQueueStats;
}

/** What the run endpoints call on their queue. */
const QUEUE_METHODS = ['submit', 'cancel', 'status', 'stats'] as const;

const submitSchema = z.object({
  agent: z.string().min(1).max(128),
  input: z.unknown().optional(),
  threadId: z.string().min(1).max(128),
  runId: z.string().min(1).max(512).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
  /** The CORS headers, kept on a 500 that replaces an answer that could not be written. */
  cors?: Record<string, string>;
}

/**
 * The run endpoints, on the front-end contract (auth hook with its timeout, body limits, origin
 * policy and CORS, one error shape, one stats shape), as a node handler (`handle(req, res)`) and
 * a web-standard one (`fetch(request)`):
 *
 * - `POST <path>` `{ agent, input?, threadId, runId?, metadata? }` → 202 `{ runId, threadId, state: 'queued' }`
 *   at once (the run id also in `X-Agentwire-Run-Id` and `Location`); 429 `TOO_MANY_RUNS` /
 *   `QUEUE_FULL` with the reason in `error` and `Retry-After` when the queue's admission refuses.
 * - `GET <path>/<runId>` → 200 `RunInfo` (state, outcome, wait time); 404 unknown, 403 another user's.
 * - `POST <path>/<runId>/cancel` → 202 `{ runId, result }`; 404 unknown, 403 another user's.
 *
 * Events are followed over the other surfaces (WebSocket, SSE) on any gateway.
 */
export class RunsHandler {
  private readonly options: ResolvedFrontEndOptions;
  private readonly body: ResolvedBodyOptions;
  private readonly queue: RunQueue;
  private readonly path: string;
  private readonly agents: ReadonlySet<string> | undefined;
  private readonly origins: OriginPolicy;
  private readonly recorder = new StatsRecorder();
  /** Revocations that requests still being admitted (auth hook, body) must see. */
  private readonly revocations = new Revocations();
  private authenticating = 0;
  private closed = false;

  constructor(options: RunsHandlerOptions) {
    this.options = resolveFrontEndOptions(options, { name: 'RunsHandler', heartbeatIntervalMs: 0, closeTimeoutMs: 0 });
    this.body = resolveBodyOptions(options, 'RunsHandler');
    // The methods the endpoints call: a queue without status() or stats() failed those requests with a TypeError.
    const queue = options.queue as unknown as Record<string, unknown> | null | undefined;
    if (typeof queue !== 'object' || queue === null || !QUEUE_METHODS.every((name) => typeof queue[name] === 'function')) {
      throw checker('RunsHandler').fail('queue', `is required: a RunQueue with ${QUEUE_METHODS.join(', ')} (got ${shown(options.queue)})`);
    }
    this.queue = options.queue;
    this.path = resolvePath(checker('RunsHandler'), options.path, '/runs').replace(/\/+$/, '') || '/runs';
    this.agents = resolveAgents(options.agents);
    this.origins = new OriginPolicy(this.options.allowedOrigins, ['GET', 'POST']);
  }

  /** Node handler: answers requests under `path`; returns false (untouched) for other paths. */
  readonly handle = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const request = fromNodeRequest(req);
    if (!request || !this.owns(request)) return false;
    writeNodeReply(res, this.reply(await this.answer(request)), this.reporting);
    return true;
  };

  /** Web-standard handler (Next.js, Hono, Bun, Deno). Paths outside `path` get 404 `NOT_FOUND`. */
  readonly fetch = async (webRequest: Request): Promise<Response> => {
    const request = fromWebRequest(webRequest);
    const answer = request && this.owns(request) ? await this.answer(request) : this.refuse(new GatewayError('NOT_FOUND', 'No such endpoint'), {});
    return webReply(this.reply(answer), this.reporting);
  };

  /** Counters of the endpoints (refusals by code, errors) and the queue's figures. */
  async stats(): Promise<RunsHandlerStats> {
    const base = this.recorder.snapshot({ open: 0, authenticating: this.authenticating, users: 0 });
    return { ...base, queue: await this.queue.stats() };
  }

  /**
   * Refuses the requests of `userId` still being admitted (the auth hook answering, a submit's
   * body arriving) with 401 `REVOKED`: nothing is queued or cancelled for them. A submit whose
   * `queue.submit` was in flight is refused too, its run cancelled at once (`queue.cancel`): it
   * ends `cancelled` (its agent may have begun). The same holds for credentials whose `expiresAt`
   * passed while the body arrived (nothing queued) or while the submit was in flight (the run
   * cancelled), with 401 `TOKEN_EXPIRED`. Returns how many
   * streams were closed: always 0, the run endpoints hold none (runs already queued are the
   * queue's: cancel them with `queue.cancel`). Make `authenticate` refuse the user's credentials too.
   */
  revoke(userId: string): number {
    this.revocations.revoke(userId);
    return 0;
  }

  /**
   * Refuses new requests with 503 `GATEWAY_CLOSED` (the queue and its runs are the caller's to
   * close). Settles at once (it holds no connection); a promise like every surface's `close()`.
   */
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private owns(request: AuthRequest): boolean {
    const path = request.url.pathname;
    return path === this.path || path.startsWith(`${this.path}/`);
  }

  /** What a failure to write an answer reports (counted in `stats().errors`, `onError` stage `respond`). */
  private readonly reporting = (error: unknown): void => this.report(error, 'respond');

  /** The answer serialized, guarded: a body that is not JSON (a queue's status with a BigInt, a cycle) is 500 `INTERNAL_ERROR`. */
  private reply(answer: Answer): JsonReply {
    const reply = jsonReply(answer.status, answer.body, answer.headers, this.reporting, answer.cors);
    if (reply.status !== answer.status) this.recorder.refused('INTERNAL_ERROR');
    return reply;
  }

  private async answer(request: AuthRequest): Promise<Answer> {
    const origin = this.origins.check(request);
    if (!origin.ok) return this.refuse(origin.error, {});
    const cors = origin.headers;
    if (request.method === 'OPTIONS') {
      const preflight = this.origins.preflight(request);
      return preflight.status === 204 ? { status: 204, headers: preflight.headers } : this.refuse(preflight.error, {});
    }
    try {
      if (this.closed) throw new StateError('GATEWAY_CLOSED', 'The run endpoints are closed');
      const rest = request.url.pathname.slice(this.path.length).split('/').filter(Boolean).map(decodeSegment);
      const route = rest.length === 0 ? 'submit' : rest.length === 1 ? 'status' : rest.length === 2 && rest[1] === 'cancel' ? 'cancel' : undefined;
      if (!route) throw new GatewayError('NOT_FOUND', 'No such endpoint');
      const method = route === 'status' ? 'GET' : 'POST';
      if (request.method !== method) {
        throw new GatewayError('METHOD_NOT_ALLOWED', `${request.method} is not allowed here`, { headers: { Allow: `OPTIONS, ${method}` } });
      }
      // From the hook's start until the request acts, a revoke() of its user refuses it (REVOKED).
      const watch = this.revocations.watch();
      try {
        const principal = await this.authenticate(request);
        watch.check(principal.userId);
        if (route === 'submit') return { status: 202, cors, ...(await this.submit(request, principal, cors, watch)) };
        watch.end();
        const runId = rest[0]!;
        if (route === 'status') return { status: 200, headers: cors, cors, body: await this.ownedStatus(runId, principal.userId) };
        const result = await this.queue.cancel(runId, { userId: principal.userId });
        return { status: 202, headers: cors, cors, body: { runId, result } };
      } finally {
        watch.end();
      }
    } catch (error) {
      return this.refuse(error, cors);
    }
  }

  private async authenticate(request: AuthRequest) {
    this.authenticating++;
    try {
      return await authenticateRequest(this.options.authenticate, request, {
        timeoutMs: this.options.authTimeoutMs,
        report: (error) => this.report(error, 'authenticate'),
      });
    } finally {
      this.authenticating--;
    }
  }

  private async submit(request: AuthRequest, principal: Principal, cors: Record<string, string>, watch: RevocationWatch): Promise<Omit<Answer, 'status'>> {
    const raw = await readBody(request, this.body);
    // The body may take up to bodyTimeoutMs: no run is queued for a user revoked or for
    // credentials that expired meanwhile.
    watch.check(principal.userId);
    assertUnexpired(principal, Date.now());
    const userId = principal.userId;
    const parsed = submitSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue?.path.join('.') || 'body';
      throw new ValidationError(`Invalid run request: ${field} ${issue?.message ?? 'is invalid'}`, { field, code: 'INVALID_REQUEST' });
    }
    const { agent, input, threadId, runId, metadata } = parsed.data;
    if (this.agents && !this.agents.has(agent)) throw new ValidationError(`Unknown agent "${agent}"`, { field: 'agent', code: 'UNKNOWN_AGENT' });
    // retryOf / attempt are the queue's (a retry of a lost run): refused here too, whatever queue is behind the endpoints.
    if (metadata) assertSubmitterMetadata(metadata);
    // The watch covers the submit too: a user revoked, or credentials that expired, while it was
    // in flight get the run cancelled at once and 401 REVOKED / TOKEN_EXPIRED.
    const id = await submitAdmitted(watch, principal, {
      submit: async () => {
        const submitted: unknown = await this.queue.submit(agent, input, { userId, threadId, ...(runId !== undefined && { runId }), ...(metadata && { metadata }) });
        if (typeof submitted !== 'string') throw new GatewayError('INTERNAL_ERROR', 'The run queue answered the submit without a run id', { cause: submitted });
        return submitted;
      },
      cancel: (queued) => this.queue.cancel(queued, { userId }),
      report: (error) => this.report(error, 'cancel'),
    });
    return {
      headers: { ...cors, 'X-Agentwire-Run-Id': id, Location: `${this.path}/${encodeURIComponent(id)}` },
      body: { runId: id, threadId, state: 'queued' },
    };
  }

  private async ownedStatus(runId: string, userId: string): Promise<RunInfo> {
    const info = await this.queue.status(runId);
    if (!info) throw new StateError('RUN_NOT_FOUND', `No run ${shown(runId)}`);
    if (info.userId !== userId) throw new AuthError('The run belongs to another user', { code: 'THREAD_FORBIDDEN' });
    return info;
  }

  private refuse(error: unknown, cors: Record<string, string>): Answer {
    const problem = problemOf(error, cors);
    const code = problem.body.error.code as Parameters<StatsRecorder['refused']>[0];
    if (problem.status >= 500 && problem.status !== 503) this.report(error, 'request');
    this.recorder.refused(code);
    if (problem.status === 429) problem.headers['Retry-After'] ??= '1';
    return { status: problem.status, headers: problem.headers, body: problem.body };
  }

  private report(error: unknown, stage: string): void {
    this.recorder.errors++;
    callOnError(this.options.onError, error, { surface: 'runs', stage });
  }
}

/** A path segment, percent-decoded; a malformed escape (`%`, `%E0%A4%A`) is the client's error (400), not a URIError (500). */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ValidationError('Invalid run request: the run id is not a valid percent-encoded path segment', { field: 'runId', code: 'INVALID_REQUEST' });
  }
}

/**
 * The `agents` option: `undefined` (any agent), or a non-empty array of agent names as `submit`
 * takes them (1-128 characters). Anything else is `INVALID_OPTION`: a string would be taken as its
 * characters, and an empty list would refuse every submit (leave the option out to allow any).
 */
function resolveAgents(agents: unknown): ReadonlySet<string> | undefined {
  if (agents === undefined) return undefined;
  const check = checker('RunsHandler');
  if (!Array.isArray(agents) || agents.length === 0) {
    throw check.fail('agents', `must be a non-empty array of agent names, or left out for any agent (got ${Array.isArray(agents) ? 'an empty array' : shown(agents)})`);
  }
  for (const [i, name] of agents.entries()) {
    if (typeof name !== 'string' || name.length === 0 || name.length > 128) {
      throw check.fail('agents', `must hold agent names of 1-128 characters (got ${shown(name)} at index ${i})`);
    }
  }
  return new Set(agents as string[]);
}
