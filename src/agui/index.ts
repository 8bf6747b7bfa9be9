/**
 * `agentwire/agui`: serve agents to AG-UI clients (`@ag-ui/client`, CopilotKit, …).
 * Needs the optional peer dependency `@ag-ui/core`.
 */
export {
  createAguiHandler,
  type AguiHandler,
  type AguiHandlerOptions,
  type AguiHandlerBaseOptions,
  type AguiHandlerStats,
  type ToInput,
} from './handler.js';
export { AguiEventMapper, type AguiEvent, type AguiMapperOptions, type ThinkingMode, type CancelledMode } from './mapper.js';
export { parseRunAgentInput, lastUserText } from './request.js';
export type { AguiErrorBody } from './http.js';
