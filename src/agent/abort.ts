import { AbortError } from '../errors/index.js';

/**
 * The signal of runs started without one. It never aborts, which lets the hot path skip abort
 * listeners and per-tool controllers when nothing can cancel the run.
 */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/** The AbortError for a signal, keeping the caller's reason as the cause. */
export function abortErrorFrom(signal: AbortSignal): AbortError {
  const reason: unknown = signal.reason;
  if (reason instanceof AbortError) return reason;
  const message = reason instanceof Error && reason.message ? `The run was aborted: ${reason.message}` : 'The run was aborted';
  return new AbortError(message, { cause: reason });
}

/**
 * Settles with `work`, or rejects with an AbortError as soon as `signal` aborts, whichever is
 * first. The listener is removed afterwards so long-lived signals do not accumulate listeners.
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(abortErrorFrom(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => undefined);
      reject(abortErrorFrom(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
