import type { BridgeState } from '../bridge/agent-bridge.js';
import type { BridgeMetrics } from '../bridge/metrics.js';
import { perScrape, SnapshotMetric, type MetricKind, type Sample } from './collector.js';
import type { BridgeMetricsSource } from './types.js';

const BRIDGE_STATES: readonly BridgeState[] = ['uninitialized', 'initializing', 'active', 'degraded', 'failed', 'closed'];

type Snapshots = Array<[bridge: string, metrics: BridgeMetrics]>;

interface Family {
  name: string;
  type: MetricKind;
  help: string;
  samples: (snapshots: Snapshots, name: string) => Sample[];
}

const scalar =
  (field: keyof Omit<BridgeMetrics, 'state' | 'deliveryLatencyMs'>) =>
  (snapshots: Snapshots): Sample[] =>
    snapshots.map(([bridge, metrics]) => ({ labels: { bridge }, value: metrics[field] }));

/** Seconds, without float noise in `le` labels (0.025 ms → 0.000025, not 2.5000000000000002e-5). */
const seconds = (ms: number) => Number((ms / 1000).toPrecision(12));

/** The bridge families, names without the prefix. Documented one by one in docs/interop.md. */
export const BRIDGE_FAMILIES: readonly Family[] = [
  { name: 'bridge_events_emitted_total', type: 'counter', help: 'Events accepted by the bridge (validated and routed).', samples: scalar('emitted') },
  { name: 'bridge_events_delivered_total', type: 'counter', help: 'Events the transport accepted.', samples: scalar('delivered') },
  { name: 'bridge_delivery_retries_total', type: 'counter', help: 'Send attempts repeated after a transport failure.', samples: scalar('retried') },
  { name: 'bridge_events_failed_total', type: 'counter', help: 'Events that ended in a DeliveryError (never delivered).', samples: scalar('failed') },
  { name: 'bridge_events_buffered', type: 'gauge', help: 'Events held while the transport is down.', samples: scalar('buffered') },
  { name: 'bridge_events_buffered_peak', type: 'gauge', help: 'Highest number of events held at once.', samples: scalar('bufferedPeak') },
  {
    name: 'bridge_thread_resolution_failures_total',
    type: 'counter',
    help: 'Run ids that could be resolved to a thread neither from the registry nor by parsing.',
    samples: scalar('threadResolutionFailures'),
  },
  { name: 'bridge_active_runs', type: 'gauge', help: 'Runs with events queued or in flight.', samples: scalar('activeRuns') },
  {
    name: 'bridge_state',
    type: 'gauge',
    help: 'Lifecycle state of the bridge: 1 for the current state, 0 for the others.',
    samples: (snapshots) =>
      snapshots.flatMap(([bridge, metrics]) => BRIDGE_STATES.map((state) => ({ labels: { bridge, state }, value: metrics.state === state ? 1 : 0 }))),
  },
  {
    name: 'bridge_delivery_latency_seconds',
    type: 'histogram',
    help: 'Time from send to the transport accepting an event.',
    samples: (snapshots, name) =>
      snapshots.flatMap(([bridge, metrics]) => {
        const histogram = metrics.deliveryLatencyMs;
        const buckets = histogram.buckets.map(({ le, count }) => ({
          metricName: `${name}_bucket`,
          labels: { bridge, le: Number.isFinite(le) ? String(seconds(le)) : '+Inf' },
          value: count,
        }));
        return [
          ...buckets,
          { metricName: `${name}_sum`, labels: { bridge }, value: histogram.sum / 1000 },
          { metricName: `${name}_count`, labels: { bridge }, value: histogram.count },
        ];
      }),
  },
];

/** Collectors for the given bridges (label `bridge` = the key), reading one snapshot per bridge per scrape. */
export function bridgeCollectors(bridges: Readonly<Record<string, BridgeMetricsSource>>, prefix: string): SnapshotMetric[] {
  const snapshot = perScrape((): Snapshots => Object.entries(bridges).map(([name, bridge]) => [name, bridge.metrics()]));
  return BRIDGE_FAMILIES.map((family) => {
    const name = prefix + family.name;
    return new SnapshotMetric(name, family.help, family.type, () => family.samples(snapshot(), name));
  });
}
