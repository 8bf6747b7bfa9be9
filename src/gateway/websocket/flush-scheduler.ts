import { eventJson } from '../../events/json.js';
import type { LogEntry } from '../../transport/types.js';

/** Something with frames to write once the current tick is over. */
export interface Flushable {
  /** Set by the scheduler while the item waits for the next flush. */
  dirty: boolean;
  /** Writes what is queued. Must not throw; if it does anyway, `onFlushError` is told and the rest of the tick is written. */
  flush(): void;
}

export interface FlushSchedulerHooks {
  /** An entry's event is not JSON: it is skipped for every connection. Called once per event. */
  onUnserializable(entry: LogEntry, error: unknown): void;
  /** A `flush()` threw (a bug, or a socket that broke its contract). */
  onFlushError(item: Flushable, error: unknown): void;
}

/**
 * One gateway-wide flush per tick: connections that got frames are marked dirty and all of them
 * are written in a single `setImmediate`, after every event produced in the current tick
 * (including its microtasks) has been queued. That is what lets a connection receive a burst as
 * one batched message, and it costs one timer for the whole gateway instead of one per connection.
 *
 * Nothing thrown while writing may escape the `setImmediate` (it would be an uncaught exception:
 * every user disconnected): each item's flush is contained, and an event that cannot be
 * serialized is skipped, once for everyone.
 */
export class FlushScheduler {
  private dirty: Flushable[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  /** Events known not to be JSON (by identity, so they go with the log's entries). */
  private readonly notJson = new WeakSet<object>();

  constructor(private readonly hooks: FlushSchedulerHooks) {}

  markDirty(item: Flushable): void {
    if (item.dirty) return;
    item.dirty = true;
    this.dirty.push(item);
    this.scheduled ??= setImmediate(this.flushAll);
  }

  /**
   * The event's JSON, or undefined when it is not JSON (then every connection skips it). Every
   * built-in log hands entries with their JSON (`LogEntry.json`, made once at append) and refuses
   * events that are not JSON; a log of your own that breaks that contract (no `json`, or an event
   * that cannot be serialized) costs the events concerned, never the flush: `eventJson` serializes
   * such an event once (remembered with it), or it is skipped for everyone.
   */
  eventJson(entry: LogEntry): string | undefined {
    const known: unknown = entry.json;
    if (typeof known === 'string') return known;
    const event = entry.event;
    if (this.notJson.has(event)) return undefined;
    try {
      return eventJson(event);
    } catch (error) {
      if (typeof event === 'object' && event !== null) this.notJson.add(event);
      this.hooks.onUnserializable(entry, error);
      return undefined;
    }
  }

  /** Writes everything now (used by `close()` to drain before closing sockets). */
  readonly flushAll = (): void => {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const items = this.dirty;
    this.dirty = [];
    for (const item of items) {
      item.dirty = false;
      try {
        item.flush();
      } catch (error) {
        try {
          this.hooks.onFlushError(item, error);
        } catch {
          // The rest of the tick is written whatever happens.
        }
      }
    }
  };

  cancel(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    for (const item of this.dirty) item.dirty = false;
    this.dirty = [];
  }
}
