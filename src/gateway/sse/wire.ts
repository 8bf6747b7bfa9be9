import { ValidationError, type ErrorCode } from '../../errors/index.js';
import { eventJson } from '../../events/json.js';
import type { HistoryGapFrame, SubscribedFrame } from '../../protocol/frames.js';
import type { HistoryGap, LogEntry } from '../../transport/types.js';

/**
 * The SSE wire format of the gateway (`text/event-stream`):
 *
 * ```
 * retry: 2000                          once, when the stream opens
 *
 * event: subscribed                    once, before the replay (no id: keeps Last-Event-ID)
 * data: {"type":"subscribed","threadId":"t1","cursor":"k3x…:12","replayed":3}
 *
 * id: k3x…:13                          every event: id = the entry's cursor
 * event: tool_completed                the event type
 * data: {"v":1,"id":"…","type":"tool_completed",…}   the event JSON, one line
 *
 * : heartbeat                          comment, every heartbeatMs
 *
 * event: history_gap                   when the cursor cannot be honoured; the response then ends
 * data: {"type":"history_gap","threadId":"t1","requested":"…","reason":"trimmed","message":"…"}
 *
 * event: close                         the server ends the stream: the last message (no id)
 * data: {"type":"close","code":"REVOKED","message":"…"}
 * ```
 *
 * `close` codes: `REVOKED` (`revoke(userId)`), `TOKEN_EXPIRED` (the principal's `expiresAt`
 * passed), `TOO_MANY_CONNECTIONS` (a newer stream of the same user took this one's place),
 * `GATEWAY_CLOSED` (shutdown), `SUBSCRIPTION_ENDED` (the log ended the subscription). EventSource
 * reconnects by itself after any end: a client that gets `REVOKED`, `TOKEN_EXPIRED` or
 * `TOO_MANY_CONNECTIONS` should `close()` it (or reconnect with fresh credentials).
 */

/**
 * Serialized SSE blocks of the current tick: every connection writing the same entry in this tick
 * shares one serialization, then the cache is dropped. Keeping blocks for as long as their entries
 * live would hold a second copy of every retained event in memory.
 */
let recentBlocks = new Map<LogEntry, string>();
let clearScheduled = false;

function rememberForThisTick(entry: LogEntry, block: string): void {
  recentBlocks.set(entry, block);
  if (clearScheduled) return;
  clearScheduled = true;
  setImmediate(() => {
    recentBlocks = new Map();
    clearScheduled = false;
  }).unref();
}

/** Characters an SSE field value must not contain (they would end the line or the stream). */
const LINE_BREAK = /[\r\n\0]/;

/**
 * `id:` + `event:` + `data:` block of one log entry, built once per tick for all connections.
 * Throws `ValidationError` for an entry that cannot be written (an event that is not JSON, a
 * cursor with a line break): the caller skips that one entry and reports it.
 */
export function eventBlock(entry: LogEntry): string {
  let block = recentBlocks.get(entry);
  if (block === undefined) {
    const cursor = entry.cursor;
    if (typeof cursor !== 'string' || LINE_BREAK.test(cursor)) {
      throw new ValidationError(`Cursor ${JSON.stringify(String(cursor)).slice(0, 140)} cannot be an SSE id`, { code: 'INVALID_CURSOR' });
    }
    // A log may supply the JSON it stored (Redis); JSON escapes CR and LF inside strings.
    const supplied = entry.json;
    const data = supplied !== undefined && !LINE_BREAK.test(supplied) ? supplied : eventJson(entry.event);
    // The type from the log's records when it gives it (no event parsed for it).
    const type = String(entry.eventType ?? entry.event.type);
    if (LINE_BREAK.test(type)) throw new ValidationError('An event type cannot contain a line break', { code: 'INVALID_EVENT', field: 'type' });
    block = `id: ${cursor}\nevent: ${type}\ndata: ${data}\n\n`;
    rememberForThisTick(entry, block);
  }
  return block;
}

/** The reconnection delay hint for EventSource. */
export function retryBlock(retryMs: number): string {
  return `retry: ${Math.max(0, Math.round(retryMs))}\n\n`;
}

/** A named event without `id:` (so it never moves the client's Last-Event-ID). */
function namedBlock(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function subscribedBlock(threadId: string, cursor: string | null, replayed: number): string {
  const frame: SubscribedFrame = { type: 'subscribed', threadId, cursor, replayed };
  return namedBlock('subscribed', frame);
}

export function historyGapBlock(gap: HistoryGap): string {
  const frame: HistoryGapFrame = {
    type: 'history_gap',
    threadId: gap.threadId,
    requested: gap.requested,
    reason: gap.reason,
    message: gap.message,
  };
  return namedBlock('history_gap', frame);
}

/** The last message of a stream the server ends (see the format above). */
export function closeBlock(code: ErrorCode, message: string): string {
  return namedBlock('close', { type: 'close', code, message });
}

export const HEARTBEAT_BLOCK = ': heartbeat\n\n';

/** Response headers of an event stream. */
export const STREAM_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  Connection: 'keep-alive',
  // Tells nginx-style proxies not to buffer the stream.
  'X-Accel-Buffering': 'no',
} as const;
