export { SseGateway, type SseGatewayOptions, type SseGatewayStats } from './sse-gateway.js';
export type { SseCloseReason } from './sse-connection.js';
export type { HttpErrorBody } from '../../protocol/http.js';
