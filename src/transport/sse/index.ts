/**
 * `agentwire/transport/sse`: the SSE gateway, now part of the front-end contract in
 * `src/gateway/sse` (this entry point stays for existing imports).
 *
 * @module agentwire/transport/sse
 */
export { SseGateway, type SseGatewayOptions } from '../../gateway/sse/index.js';
export type { GatewayStats as SseGatewayStats, DisconnectReason as SseCloseReason } from '../../gateway/stats.js';
export type { HttpErrorBody } from '../../gateway/respond.js';
export { AnswerEndpoint, answerBodySchema, type AnswerEndpointOptions, type AnswerResponseBody } from '../../gateway/answers/index.js';
