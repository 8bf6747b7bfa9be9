/** Reconnect schedule: exponential backoff with jitter. */
export interface ReconnectOptions {
  /** Delay before the first reconnect attempt. Default 250 ms. */
  initialDelayMs?: number;
  /** Upper bound of one delay. Default 10,000 ms. */
  maxDelayMs?: number;
  /** Growth of the delay per failed attempt. Default 2. */
  factor?: number;
  /** Pick each delay at random in [delay/2, delay], so clients cut off together do not return together. Default true. */
  jitter?: boolean;
  /** Attempts in a row without getting subscribed before giving up (status `closed`, error `RECONNECT_FAILED`). Default Infinity. */
  maxAttempts?: number;
}

export function resolveReconnect(options: ReconnectOptions = {}): Required<ReconnectOptions> {
  return {
    initialDelayMs: options.initialDelayMs ?? 250,
    maxDelayMs: options.maxDelayMs ?? 10_000,
    factor: options.factor ?? 2,
    jitter: options.jitter ?? true,
    maxAttempts: options.maxAttempts ?? Infinity,
  };
}

/** Delay before reconnect attempt number `attempt` (1-based). `random` returns [0, 1). */
export function reconnectDelay(attempt: number, options: Required<ReconnectOptions>, random: () => number = Math.random): number {
  const exponential = options.initialDelayMs * options.factor ** Math.max(0, attempt - 1);
  const delay = Math.min(options.maxDelayMs, exponential);
  return options.jitter ? delay / 2 + (random() * delay) / 2 : delay;
}
