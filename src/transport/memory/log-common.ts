import { AgentwireError, TransportError } from '../../errors/index.js';
import { isInstance, readThrown } from '../../errors/guards.js';
import type { AgentEvent } from '../../events/schema.js';

/** What the built-in logs (memory and Redis) share. */

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

/**
 * The refusal of one event that cannot be stored as it is, e.g. because it is not JSON
 * (`eventJson` threw): not retryable, the reason as its cause (and its code in `details.reason`).
 */
export function refusal(event: AgentEvent, cause: unknown): TransportError {
  // The cause may be what an author's toJSON or getter threw: its fields read once, guarded.
  const fields = readThrown(cause);
  const reason = isInstance(cause, AgentwireError) ? fields.code : undefined;
  const message = fields.isError ? (fields.message ?? 'Error') : shownCause(cause);
  const what =
    typeof event === 'object' && event !== null
      ? `The ${String(event.type)} event ${String(event.id)} of run ${String(event.runId)}`
      : 'An event';
  return new TransportError(`${what} was refused: ${message}`, {
    code: 'TRANSPORT_REFUSED',
    retryable: false,
    cause,
    details: reason === undefined ? {} : { reason },
  });
}

/** `String(cause)`, or a placeholder when that throws (a proxy, an object whose toString throws). */
function shownCause(cause: unknown): string {
  try {
    return String(cause);
  } catch {
    return `a thrown ${typeof cause}`;
  }
}
