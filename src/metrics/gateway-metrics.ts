import type { GatewayStats as FrontEndStats } from '../gateway/stats.js';
import type { GatewayStats } from '../transport/websocket/stats.js';
import { perScrape, SnapshotMetric, type MetricKind, type Sample } from './collector.js';
import type { GatewayMetricsSnapshot, GatewayMetricsSource } from './types.js';

type Snapshots = Array<[gateway: string, metrics: GatewayMetricsSnapshot]>;

interface Family {
  name: string;
  type: MetricKind;
  help: string;
  samples: (snapshots: Snapshots) => Sample[];
}

type ScalarField = {
  [K in keyof GatewayMetricsSnapshot]-?: NonNullable<GatewayMetricsSnapshot[K]> extends number ? K : never;
}[keyof GatewayMetricsSnapshot];

const scalar =
  (field: ScalarField) =>
  (snapshots: Snapshots): Sample[] =>
    snapshots.flatMap(([gateway, metrics]) => {
      const value = metrics[field];
      return value === undefined ? [] : [{ labels: { gateway }, value }];
    });

const byLabel =
  (field: 'connections' | 'refused' | 'disconnects', label: string) =>
  (snapshots: Snapshots): Sample[] =>
    snapshots.flatMap(([gateway, metrics]) =>
      Object.entries(metrics[field] ?? {}).map(([key, value]) => ({ labels: { gateway, [label]: key }, value })),
    );

/** The gateway families, names without the prefix. Documented one by one in docs/interop.md. */
export const GATEWAY_FAMILIES: readonly Family[] = [
  { name: 'gateway_connections', type: 'gauge', help: 'Client connections by state (open, authenticating).', samples: byLabel('connections', 'state') },
  { name: 'gateway_users', type: 'gauge', help: 'Users with at least one open connection.', samples: scalar('users') },
  { name: 'gateway_subscriptions', type: 'gauge', help: 'Live thread subscriptions across connections.', samples: scalar('subscriptions') },
  { name: 'gateway_frames_sent_total', type: 'counter', help: 'Frames (events and control messages) written to clients.', samples: scalar('framesSent') },
  { name: 'gateway_queued_frames', type: 'gauge', help: 'Frames waiting for sockets that push back.', samples: scalar('queuedFrames') },
  { name: 'gateway_queued_bytes', type: 'gauge', help: 'Characters (about bytes) of live frames waiting in connection queues.', samples: scalar('queuedBytes') },
  { name: 'gateway_buffered_bytes', type: 'gauge', help: 'Bytes written to sockets but not yet flushed to the kernel.', samples: scalar('bufferedBytes') },
  { name: 'gateway_messages_sent_total', type: 'counter', help: 'WebSocket messages written (a batch of frames is one message).', samples: scalar('messagesSent') },
  { name: 'gateway_acks_total', type: 'counter', help: 'Client ack frames for threads the connection follows.', samples: scalar('acks') },
  { name: 'gateway_invalid_frames_total', type: 'counter', help: 'Client frames answered with an error frame (bad JSON, wrong fields, unknown type, binary).', samples: scalar('invalidFrames') },
  { name: 'gateway_poisoned_events_total', type: 'counter', help: 'Events refused or skipped because they could not be serialized.', samples: scalar('poisonedEvents') },
  { name: 'gateway_errors_total', type: 'counter', help: 'Failures contained and reported through onError.', samples: scalar('errors') },
  {
    name: 'gateway_isolation_drops_total',
    type: 'counter',
    help: "Events withheld from a connection because they were another user's (must stay 0).",
    samples: scalar('isolationDrops'),
  },
  { name: 'gateway_refused_total', type: 'counter', help: 'Requests or upgrades refused before a stream opened, by reason.', samples: byLabel('refused', 'reason') },
  { name: 'gateway_disconnects_total', type: 'counter', help: 'Connections closed by the server, by reason.', samples: byLabel('disconnects', 'reason') },
];

/** Collectors for the given gateways (label `gateway` = the key), one snapshot per gateway per scrape. */
export function gatewayCollectors(gateways: Readonly<Record<string, GatewayMetricsSource>>, prefix: string): SnapshotMetric[] {
  const snapshot = perScrape((): Snapshots => Object.entries(gateways).map(([name, gateway]) => [name, gateway.metrics()]));
  return GATEWAY_FAMILIES.map((family) => new SnapshotMetric(prefix + family.name, family.help, family.type, () => family.samples(snapshot())));
}

/**
 * The `WebSocketGateway` (`stats()`) as a metrics source: the one of `agentwire/gateway/websocket`
 * (the contract's shape, passed as is) or the deprecated one of `agentwire/transport/websocket`.
 */
export function websocketGatewayMetrics(gateway: { stats(): GatewayStats | FrontEndStats }): GatewayMetricsSource {
  return {
    metrics: () => {
      const stats = gateway.stats();
      if (typeof stats.connections !== 'number') return stats as FrontEndStats;
      const s = stats as GatewayStats;
      return {
        connections: { open: s.connections, authenticating: s.pendingHandshakes },
        users: s.users,
        subscriptions: s.subscriptions,
        framesSent: s.framesSent,
        queuedFrames: s.queuedFrames,
        queuedBytes: s.queuedBytes,
        bufferedBytes: s.bufferedBytes,
        messagesSent: s.messagesSent,
        acks: s.acks,
        invalidFrames: s.invalidFrames,
        poisonedEvents: s.unserializableEvents,
        isolationDrops: s.isolationDrops,
        refused: { unauthorized: s.rejectedUnauthorized, unavailable: s.rejectedUnavailable },
        disconnects: {
          slow_consumer: s.closedSlowConsumer,
          heartbeat: s.closedHeartbeat,
          rate_limited: s.closedRateLimited,
          invalid_frames: s.closedInvalidFrames,
          oversized_frame: s.oversizedFrames,
          no_subscription: s.closedNoSubscription,
          replaced: s.closedReplaced,
          user_limit: s.closedRefused,
          revoked: s.closedRevoked,
          token_expired: s.closedExpired,
          internal_error: s.closedInternalError,
        },
      };
    },
  };
}

/**
 * Any surface of the front-end contract (`SseGateway`, the AG-UI and useChat handlers) as a
 * metrics source: its `stats()` already is a `GatewayMetricsSnapshot` (refusals by lowercase code,
 * disconnects by reason). The AG-UI and useChat handlers can also be passed as they are (they have
 * `metrics()`).
 */
export function sseGatewayMetrics(gateway: { stats(): FrontEndStats }): GatewayMetricsSource {
  return { metrics: () => gateway.stats() };
}
