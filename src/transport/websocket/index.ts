/** `agentwire/transport/websocket`: the WebSocket gateway (server side, Node only). */
export { WebSocketGateway, type GatewayAddress } from './gateway.js';
export type { GatewayErrorContext, RateLimitOptions, UserLimitPolicy, WebSocketAuthenticate, WebSocketGatewayOptions, WebSocketPrincipal } from './options.js';
export type { GatewayStats } from './stats.js';
export { parseClientFrame, type ParsedClientFrame } from './client-frames.js';
