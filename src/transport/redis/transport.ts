import { eventJson } from '../../events/json.js';
import type { AnswerInput, AnswerReceipt, InteractionLog, PendingRequest } from '../interaction.js';
import type { UserAnsweredEvent } from '../../events/schema.js';
import type { AgentEvent } from '../../events/schema.js';
import { assertUserId } from '../../ids/user-id.js';
import { refusal } from '../memory/log-common.js';
import type { EventLog, LogListener, SubscribeRequest, SubscribeResult, Transport, TransportHealth } from '../types.js';
import { Appender, type AppendKind } from './appender.js';
import { closedError, RedisConnection, toTransportError } from './connection.js';
import { RedisEventLog } from './event-log.js';
import { RedisKeys } from './keys.js';
import { resolveTransportOptions, type ResolvedTransportOptions, type RedisStreamsTransportOptions } from './options.js';
import { logHasRun } from './has-run.js';
import { namesThread } from './run-claim.js';

/**
 * Transport over Redis Streams, for agents running in worker processes and users connected to
 * any of several gateway processes. One stream per thread; the entry id is the cursor's offset.
 *
 * `send` resolves once Redis stored the entry (atomically with the owner check, the run's fencing,
 * retention trim and TTL refresh). While Redis is unreachable it rejects at once with a retryable
 * `TransportError` (`REDIS_UNAVAILABLE`), so the bridge retries, buffers in order and flushes on
 * recovery. Refused for good (not retryable), each costing that one event only: an event that is
 * not JSON (`TRANSPORT_REFUSED`, the `ValidationError` as its cause), an event for a thread owned
 * by another user (`THREAD_OWNER_MISMATCH`), an `agent_started` of a run id with retained events
 * (`ValidationError` RUN_ID_CONFLICT; for a run id that does not name its thread, also one another
 * thread claimed: see `claimRunId`), any event of a run after its retained `agent_completed`
 * (`StateError` RUN_CLOSED). A repeat of a run's `agent_started` or `agent_completed` (same
 * event id, e.g. a retry after a lost reply) is accepted and not stored twice. Concurrent sends
 * are coalesced into batched, pipelined script calls.
 *
 * It is also an `EventLog` (replay and live tail), opened on the first `subscribe()` with a
 * blocking connection of its own; gateway processes usually use `RedisEventLog` directly.
 */
export class RedisStreamsTransport implements Transport, EventLog, InteractionLog {
  readonly options: ResolvedTransportOptions;
  readonly keys: RedisKeys;
  private readonly connection: RedisConnection;
  private readonly appender: Appender;
  private log: RedisEventLog | undefined;
  private closed = false;

  constructor(options: RedisStreamsTransportOptions = {}) {
    this.options = resolveTransportOptions(options);
    this.keys = new RedisKeys(this.options.keyPrefix, this.options.cluster?.slotGroups);
    this.connection = new RedisConnection(this.options, 'agentwire-transport');
    this.appender = new Appender(this.connection, this.keys, this.options);
  }

  /** Resolves once connected to Redis (waits through reconnects); false if closed first or after `timeoutMs`. */
  connect(timeoutMs = Number.MAX_SAFE_INTEGER): Promise<boolean> {
    return this.connection.waitReady(Math.min(timeoutMs, 2 ** 31 - 1));
  }

  send(event: AgentEvent): Promise<void> {
    if (this.closed) return Promise.reject(closedError('RedisStreamsTransport'));
    let json: string;
    try {
      // Redis stores UTF-8: a lone surrogate would become U+FFFD, another user's id (the owner checks run in Redis).
      assertUserId(event.userId);
      // Serialized once, where the event was built; gateways hand this exact JSON to every connection.
      json = eventJson(event);
    } catch (error) {
      return Promise.reject(refusal(event, error));
    }
    const type = event.type;
    const kind: AppendKind = type === 'agent_started' ? 's' : type === 'agent_completed' ? 'c' : 'o';
    return this.appender.append({
      threadId: event.threadId,
      userId: event.userId,
      json,
      kind,
      runId: event.runId,
      eventId: event.id,
      customRunId: kind !== 'o' && !namesThread(event.runId, event.threadId),
    });
  }

  /**
   * Whether events of this run are retained in Redis (see `APPEND_SCRIPT`: a closed run while its
   * terminal entry is, an open one while its start entry is or for `threadTtlSeconds` after it
   * started). Looks in the thread a standard run id names and in the thread recorded for a custom one.
   */
  async hasRun(runId: string): Promise<boolean> {
    if (this.closed) throw closedError('RedisStreamsTransport');
    try {
      return await logHasRun(this.connection, this.keys, runId, this.options.threadTtlSeconds);
    } catch (error) {
      throw toTransportError(error, `Looking up run ${runId} in Redis`);
    }
  }

  async subscribe(request: SubscribeRequest, listener: LogListener): Promise<SubscribeResult> {
    return this.eventLog().subscribe(request, listener);
  }

  /** `InteractionLog`, through the read side (so a worker's transport is also where its runs wait for answers). */
  openRequest(request: PendingRequest): Promise<void> {
    return this.eventLog().openRequest(request);
  }

  answerRequest(input: AnswerInput): Promise<AnswerReceipt> {
    return this.eventLog().answerRequest(input);
  }

  closeRequest(request: PendingRequest): Promise<UserAnsweredEvent | undefined> {
    return this.eventLog().closeRequest(request);
  }

  async ownerOf(threadId: string): Promise<string | undefined> {
    return this.eventLog().ownerOf(threadId);
  }

  /** The read side sharing this transport's connection (plus a blocking one of its own). */
  eventLog(): RedisEventLog {
    if (this.closed) throw closedError('RedisStreamsTransport');
    this.log ??= new RedisEventLog(this.options.logOptions, this.connection);
    return this.log;
  }

  /**
   * Events appended so far and the script calls that carried them (their ratio is the batch size),
   * repeats accepted without a second entry, events refused (by the script or a run id's claim),
   * and run id claims issued (each one round trip: a custom run id's start and end).
   */
  stats(): { appended: number; batches: number; repeats: number; refused: number; claims: number; pending: number; reconnects: number } {
    return {
      claims: this.appender.claims,
      appended: this.appender.appended,
      batches: this.appender.batches,
      repeats: this.appender.repeats,
      refused: this.appender.refused,
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
