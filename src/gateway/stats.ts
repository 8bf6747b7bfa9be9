import type { ErrorCode } from '../errors/index.js';
import type { GatewayMetricsSnapshot } from '../metrics/types.js';
import { reasonOf } from './options.js';

/** Why the server ended a connection or stream (the `disconnects` keys). */
export type DisconnectReason =
  /** The client went away (or its socket failed). Not counted in `disconnects`. */
  | 'client'
  /** It did not keep up: its queue passed the bound. */
  | 'slow_consumer'
  /** `revoke(userId)` closed it. */
  | 'revoked'
  /** The principal's `expiresAt` passed. */
  | 'token_expired'
  /** A newer connection of the same user took its place (`userLimitPolicy: 'close-oldest'`). */
  | 'user_limit'
  /** Its cursor could not be honoured (`history_gap` was sent). */
  | 'history_gap'
  /** The event log ended the subscription. */
  | 'log_closed'
  /** Missed heartbeats. */
  | 'heartbeat'
  /** The surface is closing. */
  | 'shutdown'
  /** An unexpected error (reported through `onError`). */
  | 'error'
  /** WebSocket: client frames came faster than the rate limit (4008). */
  | 'rate_limited'
  /** WebSocket: too many invalid frames (1008). */
  | 'invalid_frames'
  /** WebSocket: a client frame over `maxPayload` (1009). */
  | 'oversized_frame'
  /** WebSocket: a client text frame that is not valid UTF-8 (1007). */
  | 'invalid_utf8'
  /** WebSocket: no subscription within `subscribeTimeoutMs` (4001). */
  | 'no_subscription';

/**
 * The stats of every surface, one shape (and a `GatewayMetricsSnapshot`, so `agentwire/metrics`
 * reads any surface's `metrics()` directly). Counters only grow; gauges are current.
 */
export interface GatewayStats extends GatewayMetricsSnapshot {
  /** Gauges: `open` connections/streams, requests `authenticating`. */
  connections: { open: number; authenticating: number };
  /** Users with at least one open connection/stream. */
  users: number;
  /** Frames (events and control messages) written to clients. */
  framesSent: number;
  /** Events withheld because they were not the connection's user's or thread's (must stay 0). */
  isolationDrops: number;
  /** Requests refused, by the lowercase error code (`auth_failed`, `too_many_connections`, `origin_forbidden`, …). */
  refused: Record<string, number>;
  /** Connections/streams the server ended, by `DisconnectReason` (`client` is not counted). */
  disconnects: Record<string, number>;
  /** Events that could not be serialized and were skipped (each reported through `onError`). */
  poisonedEvents: number;
  /** Errors reported through `onError`. */
  errors: number;
}

/** The counters behind `GatewayStats`; a surface adds its gauges in `snapshot`. */
export class StatsRecorder {
  framesSent = 0;
  isolationDrops = 0;
  poisonedEvents = 0;
  errors = 0;
  private readonly refusedBy: Record<string, number> = {};
  private readonly disconnectsBy: Record<string, number> = {};

  refused(code: ErrorCode): void {
    const reason = reasonOf(code);
    this.refusedBy[reason] = (this.refusedBy[reason] ?? 0) + 1;
  }

  disconnected(reason: DisconnectReason): void {
    if (reason === 'client') return;
    this.disconnectsBy[reason] = (this.disconnectsBy[reason] ?? 0) + 1;
  }

  snapshot(gauges: { open: number; authenticating: number; users: number }): GatewayStats {
    return {
      connections: { open: gauges.open, authenticating: gauges.authenticating },
      users: gauges.users,
      framesSent: this.framesSent,
      isolationDrops: this.isolationDrops,
      refused: { ...this.refusedBy },
      disconnects: { ...this.disconnectsBy },
      poisonedEvents: this.poisonedEvents,
      errors: this.errors,
    };
  }
}
