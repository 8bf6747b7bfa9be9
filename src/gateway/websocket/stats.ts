import { StatsRecorder, type GatewayStats } from '../stats.js';

/** The contract's counters plus the WebSocket's own (frames and acks clients send, messages). */
export class WebSocketStatsRecorder extends StatsRecorder {
  /** WebSocket messages written (a batch of frames is one message). */
  messagesSent = 0;
  acks = 0;
  acksIgnored = 0;
  invalidFrames = 0;
  subscribeFailures = 0;
  /** Failures that cost a connection (1011) or an answer; `errors` also counts absorbed auth and serialize failures. */
  internalErrors = 0;
}

/**
 * `stats()` of the WebSocket gateway: the contract's `GatewayStats` (read as is by
 * `agentwire/metrics`) plus what only a WebSocket has.
 */
export interface WebSocketGatewayStats extends GatewayStats {
  /** Live and pending subscriptions across all connections. */
  subscriptions: number;
  /** Frames waiting in connection queues for a socket to drain. */
  queuedFrames: number;
  /** Characters (≈ bytes) of the live frames among them: what `maxQueuedBytes` bounds per connection (replays are not counted). */
  queuedBytes: number;
  /** Bytes written to sockets but not yet flushed to the kernel (sum of `ws.bufferedAmount`). */
  bufferedBytes: number;
  /** Largest `bufferedAmount` of one connection right now. */
  maxBufferedBytes: number;
  /** WebSocket messages written (a batch of frames is one message). */
  messagesSent: number;
  /** `ack` frames for threads the connection follows. */
  acks: number;
  /** `ack` frames for threads it does not follow (unknown, or another user's): ignored, never answered. */
  acksIgnored: number;
  /** Client frames answered with an `error` frame (bad JSON, wrong fields, unknown type, binary). */
  invalidFrames: number;
  /** Subscriptions refused by the log (foreign thread, log failure). */
  subscribeFailures: number;
  /** Failures contained inside the gateway that cost a connection (1011) or one answer. */
  internalErrors: number;
}
