import { AgentwireError, AuthError } from '../../errors/index.js';
import type { GatewayErrorCode } from '../../protocol/constants.js';
import type { ServerFrame } from '../../protocol/frames.js';
import type { EventLog, LogEntry } from '../../transport/types.js';
import { Follower, type FollowResult } from '../follower.js';
import type { FlushScheduler } from './flush-scheduler.js';
import type { ReportedContext } from './options.js';
import type { WebSocketStatsRecorder } from './stats.js';

/** What a connection lends its subscriptions. */
export interface SubscriptionHost {
  readonly id: string;
  readonly userId: string;
  readonly log: EventLog;
  readonly scheduler: FlushScheduler;
  readonly stats: WebSocketStatsRecorder;
  readonly maxSubscriptions: number;
  /** Bound on live entries held before a subscription's replay is queued (the connection's `maxQueuedFrames`). */
  readonly maxQueuedFrames: number;
  sendFrame(frame: ServerFrame): void;
  sendError(code: GatewayErrorCode, message: string, threadId?: string): void;
  /** Queues an event frame (nothing once the connection is closing). */
  enqueue(entry: LogEntry): void;
  closeSlowConsumer(): void;
  /** Runs `step`; a throw is reported and costs the connection (1011). */
  contain(stage: ReportedContext['stage'], step: () => void, threadId?: string): void;
  /** Reports `error` and closes with 1011. Never throws. */
  failed(error: unknown, stage: ReportedContext['stage'], threadId?: string): void;
  report(error: unknown, context: ReportedContext): void;
  /** The number of subscriptions changed (the connection arms or clears its idle timer). */
  subscriptionsChanged(count: number): void;
}

/**
 * The threads one connection follows, each through the contract's `Follower` (replay → live
 * handover, dedupe by id, owner filter, bounded pending). A follower's entries are moved into the
 * connection's send queue as soon as they are readable, so every thread's frames keep their order
 * with the control frames (`subscribed` before the replay, `unsubscribed` after what was queued).
 */
export class Subscriptions {
  private readonly followers = new Map<string, Follower>();

  constructor(private readonly host: SubscriptionHost) {}

  /** Where a follower hands live entries once its replay is queued (`Follower.handOver`): straight into the send queue. */
  private readonly deliver = (entry: LogEntry): void => {
    try {
      this.host.enqueue(entry);
    } catch (error) {
      this.host.failed(error, 'deliver');
    }
  };

  get size(): number {
    return this.followers.size;
  }

  has(threadId: string): boolean {
    return this.followers.has(threadId);
  }

  /** `subscribed`, then the replay, then live entries, in that order. */
  async subscribe(threadId: string, after: string | undefined): Promise<void> {
    const host = this.host;
    if (this.followers.has(threadId)) {
      host.sendError('ALREADY_SUBSCRIBED', `already subscribed to thread "${threadId}"`, threadId);
      return;
    }
    if (this.followers.size >= host.maxSubscriptions) {
      host.sendError('TOO_MANY_SUBSCRIPTIONS', `at most ${host.maxSubscriptions} subscriptions per connection`, threadId);
      return;
    }
    // Made once per subscription: nothing is allocated per live entry. Nothing is taken from the
    // follower before `subscribed` and the replay are queued (entries that arrive meanwhile wait in it).
    let handedOver = false;
    const drain = (): void => {
      if (handedOver) this.drain(follower);
    };
    const follower: Follower = new Follower(
      { userId: host.userId, threadId, after },
      {
        maxQueuedEntries: host.maxQueuedFrames,
        maxQueuedChars: Number.MAX_SAFE_INTEGER,
        readable: () => host.contain('deliver', drain, threadId),
        ended: (reason) => host.contain('deliver', () => this.ended(follower, reason), threadId),
        isolationDrop: () => host.stats.isolationDrops++,
      },
    );
    this.followers.set(threadId, follower);
    host.subscriptionsChanged(this.followers.size);
    let result: FollowResult;
    try {
      result = await follower.start(host.log);
    } catch (error) {
      host.stats.subscribeFailures++;
      closeQuietly(follower);
      this.forget(follower);
      if (error instanceof AuthError) {
        host.sendError('THREAD_FORBIDDEN', `thread "${threadId}" belongs to another user`, threadId);
      } else if (error instanceof AgentwireError && error.code === 'SUBSCRIBE_FAILED') {
        const cause = error.cause;
        const reason = cause instanceof AgentwireError ? cause.message : 'the event log failed';
        host.sendError('SUBSCRIBE_FAILED', `could not subscribe to thread "${threadId}": ${reason}`, threadId);
      } else {
        // The log answered with something that is not a SubscribeResult (it broke its contract).
        host.report(error, { stage: 'message', userId: host.userId, connectionId: host.id, threadId });
        host.sendError('SUBSCRIBE_FAILED', `could not subscribe to thread "${threadId}": the event log failed`, threadId);
      }
      return;
    }
    if (result.status === 'history_gap') {
      this.forget(follower);
      const { gap } = result;
      host.sendFrame({ type: 'history_gap', threadId, requested: gap.requested, reason: gap.reason, message: gap.message });
      return;
    }
    if (result.status === 'ended') {
      // Unsubscribed or closed while the log was answering: nothing to say. Ended by the log or an overflow: as when following.
      if (result.reason !== 'closed') this.ended(follower, result.reason);
      return;
    }
    // `replayed` counts what follows: entries that are JSON (others are skipped for everyone).
    const replay: LogEntry[] = [];
    for (let i = 0; i < result.replayed; i++) {
      const entry = follower.next()!;
      if (host.scheduler.eventJson(entry) !== undefined) replay.push(entry);
    }
    host.sendFrame({ type: 'subscribed', threadId, cursor: result.cursor, replayed: replay.length });
    for (const entry of replay) host.enqueue(entry);
    handedOver = true;
    this.drain(follower);
    // Live entries from now on go straight into the send queue while the follower holds none.
    if (this.followers.get(threadId) === follower) follower.handOver(this.deliver);
  }

  unsubscribe(threadId: string): boolean {
    const follower = this.followers.get(threadId);
    if (!follower) return false;
    closeQuietly(follower);
    this.forget(follower);
    return true;
  }

  /** Stops following every thread (the connection is closing). */
  closeAll(): void {
    for (const follower of this.followers.values()) closeQuietly(follower);
    this.followers.clear();
  }

  /** Moves the follower's readable entries into the send queue. */
  private drain(follower: Follower): void {
    if (this.followers.get(follower.target.threadId) !== follower) return;
    let entry: LogEntry | undefined;
    while ((entry = follower.next()) !== undefined) this.host.enqueue(entry);
  }

  private ended(follower: Follower, reason: 'log_closed' | 'overflow'): void {
    const { threadId } = follower.target;
    if (this.followers.get(threadId) !== follower) return;
    this.forget(follower);
    if (reason === 'overflow') {
      this.host.closeSlowConsumer();
      return;
    }
    // The log ended the subscription (closed, evicted): the client resumes from its cursor.
    this.host.sendError('SUBSCRIPTION_ENDED', `the event log ended the subscription to thread "${threadId}"`, threadId);
  }

  private forget(follower: Follower): void {
    const { threadId } = follower.target;
    if (this.followers.get(threadId) !== follower) return;
    this.followers.delete(threadId);
    this.host.subscriptionsChanged(this.followers.size);
  }
}

/** Closes a follower; a log whose subscription throws on close is not this connection's problem. */
function closeQuietly(follower: Follower): void {
  try {
    follower.close();
  } catch {
    // Forgotten either way.
  }
}
