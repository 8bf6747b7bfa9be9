import type { LogEntry } from '../types.js';

/** Something with frames to write once the current tick is over. */
export interface Flushable {
  /** Set by the scheduler while the item waits for the next flush. */
  dirty: boolean;
  flush(): void;
}

/**
 * One gateway-wide flush per tick: connections that got frames are marked dirty and all of them
 * are written in a single `setImmediate`, after every event produced in the current tick
 * (including its microtasks) has been queued. That is what lets a connection receive a burst as
 * one batched message, and it costs one timer for the whole gateway instead of one per connection.
 */
export class FlushScheduler {
  private dirty: Flushable[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  /** Entries whose `json` was filled in by `eventJson` during the current flush. */
  private serialized: LogEntry[] = [];

  markDirty(item: Flushable): void {
    if (item.dirty) return;
    item.dirty = true;
    this.dirty.push(item);
    this.scheduled ??= setImmediate(this.flushAll);
  }

  /**
   * The event's JSON, serialized at most once per flush however many connections write it (a
   * user's several connections, several subscriptions). It stays on the entry only until the
   * flush ends: the log already retains the event object for replay, and keeping a serialized
   * second copy of every retained event doubled the memory of a full log and, with it, the
   * garbage collector's work on the hot path (profile of the ws-fanout bench, see
   * docs/performance.md). JSON that the log itself provides (the Redis log reads it from the
   * stream) is used as it is and left in place.
   */
  eventJson(entry: LogEntry): string {
    let json = entry.json;
    if (json === undefined) {
      json = JSON.stringify(entry.event);
      entry.json = json;
      this.serialized.push(entry);
    }
    return json;
  }

  /** Writes everything now (used by `close()` to drain before closing sockets). */
  readonly flushAll = (): void => {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const items = this.dirty;
    this.dirty = [];
    try {
      for (const item of items) {
        item.dirty = false;
        item.flush();
      }
    } finally {
      this.forgetSerialized();
    }
  };

  cancel(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    for (const item of this.dirty) item.dirty = false;
    this.dirty = [];
    this.forgetSerialized();
  }

  private forgetSerialized(): void {
    const entries = this.serialized;
    for (let i = 0; i < entries.length; i++) entries[i]!.json = undefined;
    entries.length = 0;
  }
}
