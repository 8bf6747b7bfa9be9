import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RunAgentInput } from '@ag-ui/core';
import type { BaseAgent } from '../agent/base-agent.js';
import { AbortError, AuthError, ValidationError } from '../errors/index.js';
import { ThreadRegistry } from '../ids/thread-registry.js';
import type { GatewayMetricsSnapshot, GatewayMetricsSource } from '../metrics/types.js';
import type { Authenticate, Principal } from '../gateway/auth.js';
import { fromNodeRequest } from '../gateway/request.js';
import { HttpProblem, readJsonBody, sendProblem } from '../protocol/http.js';
import { AguiEventMapper, type CancelledMode, type ThinkingMode } from './mapper.js';
import { parseRunAgentInput } from './request.js';
import { RunRouter } from './run-router.js';
import { RunSlots } from './run-slots.js';
import { SseStream } from './sse-stream.js';

const EMPTY_BODY = new HttpProblem(400, 'VALIDATION_FAILED', 'The request body is empty: expected a JSON RunAgentInput', 'body');

/** Turns the validated AG-UI input into the agent's input. Throw a `ValidationError` to answer 400. */
export type ToInput<Input> = (input: RunAgentInput, principal: Principal) => Input | Promise<Input>;

export interface AguiHandlerBaseOptions<Input> {
  /** The agent that serves every request (one instance serves concurrent runs). Required. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  agent: BaseAgent<Input, any>;
  /**
   * The gateways' auth hook: runs first on every request; null or a throw answers 401. The
   * principal's `userId` owns the run and its thread. Required.
   */
  authenticate: Authenticate;
  /**
   * Where thread ownership is checked and the run registered (another user's thread answers
   * 403 before anything streams). Default: the agent's bridge's registry, else a registry
   * private to this handler.
   */
  registry?: ThreadRegistry;
  /** `agent_thinking` as `'reasoning'` (`REASONING_*`) or `'text'` (`TEXT_MESSAGE_*`). Default `'reasoning'`. */
  thinking?: ThinkingMode;
  /** A cancelled run ends with `RUN_FINISHED` outcome `cancelled` (`'outcome'`) or `RUN_ERROR` (`'error'`). Default `'outcome'`. */
  cancelled?: CancelledMode;
  /** The assistant text message streamed before `RUN_FINISHED`. Default: the output when it is a non-empty string. */
  answerText?: (output: unknown) => string | undefined;
  /** `agent_started.data.metadata` of the run. Default `{ protocol: 'ag-ui' }`. */
  metadata?: (input: RunAgentInput, principal: Principal) => Record<string, unknown>;
  /** Largest accepted request body. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Interval of `: heartbeat` comments on an open stream; 0 disables them. Default 15,000 ms. */
  heartbeatMs?: number;
  /** Bytes that may wait for a client that does not read; past it the run is cancelled and the stream cut. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** Runs one user may stream at once; one more answers 429. Default 3. */
  maxRunsPerUser?: number;
  /** Runs streaming at once in total; one more answers 429. Default 1,000. */
  maxRuns?: number;
  /** How long `authenticate` may take before the request is refused with 503. Default 10,000 ms. */
  authTimeoutMs?: number;
  /** Errors the handler absorbed (auth hook, `toInput`, a run that failed to start). Default: ignored (counted in `stats()`). */
  onError?: (error: unknown, context: { userId?: string; threadId?: string; runId?: string }) => void;
}

/** `toInput` is required unless the agent's input type accepts `RunAgentInput` itself. */
export type AguiHandlerOptions<Input> = AguiHandlerBaseOptions<Input> &
  (RunAgentInput extends Input ? { toInput?: ToInput<Input> } : { toInput: ToInput<Input> });

export interface AguiHandlerStats {
  /** Requests waiting for `authenticate`. */
  authenticating: number;
  /** Runs streaming right now. */
  streaming: number;
  /** Users with a run in progress (reading its request or streaming). */
  users: number;
  /** AG-UI events written. */
  framesSent: number;
  /** Runs started. */
  runs: number;
  /** Requests refused before streaming, by reason. */
  refused: Record<string, number>;
  /** Streams that ended early: `client_closed` (the client went away mid-run), `slow_consumer`. */
  disconnects: Record<string, number>;
  /** Errors reported through `onError`. */
  errors: number;
}

/** A `(req, res)` request handler for node:http / express, plus its stats and shutdown. */
export interface AguiHandler extends GatewayMetricsSource {
  (req: IncomingMessage, res: ServerResponse): Promise<void>;
  stats(): AguiHandlerStats;
  /** Refuses new runs (503), cancels the streaming ones and resolves once they ended. */
  close(): Promise<void>;
}

const REFUSAL_REASONS: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'invalid_request',
  429: 'over_limit',
  503: 'unavailable',
};

const TIMED_OUT = Symbol('timed out');

function isPrincipal(value: unknown): value is Principal {
  const userId: unknown = (value as Principal | null)?.userId;
  return typeof userId === 'string' && userId.length > 0 && userId.length <= 256;
}

/**
 * Serves a `BaseAgent` to AG-UI clients (`@ag-ui/client`'s `HttpAgent`, CopilotKit, …): `POST`
 * a `RunAgentInput` as JSON, get the run as AG-UI events over SSE. Authentication and thread
 * ownership are the gateways': the hook's user owns the run; another user's thread is 403.
 * A client that disconnects cancels its run.
 */
export function createAguiHandler<Input>(options: AguiHandlerOptions<Input>): AguiHandler {
  const { agent, authenticate } = options;
  const toInput = (options.toInput ?? ((input: RunAgentInput) => input as Input)) as ToInput<Input>;
  const ownRegistry = new ThreadRegistry();
  const registryOf = () => options.registry ?? agent.bridge?.registry ?? ownRegistry;
  const metadataOf = options.metadata ?? (() => ({ protocol: 'ag-ui' }));
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const authTimeoutMs = options.authTimeoutMs ?? 10_000;
  const streamOptions = { heartbeatMs: options.heartbeatMs ?? 15_000, maxBufferedBytes: options.maxBufferedBytes ?? 1024 * 1024 };
  const slots = new RunSlots(options.maxRunsPerUser ?? 3, options.maxRuns ?? 1_000);
  const router = new RunRouter(agent);
  const active = new Map<string, { controller: AbortController; done: Promise<void> }>();
  const counters = { authenticating: 0, framesSent: 0, runs: 0, errors: 0 };
  const refused: Record<string, number> = {};
  const disconnects: Record<string, number> = {};
  let closing = false;

  const report = (error: unknown, context: { userId?: string; threadId?: string; runId?: string }) => {
    counters.errors++;
    try {
      options.onError?.(error, context);
    } catch {
      // A throwing error hook must not break request handling.
    }
  };

  const refuse = (res: ServerResponse, problem: HttpProblem) => {
    const reason = REFUSAL_REASONS[problem.status] ?? 'internal';
    refused[reason] = (refused[reason] ?? 0) + 1;
    sendProblem(res, problem);
  };

  async function principalOf(req: IncomingMessage): Promise<Principal> {
    counters.authenticating++;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), authTimeoutMs)));
    try {
      const view = fromNodeRequest(req);
      if (!view) throw new HttpProblem(400, 'INVALID_REQUEST', 'The request URL is malformed');
      const principal = await Promise.race([Promise.resolve().then(() => authenticate(view)), timedOut]);
      if (principal === TIMED_OUT) throw new HttpProblem(503, 'AUTH_TIMEOUT', 'Authentication took too long; retry later');
      if (isPrincipal(principal)) return principal;
    } catch (error) {
      if (error instanceof HttpProblem) throw error;
      if (!(error instanceof AuthError)) report(error, {});
    } finally {
      clearTimeout(timer);
      counters.authenticating--;
    }
    throw new HttpProblem(401, 'AUTH_FAILED', 'Authentication failed: missing or invalid credentials', undefined, { 'WWW-Authenticate': 'Bearer' });
  }

  async function bodyOf(req: IncomingMessage): Promise<unknown> {
    // Behind express.json() the body was already read: take what it parsed.
    const parsed = (req as IncomingMessage & { body?: unknown }).body;
    return req.readableEnded && parsed !== undefined ? parsed : readJsonBody(req, maxBodyBytes, EMPTY_BODY);
  }

  async function agentInputOf(input: RunAgentInput, principal: Principal): Promise<Input> {
    try {
      return await toInput(input, principal);
    } catch (error) {
      if (error instanceof ValidationError) {
        throw new HttpProblem(400, error.code, error.message, error.field ?? 'body');
      }
      throw error;
    }
  }

  /** Registers the run (ownership check): 403 for another user's thread, 409 for a run id in use. */
  function claim(runId: string, threadId: string, userId: string): ThreadRegistry {
    if (router.has(runId)) throw new HttpProblem(409, 'RUN_ID_CONFLICT', `Run id "${runId}" is already streaming`, 'runId');
    const registry = registryOf();
    // A finished run's id must not be reused: its events (seq from 1) would collide with the old run's.
    if (registry.has(runId)) throw new HttpProblem(409, 'RUN_ID_CONFLICT', `Run id "${runId}" was already used`, 'runId');
    try {
      registry.register(runId, threadId, userId);
    } catch (error) {
      if (error instanceof AuthError) throw new HttpProblem(403, error.code, `Thread "${threadId}" belongs to another user`, 'threadId');
      if (error instanceof ValidationError) {
        throw new HttpProblem(error.code === 'RUN_ID_CONFLICT' ? 409 : 400, error.code, error.message, error.field);
      }
      throw error;
    }
    return registry;
  }

  async function stream(res: ServerResponse, principal: Principal, input: RunAgentInput, agentInput: Input): Promise<void> {
    const { runId, threadId } = input;
    const { userId } = principal;
    const registry = claim(runId, threadId, userId);
    const controller = new AbortController();
    const disconnected = (reason: string) => {
      disconnects[reason] = (disconnects[reason] ?? 0) + 1;
    };
    const sse = new SseStream(res, {
      ...streamOptions,
      onOverflow: () => {
        disconnected('slow_consumer');
        controller.abort(new AbortError('The AG-UI client does not read its stream'));
      },
    });
    const mapper = new AguiEventMapper(options);
    const stop = router.add(runId, (event) => {
      const frames = mapper.map(event);
      if (sse.send(frames)) counters.framesSent += frames.length;
    });
    const onClose = () => {
      if (sse.ended) return;
      sse.end();
      disconnected('client_closed');
      controller.abort(new AbortError('The AG-UI client disconnected'));
    };
    res.on('close', onClose);
    let finished!: () => void;
    active.set(runId, { controller, done: new Promise<void>((resolve) => (finished = resolve)) });
    counters.runs++;
    try {
      await agent.run(agentInput, { userId, threadId, runId, signal: controller.signal, metadata: metadataOf(input, principal) });
    } catch (error) {
      // run() only rejects before its first event (invalid options, a thread taken meanwhile).
      report(error, { userId, threadId, runId });
      if (!sse.opened) refuse(res, problemOf(error));
    } finally {
      stop();
      res.off('close', onClose);
      sse.end();
      // The bridge finishes runs in its own registry once their terminal event is delivered.
      if (registry !== agent.bridge?.registry) registry.finish(runId);
      active.delete(runId);
      finished();
    }
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (closing) throw new HttpProblem(503, 'UNAVAILABLE', 'The AG-UI endpoint is shutting down');
    if (req.method !== 'POST') throw new HttpProblem(405, 'METHOD_NOT_ALLOWED', 'Use POST with a JSON RunAgentInput', undefined, { Allow: 'POST' });
    const principal = await principalOf(req);
    const release = slots.acquire(principal.userId);
    try {
      const input = parseRunAgentInput(await bodyOf(req));
      const agentInput = await agentInputOf(input, principal);
      if (closing) throw new HttpProblem(503, 'UNAVAILABLE', 'The AG-UI endpoint is shutting down');
      await stream(res, principal, input, agentInput);
    } finally {
      release();
    }
  }

  const handler = (async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      await serve(req, res);
    } catch (error) {
      if (!(error instanceof HttpProblem)) report(error, {});
      refuse(res, problemOf(error));
    }
  }) as AguiHandler;

  handler.stats = () => ({
    authenticating: counters.authenticating,
    streaming: active.size,
    users: slots.users,
    framesSent: counters.framesSent,
    runs: counters.runs,
    refused: { ...refused },
    disconnects: { ...disconnects },
    errors: counters.errors,
  });

  handler.metrics = (): GatewayMetricsSnapshot => {
    const stats = handler.stats();
    return {
      connections: { authenticating: stats.authenticating, open: stats.streaming },
      users: stats.users,
      framesSent: stats.framesSent,
      refused: stats.refused,
      disconnects: stats.disconnects,
    };
  };

  handler.close = async () => {
    closing = true;
    const runs = [...active.values()];
    for (const run of runs) run.controller.abort(new AbortError('The AG-UI endpoint is shutting down'));
    await Promise.all(runs.map((run) => run.done));
  };

  return handler;
}

function problemOf(error: unknown): HttpProblem {
  if (error instanceof HttpProblem) return error;
  if (error instanceof AuthError) return new HttpProblem(403, error.code, error.message, 'threadId');
  if (error instanceof ValidationError) return new HttpProblem(400, error.code, error.message, error.field);
  return new HttpProblem(500, 'INTERNAL_ERROR', 'The run could not be started');
}
