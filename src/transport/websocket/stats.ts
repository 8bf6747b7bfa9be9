/** Monotonic counters of one gateway (all start at 0). */
export class GatewayCounters {
  /** Event and control frames written to sockets. */
  framesSent = 0;
  /** WebSocket messages written (a batch of frames is one message). */
  messagesSent = 0;
  /** `ack` frames received for threads the connection follows. */
  acks = 0;
  /** `ack` frames for threads the connection does not follow (unknown, or another user's): ignored, never answered. */
  acksIgnored = 0;
  /** Client frames answered with an `error` frame (bad JSON, wrong fields, unknown type, binary). */
  invalidFrames = 0;
  /** Client frames over `maxPayload` (the connection was closed with 1009). */
  oversizedFrames = 0;
  /** Events withheld from a connection because their user or thread was not its own (should stay 0). */
  isolationDrops = 0;
  /** Subscriptions refused by the log (foreign thread, log failure). */
  subscribeFailures = 0;
  /**
   * Events that are not JSON (BigInt, cycle, too deep or too large): refused by `send()`, or found
   * in the log and skipped for every connection. Each event counts once.
   */
  unserializableEvents = 0;
  /** Failures contained inside the gateway (reported through `onError`): each cost at most one connection (1011). */
  internalErrors = 0;
  /** Upgrades refused with HTTP 401 by `authenticate`. */
  rejectedUnauthorized = 0;
  /** Upgrades refused with HTTP 503 (over `maxConnections`, shutting down, or `authenticate` too slow). */
  rejectedUnavailable = 0;
  /** Connections closed for each reason. */
  closedSlowConsumer = 0;
  closedHeartbeat = 0;
  closedRateLimited = 0;
  closedInvalidFrames = 0;
  closedNoSubscription = 0;
  /** Connections closed because a newer one of the same user arrived (`close-oldest`). */
  closedReplaced = 0;
  /** New connections closed at once because their user was at the limit (`refuse-newest`). */
  closedRefused = 0;
  /** Connections closed by `revoke(userId)` (4403). */
  closedRevoked = 0;
  /** Connections closed because their principal's `expiresAt` passed (4401). */
  closedExpired = 0;
  /** Connections closed because the gateway failed while serving them (1011; see `internalErrors`). */
  closedInternalError = 0;
}

/** A snapshot of a gateway: current gauges plus its counters. */
export interface GatewayStats extends GatewayCounters {
  /** Open connections. */
  connections: number;
  /** Users with at least one open connection. */
  users: number;
  /** Live and pending subscriptions across all connections. */
  subscriptions: number;
  /** Upgrades waiting for `authenticate`. */
  pendingHandshakes: number;
  /** Frames waiting in connection queues for a socket to drain. */
  queuedFrames: number;
  /** Bytes written to sockets but not yet flushed to the kernel (sum of `ws.bufferedAmount`). */
  bufferedBytes: number;
  /** Largest `bufferedAmount` of one connection right now. */
  maxBufferedBytes: number;
}
