import type { EventLimits } from '../events/json.js';
import type { ThreadRegistry } from '../ids/thread-registry.js';
import type { Transport } from '../transport/types.js';
import type { RetryOptions } from './retry.js';

export type BridgeState = 'uninitialized' | 'initializing' | 'active' | 'degraded' | 'failed' | 'closed';

export interface AgentBridgeOptions {
  /** Where events go. Default: a new `MemoryTransport`. */
  transport?: Transport;
  /** Run → thread → user map. Default: a new `ThreadRegistry`. */
  registry?: ThreadRegistry;
  retry?: RetryOptions;
  /** Events queued or held per run (in flight, being retried, or buffered while the transport is down); the terminal event always fits. Default 1,000. */
  maxBufferedPerRun?: number;
  /** Events held across all runs while the transport is down. Default 100,000. */
  maxBufferedTotal?: number;
  /** First delay between recovery probes while degraded (doubles up to 10 s). Default 500 ms. */
  recoveryIntervalMs?: number;
  /** Degraded longer than this → `failed`, buffered events are reported undelivered. Default 5 min. */
  failAfterMs?: number;
  /** How long `close()` waits for queued events to be delivered. Default 5 s. */
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
   * `callTool()` wait for delivery instead of only for acceptance. Default 64.
   */
  highWaterMark?: number;
}
