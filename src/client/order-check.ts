import { LifecycleChecker, type LifecycleViolation } from '../events/lifecycle.js';
import type { AgentEvent } from '../events/schema.js';
import { RecentSet } from './recent-set.js';

/** Runs tracked at once; past it the oldest is dropped from checking (a run that never completed). */
const MAX_TRACKED_RUNS = 10_000;
/** Runs remembered as not checked (joined mid-way, or already reported). */
const MAX_SKIPPED_RUNS = 1_000;

/**
 * Checks each run's event order with the `LifecycleChecker`, with bounded memory: completed runs
 * are forgotten, and a run that broke the grammar is reported once, then left alone.
 *
 * A run first seen after its `agent_started` is not always a violation: nothing before the point a
 * subscription starts from was promised. So such a run is left unchecked instead of reported
 * - while a replay is arriving (the `replayed` events announced by `subscribed`, see `subscribed()`):
 *   a subscription without a cursor replays the retained tail of the thread, and retention may
 *   have trimmed the start of a run still under way; a replay after a cursor may begin mid-run too;
 * - and always while `joinedMidStream` is set: the client resumed from a saved cursor, or
 *   re-subscribed after a history gap, so runs under way may continue live, silent through the replay.
 * A run first seen mid-way live after a replay, on a client that did not join mid-stream, is
 * reported: its start was not retained when the client subscribed, yet it had no event in what was.
 */
export class RunOrderCheck {
  private readonly checker = new LifecycleChecker();
  private readonly tracked = new Set<string>();
  private readonly skipped = new RecentSet(MAX_SKIPPED_RUNS);
  /** Events of the current subscription's replay still to come. */
  private replayLeft = 0;

  constructor(public joinedMidStream: boolean) {}

  /** A subscription was confirmed (`subscribed`): the next `replayed` event frames of the thread are its replay. */
  subscribed(replayed: unknown): void {
    this.replayLeft = typeof replayed === 'number' && Number.isSafeInteger(replayed) && replayed > 0 ? replayed : 0;
  }

  /**
   * An event frame of the thread arrived (call for each one, repeats and refused ones included:
   * the server counted them all in `replayed`). True when it is part of the replay.
   */
  frameArrived(): boolean {
    if (this.replayLeft === 0) return false;
    this.replayLeft--;
    return true;
  }

  /** The violation this event causes, if any. `replayed`: it came in a replay (`frameArrived()`). */
  check(event: AgentEvent, replayed = false): LifecycleViolation | undefined {
    const { runId } = event;
    if (this.skipped.has(runId)) return undefined;
    if (!this.tracked.has(runId)) {
      if ((this.joinedMidStream || replayed) && event.type !== 'agent_started') {
        this.skipped.add(runId);
        return undefined;
      }
      this.track(runId);
    }
    const violation = this.checker.push(event);
    if (violation) {
      this.untrack(runId);
      this.skipped.add(runId);
    } else if (event.type === 'agent_completed') {
      this.untrack(runId);
    }
    return violation;
  }

  private track(runId: string): void {
    this.tracked.add(runId);
    if (this.tracked.size > MAX_TRACKED_RUNS) {
      const oldest = this.tracked.values().next();
      if (!oldest.done) {
        // Dropped from checking, not forgotten as done: its later events are not "a run without agent_started".
        this.untrack(oldest.value);
        this.skipped.add(oldest.value);
      }
    }
  }

  private untrack(runId: string): void {
    this.tracked.delete(runId);
    this.checker.forget(runId);
  }
}
