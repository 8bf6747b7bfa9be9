/** What `IdleDeadlines` keeps on each connection: its slot in the queue while it waits (-1 otherwise). */
export interface IdleWaiter {
  idleSlot: number;
}

/**
 * The no-subscription deadlines of one gateway's connections, behind one timer (instead of a
 * `setTimeout`, its closure and context per connection: they lived from the upgrade to the
 * first subscribe, long enough to reach the old generation and leave holes there). Every
 * connection waits the same `timeoutMs`, so deadlines come in the order they are set: a FIFO
 * with the deadlines in a parallel array of numbers. A connection that stops waiting empties
 * its slot (no reference is kept to it).
 */
export class IdleDeadlines<C extends IdleWaiter> {
  private waiters: Array<C | undefined> = [];
  private deadlines: number[] = [];
  private head = 0;
  /** Waiters in the queue (slots not emptied). */
  private waiting = 0;
  /** Slots dropped from the front by compaction: slot `s` is at index `s - base`. */
  private base = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly timeoutMs: number,
    /** The deadline passed (the waiter contains its own failures). */
    private readonly expired: (waiter: C) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts `waiter`'s wait (no-op while it waits already). */
  arm(waiter: C): void {
    if (waiter.idleSlot >= 0) return;
    waiter.idleSlot = this.base + this.waiters.length;
    this.waiting++;
    this.waiters.push(waiter);
    this.deadlines.push(this.now() + this.timeoutMs);
    if (this.timer === undefined) this.schedule(this.timeoutMs);
  }

  /** Ends `waiter`'s wait (no-op when it is not waiting). */
  disarm(waiter: C): void {
    const slot = waiter.idleSlot;
    if (slot < 0) return;
    waiter.idleSlot = -1;
    this.waiters[slot - this.base] = undefined;
    // Nobody waits any more (every connection subscribed): let the slots go now, not at the next timer.
    if (--this.waiting === 0) this.reset();
  }

  /** Stops the timer and forgets every waiter (the gateway is closing). */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (let i = this.head; i < this.waiters.length; i++) {
      const waiter = this.waiters[i];
      if (waiter !== undefined) waiter.idleSlot = -1;
    }
    this.reset();
  }

  /** Empties the queue (no waiter is in it): slots go on being numbered after the last one. */
  private reset(): void {
    this.base += this.waiters.length;
    this.waiters = [];
    this.deadlines = [];
    this.head = 0;
    this.waiting = 0;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(this.fire, Math.max(0, delayMs));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    const now = this.now();
    // Read through `this` each time: an expiry may end other waits (`disarm` empties the queue at 0).
    while (this.head < this.waiters.length && this.deadlines[this.head]! <= now) {
      const waiter = this.waiters[this.head];
      this.waiters[this.head++] = undefined;
      if (waiter === undefined) continue;
      waiter.idleSlot = -1;
      this.waiting--;
      this.expired(waiter);
    }
    this.compact();
    if (this.head < this.waiters.length) this.schedule(this.deadlines[this.head]! - now);
  };

  private compact(): void {
    if (this.head >= this.waiters.length || this.waiting === 0) {
      this.reset();
    } else if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.base += this.head;
      this.waiters = this.waiters.slice(this.head);
      this.deadlines = this.deadlines.slice(this.head);
      this.head = 0;
    }
  }
}
