import type { RedisConnection } from './connection.js';
import type { RedisKeys } from './keys.js';
import { StreamTail, type LiveTail, type TailedThread, type TailHooks, type TailOptions } from './tail.js';

/**
 * The live tail of a gateway on a Redis Cluster: one `StreamTail` per slot group with a local
 * subscriber, each with a blocking connection of its own (to the master of that group's slot)
 * and a wake-up stream in that slot. A blocking `XREAD` names keys of one slot only, so this is
 * the fewest blocking reads that follow every thread: at most `cluster.slotGroups` per gateway.
 * A group's tail is opened when its first thread is watched and kept until `close()`.
 */
export class GroupedTail<S> implements LiveTail<S> {
  private readonly tails = new Map<number, StreamTail<S>>();

  constructor(
    private readonly main: RedisConnection,
    private readonly keys: RedisKeys,
    private readonly gatewayId: string,
    private readonly options: TailOptions,
    private readonly hooks: TailHooks<S>,
    private readonly name: string,
  ) {}

  get threadCount(): number {
    return this.sum((tail) => tail.threadCount);
  }

  get reads(): number {
    return this.sum((tail) => tail.reads);
  }

  get entriesRead(): number {
    return this.sum((tail) => tail.entriesRead);
  }

  get readFailures(): number {
    return this.sum((tail) => tail.readFailures);
  }

  get reconnects(): number {
    return this.sum((tail) => tail.reconnects);
  }

  get isReading(): boolean {
    return [...this.tails.values()].every((tail) => tail.threadCount === 0 || tail.isReading);
  }

  describe(): string {
    const active = [...this.tails.values()].filter((tail) => tail.threadCount > 0);
    const states = new Map<string, number>();
    for (const tail of active) states.set(tail.describe(), (states.get(tail.describe()) ?? 0) + 1);
    return `${active.length} slot group(s): ${[...states].map(([state, n]) => `${n} ${state}`).join(', ') || 'none'}`;
  }

  thread(threadId: string): TailedThread<S> | undefined {
    return this.tails.get(this.keys.group(threadId))?.thread(threadId);
  }

  watch(threadId: string, lastId: string, epoch: string | undefined, owner: string | undefined): TailedThread<S> {
    const group = this.keys.group(threadId);
    let tail = this.tails.get(group);
    if (!tail) {
      tail = new StreamTail<S>(this.main.duplicate(`${this.name}-${group}`), this.main, this.keys, this.gatewayId, this.options, this.hooks, group);
      this.tails.set(group, tail);
    }
    return tail.watch(threadId, lastId, epoch, owner);
  }

  release(thread: TailedThread<S>): void {
    this.tails.get(this.keys.group(thread.threadId))?.release(thread);
  }

  async close(): Promise<void> {
    await Promise.all([...this.tails.values()].map((tail) => tail.close()));
  }

  private sum(of: (tail: StreamTail<S>) => number): number {
    let total = 0;
    for (const tail of this.tails.values()) total += of(tail);
    return total;
  }
}
