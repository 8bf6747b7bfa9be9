import { contentToText, type RunAgentInput } from '@ag-ui/core';
import { RunAgentInputSchema } from '@ag-ui/core/schemas';
import { generateRunId, isRunId, parseRunId } from '../ids/run-id.js';
import { MAX_RUN_ID_LENGTH, MAX_THREAD_ID_LENGTH, isValidRunIdShape, isValidThreadId } from '../ids/thread-id.js';
import { ValidationError, type CodeOf } from '../errors/index.js';
import type { AuthRequest } from '../gateway/request.js';
import { positionOfFrameId } from './codec.js';

function invalid(code: CodeOf<'ValidationError'>, message: string, field: string): ValidationError {
  return new ValidationError(message, { code, field });
}

export interface ParseRunInputOptions {
  /**
   * Most JSON values (objects, arrays, strings, numbers, … counted together) in the body, refused
   * before `@ag-ui/core`'s schema runs: it spends ~6 µs of the event loop per value, so 350,000
   * empty objects in `context` (within 1 MiB) held it for 2 s. Default 20,000.
   */
  maxInputValues?: number;
}

export const DEFAULT_MAX_INPUT_VALUES = 20_000;

/** Whether `value` holds more than `limit` JSON values, walked with an explicit stack (stops at the limit). */
function exceedsValues(value: unknown, limit: number): boolean {
  const stack: unknown[] = [value];
  let count = 0;
  while (stack.length > 0) {
    const current = stack.pop();
    if (++count > limit) return true;
    if (typeof current !== 'object' || current === null) continue;
    for (const child of Array.isArray(current) ? current : Object.values(current)) stack.push(child);
  }
  return false;
}

/**
 * Validates a request body as AG-UI's `RunAgentInput` (with `@ag-ui/core`'s own schema) and
 * applies agentwire's id rules. Run id mapping:
 *
 * - `runId` absent or `""`: a standard agentwire run id, `generateRunId(threadId)`.
 * - a standard run id (`thread_<threadId>_run_…`): used as is; it must name the same thread.
 * - any other id (e.g. the UUID `HttpAgent` sends): used as is when it is 1–256 characters of
 *   letters, digits and `_ - . :`; such a run resolves to its thread through the registry.
 *
 * Throws `ValidationError` (400) naming the first failing field.
 */
export function parseRunAgentInput(body: unknown, options: ParseRunInputOptions = {}): RunAgentInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid('VALIDATION_FAILED', 'Invalid RunAgentInput: expected a JSON object', 'body');
  }
  const maxValues = options.maxInputValues ?? DEFAULT_MAX_INPUT_VALUES;
  if (exceedsValues(body, maxValues)) {
    throw invalid('VALIDATION_FAILED', `Invalid RunAgentInput: more than ${maxValues} JSON values (maxInputValues)`, 'body');
  }
  const record = body as Record<string, unknown>;
  const withRunId =
    (record.runId === undefined || record.runId === '') && isValidThreadId(record.threadId)
      ? { ...record, runId: generateRunId(record.threadId) }
      : record;
  const parsed = RunAgentInputSchema.safeParse(withRunId);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.map(String).join('.') || 'body';
    throw invalid('VALIDATION_FAILED', `Invalid RunAgentInput: ${field}: ${issue?.message ?? 'invalid value'}`, field);
  }
  const input = parsed.data;
  if (!isValidThreadId(input.threadId)) {
    throw invalid(
      'INVALID_THREAD_ID',
      `Invalid threadId ${shown(input.threadId)}: expected 1-${MAX_THREAD_ID_LENGTH} characters of letters, digits and _ - . :`,
      'threadId',
    );
  }
  if (!isValidRunIdShape(input.runId)) {
    throw invalid(
      'INVALID_RUN_ID',
      `Invalid runId ${shown(input.runId)}: expected 1-${MAX_RUN_ID_LENGTH} characters of letters, digits and _ - . :`,
      'runId',
    );
  }
  if (isRunId(input.runId) && parseRunId(input.runId).threadId !== input.threadId) {
    throw invalid('RUN_THREAD_MISMATCH', `Run id "${input.runId}" belongs to another thread than "${input.threadId}"`, 'runId');
  }
  return input;
}

function shown(value: unknown): string {
  return JSON.stringify(String(value).slice(0, 80));
}

/** The text of the last `user` message of the input (text parts joined), or undefined. */
export function lastUserText(input: RunAgentInput): string | undefined {
  for (let i = input.messages.length - 1; i >= 0; i--) {
    const message = input.messages[i];
    if (message?.role === 'user') return contentToText(message.content);
  }
  return undefined;
}

/** A resume request: `GET {path}?threadId=…&runId=…` with `Last-Event-ID` (or `?after=`). */
export interface AguiResumeRequest {
  threadId: string;
  runId: string;
  /** Where the client is; absent: the run from its start. */
  position: { cursor: string; skip?: number } | undefined;
}

/**
 * Reads a resume request. `Last-Event-ID` (what EventSource sends when it reconnects) wins over
 * `?after=`. Throws `ValidationError` (400): `MISSING_THREAD_ID`, `INVALID_THREAD_ID`,
 * `INVALID_RUN_ID`, `INVALID_CURSOR`.
 */
export function parseResumeRequest(request: Pick<AuthRequest, 'url' | 'headers'>): AguiResumeRequest {
  const query = request.url.searchParams;
  const threadId = query.get('threadId');
  if (threadId === null || threadId === '') throw invalid('MISSING_THREAD_ID', 'query parameter "threadId" is required', 'threadId');
  if (!isValidThreadId(threadId)) {
    throw invalid('INVALID_THREAD_ID', `Invalid threadId ${shown(threadId)}: expected 1-${MAX_THREAD_ID_LENGTH} characters of letters, digits and _ - . :`, 'threadId');
  }
  const runId = query.get('runId');
  if (runId === null || runId === '') throw invalid('INVALID_RUN_ID', 'query parameter "runId" is required: the run to resume', 'runId');
  if (!isValidRunIdShape(runId)) {
    throw invalid('INVALID_RUN_ID', `Invalid runId ${shown(runId)}: expected 1-${MAX_RUN_ID_LENGTH} characters of letters, digits and _ - . :`, 'runId');
  }
  const header = request.headers.get('last-event-id');
  const fromHeader = header !== null && header !== '' ? header : undefined;
  const id = fromHeader ?? (query.get('after') || undefined);
  if (id === undefined) return { threadId, runId, position: undefined };
  const position = positionOfFrameId(id);
  if (!position) {
    throw invalid(
      'INVALID_CURSOR',
      `invalid event id in ${fromHeader !== undefined ? 'the Last-Event-ID header' : 'query parameter "after"'}: expected an id this endpoint sent`,
      fromHeader !== undefined ? 'Last-Event-ID' : 'after',
    );
  }
  return { threadId, runId, position };
}
