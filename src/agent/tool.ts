import type { StandardSchemaV1 } from './standard-schema.js';
import type { RunContext } from './run-context.js';

/** What a tool's `execute` receives besides its validated arguments. */
export interface ToolContext extends RunContext {
  /** Id of this call, as in `tool_executing` / `tool_completed`. */
  toolCallId: string;
  /** Aborted when the run is aborted or the tool's timeout elapses. */
  signal: AbortSignal;
}

export interface ToolDefinition<Schema extends StandardSchemaV1 = StandardSchemaV1, Result = unknown> {
  name: string;
  description: string;
  /**
   * Schema of the arguments, from any Standard Schema library (zod 3.24+ or 4, valibot, arktype);
   * `callTool` validates against it before `execute` runs.
   */
  parameters: Schema;
  execute(args: StandardSchemaV1.InferOutput<Schema>, ctx: ToolContext): Promise<Result> | Result;
  /** Fail the call with `ToolTimeoutError` after this many ms (the tool's signal is aborted). */
  timeoutMs?: number;
  /**
   * Ask the run's user to allow each call before it runs: `true`, or a function of the validated
   * arguments. The call's `tool_executing` then carries `pending` (kind `approval`) and the run waits
   * for the `user_answered` event: allowed, the tool runs; denied, the call fails with `TOOL_DENIED`.
   */
  needsApproval?: boolean | ((args: StandardSchemaV1.InferOutput<Schema>, ctx: RunContext) => boolean | Promise<boolean>);
  /** How long a call waits for its approval; then it fails with `APPROVAL_TIMEOUT`. Default 300,000 (5 min). */
  approvalTimeoutMs?: number;
}

/** Declares a tool with its argument schema; the identity function that gives type inference. */
export function defineTool<Schema extends StandardSchemaV1, Result>(
  definition: ToolDefinition<Schema, Result>,
): ToolDefinition<Schema, Result> {
  return definition;
}

// Tools are stored type-erased; `callTool` re-establishes types through the schema.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTool = ToolDefinition<any, any>;
