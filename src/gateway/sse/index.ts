/**
 * `agentwire/gateway/sse`: the SSE surface of the front-end contract: node `handle(req, res)` and web `fetch(request)`.
 *
 * @module agentwire/gateway/sse
 */
export { SseGateway, type SseGatewayOptions } from './gateway.js';
export { parseStreamRequest, MAX_CURSOR_LENGTH, type StreamRequest } from './request.js';
export type { SseSink } from './session.js';
export { AnswerEndpoint, answerBodySchema, type AnswerEndpointOptions, type AnswerResponseBody } from '../answers/index.js';
