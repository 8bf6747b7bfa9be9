/**
 * `agentwire/agui`: serve agents to AG-UI clients (`@ag-ui/client`, CopilotKit, …), on the
 * front-end contract (node `handle(req, res)` and web `fetch(request)`), read from the log with
 * resume (`GET` + `Last-Event-ID`). Needs the optional peer dependency `@ag-ui/core`.
 *
 * @module agentwire/agui
 */
export {
  createAguiHandler,
  type AguiHandler,
  type AguiHandlerOptions,
  type AguiHandlerBaseOptions,
  type ToInput,
} from './handler.js';
export { AguiEventMapper, type AguiEvent, type AguiMapperOptions, type ThinkingMode, type CancelledMode } from './mapper.js';
export { AguiCodec, positionOfFrameId } from './codec.js';
export { parseRunAgentInput, parseResumeRequest, lastUserText, type AguiResumeRequest, type ParseRunInputOptions } from './request.js';
export type { HttpErrorBody as AguiErrorBody } from '../gateway/respond.js';
export type { GatewayStats as AguiHandlerStats } from '../gateway/stats.js';
export type { RunStreamCodec } from '../gateway/run-stream/session.js';
export type { MountedRunSurface } from '../gateway/run-stream/mounted.js';
export type { ErrorContext, OnError, UserLimitPolicy } from '../gateway/options.js';
export type { AllowedOrigins } from '../gateway/origin.js';
export { interruptOf, interruptFrame, answerOfResume, APPROVAL_INTERRUPT_REASON, QUESTION_INTERRUPT_REASON } from './interrupts.js';
