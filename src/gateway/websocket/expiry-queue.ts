/** Something that expires: its deadline and its slot in the queue (-1 when not queued). */
export interface Expiring {
  readonly expiresAt: number;
  expiryIndex: number;
}

/** Node clamps longer timeouts to 1 ms; a longer deadline is re-armed when this much has passed. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Deadlines of many items behind one timer: a binary min-heap by `expiresAt`, each item holding
 * its own index so removal (a connection that closes before its token expires) is O(log n) and
 * leaves nothing behind. Per item it costs one array slot and the two fields of `Expiring`,
 * instead of a timer object per connection. `onExpired` runs when an item's deadline passes; a
 * throw from it is reported to `onError`, never to the timer.
 */
export class ExpiryQueue<T extends Expiring> {
  private readonly heap: T[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The deadline the timer is armed for (Infinity: not armed). */
  private armedFor = Infinity;

  constructor(
    private readonly onExpired: (item: T) => void,
    private readonly onError: (error: unknown, item: T) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  add(item: T): void {
    if (item.expiryIndex >= 0 || !(item.expiresAt < Infinity)) return;
    item.expiryIndex = this.heap.length;
    this.heap.push(item);
    this.siftUp(item.expiryIndex);
    this.arm();
  }

  remove(item: T): void {
    const index = item.expiryIndex;
    if (index < 0 || this.heap[index] !== item) return;
    this.take(index);
    this.arm();
  }

  /** Forgets every item and stops the timer. */
  clear(): void {
    for (const item of this.heap) item.expiryIndex = -1;
    this.heap.length = 0;
    this.arm();
  }

  private take(index: number): T {
    const heap = this.heap;
    const item = heap[index]!;
    const last = heap.pop()!;
    item.expiryIndex = -1;
    if (index < heap.length) {
      heap[index] = last;
      last.expiryIndex = index;
      this.siftDown(index);
      this.siftUp(last.expiryIndex);
    }
    return item;
  }

  private arm(): void {
    const next = this.heap[0]?.expiresAt ?? Infinity;
    if (next === this.armedFor) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = next;
    if (next === Infinity) return;
    this.timer = setTimeout(this.fire, Math.min(Math.max(0, next - this.now()), MAX_TIMEOUT_MS));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = this.now();
    while (this.heap.length > 0 && this.heap[0]!.expiresAt <= now) {
      const item = this.take(0);
      try {
        this.onExpired(item);
      } catch (error) {
        try {
          this.onError(error, item);
        } catch {
          // Nothing thrown here may reach the timer.
        }
      }
    }
    this.arm();
  };

  private siftUp(index: number): void {
    const heap = this.heap;
    const item = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (parent.expiresAt <= item.expiresAt) break;
      heap[index] = parent;
      parent.expiryIndex = index;
      index = parentIndex;
    }
    heap[index] = item;
    item.expiryIndex = index;
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    const item = heap[index]!;
    const length = heap.length;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= length) break;
      const right = left + 1;
      const child = right < length && heap[right]!.expiresAt < heap[left]!.expiresAt ? right : left;
      const smaller = heap[child]!;
      if (smaller.expiresAt >= item.expiresAt) break;
      heap[index] = smaller;
      smaller.expiryIndex = index;
      index = child;
    }
    heap[index] = item;
    item.expiryIndex = index;
  }
}
