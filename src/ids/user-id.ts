import { z } from 'zod/v4';
import { ValidationError } from '../errors/index.js';
import { MAX_USER_ID_LENGTH, isValidUserId, isWellFormed, userIdProblem } from './user-id-format.js';

export { MAX_USER_ID_LENGTH, isValidUserId, isWellFormed, userIdProblem };

const WELL_FORMED = 'must be well-formed UTF-16 (no lone surrogate)';

/** A string of `min`-`max` code units of well-formed UTF-16: ids that end up in Redis keys, fields or script arguments. */
export function wellFormedString(min: number, max: number, what = 'value'): z.ZodString {
  return z.string().min(min).max(max).refine(isWellFormed, `${what} ${WELL_FORMED}`);
}

/** The `userId` of the event envelope and of every other wire shape that carries one. */
export const userIdSchema = z
  .string()
  .min(1, 'user id must not be empty')
  .max(MAX_USER_ID_LENGTH, `user id must be at most ${MAX_USER_ID_LENGTH} characters`)
  .refine(isWellFormed, `user id ${WELL_FORMED}`);

/**
 * Throws `ValidationError` `INVALID_USER_ID` (field `userId`) when `value` is not a user id: a
 * string of 1-256 characters of well-formed UTF-16. `owner` prefixes the message (e.g. `cancel()`).
 * The message shows a string value (cut to 80 characters, lone surrogates as JSON escapes) and
 * only the type of anything else: it never converts the value.
 */
export function assertUserId(value: unknown, owner?: string): asserts value is string {
  const problem = userIdProblem(value);
  if (problem === undefined) return;
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : value === null ? 'null' : typeof value;
  throw new ValidationError(`${owner ? `${owner}: ` : ''}Invalid userId ${shown}: ${problem}`, { field: 'userId', code: 'INVALID_USER_ID' });
}
