/**
 * `agentwire/gateway/websocket`: the WebSocket gateway on the front-end contract (server side, Node only).
 *
 * @module agentwire/gateway/websocket
 */
export { WebSocketGateway, type GatewayAddress } from './gateway.js';
export type {
  CancelRun,
  GatewayErrorContext,
  RateLimitOptions,
  UserLimitPolicy,
  WebSocketAuthenticate,
  WebSocketGatewayOptions,
  WebSocketPrincipal,
} from './options.js';
export type { WebSocketGatewayStats } from './stats.js';
export type { GatewayStats, DisconnectReason } from '../stats.js';
export type { AllowedOrigins } from '../origin.js';
export type { Authenticate, Principal } from '../auth.js';
export type { AuthRequest, HeaderReader } from '../request.js';
export type { ErrorContext } from '../options.js';
export { parseClientFrame, type ParsedClientFrame } from './client-frames.js';
