import { Registry, type OpenMetricsContentType, type PrometheusContentType } from 'prom-client';
import { bridgeCollectors } from './bridge-metrics.js';
import { gatewayCollectors } from './gateway-metrics.js';
import type { BridgeMetricsSource, GatewayMetricsSource } from './types.js';

export type AnyRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;

export interface MetricsRegistryOptions<R extends AnyRegistry = Registry> {
  /** Bridges to export, keyed by their `bridge` label value (e.g. `{ default: bridge }`). Default: none. */
  bridges?: Readonly<Record<string, BridgeMetricsSource>>;
  /**
   * Gateways to export, keyed by their `gateway` label value, e.g.
   * `{ ws: websocketGatewayMetrics(ws), sse: sseGatewayMetrics(sse), agui: aguiHandler }`. Default: none.
   */
  gateways?: Readonly<Record<string, GatewayMetricsSource>>;
  /**
   * The prom-client registry to add the collectors to — e.g. prom-client's global `register`,
   * to serve agentwire's metrics next to the application's own. Default: a new `Registry`.
   */
  registry?: R;
  /** Prefix of every metric name. Default `'agentwire_'`. */
  prefix?: string;
}

/**
 * Registers agentwire's metrics in a prom-client registry and returns it. Values are read from
 * `bridge.metrics()` / `gateway.metrics()` when the registry is scraped (`await registry.metrics()`
 * renders the Prometheus text format); nothing is recorded per event.
 */
export function createMetricsRegistry<R extends AnyRegistry = Registry>(options: MetricsRegistryOptions<R> = {}): R {
  const registry = options.registry ?? (new Registry() as R);
  const prefix = options.prefix ?? 'agentwire_';
  const collectors = [...bridgeCollectors(options.bridges ?? {}, prefix), ...gatewayCollectors(options.gateways ?? {}, prefix)];
  for (const collector of collectors) collector.register(registry);
  return registry;
}
