import { contentToText, type RunAgentInput } from '@ag-ui/core';
import { RunAgentInputSchema } from '@ag-ui/core/schemas';
import { generateRunId, isRunId, parseRunId } from '../ids/run-id.js';
import { MAX_RUN_ID_LENGTH, MAX_THREAD_ID_LENGTH, isValidRunIdShape, isValidThreadId } from '../ids/thread-id.js';
import { HttpProblem } from '../protocol/http.js';

/**
 * Validates a request body as AG-UI's `RunAgentInput` (with `@ag-ui/core`'s own schema) and
 * applies agentwire's id rules. Run id mapping:
 *
 * - `runId` absent or `""`: a standard agentwire run id, `generateRunId(threadId)`.
 * - a standard run id (`thread_<threadId>_run_…`): used as is; it must name the same thread.
 * - any other id (e.g. the UUID `HttpAgent` sends): used as is when it is 1–256 characters of
 *   letters, digits and `_ - . :`; such a run resolves to its thread through the registry.
 *
 * Throws `HttpProblem` 400 naming the first failing field.
 */
export function parseRunAgentInput(body: unknown): RunAgentInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpProblem(400, 'VALIDATION_FAILED', 'Invalid RunAgentInput: expected a JSON object', 'body');
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
    throw new HttpProblem(400, 'VALIDATION_FAILED', `Invalid RunAgentInput: ${field}: ${issue?.message ?? 'invalid value'}`, field);
  }
  const input = parsed.data;
  if (!isValidThreadId(input.threadId)) {
    throw new HttpProblem(
      400,
      'INVALID_THREAD_ID',
      `Invalid threadId ${shown(input.threadId)}: expected 1-${MAX_THREAD_ID_LENGTH} characters of letters, digits and _ - . :`,
      'threadId',
    );
  }
  if (!isValidRunIdShape(input.runId)) {
    throw new HttpProblem(
      400,
      'INVALID_RUN_ID',
      `Invalid runId ${shown(input.runId)}: expected 1-${MAX_RUN_ID_LENGTH} characters of letters, digits and _ - . :`,
      'runId',
    );
  }
  if (isRunId(input.runId) && parseRunId(input.runId).threadId !== input.threadId) {
    throw new HttpProblem(400, 'RUN_THREAD_MISMATCH', `Run id "${input.runId}" belongs to another thread than "${input.threadId}"`, 'runId');
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
