import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { eventJson } from '../../events/json.js';
import type { LogEntry } from '../../transport/types.js';

/** Something with frames to write once the current tick is over. */
export interface Flushable {
  /** Set by the scheduler while the item waits for the next flush. */
  dirty: boolean;
  /** The scheduler's flush in which the item was last written (0: never); kept by the scheduler. */
  flushedRound: number;
  /** Writes what is queued. Must not throw; if it does anyway, `onFlushError` is told and the rest of the tick is written. */
  flush(): void;
}

export interface FlushSchedulerHooks {
  /** An entry's event is not JSON: it is skipped for every connection. Called once per event. */
  onUnserializable(entry: LogEntry, error: unknown): void;
  /** A `flush()` threw (a bug, or a socket that broke its contract). */
  onFlushError(item: Flushable, error: unknown): void;
}

/** Event-loop utilization (busy share of the last window) from which the loop counts as saturated. */
export const SATURATED_UTILIZATION = 0.9;
/** How often the utilization is sampled (at a flush, never by a timer of its own). */
const SAMPLE_EVERY_MS = 100;

/**
 * One gateway-wide flush per tick: connections that got frames are marked dirty and all of them
 * are written in a single `setImmediate`, after every event produced in the current tick
 * (including its microtasks) has been queued. That is what lets a connection receive a burst as
 * one batched message, and it costs one timer for the whole gateway instead of one per connection.
 *
 * Under saturation (`coalesceUnderLoad`: the event loop busy ≥ 90% of the last 100 ms), a
 * connection written by the previous flush waits for the next one, so it is written at most every
 * other tick: at one event per connection per tick that halves the kernel writes, which are most
 * of what a saturated gateway spends, at the cost of one tick of latency while saturated. Below
 * it every dirty connection is written every tick.
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
  /** Write a connection at most every other flush while the loop is saturated (the gateway's `coalesceUnderLoad`). */
  coalesceUnderLoad = true;
  /** Flushes so far (`Flushable.flushedRound`). */
  private round = 0;
  private saturated = false;
  private sampledAt = 0;
  private sample: EventLoopUtilization | undefined;

  constructor(private readonly hooks: FlushSchedulerHooks) {}

  markDirty(item: Flushable): void {
    if (item.dirty) return;
    item.dirty = true;
    this.dirty.push(item);
    this.scheduled ??= setImmediate(this.onTick);
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

  /** Writes everything now, deferring nothing (used by `close()` to drain before closing sockets). */
  readonly flushAll = (): void => this.flush(false);

  /** The per-tick flush: under saturation a connection written by the previous flush waits for the next. */
  private readonly onTick = (): void => this.flush(this.coalesceUnderLoad && this.isSaturated());

  private flush(coalescing: boolean): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const round = ++this.round;
    const items = this.dirty;
    this.dirty = [];
    for (const item of items) {
      if (coalescing && item.flushedRound === round - 1) this.dirty.push(item); // still dirty: written next tick
      else this.write(item, round);
    }
    // `??=`: a write may have marked something dirty (and scheduled the next flush) already.
    if (this.dirty.length !== 0) this.scheduled ??= setImmediate(this.onTick);
  }

  private write(item: Flushable, round: number): void {
    item.dirty = false;
    item.flushedRound = round;
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

  /** Whether the loop was busy ≥ `SATURATED_UTILIZATION` of the window since the last sample (sampled at most every 100 ms). */
  private isSaturated(): boolean {
    const now = performance.now();
    if (now - this.sampledAt < SAMPLE_EVERY_MS) return this.saturated;
    const sample = performance.eventLoopUtilization();
    // The first sample has no window before it: not saturated until one was measured.
    this.saturated = this.sample !== undefined && performance.eventLoopUtilization(sample, this.sample).utilization >= SATURATED_UTILIZATION;
    this.sample = sample;
    this.sampledAt = now;
    return this.saturated;
  }

  cancel(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    for (const item of this.dirty) item.dirty = false;
    this.dirty = [];
  }
}
