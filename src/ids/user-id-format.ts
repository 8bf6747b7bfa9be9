/**
 * The format of user ids without zod (what `thread-id-format.ts` is for thread ids): one
 * predicate every entry point of a user id uses (run options, the principal of an auth hook, the
 * event schema, run queues, the Redis log), so a user id means one thing everywhere.
 *
 * A user id is 1-256 UTF-16 code units of well-formed UTF-16: no lone surrogate. Redis (and any
 * other UTF-8 store) encodes a lone surrogate as U+FFFD, so `alice\ud800`, `alice\udbff` and
 * `alice\ufffd` would be three users in the process and one owner in Redis. Well-formed strings
 * encode to UTF-8 one to one: two user ids are equal in the process exactly when they are in Redis.
 */

/** Longest accepted user id (UTF-16 code units, what `String#length` counts). */
export const MAX_USER_ID_LENGTH = 256;

/** A lone surrogate: with the `u` flag a paired surrogate is one astral code point, not `Cs`. */
const LONE_SURROGATE = /\p{Cs}/u;
const nativeIsWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

/** Whether `value` is well-formed UTF-16 (`String.prototype.isWellFormed`, or the same test by regex where it is missing). */
export const isWellFormed: (value: string) => boolean =
  typeof nativeIsWellFormed === 'function' ? (value) => nativeIsWellFormed.call(value) : (value) => !LONE_SURROGATE.test(value);

/** Why `value` is not a user id, or undefined when it is one. Never converts `value` to a string. */
export function userIdProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_USER_ID_LENGTH) {
    return `userId must be a string of 1-${MAX_USER_ID_LENGTH} characters`;
  }
  if (!isWellFormed(value)) return 'userId must be well-formed UTF-16 (it contains a lone surrogate)';
  return undefined;
}

export function isValidUserId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_USER_ID_LENGTH && isWellFormed(value);
}
