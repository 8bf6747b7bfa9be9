import type { AgentEvent } from '../../events/schema.js';
import type { EventLog, LogListener, SubscribeRequest, SubscribeResult, Transport, TransportHealth } from '../types.js';
import { Appender } from './appender.js';
import { closedError, RedisConnection } from './connection.js';
import { RedisEventLog } from './event-log.js';
import { RedisKeys } from './keys.js';
import { resolveTransportOptions, type ResolvedTransportOptions, type RedisStreamsTransportOptions } from './options.js';

/**
 * Transport over Redis Streams, for agents running in worker processes and users connected to
 * any of several gateway processes. One stream per thread; the entry id is the cursor's offset.
 *
 * `send` resolves once Redis stored the entry (atomically with the owner check, retention trim and
 * TTL refresh). While Redis is unreachable it rejects at once with a retryable `TransportError`
 * (`REDIS_UNAVAILABLE`), so the bridge retries, buffers in order and flushes on recovery; an event
 * for a thread owned by another user is refused for good (`THREAD_OWNER_MISMATCH`). Concurrent
 * sends are coalesced into batched, pipelined script calls.
 *
 * It is also an `EventLog` (replay and live tail), opened on the first `subscribe()` with a
 * blocking connection of its own; gateway processes usually use `RedisEventLog` directly.
 */
export class RedisStreamsTransport implements Transport, EventLog {
  readonly options: ResolvedTransportOptions;
  readonly keys: RedisKeys;
  private readonly connection: RedisConnection;
  private readonly appender: Appender;
  private log: RedisEventLog | undefined;
  private closed = false;

  constructor(options: RedisStreamsTransportOptions = {}) {
    this.options = resolveTransportOptions(options);
    this.keys = new RedisKeys(this.options.keyPrefix);
    this.connection = new RedisConnection(this.options, 'agentwire-transport');
    this.appender = new Appender(this.connection, this.keys, this.options);
  }

  /** Resolves once connected to Redis (waits through reconnects); false if closed first or after `timeoutMs`. */
  connect(timeoutMs = Number.MAX_SAFE_INTEGER): Promise<boolean> {
    return this.connection.waitReady(Math.min(timeoutMs, 2 ** 31 - 1));
  }

  send(event: AgentEvent): Promise<void> {
    if (this.closed) return Promise.reject(closedError('RedisStreamsTransport'));
    // Serialized once here; gateways hand this exact JSON to every connection.
    return this.appender.append(event.threadId, event.userId, JSON.stringify(event));
  }

  async subscribe(request: SubscribeRequest, listener: LogListener): Promise<SubscribeResult> {
    return this.eventLog().subscribe(request, listener);
  }

  async ownerOf(threadId: string): Promise<string | undefined> {
    return this.eventLog().ownerOf(threadId);
  }

  /** The read side sharing this transport's connection (plus a blocking one of its own). */
  eventLog(): RedisEventLog {
    if (this.closed) throw closedError('RedisStreamsTransport');
    this.log ??= new RedisEventLog({ ...this.options, ...this.options.log }, this.connection);
    return this.log;
  }

  /** Events appended so far and the script calls that carried them (their ratio is the batch size). */
  stats(): { appended: number; batches: number; pending: number; reconnects: number } {
    return {
      appended: this.appender.appended,
      batches: this.appender.batches,
      pending: this.appender.pending,
      reconnects: this.connection.reconnects,
    };
  }

  /**
   * Connection state. Before the first connection this waits for it (up to `connectTimeoutMs`),
   * so `AgentBridge.initialize()` succeeds when Redis is reachable at startup.
   */
  async health(): Promise<TransportHealth> {
    if (this.closed) return { ok: false, detail: 'closed' };
    const ready = await this.connection.waitReady(this.connection.isReady ? 0 : this.options.connectTimeoutMs);
    const detail = `redis ${this.connection.describe()}`;
    return { ok: ready, detail: this.log ? `${detail}; ${(await this.log.health()).detail ?? ''}` : detail };
  }

  /** Waits (up to `closeTimeoutMs`) for appends in flight, then closes the connections. No timer outlives it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.appender.drain(this.options.closeTimeoutMs);
    this.appender.rejectQueued(closedError('RedisStreamsTransport'));
    await this.log?.close();
    await this.connection.close();
  }
}
