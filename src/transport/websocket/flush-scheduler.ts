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

  markDirty(item: Flushable): void {
    if (item.dirty) return;
    item.dirty = true;
    this.dirty.push(item);
    this.scheduled ??= setImmediate(this.flushAll);
  }

  /** The event's JSON: every log entry carries it (`LogEntry.json`, made once at append), shared by every connection. */
  eventJson(entry: LogEntry): string {
    return entry.json;
  }

  /** Writes everything now (used by `close()` to drain before closing sockets). */
  readonly flushAll = (): void => {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const items = this.dirty;
    this.dirty = [];
    for (const item of items) {
      item.dirty = false;
      item.flush();
    }
  };

  cancel(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    for (const item of this.dirty) item.dirty = false;
    this.dirty = [];
  }
}
