export {
  AgentBridge,
  type AgentBridgeOptions,
  type BridgeState,
  type DeliveryCallback,
  type DeliveryReceipt,
  type RetryOptions,
} from './agent-bridge.js';
export type { BridgeMetrics } from './metrics.js';
export type { HistogramSnapshot } from './histogram.js';
