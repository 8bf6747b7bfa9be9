import { DeliveryError } from '../errors/index.js';
import type { ThreadRegistry } from '../ids/thread-registry.js';
import type { Transport } from '../transport/types.js';
import type { BridgeCounters } from './metrics.js';
import type { BridgeState } from './options.js';
import type { Recovery } from './recovery.js';
import { isRetryable, sendWithRetry, type RetryOptions } from './retry.js';
import { describe, messageOf, type Pending, type RunQueue, type RunQueues } from './run-queue.js';

/** What the pump needs from its bridge. */
export interface PumpHost {
  readonly transport: Transport;
  readonly registry: ThreadRegistry;
  readonly queues: RunQueues;
  readonly recovery: Recovery;
  readonly retry: Required<RetryOptions>;
  readonly counters: BridgeCounters;
  readonly state: BridgeState;
  /** Starts a lazy `initialize()`; returns what to wait for while it runs (never rejects). */
  ready(): Promise<void> | undefined;
  /** A send failed for good while active: hold everything, start probing. */
  degrade(): void;
  /** A send succeeded while degraded. */
  recover(): void;
  /** A queue ran empty (`close()` may be waiting for the drain). */
  idle(): void;
}

/**
 * Drains one run's queue: one event at a time, strictly in seq order, so a retry never lets a
 * later event overtake. Active: one `send` per event, p-retry once it failed. Degraded: the head
 * waits for a recovery probe, then tries again. Stops when the bridge gives up on the queue
 * (close, fail).
 */
export async function pump(host: PumpHost, queue: RunQueue): Promise<void> {
  queue.pumping = true;
  const starting = host.ready();
  if (starting) await starting;
  while (queue.head < queue.items.length) {
    const pending = queue.items[queue.head]!;
    let outcome: 'delivered' | 'stalled' | DeliveryError;
    if (host.state === 'active') {
      // Hot path: one await per event; retries only once a send has failed.
      try {
        await host.transport.send(pending.event);
        outcome = 'delivered';
      } catch (error) {
        outcome = await attempt(host, pending, error);
      }
    } else {
      outcome = await attempt(host, pending);
    }
    // close()/fail() already reported this event and the rest of the run undelivered: stop here.
    if (pending.abandoned) break;
    if (outcome === 'stalled') {
      // The transport is down: wait for a recovery probe (or close), then try the same head again.
      if (isStopped(host)) break;
      await host.recovery.waitForProbe();
      if (isStopped(host)) break;
      continue;
    }
    queue.items[queue.head++] = undefined as unknown as Pending;
    if (outcome === 'delivered') {
      if (!queue.sent) {
        // The run's first delivery through this queue: the registry no longer forgets it (see `forget`).
        queue.sent = true;
        host.registry.delivered(pending.event.runId, pending.event.threadId, pending.event.userId);
      }
      host.queues.delivered(pending);
    } else {
      host.queues.fail(pending, outcome);
      // A start refused for good before anything of the run was delivered: the run did not start
      // (as `abandonRun`), so the registry forgets it, and the thread's owner it alone established
      // (another user's refused start must not lock the real owner out of the thread). A run that
      // delivered anything (e.g. through a queue swept before this second start) is kept: `forget`
      // checks the registry's own record, not this queue's.
      if (pending.event.type === 'agent_started' && !queue.sent) host.registry.forget(pending.event.runId);
    }
    if (pending.event.type === 'agent_completed') {
      queue.completed = true;
      host.registry.finish(pending.event.runId);
    }
  }
  queue.pumping = false;
  if (queue.head >= queue.items.length) {
    // Reuse the queue for the run's next event (agents await each event); drop it once the run is
    // over, or when nothing of it was delivered (its events were refused: it never started).
    queue.items = [];
    queue.head = 0;
    if (queue.completed || !queue.sent || isStopped(host)) host.queues.delete(queue.runId);
    host.idle();
  }
}

function isStopped(host: PumpHost): boolean {
  return host.state === 'closed' || host.state === 'failed';
}

/**
 * One delivery: with p-retry while active (after `firstError` when the first attempt was already
 * made), a single probe attempt while degraded.
 */
async function attempt(host: PumpHost, pending: Pending, firstError?: unknown): Promise<'delivered' | 'stalled' | DeliveryError> {
  const { event } = pending;
  try {
    if (host.state === 'degraded') {
      await host.transport.send(event);
      host.recover();
    } else {
      await sendWithRetry(host.transport, pending, host.retry, host.counters, firstError);
    }
    return 'delivered';
  } catch (error) {
    if (!isRetryable(error)) {
      return new DeliveryError(`Event ${describe(event)} was refused by the transport: ${messageOf(error)}`, { cause: error });
    }
    host.degrade();
    return 'stalled';
  }
}
