/** What is kept of a thread dropped for room: its owner, and when it was last active (for its TTL). */
export interface FormerOwner {
  readonly owner: string;
  readonly lastActivity: number;
}

/**
 * The owners of threads the memory log dropped for room, kept until their TTL runs out, within
 * `capacity` records. Past it, the record that goes is the oldest of the user who holds the most
 * records: a user who floods the log with threads of their own only ever evicts their own
 * records, never the owner of a thread they do not hold more of (who would then lose the thread to
 * them). Every operation is O(1): users are kept in buckets by how many records they hold.
 */
export class FormerOwners {
  private readonly records = new Map<string, FormerOwner>();
  /** Each user's threads, oldest first. */
  private readonly byOwner = new Map<string, Set<string>>();
  /** Users by how many records they hold. */
  private readonly buckets = new Map<number, Set<string>>();
  private most = 0;

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.records.size;
  }

  get(threadId: string): FormerOwner | undefined {
    return this.records.get(threadId);
  }

  /** Records (or renews, as the newest) a thread's owner; evicts past `capacity`. */
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
