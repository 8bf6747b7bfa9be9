import { customAlphabet } from 'nanoid';
import { StateError, TransportError, ValidationError, type AgentwireError } from '../../errors/index.js';
import type { RedisConnection } from './connection.js';
import { isTransientReply, toTransportError } from './connection.js';
import type { RedisKeys } from './keys.js';
import { claimedElsewhere, claimRunId } from './run-claim.js';
import { APPEND_SCRIPT } from './scripts.js';

const makeSeed = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 8);

/** What the append script needs to know of an event's type: it fences runs by their first and last event. */
export type AppendKind = 's' | 'c' | 'o';

export interface AppendRequest {
  threadId: string;
  userId: string;
  json: string;
  kind: AppendKind;
  runId: string;
  /** The event id (the script compares it for `agent_started` / `agent_completed` only). */
  eventId: string;
  /**
   * Whether the run id does not name this thread (a custom, client-given id): its `agent_started`
   * first claims the run id for the thread (`claimRunId`), its `agent_completed` refreshes the claim.
   */
  customRunId: boolean;
}

interface PendingAppend extends AppendRequest {
  resolve: () => void;
  reject: (error: Error) => void;
}

export interface AppenderLimits {
  maxLenPerThread: number;
  threadTtlSeconds: number;
  maxBatchSize: number;
  maxBatchBytes: number;
}

/** Run states a thread's meta hash holds before those of runs no longer retained are pruned. */
export function runLimit(maxLenPerThread: number): number {
  return 2 * maxLenPerThread + 256;
}

/**
 * Coalesces the appends requested in one tick into batches of one `EVALSHA` each. The bridge sends
 * one event at a time per run but many runs at once: their sends land in the same tick (a settled
 * send resumes every waiting run in one microtask cascade), and a batch carries them all to Redis
 * in one command. Batches issued together are pipelined by node-redis on one socket write.
 *
 * Order: appends are issued in the order `append` was called, so per-run (and per-thread) order
 * is the bridge's order. On a Redis Cluster a tick's appends are split per slot group first
 * (a script call touches one slot); each group's batches keep the call order. Each append settles on its own: resolved once Redis stored the entry.
 *
 * A custom run id's `agent_started` is queued only once its claim (`CLAIM_RUN_SCRIPT`, one round
 * trip on the run id's own key) is held: a run id claimed by another thread is refused
 * `RUN_ID_CONFLICT` and never reaches the append script. What the thread is sent while that claim
 * is out waits behind the start (other threads do not), so call order per thread holds.
 */
export class Appender {
  private queue: PendingAppend[] = [];
  private scheduled = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** Unique per process; with a counter per batch and the index in the batch, names a new stream's epoch. */
  private readonly epochSeed = makeSeed();
  private batchCounter = 0;
  /** Script calls issued, events appended, repeats accepted without a second entry, events refused. */
  batches = 0;
  appended = 0;
  repeats = 0;
  refused = 0;
  /** Run id claims issued (one per `agent_started` of a custom run id, plus its renewals during the run and a refresh at its `agent_completed`). */
  claims = 0;
  /**
   * Custom run ids this process started and has not ended, with when their claim was last
   * renewed: a long run renews it every quarter of `threadTtlSeconds`, so it cannot expire while
   * the run goes on (another thread could then start the same id). Bounded: cleared past 50,000.
   */
  private readonly running = new Map<string, number>();
  /** Set by `rejectQueued`: a claim settling later rejects its append with it instead of queueing it. */
  private stopped: Error | undefined;
  /** Per thread with a start whose claim is out: what was sent to that thread after it, in call order. */
  private readonly held = new Map<string, PendingAppend[]>();
  private heldCount(): number {
    let n = 0;
    for (const items of this.held.values()) n += items.length;
    return n;
  }

  constructor(
    private readonly connection: RedisConnection,
    private readonly keys: RedisKeys,
    private readonly limits: AppenderLimits,
  ) {}

  append(request: AppendRequest): Promise<void> {
    return new Promise((resolve, reject) => {
      const pending = request as PendingAppend;
      pending.resolve = resolve;
      pending.reject = reject;
      this.admit(pending);
    });
  }

  /** Queues `item` in call order per thread: behind a start of the thread whose claim is still out. */
  private admit(item: PendingAppend): void {
    const held = this.held.get(item.threadId);
    if (held) held.push(item);
    else if (item.kind === 's' && item.customRunId) {
      this.held.set(item.threadId, []);
      this.claimThenQueue(item);
    } else this.enqueue(item);
  }

  private enqueue(item: PendingAppend): void {
    if (this.stopped) {
      item.reject(this.stopped);
      return;
    }
    this.queue.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      // nextTick runs after the microtasks of this tick have drained: every send made in it joins the batch.
      process.nextTick(this.flush);
    }
  }

  /**
   * Claims a custom run id for its thread, then queues its `agent_started` (another thread's claim
   * refuses it), then what the thread was sent meanwhile, in call order.
   */
  private claimThenQueue(item: PendingAppend): void {
    this.claims++;
    const release = (): void => {
      const held = this.held.get(item.threadId) ?? [];
      this.held.delete(item.threadId);
      for (const next of held) this.admit(next);
    };
    const claim = claimRunId(this.connection, this.keys, item.runId, item.threadId, this.limits.threadTtlSeconds).then(
      (owned) => {
        if (owned) this.enqueue(item);
        else {
          this.refused++;
          item.reject(claimedElsewhere(item.runId, { threadId: item.threadId, runId: item.runId, eventId: item.eventId }));
        }
        release();
      },
      (error: unknown) => {
        item.reject(toTransportError(error, `Claiming run id ${item.runId} in Redis failed`));
        release();
      },
    );
    this.track(claim);
  }

  private track(call: Promise<void>): void {
    this.inFlight.add(call);
    void call.finally(() => this.inFlight.delete(call));
  }

  get pending(): number {
    return this.queue.length + this.inFlight.size + (this.held.size === 0 ? 0 : this.heldCount());
  }

  /** Issues what is queued now, then waits (at most `timeoutMs`) for every batch in flight. */
  async drain(timeoutMs: number): Promise<void> {
    this.flush();
    if (this.inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, timeoutMs);
    });
    // A claim that settles queues its start: issue that too (at most one more round, a start is claimed once).
    while (this.inFlight.size > 0 && !timedOut) {
      await Promise.race([Promise.allSettled([...this.inFlight]), deadline]);
      this.flush();
    }
    clearTimeout(timer);
  }

  /** Rejects everything not yet issued (on close), and any start whose claim settles later. */
  rejectQueued(error: Error): void {
    this.stopped = error;
    const queued = this.queue;
    this.queue = [];
    for (const item of queued) item.reject(error);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const queue = this.queue;
    if (queue.length === 0) return;
    this.queue = [];
    if (this.keys.slotGroups === undefined) {
      this.split(queue);
      return;
    }
    // Redis Cluster: one script call touches one slot, so each slot group gets batches of its own
    // (in call order within the group, which keeps every thread's order).
    const byGroup = new Map<number, PendingAppend[]>();
    for (const item of queue) {
      const group = this.keys.group(item.threadId);
      const batch = byGroup.get(group);
      if (batch) batch.push(item);
      else byGroup.set(group, [item]);
    }
    for (const batch of byGroup.values()) this.split(batch);
  };

  /** Issues `queue` in batches of at most `maxBatchSize` events and `maxBatchBytes`. */
  private split(queue: PendingAppend[]): void {
    const { maxBatchSize, maxBatchBytes } = this.limits;
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < queue.length; i++) {
      const size = queue[i]!.json.length;
      if (i > start && (i - start >= maxBatchSize || bytes + size > maxBatchBytes)) {
        this.issue(queue, start, i);
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
    this.issue(queue, start, queue.length);
  }

  private issue(queue: PendingAppend[], start: number, end: number): void {
    const count = end - start;
    const { maxLenPerThread, threadTtlSeconds } = this.limits;
    // Keys first, then the arguments: one array, no concat.
    const command: string[] = new Array<string>(count * 2 + 5 + count * 5);
    const a = count * 2;
    command[a] = String(count);
    command[a + 1] = String(maxLenPerThread);
    command[a + 2] = String(threadTtlSeconds);
    command[a + 3] = `${this.epochSeed}.${(this.batchCounter++).toString(36)}`;
    command[a + 4] = String(runLimit(maxLenPerThread));
    for (let i = 0; i < count; i++) {
      const item = queue[start + i]!;
      command[2 * i] = this.keys.stream(item.threadId);
      command[2 * i + 1] = this.keys.meta(item.threadId);
      const at = a + 5 + 5 * i;
      command[at] = item.userId;
      command[at + 1] = item.json;
      command[at + 2] = item.kind;
      command[at + 3] = item.runId;
      command[at + 4] = item.kind === 'o' ? '' : item.eventId;
    }
    this.batches++;
    const call = APPEND_SCRIPT.run<Array<string | number>>(this.connection, count * 2, command).then(
      (replies) => {
        for (let i = 0; i < count; i++) {
          const item = queue[start + i]!;
          const reply = replies[i];
          if (typeof reply === 'string' && reply.charCodeAt(0) !== 33 /* ! */) {
            if (reply.charCodeAt(0) === 61 /* = */) this.repeats++;
            else {
              this.appended++;
              if (this.running.size > 0 || item.customRunId) this.renewClaim(item);
            }
            item.resolve();
          } else {
            this.refused++;
            item.reject(refusal(item, reply));
          }
        }
      },
      (error: unknown) => {
        const failure = toTransportError(error, `Appending ${count} event(s) to Redis failed`);
        for (let i = start; i < end; i++) queue[i]!.reject(failure);
      },
    );
    this.track(call);
  }

  /**
   * After a custom run id's `agent_completed`: its claim is held for `threadTtlSeconds` from the
   * run's end too, not only from its start (as long as an idle thread is retained). Best effort,
   * off the send's path: a claim held by another thread is left alone.
   */
  private refreshClaim(item: PendingAppend): void {
    this.claims++;
    void claimRunId(this.connection, this.keys, item.runId, item.threadId, this.limits.threadTtlSeconds).catch(() => undefined);
  }

  /** After an appended event: track a custom run id's start, renew its claim during the run, refresh it at its end. */
  private renewClaim(item: PendingAppend): void {
    if (item.kind === 's') {
      if (!item.customRunId) return;
      if (this.running.size >= 50_000) this.running.clear();
      this.running.set(item.runId, Date.now());
    } else if (item.kind === 'c') {
      if (!item.customRunId) return;
      this.running.delete(item.runId);
      this.refreshClaim(item);
    } else {
      const renewed = this.running.get(item.runId);
      if (renewed === undefined) return;
      const now = Date.now();
      if (now - renewed < (this.limits.threadTtlSeconds * 1000) / 4) return;
      this.running.set(item.runId, now);
      this.refreshClaim(item);
    }
  }
}

/** The error for one event the append script did not store. */
function refusal(item: AppendRequest, reply: string | number | undefined): AgentwireError {
  const details = { threadId: item.threadId, runId: item.runId, eventId: item.eventId };
  switch (reply) {
    case 0:
      return new TransportError(`Thread "${item.threadId}" belongs to another user; the event was not stored`, {
        code: 'THREAD_OWNER_MISMATCH',
        retryable: false,
        details,
      });
    case 1:
      return new ValidationError(`Run id ${item.runId} is in use: its events are still retained`, { code: 'RUN_ID_CONFLICT', field: 'runId', details });
    case 2:
      return new StateError('RUN_CLOSED', `Run ${item.runId} has completed: event ${item.eventId} cannot follow agent_completed`, { details });
    default: {
      const message = typeof reply === 'string' ? reply.slice(1) : `unexpected reply ${String(reply)}`;
      const transient = isTransientReply(message);
      return new TransportError(`Appending to thread "${item.threadId}" failed: Redis replied ${message}`, {
        code: transient ? 'REDIS_UNAVAILABLE' : 'REDIS_ERROR',
        retryable: transient,
        details,
      });
    }
  }
}
