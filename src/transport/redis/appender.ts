import { customAlphabet } from 'nanoid';
import { TransportError } from '../../errors/index.js';
import type { RedisConnection } from './connection.js';
import { toTransportError } from './connection.js';
import type { RedisKeys } from './keys.js';
import { APPEND_SCRIPT } from './scripts.js';

const makeSeed = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 8);

interface PendingAppend {
  threadId: string;
  userId: string;
  json: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

export interface AppenderLimits {
  maxLenPerThread: number;
  threadTtlSeconds: number;
  maxBatchSize: number;
  maxBatchBytes: number;
}

/**
 * Coalesces the appends requested in one tick into batches of one `EVALSHA` each. The bridge sends
 * one event at a time per run but many runs at once: their sends land in the same tick (a settled
 * send resumes every waiting run in one microtask cascade), and a batch carries them all to Redis
 * in one command. Batches issued together are pipelined by node-redis on one socket write.
 *
 * Order: appends are issued in the order `append` was called, so per-run (and per-thread) order
 * is the bridge's order. Each append settles on its own: resolved once Redis stored the entry.
 */
export class Appender {
  private queue: PendingAppend[] = [];
  private scheduled = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** Unique per process; with a counter per batch and the index in the batch, names a new stream's epoch. */
  private readonly epochSeed = makeSeed();
  private batchCounter = 0;
  /** Script calls issued and events appended (for measurements). */
  batches = 0;
  appended = 0;

  constructor(
    private readonly connection: RedisConnection,
    private readonly keys: RedisKeys,
    private readonly limits: AppenderLimits,
  ) {}

  append(threadId: string, userId: string, json: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ threadId, userId, json, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // nextTick runs after the microtasks of this tick have drained: every send made in it joins the batch.
        process.nextTick(this.flush);
      }
    });
  }

  get pending(): number {
    return this.queue.length + this.inFlight.size;
  }

  /** Issues what is queued now, then waits (at most `timeoutMs`) for every batch in flight. */
  async drain(timeoutMs: number): Promise<void> {
    this.flush();
    if (this.inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Rejects everything not yet issued (on close). */
  rejectQueued(error: Error): void {
    const queued = this.queue;
    this.queue = [];
    for (const item of queued) item.reject(error);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const queue = this.queue;
    if (queue.length === 0) return;
    this.queue = [];
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
  };

  private issue(queue: PendingAppend[], start: number, end: number): void {
    const count = end - start;
    const { maxLenPerThread, threadTtlSeconds } = this.limits;
    const keys: string[] = new Array<string>(count * 2);
    const args: string[] = new Array<string>(4 + count * 2);
    args[0] = String(count);
    args[1] = String(maxLenPerThread);
    args[2] = String(threadTtlSeconds);
    args[3] = `${this.epochSeed}.${(this.batchCounter++).toString(36)}`;
    for (let i = 0; i < count; i++) {
      const item = queue[start + i]!;
      keys[2 * i] = this.keys.stream(item.threadId);
      keys[2 * i + 1] = this.keys.meta(item.threadId);
      args[4 + 2 * i] = item.userId;
      args[5 + 2 * i] = item.json;
    }
    this.batches++;
    const call = APPEND_SCRIPT.run<Array<string | number>>(this.connection, keys.length, keys.concat(args)).then(
      (replies) => {
        for (let i = 0; i < count; i++) {
          const item = queue[start + i]!;
          const reply = replies[i];
          if (typeof reply === 'string') {
            this.appended++;
            item.resolve();
          } else {
            item.reject(
              new TransportError(`Thread "${item.threadId}" belongs to another user; the event was not stored`, {
                code: 'THREAD_OWNER_MISMATCH',
                retryable: false,
                details: { threadId: item.threadId },
              }),
            );
          }
        }
      },
      (error: unknown) => {
        const failure = toTransportError(error, `Appending ${count} event(s) to Redis failed`);
        for (let i = start; i < end; i++) queue[i]!.reject(failure);
      },
    );
    this.inFlight.add(call);
    void call.finally(() => this.inFlight.delete(call));
  }
}
