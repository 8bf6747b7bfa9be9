import { DeliveryError, StateError, type CodeOf } from '../errors/index.js';
import { isInstance } from '../errors/guards.js';
import type { AgentEvent } from '../events/schema.js';
import type { BridgeCounters } from './metrics.js';

/** How `send` settled: handed to the transport, or held in the bounded buffer while it is down. */
export type DeliveryReceipt = 'delivered' | 'buffered';

/**
 * Callback form of a delivery outcome: an error, or the receipt. Called exactly once. An event it
 * settled as `'buffered'` that the bridge gives up on later (`close()` after its drain, `failed`)
 * is reported to `late`, when the callback has one (the agents' runs: their `delivery_error`
 * listeners, and the run's `deliveryErrors` while it has not resolved).
 */
export type DeliveryCallback = ((error: DeliveryError | undefined, receipt: DeliveryReceipt | undefined, event: AgentEvent) => void) & {
  /** @internal */
  late?: (error: DeliveryError, event: AgentEvent) => void;
};

export interface Pending {
  event: AgentEvent;
  enqueuedAt: number;
  settled: boolean;
  settle: DeliveryCallback;
  /**
   * `close()` (after its drain timeout) or `fail()` reported this event undelivered while the run's
   * pump was still sending or retrying it. The pump must then stop: no further attempt (nothing is
   * sent after being reported undelivered) and no second report (it would count the event twice in
   * `failed`, emit `delivery_error` twice and drive the `buffered` gauge below zero).
   */
  abandoned?: boolean;
  /** Set while this event waits between retries: aborting it cancels the wait (and its timer) at once. */
  retrying?: AbortController;
}

/** One run's ordered send queue: events leave strictly in seq order, one at a time. */
export interface RunQueue {
  runId: string;
  /** Thread and user the run was routed to when its queue was created; later events must match. */
  threadId: string;
  userId: string;
  items: Pending[];
  head: number;
  pumping: boolean;
  /** agent_completed has left the queue: nothing else may follow, the queue can go. */
  completed: boolean;
  /**
   * An event of the run has been delivered: the run has started. A queue that drains with nothing
   * delivered (every event refused for good) is not kept, nor counted in `activeRuns`.
   */
  sent: boolean;
}

/** Past this many queues, idle queues of runs that never completed are swept (integrator-sent events). */
const MAX_IDLE_QUEUES = 10_000;

function newQueue(event: AgentEvent): RunQueue {
  return { runId: event.runId, threadId: event.threadId, userId: event.userId, items: [], head: 0, pumping: false, completed: false, sent: false };
}

export function describe(event: AgentEvent): string {
  // `bridge.send` may be handed anything (null, a string): describe it without reading fields.
  if (typeof event !== 'object' || event === null) return `(not an event: ${event === null ? 'null' : typeof event})`;
  return `${String(event.type)} #${String(event.seq)} of run ${String(event.runId).slice(0, 256)}`;
}

/** The error of an event the bridge gives up on (never delivered), with why. */
export function undelivered(event: AgentEvent, reason: string, code: CodeOf<'DeliveryError'>, cause?: unknown): DeliveryError {
  return new DeliveryError(`Event ${describe(event)} was not delivered: ${reason}`, cause === undefined ? { code } : { cause, code });
}

/** Why an event did not fit: the held buffer while degraded, or the run's own queue otherwise. */
export function bufferFull(degraded: boolean): Error {
  return new Error(degraded ? 'the transport is down and the buffer is full' : 'the run has too many events queued');
}

export function messageOf(error: unknown): string {
  try {
    return isInstance(error, Error) ? String(error.message) : String(error);
  } catch {
    return 'unknown error';
  }
}

/**
 * The bridge's run queues and their bookkeeping: held (buffered) events, events given up on,
 * counts. The pump that drains a queue lives in the bridge; this class only changes queue state
 * and reports each event's outcome exactly once (its `settle`, the counters, `onDeliveryError`).
 */
export class RunQueues {
  private readonly queues = new Map<string, RunQueue>();

  constructor(
    private readonly counters: BridgeCounters,
    private readonly onDeliveryError: (error: DeliveryError, event: AgentEvent) => void,
  ) {}

  /** Queues currently held (runs with a queue). */
  get size(): number {
    return this.queues.size;
  }

  get(runId: string): RunQueue | undefined {
    return this.queues.get(runId);
  }

  /** The run's queue, made now for its first event (sweeping idle ones past `MAX_IDLE_QUEUES`). */
  open(event: AgentEvent): RunQueue {
    let queue = this.queues.get(event.runId);
    if (queue) return queue;
    if (this.queues.size >= MAX_IDLE_QUEUES) this.sweepIdle();
    queue = newQueue(event);
    this.queues.set(event.runId, queue);
    return queue;
  }

  delete(runId: string): void {
    this.queues.delete(runId);
  }

  /** Events still queued (not yet delivered nor given up on). */
  pendingCount(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.items.length - queue.head;
    return count;
  }

  /** Runs whose terminal event has not left their queue. */
  activeRunCount(): number {
    let activeRuns = 0;
    for (const queue of this.queues.values()) if (!queue.completed) activeRuns++;
    return activeRuns;
  }

  /** Settles an event as buffered (held while the transport is down). */
  hold(pending: Pending): void {
    if (pending.settled) return;
    pending.settled = true;
    this.counters.addBuffered(1);
    pending.settle(undefined, 'buffered', pending.event);
  }

  /** Counts a delivered event and settles it (a held one was settled already). */
  delivered(pending: Pending): void {
    this.counters.delivered++;
    this.counters.latency.record(performance.now() - pending.enqueuedAt);
    if (pending.settled) this.counters.addBuffered(-1);
    else {
      pending.settled = true;
      pending.settle(undefined, 'delivered', pending.event);
    }
  }

  /** Reports an event undelivered: counted, emitted as a delivery error, settled with it if it was not yet. */
  fail(pending: Pending, error: DeliveryError): void {
    this.counters.failed++;
    if (pending.settled) this.counters.addBuffered(-1);
    this.onDeliveryError(error, pending.event);
    if (pending.settled) {
      // Settled as buffered: its sender hears of the loss through `late` (isolated like a listener).
      try {
        pending.settle.late?.(error, pending.event);
      } catch {
        // A throwing observer must not break delivery.
      }
    } else {
      pending.settled = true;
      pending.settle(error, undefined, pending.event);
    }
  }

  /**
   * The transport went down: everything queued is now held, so agents are not blocked. Events
   * queued while the first sends were still being retried count toward `maxBufferedTotal` like
   * the ones that come later (without this, many concurrent runs each queueing up to
   * `highWaterMark` before the bridge knew the transport was down were all held, far past the
   * bound). Past it, the newer ones are refused with BUFFER_FULL, exactly as at enqueue time;
   * never a run's in-flight head and never its terminal event.
   */
  holdAll(maxBufferedTotal: number): void {
    for (const queue of this.queues.values()) {
      let kept = queue.head;
      for (let i = queue.head; i < queue.items.length; i++) {
        const pending = queue.items[i]!;
        const overflow = i > queue.head && !pending.settled && pending.event.type !== 'agent_completed' && this.counters.buffered >= maxBufferedTotal;
        if (overflow) {
          const cause = bufferFull(true);
          this.fail(pending, undelivered(pending.event, cause.message, 'BUFFER_FULL', cause));
          continue;
        }
        this.hold(pending);
        queue.items[kept++] = pending;
      }
      queue.items.length = kept;
    }
  }

  /**
   * Reports every queued event undelivered (`UNDELIVERED`, caused by `cause` when given: its code is
   * the error's `causeCode`) and drops every queue. Each event is marked abandoned
   * and its retry wait cancelled, so a pump still sending or retrying it stops.
   */
  failAll(reason: string, cause?: unknown): void {
    for (const queue of this.queues.values()) {
      for (let i = queue.head; i < queue.items.length; i++) {
        const pending = queue.items[i]!;
        pending.abandoned = true;
        pending.retrying?.abort(new StateError('BRIDGE_GAVE_UP', 'The bridge gave up on this event'));
        this.fail(pending, undelivered(pending.event, reason, 'UNDELIVERED', cause));
      }
      queue.head = queue.items.length;
    }
    this.queues.clear();
  }

  private sweepIdle(): void {
    for (const [runId, queue] of this.queues) {
      if (!queue.pumping && queue.head >= queue.items.length) this.queues.delete(runId);
    }
  }
}
