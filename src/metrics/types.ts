import type { BridgeMetrics } from '../bridge/metrics.js';

/** Anything with the bridge's `metrics()` snapshot (an `AgentBridge`). */
export interface BridgeMetricsSource {
  metrics(): BridgeMetrics;
}

/**
 * What a gateway (WebSocket, SSE, the AG-UI endpoint, or yours) reports at scrape time. Every
 * field but `connections` is optional: absent fields are simply not exported for that gateway.
 * Counters (`framesSent`, `messagesSent`, `acks`, `invalidFrames`, `poisonedEvents`, `errors`,
 * `isolationDrops`, `refused`, `disconnects`) only ever grow.
 */
export interface GatewayMetricsSnapshot {
  /** Connections by state right now, e.g. `{ open: 12, authenticating: 1 }`. */
  connections: Readonly<Record<string, number>>;
  /** Users with at least one open connection. */
  users?: number;
  /** Live thread subscriptions across connections. */
  subscriptions?: number;
  /** Frames (events and control messages) written to clients. */
  framesSent?: number;
  /** Frames queued for sockets that push back. */
  queuedFrames?: number;
  /** Characters (≈ bytes) of live frames waiting in connection queues (WebSocket). */
  queuedBytes?: number;
  /** Bytes written but not yet flushed to the kernel. */
  bufferedBytes?: number;
  /** WebSocket messages written (a batch of frames is one message). */
  messagesSent?: number;
  /** Client `ack` frames for threads the connection follows (WebSocket). */
  acks?: number;
  /** Client frames answered with an `error` frame (WebSocket). */
  invalidFrames?: number;
  /** Events that could not be serialized (refused by `send()` or skipped). */
  poisonedEvents?: number;
  /** Failures contained and reported through `onError`. */
  errors?: number;
  /** Events withheld because they were not the connection's user's (must stay 0). */
  isolationDrops?: number;
  /** Requests or upgrades refused before a stream opened, by reason (`unauthorized`, `over_limit`, …). */
  refused?: Readonly<Record<string, number>>;
  /** Connections closed by the server, by reason (`slow_consumer`, `heartbeat`, …). */
  disconnects?: Readonly<Record<string, number>>;
}

/** A gateway as the metrics registry sees it. */
export interface GatewayMetricsSource {
  metrics(): GatewayMetricsSnapshot;
}
