export {
  BaseAgent,
  type BaseAgentOptions,
  type Redactor,
  type ErrorRedactionContext,
  type AgentInstrumentation,
  type StreamTextOptions,
  type ToolCallInfo,
  type RunOptions,
  type RunResult,
  type RunStatus,
  type AgentListeners,
} from './base-agent.js';
export { defaultErrorInfo } from './redaction.js';
export { defineTool, type ToolDefinition, type ToolContext, type AnyTool } from './tool.js';
export type { RunContext } from './run-context.js';
export { DEFAULT_APPROVAL_TIMEOUT_MS } from './approval.js';
export { ASK_TOOL_NAME, type AskOptions } from './ask.js';
