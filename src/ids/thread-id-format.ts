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

/**
 * Whether `value` is 1 to `maxLength` characters of `THREAD_ID_PATTERN`'s alphabet. A loop over
 * the characters rather than the regular expression (about a third cheaper: checked on every
 * `send()` of a gateway); the zod schemas use the pattern.
 */
export function isSafeId(value: unknown, maxLength: number): value is string {
  if (typeof value !== 'string') return false;
  const length = value.length;
  if (length === 0 || length > maxLength) return false;
  for (let i = 0; i < length; i++) {
    const c = value.charCodeAt(i);
    // a-z, A-Z, 0-9 and ':' (0x30-0x3a), '_', '.', '-'
    if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 58) || c === 95 || c === 46 || c === 45) continue;
    return false;
  }
  return true;
}

export function isValidThreadId(value: unknown): value is string {
  return isSafeId(value, MAX_THREAD_ID_LENGTH);
}
