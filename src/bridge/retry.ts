import pRetry, { AbortError as StopRetrying } from 'p-retry';
import { AgentwireError } from '../errors/index.js';
import type { Transport } from '../transport/types.js';
import type { BridgeCounters } from './metrics.js';
import type { Pending } from './run-queue.js';

export interface RetryOptions {
  /** Retries after the first attempt. Default 3. */
  retries?: number;
  /** Delay before the first retry. Default 100 ms. */
  minTimeoutMs?: number;
  /** Growth of the delay per retry. Default 2. */
  factor?: number;
  /** Upper bound of one delay. Default 2,000 ms. */
  maxTimeoutMs?: number;
  /** Multiply each delay by a random factor in [1, 2). Default true. */
  randomize?: boolean;
}

export function resolveRetry(options: RetryOptions | undefined): Required<RetryOptions> {
  return {
    retries: options?.retries ?? 3,
    minTimeoutMs: options?.minTimeoutMs ?? 100,
    factor: options?.factor ?? 2,
    maxTimeoutMs: options?.maxTimeoutMs ?? 2_000,
    randomize: options?.randomize ?? true,
  };
}

/** Whether repeating a send that failed with `error` may succeed. */
export function isRetryable(error: unknown): boolean {
  return !(error instanceof AgentwireError && !error.retryable);
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
