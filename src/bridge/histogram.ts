/** Bucket upper bounds in milliseconds: fine below 1 ms where local delivery lives, coarse above. */
export const LATENCY_BUCKETS_MS = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
] as const;

export interface HistogramSnapshot {
  count: number;
  sum: number;
  max: number;
  p50: number;
  p99: number;
  /** Cumulative counts per bucket upper bound (Prometheus `le`), last is +Inf. */
  buckets: Array<{ le: number; count: number }>;
}

/**
 * Fixed-bucket histogram: O(1) memory and recording, mergeable, exportable as Prometheus
 * buckets. Percentiles are interpolated within a bucket, so they are estimates.
 */
export class Histogram {
  private readonly counts: Float64Array;
  private count = 0;
  private sum = 0;
  private max = 0;

  constructor(private readonly bounds: readonly number[] = LATENCY_BUCKETS_MS) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  record(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sum += value;
    if (value > this.max) this.max = value;
  }

  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = q * this.count;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const inBucket = this.counts[i]!;
      if (seen + inBucket >= rank && inBucket > 0) {
        const lower = i === 0 ? 0 : this.bounds[i - 1]!;
        const upper = i < this.bounds.length ? this.bounds[i]! : this.max;
        return Math.min(this.max, lower + ((upper - lower) * (rank - seen)) / inBucket);
      }
      seen += inBucket;
    }
    return this.max;
  }

  snapshot(): HistogramSnapshot {
    let cumulative = 0;
    const buckets = this.bounds.map((le, i) => ({ le, count: (cumulative += this.counts[i]!) }));
    buckets.push({ le: Number.POSITIVE_INFINITY, count: this.count });
    return { count: this.count, sum: this.sum, max: this.max, p50: this.quantile(0.5), p99: this.quantile(0.99), buckets };
  }
}
