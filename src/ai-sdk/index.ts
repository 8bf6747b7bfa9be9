/**
 * agentwire/ai-sdk: the Vercel AI SDK (`ai`, v6) on both ends.
 * - `ModelAgent` / `runModel`: agents driven by any AI SDK `LanguageModel`, emitting the five events.
 * - `createChatHandler`: serves runs to `useChat` as the AI SDK UI message stream, with resume from the thread log, on the
 *   front-end contract (node `handle(req, res)`, web `fetch(request)`).
 * The core package never imports `ai`; only this entry point does.
 *
 * @module agentwire/ai-sdk
 */
export { ModelAgent, type ModelAgentInput, type ModelAgentOptions } from './model/model-agent.js';
export { runModel, DEFAULT_MAX_STEPS, type ModelRunResult } from './model/run-model.js';
export type { ModelDriver } from './model/tools.js';
export type { ModelCallSettings, ModelRunOptions, ModelSettings, ProviderOptions, ThinkingOptions } from './model/options.js';
export type { TextStreaming } from './model/thinking.js';
export { createChatHandler, type ChatHandler, type ChatHandlerOptions, type ChatHandlerBaseOptions, type ChatInput } from './ui/chat-handler.js';
export type { MountedRunSurface } from '../gateway/run-stream/mounted.js';
export { approvalResponsesOf, modelInputFromChat, parseChatRequest, type ChatApprovalResponse, type ChatRequest, type ParseChatOptions } from './ui/chat-request.js';
export { UiChunkMapper, defaultResultText, type UiMappingOptions, type AgentwireMessageMetadata } from './ui/chunk-mapper.js';
export { UiCodec } from './ui/codec.js';
export { agentwireCursorOf, messageAtCursor, resumeAfterCursor, AGENTWIRE_CURSOR_HEADER, AGENTWIRE_RUN_ID_HEADER, type AgentwireCursorMetadata } from './client.js';
