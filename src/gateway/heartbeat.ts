/**
 * One interval per surface that beats every live stream (a comment on an idle stream keeps
 * proxies from closing it). Started with the first stream, stopped at close; never keeps the
 * process alive. 0 disables it.
 */
export class Heartbeat {
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly streams: Iterable<{ heartbeat(): void }>,
  ) {}

  start(): void {
    if (this.timer || this.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      for (const stream of this.streams) stream.heartbeat();
    }, this.intervalMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
