export {
  BaseAgent,
  type BaseAgentOptions,
  type Redactor,
  type ErrorRedactionContext,
  type AgentInstrumentation,
  type ToolCallInfo,
  type RunOptions,
  type RunResult,
  type RunStatus,
  type AgentListeners,
} from './base-agent.js';
export { defaultErrorInfo } from './redaction.js';
export { defineTool, type ToolDefinition, type ToolContext, type AnyTool } from './tool.js';
export type { RunContext } from './run-context.js';
