/**
 * A short tag naming a thread inside a cursor (FNV-1a, 32 bits, base 36: 1–7 characters). Both
 * built-in logs put it in their cursors so that a cursor of one thread presented for another is
 * recognised as such (`unknown_cursor`). It is not what makes resume exact: the memory log also
 * checks the incarnation of the thread's log, the Redis log the epoch of the thread's stream, and
 * both are unique per thread; the tag only tells "another thread" apart from "recreated".
 */
export function threadTag(threadId: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < threadId.length; i++) {
    hash ^= threadId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}
