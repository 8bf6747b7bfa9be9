import { Histogram, type HistogramSnapshot } from './histogram.js';

/** A snapshot of what the bridge did. Counters only grow; `buffered` and `activeRuns` are current values. */
export interface BridgeMetrics {
  state: string;
  /** Events accepted by `send` (validated and routed). */
  emitted: number;
  /** Events the transport accepted. */
  delivered: number;
  /** Send attempts repeated after a failure. */
  retried: number;
  /** Events that ended in a `DeliveryError` (never delivered). */
  failed: number;
  /** Events currently held while the transport is down. */
  buffered: number;
  /** Highest `buffered` value seen. */
  bufferedPeak: number;
  /** Run ids that could not be resolved to a thread. */
  threadResolutionFailures: number;
  /** Runs with events still queued or in flight. */
  activeRuns: number;
  /**
   * Time from `send` to the transport accepting the event, in ms. One entry per delivered event; of
   * the events a synchronous transport accepts inline (`Transport.sendSync`), one in 16 is timed and
   * the others carry the last timed value.
   */
  deliveryLatencyMs: HistogramSnapshot;
}

export class BridgeCounters {
  emitted = 0;
  delivered = 0;
  retried = 0;
  failed = 0;
  buffered = 0;
  bufferedPeak = 0;
  threadResolutionFailures = 0;
  readonly latency = new Histogram();

  addBuffered(delta: number): void {
    this.buffered += delta;
    if (this.buffered > this.bufferedPeak) this.bufferedPeak = this.buffered;
  }

  snapshot(state: string, activeRuns: number): BridgeMetrics {
    return {
      state,
      emitted: this.emitted,
      delivered: this.delivered,
      retried: this.retried,
      failed: this.failed,
      buffered: this.buffered,
      bufferedPeak: this.bufferedPeak,
      threadResolutionFailures: this.threadResolutionFailures,
      activeRuns,
      deliveryLatencyMs: this.latency.snapshot(),
    };
  }
}
