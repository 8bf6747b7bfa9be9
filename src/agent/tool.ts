import { MAX_TIMER_MS, checker, shown } from '../errors/options.js';
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
  /**
   * Fail the call with `ToolTimeoutError` after this many ms (the tool's signal is aborted): a
   * number > 0 and at most 2^31 - 1 (about 24.8 days, the longest timer Node honours). Default none.
   */
  timeoutMs?: number;
  /**
   * Ask the run's user to allow each call before it runs: `true`, or a function of the validated
   * arguments. The call's `tool_executing` then carries `pending` (kind `approval`) and the run waits
   * for the `user_answered` event: allowed, the tool runs; denied, the call fails with `TOOL_DENIED`.
   */
  needsApproval?: boolean | ((args: StandardSchemaV1.InferOutput<Schema>, ctx: RunContext) => boolean | Promise<boolean>);
  /**
   * How long a call waits for its approval; then it fails with `APPROVAL_TIMEOUT`. Whole ms from 1
   * to 2^31 - 1 (about 24.8 days). Default 300,000 (5 min).
   */
  approvalTimeoutMs?: number;
}

/**
 * Declares a tool with its argument schema: returns the definition (typed), after checking it.
 * A field of the wrong type or out of range throws `ValidationError` `INVALID_OPTION` naming it
 * (`defineTool() option timeoutMs must be …`); `addTool` and the agent's `tools` check the same.
 */
export function defineTool<Schema extends StandardSchemaV1, Result>(
  definition: ToolDefinition<Schema, Result>,
): ToolDefinition<Schema, Result> {
  return checkTool(definition);
}

/** The longest name a tool may have (the events' `tool` field). */
const MAX_TOOL_NAME_LENGTH = 128;

/** Checks a tool definition's fields (see `defineTool`); returns it. */
export function checkTool<T extends AnyTool>(definition: T): T {
  const check = checker('defineTool()');
  if (typeof definition !== 'object' || definition === null) throw check.fail('definition', `must be an object (got ${shown(definition)})`);
  check.string('name', definition.name, MAX_TOOL_NAME_LENGTH);
  if (typeof definition.description !== 'string') throw check.fail('description', `must be a string (got ${shown(definition.description)})`);
  const parameters = definition.parameters as Partial<StandardSchemaV1> | null | undefined;
  if ((typeof parameters !== 'object' && typeof parameters !== 'function') || parameters === null || typeof parameters['~standard']?.validate !== 'function') {
    throw check.fail('parameters', `must be a Standard Schema (zod, valibot, arktype, …) (got ${shown(parameters)})`);
  }
  check.fn('execute', definition.execute);
  if (definition.timeoutMs !== undefined) check.duration('timeoutMs', definition.timeoutMs, { max: MAX_TIMER_MS });
  const needsApproval = definition.needsApproval;
  if (needsApproval !== undefined && typeof needsApproval !== 'boolean' && typeof needsApproval !== 'function') {
    throw check.fail('needsApproval', `must be true, false or a function (got ${shown(needsApproval)})`);
  }
  // An integer: it travels as `pending.timeoutMs`, which the event schema wants whole.
  if (definition.approvalTimeoutMs !== undefined) check.integer('approvalTimeoutMs', definition.approvalTimeoutMs, 1, MAX_TIMER_MS);
  return definition;
}


// Tools are stored type-erased; `callTool` re-establishes types through the schema.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTool = ToolDefinition<any, any>;
