/**
 * One `for await` consumer of a client: events pushed while nobody awaits are buffered in order
 * (the buffer grows only while the loop body is slower than the thread; consume promptly).
 */
export class EventStream<T> implements AsyncIterableIterator<T> {
  private readonly buffered: T[] = [];
  private readonly waiting: Array<(result: IteratorResult<T>) => void> = [];
  private ended = false;

  constructor(private readonly onReturn: (stream: EventStream<T>) => void) {}

  push(value: T): void {
    if (this.ended) return;
    const resolve = this.waiting.shift();
    if (resolve) resolve({ value, done: false });
    else this.buffered.push(value);
  }

  /** Ends the stream: buffered values are still delivered, then `done`. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const resolve of this.waiting.splice(0)) resolve({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T>> {
    if (this.buffered.length > 0) return Promise.resolve({ value: this.buffered.shift() as T, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** `break` out of the loop: stop buffering for this consumer. */
  return(): Promise<IteratorResult<T>> {
    this.buffered.length = 0;
    this.end();
    this.onReturn(this);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
