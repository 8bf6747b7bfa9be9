/**
 * `agentwire/metrics`: bridge and gateway metrics in the Prometheus text format, through
 * prom-client (optional peer dependency).
 *
 * @module agentwire/metrics
 */
export { createMetricsRegistry, type MetricsRegistryOptions, type AnyRegistry } from './registry.js';
export { metricsHandler, type MetricsHandlerOptions } from './handler.js';
export { websocketGatewayMetrics, sseGatewayMetrics, GATEWAY_FAMILIES } from './gateway-metrics.js';
export { BRIDGE_FAMILIES } from './bridge-metrics.js';
export { SnapshotMetric, type Sample, type MetricKind } from './collector.js';
export type { BridgeMetricsSource, GatewayMetricsSource, GatewayMetricsSnapshot } from './types.js';
