import { threadTag } from '../memory/log-common.js';
import type { RedisConnection } from './connection.js';
import { compareIds, ID_ZERO } from './cursor.js';
import { readEntry, type RawStreamEntry, type RedisLogEntry } from './entries.js';
import type { RedisKeys } from './keys.js';

/** One thread followed by the tail: where its next read starts and who is listening. */
export interface TailedThread<S> {
  readonly threadId: string;
  /** Stream key, and the key of the meta hash beside it. */
  readonly key: string;
  readonly metaKey: string;
  /** `threadTag(threadId)`, named by every cursor of the thread. */
  readonly tag: string;
  /** Id of the last entry read; the next `XREAD` asks for entries after it. */
  lastId: string;
  /** Epoch of the last entry read (undefined before the first one). */
  epoch: string | undefined;
  /**
   * The thread's owner: the user of the first entry of its stream (or as the replay read it from
   * Redis); undefined while the thread has no entry. Forgotten when a resync re-reads a recreated stream.
   */
  owner: string | undefined;
  readonly subscribers: Set<S>;
}

export interface TailOptions {
  blockMs: number;
  readCount: number;
  validate: boolean;
  reconnectMinDelayMs: number;
  reconnectMaxDelayMs: number;
}

export interface TailHooks<S> {
  /** New entries of a thread, in stream order (called synchronously from the read loop). */
  onEntries(thread: TailedThread<S>, entries: RedisLogEntry[]): void;
  /** A read failed (the loop reconnects and resumes) or an entry could not be read (it is skipped). */
  onError(error: Error): void;
}

type XReadReply = Array<[key: string, entries: RawStreamEntry[]]> | null;

/** What the event log needs of its live tail: `StreamTail` (one Redis) or `GroupedTail` (a cluster). */
export interface LiveTail<S> {
  readonly threadCount: number;
  readonly reads: number;
  readonly entriesRead: number;
  readonly readFailures: number;
  /** Whether every blocking connection in use is ready. */
  readonly isReading: boolean;
  /** Times a blocking connection was lost and re-established. */
  readonly reconnects: number;
  /** State of the blocking connection(s), for `health()`. */
  describe(): string;
  thread(threadId: string): TailedThread<S> | undefined;
  watch(threadId: string, lastId: string, epoch: string | undefined, owner: string | undefined): TailedThread<S>;
  release(thread: TailedThread<S>): void;
  close(): Promise<void>;
}

/**
 * The live tail of a gateway process: ONE loop of blocking `XREAD … STREAMS k1 … kn wake id1 … idn
 * wakeId` on a dedicated connection, over every thread with at least one local subscriber.
 *
 * - A thread added while the read is blocked is picked up at once: the loop also reads this
 *   gateway's wake-up stream, and `watch()` appends to it, which ends the blocked read. Ids are
 *   explicit (never `$`), so a wake-up written before the read reaches Redis is still seen.
 * - Per thread the loop remembers the last id it read. After a lost connection it reconnects with
 *   backoff and continues from those ids; first it compares each thread's epoch with Redis, and
 *   re-reads a recreated stream from its start (its ids are unrelated to the old ones).
 */
export class StreamTail<S> implements LiveTail<S> {
  private readonly threads = new Map<string, TailedThread<S>>();
  private readonly wakeKey: string;
  private wakeLastId = ID_ZERO;
  private blocking = false;
  private wakeSent = false;
  private idle: (() => void) | undefined;
  private backoffTimer: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;
  private resync = false;
  /** Reads issued and entries read (for stats). */
  reads = 0;
  entriesRead = 0;
  readFailures = 0;

  constructor(
    private readonly blocker: RedisConnection,
    private readonly main: RedisConnection,
    private readonly keys: RedisKeys,
    gatewayId: string,
    private readonly options: TailOptions,
    private readonly hooks: TailHooks<S>,
    /** On a Redis Cluster: the slot group this tail follows (its threads and wake-up stream share its slot). */
    group = 0,
  ) {
    this.wakeKey = keys.wake(gatewayId, group);
  }

  get threadCount(): number {
    return this.threads.size;
  }

  get isReading(): boolean {
    return this.blocker.isReady;
  }

  get reconnects(): number {
    return this.blocker.reconnects;
  }

  describe(): string {
    return this.blocker.describe();
  }

  thread(threadId: string): TailedThread<S> | undefined {
    return this.threads.get(this.keys.stream(threadId));
  }

  /** Starts following a thread from `lastId` (exclusive), owned by `owner` if known. The caller adds its subscriber. */
  watch(threadId: string, lastId: string, epoch: string | undefined, owner: string | undefined): TailedThread<S> {
    const key = this.keys.stream(threadId);
    const thread: TailedThread<S> = { threadId, key, metaKey: this.keys.meta(threadId), tag: threadTag(threadId), lastId, epoch, owner, subscribers: new Set() };
    this.threads.set(key, thread);
    this.loop ??= this.run();
    this.wake();
    return thread;
  }

  /** Stops following a thread without subscribers (the read in flight may still name it; its reply is ignored). */
  release(thread: TailedThread<S>): void {
    if (thread.subscribers.size === 0 && this.threads.get(thread.key) === thread) this.threads.delete(thread.key);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.idle?.();
    if (this.backoffTimer) {
      clearTimeout(this.backoffTimer.timer);
      this.backoffTimer.resolve();
    }
    // Ends the blocked read at once.
    this.blocker.destroy();
    await this.loop;
    this.threads.clear();
    if (this.main.isReady) await this.main.send(['DEL', this.wakeKey]).catch(() => undefined);
  }

  private wake(): void {
    if (this.idle) {
      this.idle();
      return;
    }
    if (!this.blocking || this.wakeSent) return;
    this.wakeSent = true;
    // Both in one tick: pipelined. The TTL keeps a crashed gateway's wake-up stream from lingering.
    void this.main.send(['XADD', this.wakeKey, 'MAXLEN', '1', '*', 'w', '1']).catch(() => undefined);
    void this.main.send(['PEXPIRE', this.wakeKey, String(this.options.blockMs * 2 + 60_000)]).catch(() => undefined);
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      if (this.threads.size === 0) {
        await new Promise<void>((resolve) => (this.idle = resolve));
        this.idle = undefined;
        continue;
      }
      if (!this.blocker.isReady) {
        // Connecting or reconnecting (node-redis retries with backoff): wait for it, bounded, then look again.
        this.resync = true;
        if (!(await this.blocker.waitReady(this.delay(failures)))) failures++;
        continue;
      }
      try {
        if (this.resync) await this.resyncEpochs();
        const reply = await this.read();
        failures = 0;
        if (reply) this.dispatch(reply);
      } catch (error) {
        if (this.closed) break;
        this.readFailures++;
        this.resync = true;
        this.hooks.onError(error instanceof Error ? error : new Error(String(error)));
        // A lost connection is waited for above; an error reply (e.g. a key of the wrong type) is retried after a pause.
        if (this.blocker.isReady) await this.sleep(this.delay(failures));
        failures++;
      }
    }
  }

  private read(): Promise<XReadReply> {
    const threads = [...this.threads.values()];
    const args = new Array<string>(8 + threads.length * 2);
    args[0] = 'XREAD';
    args[1] = 'COUNT';
    args[2] = String(this.options.readCount);
    args[3] = 'BLOCK';
    args[4] = String(this.options.blockMs);
    args[5] = 'STREAMS';
    const ids = 6 + threads.length + 1;
    for (let i = 0; i < threads.length; i++) {
      args[6 + i] = threads[i]!.key;
      args[ids + i] = threads[i]!.lastId;
    }
    args[6 + threads.length] = this.wakeKey;
    args[ids + threads.length] = this.wakeLastId;
    this.reads++;
    this.blocking = true;
    this.wakeSent = false;
    return this.blocker.send<XReadReply>(args).finally(() => {
      this.blocking = false;
    });
  }

  private dispatch(reply: NonNullable<XReadReply>): void {
    for (const [key, rawEntries] of reply) {
      if (key === this.wakeKey) {
        const last = rawEntries[rawEntries.length - 1];
        if (last) this.wakeLastId = last[0];
        continue;
      }
      const thread = this.threads.get(key);
      if (!thread) continue;
      const batch: RedisLogEntry[] = [];
      for (const raw of rawEntries) {
        // A thread released and watched again while this read was in flight may already be past it.
        if (compareIds(raw[0], thread.lastId) <= 0) continue;
        thread.lastId = raw[0];
        this.entriesRead++;
        const entry = readEntry(raw, this.options.validate, thread.tag);
        if (entry instanceof Error) {
          this.hooks.onError(entry);
          continue;
        }
        // The first entry of the stream names the thread's owner (later entries of other users are
        // only ever forged ones: appends check the owner; subscribers drop them).
        thread.owner ??= entry.event.userId;
        thread.epoch = entry.epoch;
        batch.push(entry);
      }
      if (batch.length > 0) this.hooks.onEntries(thread, batch);
    }
  }

  /**
   * After a lost connection: a thread whose epoch in Redis is not the one last read was recreated
   * (Redis restarted without persistence, the TTL expired, a FLUSH). Its new entries may have ids
   * at or below the old ones, so it is read again from the start; subscribers drop what they had.
   */
  private async resyncEpochs(): Promise<void> {
    const threads = [...this.threads.values()].filter((thread) => thread.epoch !== undefined);
    const epochs = await Promise.all(
      threads.map((thread) => this.blocker.send<string | null>(['HGET', thread.metaKey, 'epoch'])),
    );
    threads.forEach((thread, i) => {
      if (epochs[i] === thread.epoch || this.threads.get(thread.key) !== thread) return;
      thread.lastId = ID_ZERO;
      thread.epoch = epochs[i] ?? undefined;
      thread.owner = undefined;
    });
    this.resync = false;
  }

  private delay(failures: number): number {
    const { reconnectMinDelayMs: min, reconnectMaxDelayMs: max } = this.options;
    return Math.min(max, min * 2 ** Math.min(failures, 20));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.backoffTimer = undefined;
        resolve();
      }, ms);
      this.backoffTimer = { timer, resolve };
    });
  }
}
