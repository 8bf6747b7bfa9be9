import { Registry, type OpenMetricsContentType, type PrometheusContentType } from 'prom-client';
import { bridgeCollectors } from './bridge-metrics.js';
import { gatewayCollectors } from './gateway-metrics.js';
import type { BridgeMetricsSource, GatewayMetricsSource } from './types.js';
import { checker, given, shown, type OptionChecker } from '../errors/options.js';

/** An object of sources by label, each with `metrics()` (read at every scrape: a wrong one failed every scrape). */
function sources<T extends { metrics(): unknown }>(check: OptionChecker, option: string, value: unknown, kind: string): Readonly<Record<string, T>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw check.fail(option, `must be an object of ${kind}s by label, each with metrics() (got ${shown(value)})`);
  for (const [name, source] of Object.entries(value)) {
    if (typeof (source as { metrics?: unknown } | null)?.metrics !== 'function') throw check.fail(`${option}.${name}`, `must be a ${kind} with metrics() (got ${shown(source)})`);
  }
  return value as Readonly<Record<string, T>>;
}

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
  const check = checker('createMetricsRegistry()');
  if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object (got ${shown(options)})`);
  if (options.registry !== undefined && typeof (options.registry as Partial<Registry> | null)?.registerMetric !== 'function') {
    throw check.fail('registry', `must be a prom-client Registry (got ${shown(options.registry)})`);
  }
  const prefix = given(options.prefix, 'agentwire_');
  // Prefixes every metric name: a name prom-client refuses would throw at the first registration.
  if (typeof prefix !== 'string' || !/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix)) {
    throw check.fail('prefix', `must be a metric name prefix matching [a-zA-Z_:][a-zA-Z0-9_:]* (got ${shown(prefix)})`);
  }
  const bridges = sources<BridgeMetricsSource>(check, 'bridges', given(options.bridges, {}), 'bridge');
  const gateways = sources<GatewayMetricsSource>(check, 'gateways', given(options.gateways, {}), 'gateway');
  const registry = options.registry ?? (new Registry() as R);
  const collectors = [...bridgeCollectors(bridges, prefix), ...gatewayCollectors(gateways, prefix)];
  for (const collector of collectors) collector.register(registry);
  return registry;
}
