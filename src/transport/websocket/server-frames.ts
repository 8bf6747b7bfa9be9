import type { ServerFrame } from '../../protocol/frames.js';
import type { LogEntry } from '../types.js';

/** Cursors of the built-in logs need no escaping; anything else goes through JSON.stringify. */
const PLAIN_CURSOR = /^[\w.:-]*$/;

/**
 * The `event` frame of a log entry as JSON. The event itself is serialized once, into
 * `entry.json`, and shared by every connection and every gateway serving the log; only the small
 * envelope around it is built per send (a concatenation, no re-serialization). Caching the whole
 * frame on the entry would keep a second copy of every retained event in memory.
 */
export function eventFrameJson(entry: LogEntry): string {
  entry.json ??= JSON.stringify(entry.event);
  // Thread ids are restricted to [A-Za-z0-9_.:-] by the event schema: safe inside quotes.
  const cursor = PLAIN_CURSOR.test(entry.cursor) ? `"${entry.cursor}"` : JSON.stringify(entry.cursor);
  return `{"type":"event","threadId":"${entry.event.threadId}","cursor":${cursor},"event":${entry.json}}`;
}

export function frameJson(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

/** Something waiting in a connection's send queue: a log entry, or an already serialized control frame. */
export type Outgoing = LogEntry | string;

export function outgoingJson(item: Outgoing): string {
  return typeof item === 'string' ? item : eventFrameJson(item);
}
