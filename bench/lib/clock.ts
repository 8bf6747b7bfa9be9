/**
 * The clock every bench process uses for figures that cross a process boundary: epoch
 * milliseconds with sub-microsecond resolution, `performance.timeOrigin + performance.now()`.
 * Two processes on one machine agree on it up to a small offset (each fixes `timeOrigin` from the
 * wall clock once, at start; from then on it advances with the monotonic clock), and
 * `clockOffset()` in ./child.ts measures that offset by echoing timestamps over IPC.
 */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
