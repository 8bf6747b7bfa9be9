import { LifecycleChecker, type LifecycleViolation } from '../events/lifecycle.js';
import type { AgentEvent } from '../events/schema.js';
import { RecentSet } from './recent-set.js';

/** Runs tracked at once; past it the oldest is dropped from checking (a run that never completed). */
const MAX_TRACKED_RUNS = 10_000;
/** Runs remembered as not checked (joined mid-way, or already reported). */
const MAX_SKIPPED_RUNS = 1_000;
/** Open tool calls (each with its pending request, if any) tracked for one run; past it the run is dropped from checking. */
export const MAX_OPEN_TOOLS_PER_RUN = 10_000;
/** Open tool calls tracked across all runs; past it the run that opened one more is dropped from checking. */
export const MAX_OPEN_TOOLS = 100_000;

/** What checking one event found: a grammar violation, or that the run is no longer checked (too many open tool calls). */
export type OrderCheckResult =
  | { violation: LifecycleViolation; stopped?: undefined }
  | { violation?: undefined; stopped: { runId: string; openTools: number; message: string } }
  | undefined;

/**
 * Checks each run's event order with the `LifecycleChecker`, with bounded memory: completed runs
 * are forgotten, and a run that broke the grammar is reported once, then left alone. At most
 * `MAX_TRACKED_RUNS` runs are tracked (the oldest is dropped from checking), and at most
 * `MAX_OPEN_TOOLS_PER_RUN` open tool calls per run and `MAX_OPEN_TOOLS` in all: a run that opens
 * one more is reported (`stopped`) and dropped from checking, its state freed.
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
  /** Open tool calls of each tracked run that has any, and their total. */
  private readonly openTools = new Map<string, number>();
  private totalOpen = 0;
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

  /** What this event causes, if anything. `replayed`: it came in a replay (`frameArrived()`). */
  check(event: AgentEvent, replayed = false): OrderCheckResult {
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
      return { violation };
    }
    if (event.type === 'agent_completed') {
      this.untrack(runId);
    } else if (event.type === 'tool_executing') {
      const open = (this.openTools.get(runId) ?? 0) + 1;
      this.openTools.set(runId, open);
      this.totalOpen++;
      if (open > MAX_OPEN_TOOLS_PER_RUN || this.totalOpen > MAX_OPEN_TOOLS) {
        this.untrack(runId);
        this.skipped.add(runId);
        const bound = open > MAX_OPEN_TOOLS_PER_RUN ? `${MAX_OPEN_TOOLS_PER_RUN} per run` : `${MAX_OPEN_TOOLS} across runs`;
        return { stopped: { runId, openTools: open, message: `run ${runId} has more open tool calls than the client checks (${bound}): its order is no longer checked` } };
      }
    } else if (event.type === 'tool_completed') {
      const open = (this.openTools.get(runId) ?? 0) - 1;
      this.totalOpen--;
      if (open > 0) this.openTools.set(runId, open);
      else this.openTools.delete(runId);
    }
    return undefined;
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
    const open = this.openTools.get(runId);
    if (open !== undefined) {
      this.totalOpen -= open;
      this.openTools.delete(runId);
    }
  }
}
