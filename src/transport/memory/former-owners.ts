/** What is kept of a thread dropped for room: its owner, and when it was last active (for its TTL). */
export interface FormerOwner {
  readonly owner: string;
  readonly lastActivity: number;
}

/**
 * The owners of threads the memory log dropped for room, kept until their TTL runs out, within
 * `capacity` records. A record is forgotten before its TTL only when its user holds more than
 * `keptPerUser` of them, and then it is the oldest of a user who holds the most: a user who floods
 * the log with threads only ever evicts their own records. No number of accounts can make the
 * store forget a user's `keptPerUser` newest records (who would then lose the thread to whoever
 * claims it next): when the store is full and nobody holds more, `admits` says no and the log
 * refuses the thread that would need the room. Every operation is O(1) (amortized for expiry):
 * users are kept in buckets by how many records they hold.
 */
export class FormerOwners {
  private readonly records = new Map<string, FormerOwner>();
  /** Each user's threads, oldest first. */
  private readonly byOwner = new Map<string, Set<string>>();
  /** Users by how many records they hold. */
  private readonly buckets = new Map<number, Set<string>>();
  private most = 0;

  constructor(
    private readonly capacity: number,
    private readonly keptPerUser: number,
  ) {}

  get size(): number {
    return this.records.size;
  }

  get(threadId: string): FormerOwner | undefined {
    return this.records.get(threadId);
  }

  /**
   * Whether a record of `owner` can be kept without forgetting any user's `keptPerUser` newest:
   * there is room (records last active at or before `expiredAt` are dropped first), a user holds
   * more than that, or `owner` already holds that many (then `owner`'s own oldest goes).
   */
  admits(owner: string, expiredAt: number): boolean {
    if (this.records.size < this.capacity) return true;
    this.dropExpired(expiredAt);
    if (this.records.size < this.capacity || this.most > this.keptPerUser) return true;
    return (this.byOwner.get(owner)?.size ?? 0) >= this.keptPerUser;
  }

  /** Records (or renews, as the newest) a thread's owner; evicts past `capacity` (see `admits`). */
  set(threadId: string, owner: string, lastActivity: number): void {
    this.delete(threadId);
    this.records.set(threadId, { owner, lastActivity });
    let threads = this.byOwner.get(owner);
    if (threads === undefined) {
      threads = new Set();
      this.byOwner.set(owner, threads);
    }
    threads.add(threadId);
    this.move(owner, threads.size - 1, threads.size);
    if (this.records.size > this.capacity) this.evict();
  }

  delete(threadId: string): void {
    const record = this.records.get(threadId);
    if (record === undefined) return;
    this.records.delete(threadId);
    const threads = this.byOwner.get(record.owner)!;
    threads.delete(threadId);
    if (threads.size === 0) this.byOwner.delete(record.owner);
    this.move(record.owner, threads.size + 1, threads.size);
  }

  /** Drops the records, oldest first, last active at or before `expiredAt` (records are kept in dropping order, which follows last activity). */
  private dropExpired(expiredAt: number): void {
    for (const [threadId, record] of this.records) {
      if (record.lastActivity > expiredAt) return;
      this.delete(threadId);
    }
  }

  /** Drops the oldest record of a user who holds the most. */
  private evict(): void {
    const owner = this.buckets.get(this.most)!.values().next().value!;
    this.delete(this.byOwner.get(owner)!.values().next().value!);
  }

  /** Moves `owner` from the bucket of `from` records to that of `to` (counts change by one). */
  private move(owner: string, from: number, to: number): void {
    if (from > 0) {
      const bucket = this.buckets.get(from)!;
      bucket.delete(owner);
      if (bucket.size === 0) this.buckets.delete(from);
    }
    if (to > 0) {
      let bucket = this.buckets.get(to);
      if (bucket === undefined) {
        bucket = new Set();
        this.buckets.set(to, bucket);
      }
      bucket.add(owner);
    }
    if (to > this.most) this.most = to;
    else if (from === this.most && !this.buckets.has(from)) this.most = from - 1;
  }
}
