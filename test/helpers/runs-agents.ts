/** Agents and log helpers for the run-queue tests (test/**\/runs-*). */
import type { AgentEvent, EventLog, LogEntry, LogListener } from '../../src/index.js';

export { StepAgent, type StepInput } from '../../examples/runs/agents.js';

/** Collects what a log subscription hands out (replay and live). */
export class LogCollector implements LogListener {
  readonly events: AgentEvent[] = [];
  onEntries(entries: readonly LogEntry[]): void {
    for (const entry of entries) this.events.push(entry.event);
  }
  add(entries: readonly LogEntry[]): this {
    this.onEntries(entries);
    return this;
  }
  terminal(runId: string): AgentEvent[] {
    return this.events.filter((event) => event.runId === runId && event.type === 'agent_completed');
  }
}

/** Subscribes a `LogCollector` to `threadId` as `userId` (its replay collected first); `cleanups` ends the subscription. */
export async function followThread(log: EventLog, userId: string, threadId: string, cleanups: { push(step: () => void): unknown }): Promise<LogCollector> {
  const collector = new LogCollector();
  const result = await log.subscribe({ userId, threadId }, collector);
  if (result.status !== 'subscribed') throw new Error(`not subscribed: ${threadId}`);
  cleanups.push(() => result.subscription.close());
  return collector.add(result.replay);
}
