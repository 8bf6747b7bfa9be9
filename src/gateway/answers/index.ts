export { AnswerEndpoint, answerBodySchema, type AnswerEndpointOptions, type AnswerResponseBody } from './handler.js';
