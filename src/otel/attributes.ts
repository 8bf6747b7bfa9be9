import { AgentwireError, ToolError } from '../errors/index.js';

/**
 * Attribute keys of the OpenTelemetry GenAI semantic conventions (development status, as in
 * `@opentelemetry/semantic-conventions/incubating` 1.4x), spelled out so the SDK does not
 * depend on the incubating entry point.
 */
export const GEN_AI = {
  OPERATION_NAME: 'gen_ai.operation.name',
  PROVIDER_NAME: 'gen_ai.provider.name',
  AGENT_NAME: 'gen_ai.agent.name',
  CONVERSATION_ID: 'gen_ai.conversation.id',
  TOOL_NAME: 'gen_ai.tool.name',
  TOOL_CALL_ID: 'gen_ai.tool.call.id',
  TOOL_TYPE: 'gen_ai.tool.type',
  TOOL_CALL_ARGUMENTS: 'gen_ai.tool.call.arguments',
  TOOL_CALL_RESULT: 'gen_ai.tool.call.result',
  USAGE_INPUT_TOKENS: 'gen_ai.usage.input_tokens',
  USAGE_OUTPUT_TOKENS: 'gen_ai.usage.output_tokens',
} as const;

/** `gen_ai.operation.name` values used here. */
export const OPERATION = { INVOKE_AGENT: 'invoke_agent', EXECUTE_TOOL: 'execute_tool' } as const;

/** Stable attribute of the general conventions: the class of error an operation ended with. */
export const ERROR_TYPE = 'error.type';
/** Opt-in: who the run belongs to. */
export const USER_ID = 'user.id';

/** agentwire's own attributes (ids that join a trace to the event stream and logs). */
export const AGENTWIRE = {
  RUN_ID: 'agentwire.run.id',
  THREAD_ID: 'agentwire.thread.id',
  RUN_STATUS: 'agentwire.run.status',
} as const;

/**
 * The low-cardinality `error.type` of an error: the agentwire error code (`ABORTED`,
 * `TOOL_TIMEOUT`, `TOOL_NOT_FOUND`, `TOOL_INVALID_ARGS`, …); for a tool that threw, the class
 * of what it threw (`RangeError`); otherwise the error's class name; `_OTHER` for non-errors.
 */
export function errorType(error: unknown): string {
  if (error instanceof ToolError && error.code === 'TOOL_FAILED' && error.cause instanceof Error) return error.cause.name || '_OTHER';
  if (error instanceof AgentwireError) return error.code;
  if (error instanceof Error) return error.name || '_OTHER';
  return '_OTHER';
}
