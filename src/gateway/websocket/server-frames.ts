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
  // The memory log's entries: the thread's frame prefix (made once per log) and the offset, no cursor string.
  if (entry.constructor === MemoryLogEntry) return (entry as MemoryLogEntry).eventFrame(eventJson);
  // Read once: a log may build the cursor string on access.
  const cursor = entry.cursor;
  // The memory log's cursors are `<epoch>.<log id>.<thread tag>:<offset>`, base 36 and digits:
  // no test needed (a regular expression on a freshly built cursor is ~0.1 µs per frame).
  const quoted =
    entry.constructor === MemoryLogEntry || (typeof cursor === 'string' && PLAIN_CURSOR.test(cursor)) ? `"${cursor}"` : JSON.stringify(String(cursor));
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
  const json = serializer.eventJson(item);
  return json === undefined ? undefined : eventFrameJson(item, json);
}
