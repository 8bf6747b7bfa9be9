/**
 * `agentwire/transport/websocket`: deprecated, use `agentwire/gateway/websocket`. The gateway
 * moved to the front-end contract; this entry point stays for existing imports (same gateway,
 * the old `stats()` shape).
 *
 * @module agentwire/transport/websocket
 */
export { WebSocketGateway } from './gateway.js';
export type { GatewayAddress } from '../../gateway/websocket/gateway.js';
export type {
  GatewayErrorContext,
  RateLimitOptions,
  UserLimitPolicy,
  WebSocketAuthenticate,
  WebSocketGatewayOptions,
  WebSocketPrincipal,
} from '../../gateway/websocket/options.js';
export type { GatewayStats } from './stats.js';
export type { WebSocketGatewayStats } from '../../gateway/websocket/stats.js';
export { parseClientFrame, type ParsedClientFrame } from '../../gateway/websocket/client-frames.js';
