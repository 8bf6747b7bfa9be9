import type { Server } from 'node:http';
import type { EventLog, Transport } from '../../transport/types.js';
import type { Authenticate, Principal } from '../auth.js';
import { MAX_TIMER_MS, checker, given, resolveFrontEndOptions, resolvePath, shown, type ErrorContext, type FrontEndOptions, type ResolvedFrontEndOptions, type UserLimitPolicy } from '../options.js';

export type { UserLimitPolicy };

/** Token bucket applied to the frames a client sends. */
export interface RateLimitOptions {
  /** Frames per second refilled into the bucket. Default 20. */
  framesPerSecond?: number;
  /** Bucket size: frames a client may send at once. Default 40. */
  burst?: number;
}

/** Who a connection belongs to: the front-end contract's `Principal` (`expiresAt` closes it with 4401). */
export type WebSocketPrincipal = Principal;

/** The gateway's `authenticate` hook: the front-end contract's `Authenticate`. */
export type WebSocketAuthenticate = Authenticate;

/** Where a failure reported to `onError` happened: the contract's `ErrorContext` with `surface: 'websocket'`. */
export interface GatewayErrorContext extends ErrorContext {
  surface: 'websocket';
  stage:
    /** An event in the log could not be serialized: it was skipped for every connection (counted in `poisonedEvents`). */
    | 'serialize'
    /** Writing a connection's queued frames failed: that connection was closed with 1011. */
    | 'flush'
    /** Handling a client frame failed (or the event log misbehaved answering it). */
    | 'message'
    /** A live entry from the log could not be queued for a connection. */
    | 'deliver'
    /** The `authenticate` hook threw something other than an `AuthError` (the upgrade was refused with 401). */
    | 'authenticate'
    /** Accepting an authenticated upgrade failed. */
    | 'upgrade'
    /** A timer or socket callback (heartbeat, expiry, idle timeout, drain, close) failed. */
    | 'timer'
    /** The `cancelRun` hook threw (other than `RUN_NOT_FOUND` / `THREAD_FORBIDDEN`) or answered no `CancelResult`: the client got `UNAVAILABLE`. */
    | 'cancel'
    | 'close';
  connectionId?: string;
  eventId?: string;
}

/** What the gateway's parts report; the gateway adds `surface`. */
export type ReportedContext = Omit<GatewayErrorContext, 'surface'>;

/**
 * Options of the WebSocket gateway: the front-end contract's vocabulary (`authenticate`,
 * `authTimeoutMs`, `maxConnectionsPerUser`, `maxConnections`, `userLimitPolicy`,
 * `heartbeatIntervalMs`, `closeTimeoutMs`, `onError`, `allowedOrigins`, `log`) plus the
 * WebSocket's own (frames, subscriptions, batching, pacing).
 */
export interface WebSocketGatewayOptions extends Omit<FrontEndOptions, 'onError'> {
  /**
   * The event log connections read threads from; `send()` appends to it. Default: a new
   * `MemoryTransport` (closed by `close()`; one you pass is not).
   */
  log?: Transport & EventLog;
  /** @deprecated The old name of `log`. */
  transport?: Transport & EventLog;
  /** Attach to this server at construction (same as calling `attach(server)`). Default: none. */
  server?: Server;
  /** URL path whose upgrades this gateway handles; others are left to the server's other handlers. Default `/ws`. */
  path?: string;
  /** Largest client frame in bytes; a bigger one closes the connection with 1009. Default 64 KiB. */
  maxPayload?: number;
  /** Threads one connection may follow at once. Default 16. */
  maxSubscriptionsPerConnection?: number;
  /**
   * Bytes written ahead to one socket (`ws.bufferedAmount`). Past it, frames wait in the
   * connection's queue until the socket drains (a large replay is paced, not dropped). Default 4 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * Frames waiting in one connection's queue while its socket is full. Past it the consumer is
   * too slow: closed with 1013 and the client resumes from its cursor. A subscription's replay
   * does not count toward it (it is the log's retained tail, queued whole). Default 20,000.
   */
  maxQueuedFrames?: number;
  /**
   * The same bound in bytes: live frames (in characters of JSON, ≈ bytes: an event's JSON, a
   * control frame's length) waiting in one connection's queue beyond what its socket takes
   * (`maxBufferedBytes`). Past it the consumer is too slow: closed with 1013 and the client
   * resumes from its cursor. A subscription's replay does not count toward it. Default 4 MiB
   * (four of the largest events, as `maxQueuedBytes` of the HTTP surfaces): one connection holds
   * about `maxBufferedBytes` + `maxQueuedBytes` of live frames (and one message).
   */
  maxQueuedBytes?: number;
  /** Join the frames queued for one connection in one tick into one message (a JSON array). Default true. */
  batching?: boolean;
  /**
   * While the event loop is saturated (busy ≥ 90% of the last 100 ms), write a connection at most
   * every other tick: its frames of two ticks go out in one write (one message when batching), at
   * the cost of one tick of latency, only while saturated. At one event per connection per tick
   * that halves the kernel writes, most of what a saturated gateway spends. Nothing is dropped or
   * reordered. false: every tick's frames are written that tick, however busy the loop. Default true.
   */
  coalesceUnderLoad?: boolean;
  /** A connection following no thread for this long is closed with 4001. 0 disables. Default 30,000 ms. */
  subscribeTimeoutMs?: number;
  /** Rate limit on client frames; exceeding it closes the connection with 4008. */
  rateLimit?: RateLimitOptions;
  /** Invalid frames tolerated per connection (each answered with an `error` frame); one more closes it with 1008. Default 10. */
  maxInvalidFrames?: number;
  /**
   * Cancels a run for a `cancel {runId}` client frame, as the connection's user (the frame cannot
   * name another), e.g. `({ runId, userId }) => queue.cancel(runId, { userId })` with a run queue
   * of `agentwire/runs`. Its outcome is answered with `cancel_accepted`; an `AgentwireError` it
   * throws with `RUN_NOT_FOUND` or `THREAD_FORBIDDEN` with an `error` frame of that code, anything
   * else with `UNAVAILABLE`. Default: none (a `cancel` frame gets `UNAVAILABLE`).
   */
  cancelRun?: CancelRun;
  /**
   * Failures the gateway contained instead of throwing (an event that cannot be serialized, a
   * failing flush, timer or socket callback, an `authenticate` hook that threw something other
   * than an `AuthError`). Each costs one event or one connection, never the process. A hook that
   * throws is ignored. Default: none (counted in `stats().errors`).
   */
  onError?: (error: unknown, context: GatewayErrorContext) => void;
}

/** The `cancelRun` hook: cancels `runId` for `userId` wherever it runs. */
export type CancelRun = (request: { runId: string; userId: string }) => Promise<'requested' | 'cancelled' | 'already_finished'>;

export interface ResolvedGatewayOptions extends Omit<ResolvedFrontEndOptions, 'onError'> {
  cancelRun: CancelRun | undefined;
  path: string;
  maxPayload: number;
  maxSubscriptionsPerConnection: number;
  maxBufferedBytes: number;
  maxQueuedFrames: number;
  maxQueuedBytes: number;
  batching: boolean;
  coalesceUnderLoad: boolean;
  subscribeTimeoutMs: number;
  rateLimit: Required<RateLimitOptions>;
  maxInvalidFrames: number;
  onError: WebSocketGatewayOptions['onError'];
}

const KiB = 1024;
const WS_DEFAULTS = { name: 'WebSocketGateway', heartbeatIntervalMs: 30_000, closeTimeoutMs: 5_000 };

export function resolveGatewayOptions(options: WebSocketGatewayOptions): ResolvedGatewayOptions {
  const shared = resolveFrontEndOptions(options as FrontEndOptions, WS_DEFAULTS);
  const check = checker(WS_DEFAULTS.name);
  const path = resolvePath(check, options.path, '/ws');
  if (options.cancelRun !== undefined) check.fn('cancelRun', options.cancelRun);
  if (options.server !== undefined) checkServer(check, 'server', options.server);
  const rateLimit: unknown = options.rateLimit;
  if (rateLimit !== undefined && (typeof rateLimit !== 'object' || rateLimit === null || Array.isArray(rateLimit))) {
    throw check.fail('rateLimit', `must be an object { framesPerSecond?, burst? } (got ${shown(rateLimit)})`);
  }
  return {
    ...shared,
    onError: options.onError,
    cancelRun: options.cancelRun,
    path,
    maxPayload: check.integer('maxPayload', given(options.maxPayload, 64 * KiB), 1),
    maxSubscriptionsPerConnection: check.integer('maxSubscriptionsPerConnection', given(options.maxSubscriptionsPerConnection, 16), 1),
    maxBufferedBytes: check.integer('maxBufferedBytes', given(options.maxBufferedBytes, 4 * KiB * KiB), 1),
    maxQueuedFrames: check.integer('maxQueuedFrames', given(options.maxQueuedFrames, 20_000), 1),
    maxQueuedBytes: check.integer('maxQueuedBytes', given(options.maxQueuedBytes, 4 * KiB * KiB), 1),
    batching: check.boolean('batching', given(options.batching, true)),
    coalesceUnderLoad: check.boolean('coalesceUnderLoad', given(options.coalesceUnderLoad, true)),
    subscribeTimeoutMs: check.integer('subscribeTimeoutMs', given(options.subscribeTimeoutMs, 30_000), 0, MAX_TIMER_MS),
    rateLimit: {
      framesPerSecond: check.positive('rateLimit.framesPerSecond', given(options.rateLimit?.framesPerSecond, 20)),
      burst: check.integer('rateLimit.burst', given(options.rateLimit?.burst, 40), 1),
    },
    maxInvalidFrames: check.integer('maxInvalidFrames', given(options.maxInvalidFrames, 10), 0),
  };
}

/** The methods of an `http.Server` (or `https`/`http2` one) the gateway calls on one it attaches to. */
const SERVER_METHODS = ['on', 'off', 'listenerCount'] as const;

/** An `http.Server` to attach to; anything else is refused (a number threw `TypeError: server.on is not a function`). */
export function checkServer(check: ReturnType<typeof checker>, option: string, server: unknown): Server {
  const methods = server as Record<string, unknown> | null;
  if (typeof server !== 'object' || methods === null || !SERVER_METHODS.every((name) => typeof methods[name] === 'function')) {
    throw check.fail(option, `must be an http.Server (got ${shown(server)})`);
  }
  return server as Server;
}
