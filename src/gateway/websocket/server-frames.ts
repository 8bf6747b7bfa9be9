import type { ServerFrame } from '../../protocol/frames.js';
import { MemoryLogEntry } from '../../transport/memory/thread-log.js';
import type { LogEntry } from '../../transport/types.js';

/** Cursors of the built-in logs need no escaping; anything else goes through JSON.stringify. */
const PLAIN_CURSOR = /^[\w.:-]*$/;

/** Serializes an entry's event, once for every connection (see `FlushScheduler.eventJson`); undefined when it is not JSON. */
export interface EventSerializer {
  eventJson(entry: LogEntry): string | undefined;
}

/**
 * The `event` frame of a log entry as JSON. The event itself is serialized once (`eventJson`)
 * and shared by every connection that writes it; only the small envelope around it is built per
 * send (a concatenation, no re-serialization).
 */
export function eventFrameJson(entry: LogEntry, eventJson: string): string {
  // Read once: a log may build the cursor string on access.
  const cursor = entry.cursor;
  const quoted = typeof cursor === 'string' && PLAIN_CURSOR.test(cursor) ? `"${cursor}"` : JSON.stringify(String(cursor));
  // Thread ids are restricted to [A-Za-z0-9_.:-] by the event schema: safe inside quotes. The
  // entry's own (`LogEntry.threadId`) when the log gives it: a replayed entry is never parsed.
  return `{"type":"event","threadId":"${entry.threadId ?? entry.event.threadId}","cursor":${quoted},"event":${eventJson}}`;
}

export function frameJson(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

/** Something waiting in a connection's send queue: a log entry, or an already serialized control frame. */
export type Outgoing = LogEntry | string;

/** The item's frame as JSON, or undefined when its event is not JSON (the item is skipped). */
export function outgoingJson(item: Outgoing, serializer: EventSerializer): string | undefined {
  if (typeof item === 'string') return item;
  // An entry of the memory log (the common case): its JSON was made at append, and its frame is its
  // thread's frame prefix (made once per log) and the offset: no serializer, no cursor string.
  if (item.constructor === MemoryLogEntry) {
    const entry = item as MemoryLogEntry;
    return entry.eventFrame(entry.json);
  }
  const json = serializer.eventJson(item);
  return json === undefined ? undefined : eventFrameJson(item, json);
}
