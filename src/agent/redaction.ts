import { AgentwireError, ToolError } from '../errors/index.js';
import { isInstance, readField, readThrown } from '../errors/guards.js';
import type { ErrorInfo } from '../events/schema.js';

/** Where an error is about to leave the process, for `Redactor.error`. */
export interface ErrorRedactionContext {
  /** The event that carries the error: a failed tool call or a failed/cancelled run. */
  event: 'tool_completed' | 'agent_completed';
  runId: string;
  threadId: string;
  userId: string;
  agent: string;
  /** The tool, for `tool_completed` (as the event names it). */
  tool?: string;
  toolCallId?: string;
}

/**
 * Redaction hooks: each returns what the event should carry instead of the real value. Only the
 * emitted events are redacted; the agent, its tools and the caller of `run()` see real values.
 */
export interface Redactor {
  /** `agent_started.data.input` (undefined omits it). */
  input?(input: unknown): unknown;
  /** `tool_executing.data.args`. */
  toolArgs?(tool: string, args: unknown): unknown;
  /** `tool_completed.data.result` of a successful call. */
  toolResult?(tool: string, result: unknown): unknown;
  /** `agent_completed.data.result` of a successful run. */
  output?(output: unknown): unknown;
  /**
   * The `{ name, message, code? }` an error leaves the process with, in `tool_completed` and
   * `agent_completed`. `error` is what was thrown (for a tool, the tool's own error, not the
   * `ToolError` that `callTool` rejects with). Return undefined for the default
   * (`defaultErrorInfo`); a hook that throws or returns something else gets the default too.
   * Whatever it returns is bounded (name 128, message 1,024, code 64 characters).
   */
  error?(error: unknown, context: ErrorRedactionContext): ErrorInfo | undefined;
}

export const MAX_ERROR_NAME_LENGTH = 128;
export const MAX_ERROR_MESSAGE_LENGTH = 1024;
export const MAX_ERROR_CODE_LENGTH = 64;

/** `ToolError`s that `callTool` made around an error thrown by a tool: their message is not for events. */
const toolFailures = new WeakSet<ToolError>();

/**
 * The `ToolError` (`TOOL_FAILED`) that `callTool` rejects with when a tool throws something that is
 * not an `AgentwireError`. Its message names the cause (for the author and a model that repairs
 * its call); events never carry that message (see `defaultErrorInfo`).
 */
export function toolFailure(tool: string, cause: unknown): ToolError {
  const error = new ToolError(tool, `Tool "${tool}" failed: ${describeThrown(cause)}`, { cause });
  toolFailures.add(error);
  return error;
}

/**
 * The default representation of an error in an event:
 * - errors the SDK raises (`AgentwireError`: `TOOL_NOT_FOUND`, `TOOL_INVALID_ARGS`, `TOOL_TIMEOUT`,
 *   `ABORTED`, `RESULT_NOT_SERIALIZABLE`, …) keep their name, message and code;
 * - anything thrown by the agent's own code (tools, `execute`, model providers) keeps only its
 *   `name`, with a generic message: `Tool "x" failed` or `Agent "x" failed` (no code);
 * - the `ToolError` `callTool` wraps such an error in is `{ name: 'ToolError', code: 'TOOL_FAILED',
 *   message: 'Tool "x" failed' }`.
 * Every field is bounded.
 */
export function defaultErrorInfo(error: unknown, context: ErrorRedactionContext): ErrorInfo {
  // Each field of the thrown value is read once, guarded (`readThrown`): a getter that throws on
  // `code` (or any field) or a proxy that throws on every trap still gets an ErrorInfo, so the
  // run's terminal event and its tools' tool_completed always go out.
  const generic = context.event === 'tool_completed' && context.tool !== undefined ? `Tool "${context.tool}" failed` : `Agent "${context.agent}" failed`;
  if (isInstance(error, ToolError) && toolFailures.has(error)) {
    const tool = readField(error, 'tool');
    return { name: 'ToolError', message: typeof tool === 'string' ? `Tool "${bound(tool, MAX_ERROR_NAME_LENGTH)}" failed` : bound(generic, MAX_ERROR_MESSAGE_LENGTH), code: 'TOOL_FAILED' };
  }
  const fields = readThrown(error);
  const name = fields.isError && fields.name !== undefined && fields.name.length > 0 ? fields.name : 'Error';
  if (isInstance(error, AgentwireError)) {
    return bounded({ name, message: fields.message ?? 'Error', ...(fields.code !== undefined && { code: fields.code }) });
  }
  return { name: bound(name, MAX_ERROR_NAME_LENGTH), message: bound(generic, MAX_ERROR_MESSAGE_LENGTH) };
}

/** What an event carries for `error`: the hook's choice (checked and bounded) or the default. */
export function errorInfoFor(hook: Redactor['error'], error: unknown, context: ErrorRedactionContext): ErrorInfo {
  if (hook) {
    try {
      const chosen = errorInfoOf(hook(error, context));
      if (chosen) return bounded(chosen);
    } catch {
      // A throwing hook gets the default: the event must still carry an error.
    }
  }
  return defaultErrorInfo(error, context);
}

/** How an event names a tool: the name as called when it fits the schema (1-128 characters), else a placeholder. */
export function shownToolName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) return '(invalid)';
  return name.length <= 128 ? name : bound(name, 128);
}

/** The hook's answer as an ErrorInfo, its fields read once (a getter cannot answer differently twice), or undefined. */
function errorInfoOf(value: unknown): ErrorInfo | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { name, message, code } = value as Record<string, unknown>;
  if (typeof name !== 'string' || name.length === 0 || typeof message !== 'string' || (code !== undefined && typeof code !== 'string')) return undefined;
  return code === undefined ? { name, message } : { name, message, code };
}

function bounded(info: ErrorInfo): ErrorInfo {
  const out: ErrorInfo = { name: bound(info.name, MAX_ERROR_NAME_LENGTH), message: bound(info.message, MAX_ERROR_MESSAGE_LENGTH) };
  if (info.code !== undefined) out.code = bound(info.code, MAX_ERROR_CODE_LENGTH);
  return out;
}

/** `text` cut to at most `max` characters (ending in `…`), never in the middle of a surrogate pair. */
export function bound(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/** A short description of a thrown value for a local message (never a JSON dump of an object). */
export function describeThrown(value: unknown): string {
  try {
    if (value instanceof Error) return bound(String(value.message), MAX_ERROR_MESSAGE_LENGTH);
    if (typeof value === 'string') return bound(value, MAX_ERROR_MESSAGE_LENGTH);
  } catch {
    // fall through
  }
  return value === null ? 'null' : `a thrown ${typeof value}`;
}
