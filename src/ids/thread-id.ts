import { z } from 'zod/v4';
import { ValidationError } from '../errors/index.js';
import { shown as shownValue } from '../errors/options.js';
import { MAX_RUN_ID_LENGTH, MAX_THREAD_ID_LENGTH, THREAD_ID_PATTERN, isSafeId, isValidThreadId } from './thread-id-format.js';

export { MAX_RUN_ID_LENGTH, MAX_THREAD_ID_LENGTH, isValidThreadId };

export const threadIdSchema = z
  .string()
  .min(1, 'thread id must not be empty')
  .max(MAX_THREAD_ID_LENGTH, `thread id must be at most ${MAX_THREAD_ID_LENGTH} characters`)
  .regex(THREAD_ID_PATTERN, 'thread id may only contain letters, digits and _ - . :');

export const runIdSchema = z
  .string()
  .min(1, 'run id must not be empty')
  .max(MAX_RUN_ID_LENGTH, `run id must be at most ${MAX_RUN_ID_LENGTH} characters`)
  .regex(THREAD_ID_PATTERN, 'run id may only contain letters, digits and _ - . :');


/** Throws a `ValidationError` naming the value when it is not a valid thread id. */
export function assertThreadId(value: unknown): asserts value is string {
  if (isValidThreadId(value)) return;
  // Never String(value): an object without a prototype, or whose toString throws, must still get this error.
  const shown = shownValue(value);
  throw new ValidationError(
    `Invalid thread id ${shown}: expected 1-${MAX_THREAD_ID_LENGTH} characters of letters, digits and _ - . :`,
    { field: 'threadId', code: 'INVALID_THREAD_ID', details: { value } },
  );
}

/** Any run id the registry can hold (standard or custom): the thread id alphabet, up to 256 characters. */
export function isValidRunIdShape(value: unknown): value is string {
  return isSafeId(value, MAX_RUN_ID_LENGTH);
}
