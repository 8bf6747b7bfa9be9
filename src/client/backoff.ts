import { MAX_TIMER_MS, checker, given, shown } from '../errors/options.js';

/** Reconnect schedule: exponential backoff with jitter. */
export interface ReconnectOptions {
  /** Delay before the first reconnect attempt, 0 to 2^31 - 1 ms. Default 250 ms. */
  initialDelayMs?: number;
  /** Upper bound of one delay, 0 to 2^31 - 1 ms. Default 10,000 ms. */
  maxDelayMs?: number;
  /** Growth of the delay per failed attempt, 1 (constant) to 1,000. Default 2. */
  factor?: number;
  /** Pick each delay at random in [delay/2, delay], so clients cut off together do not return together. Default true. */
  jitter?: boolean;
  /**
   * Failed attempts in a row before giving up (status `closed`, error `RECONNECT_FAILED`): an
   * integer >= 0 or Infinity. Default Infinity. The count is reset only by a healthy connection:
   * one that delivered a new event, or stayed subscribed for `maxDelayMs`.
   */
  maxAttempts?: number;
}

/**
 * Resolves and validates `reconnect` (`undefined` members take their defaults; `null` or another
 * value is `ValidationError` `INVALID_OPTION`, e.g. `connect() option reconnect.factor must be …`).
 */
export function resolveReconnect(options?: ReconnectOptions, owner = 'connect()'): Required<ReconnectOptions> {
  const check = checker(owner);
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null) throw check.fail('reconnect', `must be an object or false (got ${shown(options)})`);
  const maxAttempts = given(options.maxAttempts, Infinity);
  if (maxAttempts !== Infinity && !(typeof maxAttempts === 'number' && Number.isSafeInteger(maxAttempts) && maxAttempts >= 0)) {
    throw check.fail('reconnect.maxAttempts', `must be a non-negative integer or Infinity (got ${shown(maxAttempts)})`);
  }
  return {
    // Timer delays: at most MAX_TIMER_MS (a longer setTimeout fires after 1 ms).
    initialDelayMs: check.duration('reconnect.initialDelayMs', given(options.initialDelayMs, 250), { min: 0, max: MAX_TIMER_MS }),
    maxDelayMs: check.duration('reconnect.maxDelayMs', given(options.maxDelayMs, 10_000), { min: 0, max: MAX_TIMER_MS }),
    factor: check.number('reconnect.factor', given(options.factor, 2), { min: 1, max: 1_000 }),
    jitter: check.boolean('reconnect.jitter', given(options.jitter, true)),
    maxAttempts,
  };
}

/** Delay before reconnect attempt number `attempt` (1-based). `random` returns [0, 1). */
export function reconnectDelay(attempt: number, options: Required<ReconnectOptions>, random: () => number = Math.random): number {
  const exponential = options.initialDelayMs * options.factor ** Math.max(0, attempt - 1);
  const delay = Math.min(options.maxDelayMs, exponential);
  return options.jitter ? delay / 2 + (random() * delay) / 2 : delay;
}
