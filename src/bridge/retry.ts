import pRetry, { AbortError as StopRetrying } from 'p-retry';
import { isInstance, readField } from '../errors/guards.js';
import { AgentwireError } from '../errors/index.js';
import { MAX_TIMER_MS, checker, given, shown } from '../errors/options.js';
import type { Transport } from '../transport/types.js';
import type { BridgeCounters } from './metrics.js';
import type { Pending } from './run-queue.js';

export interface RetryOptions {
  /** Retries after the first attempt: an integer >= 0 (0: no retry). Default 3. */
  retries?: number;
  /** Delay before the first retry, 0 to 2^31 - 1 ms. Default 100 ms. */
  minTimeoutMs?: number;
  /** Growth of the delay per retry, 1 (constant) to 1,000. Default 2. */
  factor?: number;
  /** Upper bound of one delay, from `minTimeoutMs` to 2^31 - 1 ms. Default 2,000 ms (or `minTimeoutMs` when that is larger). */
  maxTimeoutMs?: number;
  /** Multiply each delay by a random factor in [1, 2). Default true. */
  randomize?: boolean;
}

/** Resolves and validates `retry` (`ValidationError` `INVALID_OPTION` naming e.g. `retry.factor`). */
export function resolveRetry(options: RetryOptions | undefined, owner = 'AgentBridge'): Required<RetryOptions> {
  const check = checker(owner);
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw check.fail('retry', `must be an object (got ${shown(options)})`);
  const minTimeoutMs = check.duration('retry.minTimeoutMs', given(options?.minTimeoutMs, 100), { min: 0, max: MAX_TIMER_MS });
  return {
    retries: check.integer('retry.retries', given(options?.retries, 3), 0),
    minTimeoutMs,
    factor: check.number('retry.factor', given(options?.factor, 2), { min: 1, max: 1_000 }),
    // The delays are timers: a longer one would fire after 1 ms.
    maxTimeoutMs: check.duration('retry.maxTimeoutMs', given(options?.maxTimeoutMs, Math.max(2_000, minTimeoutMs)), { min: minTimeoutMs, max: MAX_TIMER_MS }),
    randomize: check.boolean('retry.randomize', given(options?.randomize, true)),
  };
}

/**
 * Whether repeating a send that failed with `error` may succeed: anything but an `AgentwireError`
 * that does not say `retryable: true` (read guarded: a throwing getter is not a yes).
 */
export function isRetryable(error: unknown): boolean {
  return !isInstance(error, AgentwireError) || readField(error, 'retryable') === true;
}

/**
 * Sends one event with p-retry (3 retries, 100 ms base, exponential, jitter by default). When
 * `firstError` is given, the first attempt was already made (the bridge's fast path) and failed
 * with it. Throws the last error; a non-retryable one at once. An event abandoned by `close()`
 * or `fail()` is not sent again: its backoff wait is cancelled through `pending.retrying`.
 */
export async function sendWithRetry(
  transport: Transport,
  pending: Pending,
  retry: Required<RetryOptions>,
  counters: BridgeCounters,
  firstError?: unknown,
): Promise<void> {
  const { event } = pending;
  if (firstError === undefined) {
    try {
      // Most sends succeed first time; p-retry only pays for itself on failure.
      await transport.send(event);
      return;
    } catch (error) {
      firstError = error;
    }
  }
  if (!isRetryable(firstError)) throw firstError;
  if (retry.retries <= 0) throw firstError;
  let first = true;
  // Only failing sends get here: a controller per retried event lets close()/fail() cancel its
  // backoff timer, so no retry timer keeps the process alive after close().
  const retrying = (pending.retrying = new AbortController());
  try {
    await pRetry(
      async () => {
        if (first) {
          first = false;
          // The fast path was the first attempt; wait the first backoff before trying again.
          await delay(backoff(0, retry), retrying.signal);
        }
        // Reported undelivered by close()/fail() while waiting for this retry: do not send it anymore.
        if (pending.abandoned) throw new StopRetrying('the bridge gave up on this event');
        counters.retried++;
        await transport.send(event);
      },
      {
        retries: retry.retries - 1,
        minTimeout: retry.minTimeoutMs * retry.factor,
        factor: retry.factor,
        maxTimeout: retry.maxTimeoutMs,
        randomize: retry.randomize,
        signal: retrying.signal,
        shouldRetry: ({ error }) => !pending.abandoned && isRetryable(error),
      },
    );
  } finally {
    pending.retrying = undefined;
  }
}

function backoff(retry: number, options: Required<RetryOptions>): number {
  const random = options.randomize ? Math.random() + 1 : 1;
  return Math.min(options.maxTimeoutMs, Math.round(random * options.minTimeoutMs * options.factor ** retry));
}

/** Resolves after `ms`; rejects with the signal's reason (and clears the timer) as soon as it aborts. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
