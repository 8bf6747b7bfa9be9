import { AbortError } from '../errors/index.js';
import { isInstance } from '../errors/guards.js';
import { listenRaw, unlistenRaw } from './contained-signal.js';

/**
 * The signal of runs started without one. It never aborts, which lets the hot path skip abort
 * listeners and per-tool controllers when nothing can cancel the run.
 */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/** The AbortError for a signal, keeping the caller's reason as the cause. */
export function abortErrorFrom(signal: AbortSignal): AbortError {
  const reason: unknown = signal.reason;
  if (isInstance(reason, AbortError)) return reason;
  return new AbortError(isInstance(reason, Error) ? abortMessage(reason) : 'The run was aborted', { cause: reason });
}

/** The message of an abort whose reason is an error (a getter that throws names nothing). */
function abortMessage(reason: Error): string {
  try {
    return reason.message ? `The run was aborted: ${String(reason.message)}` : 'The run was aborted';
  } catch {
    return 'The run was aborted';
  }
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
    // Natively: this listener cannot throw, so it needs no containing wrapper (contained-signal.ts).
    listenRaw(signal, onAbort);
    work.then(
      (value) => {
        unlistenRaw(signal, onAbort);
        resolve(value);
      },
      (error: unknown) => {
        unlistenRaw(signal, onAbort);
        reject(error);
      },
    );
  });
}
