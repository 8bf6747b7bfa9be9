import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RunAgentInput } from '@ag-ui/core';
import type { BaseAgent } from '../agent/base-agent.js';
import { GatewayError, ValidationError } from '../errors/index.js';
import type { Principal } from '../gateway/auth.js';
import { checker, given, resolvePath, shown } from '../gateway/options.js';
import type { AuthRequest } from '../gateway/request.js';
import { RunSurface, type ContinueRequest, type MountedRunSurface, type RunResponder, type RunSurfaceOptions } from '../gateway/run-stream/index.js';
import type { RunQueue } from '../runs/types.js';
import { answerOfResume } from './interrupts.js';
import type { GatewayStats } from '../gateway/stats.js';
import { AguiCodec } from './codec.js';
import type { CancelledMode, ThinkingMode } from './mapper.js';
import { DEFAULT_MAX_INPUT_VALUES, parseResumeRequest, parseRunAgentInput } from './request.js';

/** Turns the validated AG-UI input into the agent's input. Throw a `ValidationError` to answer 400. */
export type ToInput<Input> = (input: RunAgentInput, principal: Principal) => Input | Promise<Input>;

/**
 * Options of the AG-UI endpoint: the front-end contract's vocabulary (`authenticate`,
 * `authTimeoutMs`, `maxConnectionsPerUser`, `maxConnections`, `userLimitPolicy`,
 * `heartbeatIntervalMs` (default 15,000), `closeTimeoutMs` (default 5,000), `onError`, `log`,
 * `allowedOrigins`, `maxBodyBytes`, `maxBodyDepth`, `bodyTimeoutMs`, `maxRunsPerUser`, `maxRuns`,
 * `maxQueuedBytes`, `maxQueuedEvents`, `terminalTimeoutMs`) plus the AG-UI mapping.
 */
export interface AguiHandlerBaseOptions<Input> extends RunSurfaceOptions {
  /**
   * The agent that serves every request (one instance serves concurrent runs); its bridge must
   * write to `log`. Required. With `queue`: the name the queue's workers serve it by (a `BaseAgent`
   * stands for its `name`).
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  agent: BaseAgent<Input, any> | string;
  /**
   * Run through a run queue (`MemoryRunQueue`, `BullMQRunQueue`) instead of in this process: a POST
   * submits the run (the queue's admission applies, cluster-wide) and streams it from `log` as a
   * worker runs it; with `abortOnDisconnect`, `HttpAgent.abortRun()` (or a closed tab) cancels it
   * through `queue.cancel(runId, { userId })` wherever it runs.
   */
  queue?: RunQueue;
  /**
   * AG-UI interrupts: a stream ends at a call waiting for its user (approval or question) with
   * `RUN_FINISHED` `outcome: { type: 'interrupt', interrupts }`, and a `RunAgentInput` with `resume`
   * answers it and streams the rest of the same run. Default `true`. `false`: the stream stays
   * open while the run waits (answer over the answer endpoint or WebSocket).
   */
  pauseOnRequest?: boolean;
  /** Path served by `handle()` (node): `POST` starts a run, `GET` resumes one. `fetch()` serves any path. Default `'/agui'`. */
  path?: string;
  /** `agent_thinking` as `'reasoning'` (`REASONING_*`) or `'text'` (`TEXT_MESSAGE_*`). Default `'reasoning'`. */
  thinking?: ThinkingMode;
  /** A cancelled run ends with `RUN_FINISHED` outcome `cancelled` (`'outcome'`) or `RUN_ERROR` (`'error'`). Default `'outcome'`. */
  cancelled?: CancelledMode;
  /** The assistant text message streamed before `RUN_FINISHED`. Default: the output when it is a non-empty string. */
  answerText?: (output: unknown) => string | undefined;
  /** `agent_started.data.metadata` of the run. Default `{ protocol: 'ag-ui' }`. */
  metadata?: (input: RunAgentInput, principal: Principal) => Record<string, unknown>;
  /**
   * Cancel the run when the client of its `POST` disconnects (`HttpAgent.abortRun()`, a closed tab)
   * or is cut for not reading. Default `true` (AG-UI clients stop a run by aborting its request);
   * `false` keeps the run going so the client can resume it (`GET` with `Last-Event-ID`).
   */
  abortOnDisconnect?: boolean;
  /**
   * Most JSON values in a `RunAgentInput` body (400 `VALIDATION_FAILED` past it, before AG-UI's
   * schema runs: ~6 µs of the event loop per value). Default 20,000.
   */
  maxInputValues?: number;
}

/** `toInput` is required unless the agent's input type accepts `RunAgentInput` itself. */
export type AguiHandlerOptions<Input> = AguiHandlerBaseOptions<Input> &
  (RunAgentInput extends Input ? { toInput?: ToInput<Input> } : { toInput: ToInput<Input> });

/**
 * The AG-UI endpoint: mounted like every surface of the contract. `handle()` serves `POST {path}`
 * (a run) and `GET {path}` (a resume); `revoke()` ends a stream with a final `RUN_ERROR` `REVOKED`.
 */
export type AguiHandler = MountedRunSurface;

const AGUI_DEFAULTS = { name: 'AguiHandler', heartbeatIntervalMs: 15_000, closeTimeoutMs: 5_000 };
const RUN_ID_HEADER = 'X-Agentwire-Run-Id';

/**
 * Serves a `BaseAgent` to AG-UI clients (`@ag-ui/client`'s `HttpAgent`, CopilotKit, …) on the
 * front-end contract. Every stream is read from the thread's log, like every other surface:
 *
 * - `POST {path}` with a `RunAgentInput`: admission (auth → body → validation → run slot), the
 *   stream subscribes to the run in `log`, then the run starts; its events come back as AG-UI
 *   events over SSE. A client run id already used (running, in the bridge's registry, or with
 *   events retained in the log) is 409 `RUN_ID_CONFLICT`.
 * - `GET {path}?threadId=…&runId=…` with `Last-Event-ID: <id of the last frame received>` (or
 *   `?after=<id>`): resumes the run's stream after that frame, without repeating or losing one;
 *   without a position, the run from its `RUN_STARTED`. 204 when the client has all of a finished
 *   run (EventSource stops reconnecting), 404 when the thread retains no event of the run, 409
 *   `HISTORY_GAP` when the log cannot honour the position (another thread's, a forged or a trimmed
 *   cursor, or the run's start no longer retained): never a partial replay.
 *
 * Another user's thread is 403 before anything streams; a stream only carries the run's events.
 */
export function createAguiHandler<Input>(options: AguiHandlerOptions<Input>): AguiHandler {
  return new AguiEndpoint(options as AguiHandlerBaseOptions<Input> & { toInput?: ToInput<Input> });
}

interface AguiRun<Input> {
  threadId: string;
  runId: string;
  input: RunAgentInput;
  agentInput: Input | undefined;
  metadata: Record<string, unknown>;
  /** A resume: it answers the interrupts of a waiting run, whose rest it streams. */
  continuation?: ContinueRequest;
}

class AguiEndpoint<Input> implements AguiHandler {
  readonly path: string;
  private readonly surface: RunSurface;
  private readonly toInput: ToInput<Input>;
  private readonly abortOnDisconnect: boolean;
  private readonly maxInputValues: number;

  constructor(private readonly options: AguiHandlerBaseOptions<Input> & { toInput?: ToInput<Input> }) {
    // Bound, so that `export const GET = handler.fetch` (Next.js) and `app.use(handler.handle)` work.
    this.handle = this.handle.bind(this);
    this.fetch = this.fetch.bind(this);
    const check = checker(AGUI_DEFAULTS.name);
    const queue = options?.queue;
    if (queue !== undefined && (typeof queue?.submit !== 'function' || typeof queue.cancel !== 'function')) throw check.fail('queue', `must be a RunQueue (got ${shown(queue)})`);
    if (queue ? typeof options.agent !== 'string' && typeof options.agent?.name !== 'string' : typeof (options?.agent as Partial<BaseAgent<Input, unknown>> | undefined)?.run !== 'function') {
      throw check.fail('agent', queue ? "is required: the agent's name (or a BaseAgent)" : 'is required: a BaseAgent (or an agent name with queue)');
    }
    this.path = resolvePath(check, options.path, '/agui');
    this.toInput = options.toInput === undefined ? (input: RunAgentInput) => input as Input : check.fn('toInput', options.toInput);
    this.abortOnDisconnect = check.boolean('abortOnDisconnect', given(options.abortOnDisconnect, true));
    const pauseOnRequest = check.boolean('pauseOnRequest', given(options.pauseOnRequest, true));
    this.maxInputValues = check.integer('maxInputValues', given(options.maxInputValues, DEFAULT_MAX_INPUT_VALUES));
    const mapping = {
      thinking: check.oneOf('thinking', given(options.thinking, 'reasoning'), ['reasoning', 'text'] as const),
      cancelled: check.oneOf('cancelled', given(options.cancelled, 'outcome'), ['outcome', 'error'] as const),
      ...(options.answerText !== undefined && { answerText: check.fn('answerText', options.answerText) }),
    };
    if (options.metadata !== undefined) check.fn('metadata', options.metadata);
    this.surface = new RunSurface(options, {
      ...AGUI_DEFAULTS,
      surface: 'agui',
      methods: ['GET', 'POST'],
      emptyBody: new GatewayError('INVALID_JSON', 'The request body is empty: expected a JSON RunAgentInput', { field: 'body' }),
      codec: () => new AguiCodec(mapping),
      streamHeaders: (runId) => ({ [RUN_ID_HEADER]: runId }),
      pauseOnRequest,
      ...(queue && { cancelRun: (runId: string, userId: string) => queue.cancel(runId, { userId }) }),
    });
  }

  handle(req: IncomingMessage, res: ServerResponse): boolean {
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      return false;
    }
    if (pathname !== this.path) return false;
    this.surface.node(req, res, (request, responder, cors) => this.serve(request, responder, cors));
    return true;
  }

  fetch(request: Request): Promise<Response> {
    return this.surface.web(request, (view, responder, cors) => this.serve(view, responder, cors));
  }

  listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    return this.surface.listen(port, host, (req, res) => this.handle(req, res));
  }

  stats(): GatewayStats {
    return this.surface.stats();
  }

  metrics(): GatewayStats {
    return this.surface.stats();
  }

  revoke(userId: string): number {
    return this.surface.revoke(userId);
  }

  close(): Promise<void> {
    return this.surface.close('The AG-UI endpoint is shutting down');
  }

  private async serve(request: AuthRequest, responder: RunResponder, cors: Record<string, string>): Promise<void> {
    if (request.method === 'POST') {
      if (request.headers.get('last-event-id')) {
        throw new ValidationError('POST starts a run; resume one with GET ?threadId=…&runId=… and Last-Event-ID', {
          code: 'INVALID_REQUEST',
          field: 'Last-Event-ID',
        });
      }
      const { agent, queue } = this.options;
      return this.surface.start<AguiRun<Input>>(request, responder, cors, {
        parse: (body, principal) => this.parse(body, principal),
        execute: (run, principal, signal) => {
          const options = { userId: principal.userId, threadId: run.threadId, runId: run.runId, metadata: run.metadata };
          if (queue) return queue.submit(typeof agent === 'string' ? agent : agent.name, run.agentInput, options);
          return (agent as BaseAgent<Input, unknown>).run(run.agentInput as Input, { ...options, signal });
        },
        queued: queue !== undefined,
        continuation: (run) => run.continuation,
        clientRunId: true,
        knownRun: (runId) => (typeof agent === 'string' ? false : (agent.bridge?.registry.has(runId) ?? false)),
        abortOnDisconnect: this.abortOnDisconnect,
        abortMessage: (reason) => (reason === 'client' ? 'The AG-UI client disconnected' : 'The AG-UI client does not read its stream'),
      });
    }
    if (request.method === 'GET') {
      const target = parseResumeRequest(request);
      return this.surface.resume(request, responder, cors, { ...target, notFound: 'not_found' });
    }
    throw new GatewayError('METHOD_NOT_ALLOWED', 'Use POST with a JSON RunAgentInput (or GET to resume a run)', { headers: { Allow: 'GET, POST, OPTIONS' } });
  }

  private async parse(body: unknown, principal: Principal): Promise<AguiRun<Input>> {
    const input = parseRunAgentInput(body, { maxInputValues: this.maxInputValues });
    const resume = this.options.pauseOnRequest === false ? undefined : input.resume;
    if (resume && resume.length > 0) {
      // Answers to the interrupts of a waiting run: that run goes on (no new run is started).
      const responses = resume.map((entry) => ({
        requestId: entry.interruptId,
        abandon: entry.status === 'cancelled',
        answer: (pending: Parameters<typeof answerOfResume>[1]) => answerOfResume(entry, pending),
      }));
      return { threadId: input.threadId, runId: input.runId, input, agentInput: undefined, metadata: {}, continuation: { threadId: input.threadId, responses } };
    }
    const agentInput = await this.toInput(input, principal);
    const metadata = this.options.metadata ? this.options.metadata(input, principal) : { protocol: 'ag-ui' };
    return { threadId: input.threadId, runId: input.runId, input, agentInput, metadata };
  }
}
