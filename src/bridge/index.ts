export {
  AgentBridge,
  type AgentBridgeOptions,
  type BridgeState,
  type DeliveryCallback,
  type DeliveryReceipt,
  type RetryOptions,
} from './agent-bridge.js';
export { RunEmitter, type RunEmitterOptions, type Emitted } from './run-emitter.js';
export type { BridgeMetrics } from './metrics.js';
export { Histogram, LATENCY_BUCKETS_MS, type HistogramSnapshot } from './histogram.js';
