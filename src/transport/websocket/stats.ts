import type { WebSocketGatewayStats } from '../../gateway/websocket/stats.js';

/**
 * @deprecated The stats shape of `agentwire/transport/websocket` before the front-end contract.
 * `WebSocketGateway` of `agentwire/gateway/websocket` reports `WebSocketGatewayStats` (the
 * contract's `GatewayStats`: `connections: { open, authenticating }`, `refused` and
 * `disconnects` by reason).
 */
export interface GatewayStats {
  framesSent: number;
  messagesSent: number;
  acks: number;
  acksIgnored: number;
  invalidFrames: number;
  oversizedFrames: number;
  isolationDrops: number;
  subscribeFailures: number;
  unserializableEvents: number;
  internalErrors: number;
  rejectedUnauthorized: number;
  rejectedUnavailable: number;
  closedSlowConsumer: number;
  closedHeartbeat: number;
  closedRateLimited: number;
  closedInvalidFrames: number;
  closedNoSubscription: number;
  closedReplaced: number;
  closedRefused: number;
  closedRevoked: number;
  closedExpired: number;
  closedInternalError: number;
  connections: number;
  users: number;
  subscriptions: number;
  pendingHandshakes: number;
  queuedFrames: number;
  queuedBytes: number;
  bufferedBytes: number;
  maxBufferedBytes: number;
}

/** The old shape computed from the contract's. */
export function legacyStats(s: WebSocketGatewayStats): GatewayStats {
  const refused = (...codes: string[]): number => codes.reduce((sum, code) => sum + (s.refused[code] ?? 0), 0);
  const closed = (reason: string): number => s.disconnects[reason] ?? 0;
  return {
    framesSent: s.framesSent,
    messagesSent: s.messagesSent,
    acks: s.acks,
    acksIgnored: s.acksIgnored,
    invalidFrames: s.invalidFrames,
    oversizedFrames: closed('oversized_frame'),
    isolationDrops: s.isolationDrops,
    subscribeFailures: s.subscribeFailures,
    unserializableEvents: s.poisonedEvents,
    internalErrors: s.internalErrors,
    rejectedUnauthorized: refused('auth_failed', 'token_expired', 'revoked'),
    rejectedUnavailable: refused('server_at_capacity', 'auth_timeout', 'gateway_closed'),
    closedSlowConsumer: closed('slow_consumer'),
    closedHeartbeat: closed('heartbeat'),
    closedRateLimited: closed('rate_limited'),
    closedInvalidFrames: closed('invalid_frames'),
    closedNoSubscription: closed('no_subscription'),
    closedReplaced: closed('user_limit'),
    closedRefused: refused('too_many_connections'),
    closedRevoked: closed('revoked'),
    closedExpired: closed('token_expired'),
    closedInternalError: closed('error'),
    connections: s.connections.open,
    users: s.users,
    subscriptions: s.subscriptions,
    pendingHandshakes: s.connections.authenticating,
    queuedFrames: s.queuedFrames,
    queuedBytes: s.queuedBytes,
    bufferedBytes: s.bufferedBytes,
    maxBufferedBytes: s.maxBufferedBytes,
  };
}
