/** Longest delay between two recovery probes. */
const MAX_RECOVERY_INTERVAL_MS = 10_000;

export interface RecoveryHooks {
  /** Whether the bridge is still degraded (a probe only runs then). */
  isDegraded(): boolean;
  /** Degraded for longer than `failAfterMs`: give up. */
  fail(): void;
}

/**
 * The degraded side of the bridge: while the transport is down, every run's pump that failed
 * waits here ("stalled"). A probe timer (first after `intervalMs`, doubling up to 10 s) lets one
 * stalled pump try its head again; its success recovers everyone (`recovered()` wakes them all).
 * Degraded for longer than `failAfterMs`, the next probe calls `fail()` instead.
 */
export class Recovery {
  private stalled: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private delay: number;
  private since = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly failAfterMs: number,
    private readonly hooks: RecoveryHooks,
  ) {
    this.delay = intervalMs;
  }

  /** The bridge became degraded: start probing. */
  start(): void {
    this.since = Date.now();
    this.schedule();
  }

  /** A pump whose head failed while degraded waits for its next try (a probe, recovery or the end). */
  waitForProbe(): Promise<void> {
    return new Promise<void>((resume) => this.stalled.push(resume));
  }

  /** A send succeeded while degraded: stop probing and let every stalled pump go on. */
  recovered(): void {
    this.stop();
    this.delay = this.intervalMs;
    this.wakeAll();
  }

  /** Stops the probe timer (close, fail, recovery). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Resumes every stalled pump (each then sees the bridge's new state). */
  wakeAll(): void {
    const wake = this.stalled;
    this.stalled = [];
    for (const resume of wake) resume();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.hooks.isDegraded()) return;
      if (Date.now() - this.since >= this.failAfterMs) {
        this.hooks.fail();
        return;
      }
      // Let one stalled queue try its head; its success recovers everyone.
      this.stalled.shift()?.();
      this.delay = Math.min(this.delay * 2, MAX_RECOVERY_INTERVAL_MS);
      this.schedule();
    }, this.delay);
  }
}
