import type { Metric, Registry } from 'prom-client';

export type MetricKind = 'counter' | 'gauge' | 'histogram';
export type Labels = Readonly<Record<string, string>>;

/** One exposition line: `metricName{labels} value` (metricName defaults to the family name). */
export interface Sample {
  labels: Labels;
  value: number;
  /** For histogram series: `<name>_bucket`, `<name>_sum`, `<name>_count`. */
  metricName?: string;
}

/**
 * A metric family whose samples are read from snapshots (`bridge.metrics()`, `gateway.stats()`)
 * when Prometheus scrapes, so recording costs nothing on the hot path.
 *
 * Why not prom-client's own `Counter`/`Gauge`/`Histogram`: their values are recorded by the
 * application, while ours already exist, pre-aggregated, in the sources — and a `Histogram`
 * cannot be loaded from bucket counts at all. This implements the collector contract prom-client's
 * `Registry` uses for every metric (`name`, `help`, `type`, `aggregator`, `get()` resolving to
 * `{ name, help, type, values, aggregator }`, `reset()`), so it sits in any registry, merges with
 * `Registry.merge` and aggregates across cluster workers like a built-in metric.
 */
export class SnapshotMetric {
  readonly aggregator = 'sum';

  constructor(
    /** Mutable: prom-client renames counters in OpenMetrics mode. */
    public name: string,
    readonly help: string,
    readonly type: MetricKind,
    private readonly read: () => Sample[],
  ) {}

  async get(): Promise<{ name: string; help: string; type: MetricKind; values: Sample[]; aggregator: string }> {
    return { name: this.name, help: this.help, type: this.type, values: this.read(), aggregator: this.aggregator };
  }

  /** Values live in the sources; there is nothing to reset here. */
  reset(): void {}

  register(registry: Pick<Registry, 'registerMetric'>): void {
    // The one cast of the module: prom-client types registerMetric() with its concrete classes.
    registry.registerMetric(this as unknown as Metric);
  }
}

/**
 * Memoizes `read` for the rest of the current synchronous pass, so every family of one scrape
 * sees the same snapshot (prom-client's `Registry.metrics()` calls every `get()` in one pass):
 * counters that belong together stay consistent. A microtask, not a timer, ends the pass, so
 * fake timers in tests can never make it serve a stale snapshot.
 */
export function perScrape<T>(read: () => T): () => T {
  let cached: { value: T } | undefined;
  return () => {
    if (!cached) {
      cached = { value: read() };
      queueMicrotask(() => (cached = undefined));
    }
    return cached.value;
  };
}
