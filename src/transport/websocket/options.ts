import type { Server } from 'node:http';
import { ValidationError } from '../../errors/index.js';
import type { Authenticate, Principal } from '../../gateway/auth.js';
import type { ErrorContext } from '../../gateway/options.js';
import type { EventLog, Transport } from '../types.js';

/** What happens when a user opens one connection more than `maxConnectionsPerUser`. */
export type UserLimitPolicy =
  /**
   * The user's oldest connection is closed with `CloseCode.TOO_MANY_CONNECTIONS` and the new one
   * is served. A reconnecting client is never locked out by its own half-open dead socket, and a
   * new browser tab always works; the evicted client is told not to reconnect (4029 is terminal).
   */
  | 'close-oldest'
  /** The new connection is opened, then closed at once with `CloseCode.TOO_MANY_CONNECTIONS`. */
  | 'refuse-newest';

/** Token bucket applied to the frames a client sends. */
export interface RateLimitOptions {
  /** Frames per second refilled into the bucket. Default 20. */
  framesPerSecond?: number;
  /** Bucket size: frames a client may send at once. Default 40. */
  burst?: number;
}

/**
 * Who a connection belongs to (the front-end contract's `Principal`): `userId`, and optionally
 * `expiresAt` (epoch ms), when the connection is closed with `CloseCode.TOKEN_EXPIRED` (4401); an
 * upgrade whose principal has already expired is refused with HTTP 401.
 */
export type WebSocketPrincipal = Principal;

/** The gateway's `authenticate` hook (the front-end contract's): a principal, or null / a throw to refuse with HTTP 401. */
export type WebSocketAuthenticate = Authenticate;

/**
 * Where a failure reported to `onError` happened, and whose it was (when it was one connection's):
 * the front-end contract's `ErrorContext` with `surface: 'websocket'`.
 */
export interface GatewayErrorContext extends ErrorContext {
  surface: 'websocket';
  stage:
    /** An event in the log could not be serialized: it was skipped for every connection (counted in `unserializableEvents`). */
    | 'serialize'
    /** Writing a connection's queued frames failed: that connection was closed with 1011. */
    | 'flush'
    /** Handling a client frame failed (or the event log misbehaved answering it): the connection was closed with 1011, or the frame answered with an error. */
    | 'message'
    /** A live entry from the log could not be queued for a connection. */
    | 'deliver'
    /** The `authenticate` hook threw something other than an `AuthError` (the upgrade was refused with 401). */
    | 'authenticate'
    /** Accepting an authenticated upgrade failed. */
    | 'upgrade'
    /** A timer or socket callback (heartbeat, expiry, idle timeout, drain, close) failed. */
    | 'timer'
    | 'close';
  connectionId?: string;
  eventId?: string;
}

/** What the gateway's parts report; the gateway adds `surface`. */
export type ReportedContext = Omit<GatewayErrorContext, 'surface'>;

export interface WebSocketGatewayOptions {
  /**
   * Resolves who a connection belongs to, at the HTTP upgrade. Return `{ userId }` (and
   * optionally `expiresAt`), or null / throw to refuse with HTTP 401 (no socket is opened).
   * Required: there is no anonymous default.
   */
  authenticate: WebSocketAuthenticate;
  /**
   * Where events are stored and read from: `send()` appends to it, subscriptions replay and
   * follow it. Default: a new `MemoryTransport` (closed by `close()`; one you pass is not).
   */
  transport?: Transport & EventLog;
  /** Attach to this server at construction (same as calling `attach(server)`). Default: none. */
  server?: Server;
  /** URL path whose upgrades this gateway handles; others are left to the server's other handlers. Default `/ws`. */
  path?: string;
  /** Connections one user may hold at once. Default 3. */
  maxConnectionsPerUser?: number;
  /** Which connection gives way past `maxConnectionsPerUser`. Default `'close-oldest'`. */
  userLimitPolicy?: UserLimitPolicy;
  /** Connections across all users (including handshakes in progress); past it, upgrades get HTTP 503. Default 10,000. */
  maxConnections?: number;
  /** Largest client frame in bytes; a bigger one closes the connection with 1009. Default 64 KiB. */
  maxPayload?: number;
  /** Threads one connection may follow at once. Default 16. */
  maxSubscriptionsPerConnection?: number;
  /**
   * Bytes written ahead to one socket (`ws.bufferedAmount`). Past it, frames wait in the
   * connection's queue until the socket drains, so a large replay is paced, not dropped. Default 4 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * Frames waiting in one connection's queue while its socket is full. Past it the consumer is
   * too slow: the connection is closed with `CloseCode.TRY_AGAIN_LATER` (1013) and the client
   * resumes from its cursor. Memory per connection stays bounded by this and `maxBufferedBytes`.
   * Default 20,000 (a full default MemoryTransport replay of 10,000 events fits).
   */
  maxQueuedFrames?: number;
  /**
   * Join the frames queued for one connection in one tick into one WebSocket message (a JSON
   * array); a lone frame is sent as a plain object. Default true.
   */
  batching?: boolean;
  /** Interval of ping frames; a peer that has not answered the previous ping by the next one is closed with 4000. 0 disables. Default 30,000 ms. */
  heartbeatIntervalMs?: number;
  /** How long `authenticate` may take before the upgrade is refused with HTTP 503. Default 10,000 ms. */
  authTimeoutMs?: number;
  /** A connection following no thread for this long (from open or its last unsubscribe) is closed with 4001. 0 disables. Default 30,000 ms. */
  subscribeTimeoutMs?: number;
  /** Rate limit on client frames; exceeding it closes the connection with 4008. */
  rateLimit?: RateLimitOptions;
  /** Invalid frames tolerated per connection (each answered with an `error` frame); one more closes it with 1008. Default 10. */
  maxInvalidFrames?: number;
  /**
   * How long `close()` waits for clients to acknowledge the 1001 close before cutting the sockets;
   * also how long a connection cut for its frames (4008, 1008) waits for the answers to the frames
   * it sent before the cut. Default 5,000 ms.
   */
  closeTimeoutMs?: number;
  /**
   * Called with every failure the gateway contained instead of throwing: an event that cannot be
   * serialized (skipped for every connection), a failure inside a flush, a timer or a socket
   * callback (that connection is closed with 1011), an `authenticate` hook that threw something
   * other than an `AuthError`. Each costs one event or one connection, never the process. A hook
   * that throws is ignored. Default: none (the failures are still counted in `stats()`).
   */
  onError?: (error: unknown, context: GatewayErrorContext) => void;
}

export type ResolvedGatewayOptions = Required<Omit<WebSocketGatewayOptions, 'transport' | 'server' | 'rateLimit' | 'onError'>> & {
  rateLimit: Required<RateLimitOptions>;
  onError: WebSocketGatewayOptions['onError'];
};

const KiB = 1024;
const MiB = 1024 * KiB;

export function resolveGatewayOptions(options: WebSocketGatewayOptions): ResolvedGatewayOptions {
  const resolved: ResolvedGatewayOptions = {
    authenticate: options.authenticate,
    path: options.path ?? '/ws',
    maxConnectionsPerUser: options.maxConnectionsPerUser ?? 3,
    userLimitPolicy: options.userLimitPolicy ?? 'close-oldest',
    maxConnections: options.maxConnections ?? 10_000,
    maxPayload: options.maxPayload ?? 64 * KiB,
    maxSubscriptionsPerConnection: options.maxSubscriptionsPerConnection ?? 16,
    maxBufferedBytes: options.maxBufferedBytes ?? 4 * MiB,
    maxQueuedFrames: options.maxQueuedFrames ?? 20_000,
    batching: options.batching ?? true,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 30_000,
    authTimeoutMs: options.authTimeoutMs ?? 10_000,
    subscribeTimeoutMs: options.subscribeTimeoutMs ?? 30_000,
    rateLimit: {
      framesPerSecond: options.rateLimit?.framesPerSecond ?? 20,
      burst: options.rateLimit?.burst ?? 40,
    },
    maxInvalidFrames: options.maxInvalidFrames ?? 10,
    closeTimeoutMs: options.closeTimeoutMs ?? 5_000,
    onError: options.onError,
  };
  if (resolved.onError !== undefined && typeof resolved.onError !== 'function') throw invalidOption('onError', 'must be a function');
  if (typeof resolved.authenticate !== 'function') {
    throw invalidOption('authenticate', 'is required: a function returning { userId } or null');
  }
  if (!resolved.path.startsWith('/')) throw invalidOption('path', `must start with "/", got "${resolved.path}"`);
  const atLeastOne = ['maxConnectionsPerUser', 'maxConnections', 'maxPayload', 'maxSubscriptionsPerConnection', 'maxBufferedBytes', 'maxQueuedFrames', 'authTimeoutMs'] as const;
  for (const name of atLeastOne) checkNumber(name, resolved[name], 1);
  for (const name of ['heartbeatIntervalMs', 'subscribeTimeoutMs', 'maxInvalidFrames', 'closeTimeoutMs'] as const) checkNumber(name, resolved[name], 0);
  checkNumber('rateLimit.framesPerSecond', resolved.rateLimit.framesPerSecond, Number.MIN_VALUE);
  checkNumber('rateLimit.burst', resolved.rateLimit.burst, 1);
  if (resolved.userLimitPolicy !== 'close-oldest' && resolved.userLimitPolicy !== 'refuse-newest') {
    throw invalidOption('userLimitPolicy', `must be "close-oldest" or "refuse-newest", got ${JSON.stringify(resolved.userLimitPolicy)}`);
  }
  return resolved;
}

function checkNumber(name: string, value: number, min: number): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value < min) {
    throw invalidOption(name, `must be a number >= ${min === Number.MIN_VALUE ? '0 (exclusive)' : min}, got ${String(value)}`);
  }
}

function invalidOption(name: string, problem: string): ValidationError {
  return new ValidationError(`WebSocketGateway option ${name} ${problem}`, { field: name, code: 'INVALID_OPTION' });
}
