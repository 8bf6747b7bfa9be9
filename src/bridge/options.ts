import type { EventLimits } from '../events/json.js';
import type { ThreadRegistry } from '../ids/thread-registry.js';
import type { Transport } from '../transport/types.js';
import type { RetryOptions } from './retry.js';

export type BridgeState = 'uninitialized' | 'initializing' | 'active' | 'degraded' | 'failed' | 'closed';

/**
 * Invalid values (`NaN`, `-1`, `1.5` for a count, `Infinity`, `'10'`, …) throw `ValidationError`
 * `INVALID_OPTION` naming the option; `undefined` means the default.
 */
export interface AgentBridgeOptions {
  /** Where events go. Default: a new `MemoryTransport`. */
  transport?: Transport;
  /** Run → thread → user map: a `ThreadRegistry` (anything else, `null` included, is `INVALID_OPTION`). Default: a new `ThreadRegistry`. */
  registry?: ThreadRegistry;
  retry?: RetryOptions;
  /** Events queued or held per run (in flight, being retried, or buffered while the transport is down); the terminal event always fits. A positive integer. Default 1,000. */
  maxBufferedPerRun?: number;
  /** Events held across all runs while the transport is down. A positive integer. Default 100,000. */
  maxBufferedTotal?: number;
  /** First delay between recovery probes while degraded (doubles up to 10 s), > 0 and at most 2^31 - 1 ms. Default 500 ms. */
  recoveryIntervalMs?: number;
  /** Degraded longer than this → `failed`, buffered events are reported undelivered. A finite number of ms > 0. Default 5 min. */
  failAfterMs?: number;
  /** How long `close()` waits for queued events to be delivered, 0 (not at all) to 2^31 - 1 ms. Default 5 s. */
  drainTimeoutMs?: number;
  /** Validate events given to `send` against the schema. Default true. (JSON safety is always checked.) */
  validate?: boolean;
  /**
   * Size and depth limits of events: what `send` accepts, and the default for the agents using
   * this bridge (an agent's own `limits` option takes precedence). Default 1 MiB, 64 levels.
   */
  limits?: EventLimits;
  /**
   * Backpressure: once a run has more than this many events queued, agents' `think()` /
   * `callTool()` wait for delivery instead of only for acceptance. An integer >= 0 (0: every
   * call waits for delivery). Default 64.
   */
  highWaterMark?: number;
}
