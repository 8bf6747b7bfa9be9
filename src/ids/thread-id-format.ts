/**
 * The format of thread and run ids without zod: what `agentwire/client` checks (it ships no
 * schema library to the browser) and what the schemas of `thread-id.ts` are built from.
 */

/** Longest accepted thread id. Long enough for UUIDs, Slack `ts` pairs and prefixed keys. */
export const MAX_THREAD_ID_LENGTH = 128;
/** Longest accepted run id (a standard run id adds at most 40 characters to its thread id). */
export const MAX_RUN_ID_LENGTH = 256;

/** Thread ids are URL-, header- and Redis-key-safe: letters, digits and `_ - . :`. */
export const THREAD_ID_PATTERN = /^[A-Za-z0-9_.:-]+$/;

export function isSafeId(value: unknown, maxLength: number): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= maxLength && THREAD_ID_PATTERN.test(value);
}

export function isValidThreadId(value: unknown): value is string {
  return isSafeId(value, MAX_THREAD_ID_LENGTH);
}
