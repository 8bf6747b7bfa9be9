import { LifecycleChecker, type LifecycleViolation } from '../events/lifecycle.js';
import type { AgentEvent } from '../events/schema.js';
import { RecentSet } from './recent-set.js';

/** Runs tracked at once; past it the oldest is dropped from checking (a run that never completed). */
const MAX_TRACKED_RUNS = 10_000;
/** Runs remembered as not checked (joined mid-way, or already reported). */
const MAX_SKIPPED_RUNS = 1_000;

/**
 * Checks each run's event order with the `LifecycleChecker`, with bounded memory: completed runs
 * are forgotten, and a run that broke the grammar is reported once, then left alone. A client
 * that resumes from a saved cursor (or after a history gap) may join runs already under way:
 * while `joinedMidStream` is set, a run first seen after its `agent_started` is left unchecked
 * instead of reported (what came before the cursor was never meant to arrive).
 */
export class RunOrderCheck {
  private readonly checker = new LifecycleChecker();
  private readonly tracked = new Set<string>();
  private readonly skipped = new RecentSet(MAX_SKIPPED_RUNS);

  constructor(public joinedMidStream: boolean) {}

  /** The violation this event causes, if any. */
  check(event: AgentEvent): LifecycleViolation | undefined {
    const { runId } = event;
    if (this.skipped.has(runId)) return undefined;
    if (!this.tracked.has(runId)) {
      if (this.joinedMidStream && event.type !== 'agent_started') {
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
      if (!oldest.done) this.untrack(oldest.value);
    }
  }

  private untrack(runId: string): void {
    this.tracked.delete(runId);
    this.checker.forget(runId);
  }
}
