import { AgentwireError, AuthError } from '../../errors/index.js';
import type { GatewayErrorCode } from '../../protocol/constants.js';
import type { ServerFrame } from '../../protocol/frames.js';
import type { EventLog, LogEntry } from '../../transport/types.js';
import { Follower, type FollowerOptions, type FollowResult, type FollowTarget } from '../follower.js';
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
  /** Queues a replay whole (not counted toward the send queue's bound). */
  enqueueReplay(entries: readonly LogEntry[]): void;
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
 * What a connection's follower of one thread follows and is told (the `Follower`'s target and options, as prototype
 * methods: an idle connection holds this one small object per thread instead of four closures,
 * their context and an options object). Nothing is taken from the follower before `subscribed`
 * and the replay are queued (`handedOver`): entries that arrive meanwhile wait in it.
 */
class ThreadFollowing implements FollowerOptions, FollowTarget {
  readonly follower: Follower;
  handedOver = false;
  /** The follower's target is this object too (no target object per subscription). */
  readonly userId: string;

  constructor(
    private readonly owner: Subscriptions,
    private readonly host: SubscriptionHost,
    readonly threadId: string,
    readonly after: string | undefined,
  ) {
    this.userId = host.userId;
    this.follower = new Follower(this, this);
  }

  get maxQueuedEntries(): number {
    return this.host.maxQueuedFrames;
  }

  get maxQueuedChars(): number {
    return Number.MAX_SAFE_INTEGER;
  }

  readable(): void {
    if (!this.handedOver) return;
    try {
      this.owner.drain(this);
    } catch (error) {
      this.host.failed(error, 'deliver', this.threadId);
    }
  }

  /** Live entries once handed over (`Follower.handOver`): straight into the send queue. */
  deliver(entry: LogEntry): void {
    try {
      this.host.enqueue(entry);
    } catch (error) {
      this.host.failed(error, 'deliver', this.threadId);
    }
  }

  ended(reason: 'log_closed' | 'overflow'): void {
    try {
      this.owner.ended(this, reason);
    } catch (error) {
      this.host.failed(error, 'deliver', this.threadId);
    }
  }

  isolationDrop(): void {
    this.host.stats.isolationDrops++;
  }
}

/**
 * The threads one connection follows, each through the contract's `Follower` (replay → live
 * handover, dedupe by id, owner filter, bounded pending). A follower's entries are moved into the
 * connection's send queue as soon as they are readable, so every thread's frames keep their order
 * with the control frames (`subscribed` before the replay, `unsubscribed` after what was queued).
 * Most connections follow one thread: it is held in a field, and a map is made for a second one.
 */
export class Subscriptions {
  private only: ThreadFollowing | undefined;
  private more: Map<string, ThreadFollowing> | undefined;

  constructor(private readonly host: SubscriptionHost) {}

  get size(): number {
    return this.more ? this.more.size : this.only ? 1 : 0;
  }

  has(threadId: string): boolean {
    return this.get(threadId) !== undefined;
  }

  private get(threadId: string): ThreadFollowing | undefined {
    return this.more ? this.more.get(threadId) : this.only?.threadId === threadId ? this.only : undefined;
  }

  private add(following: ThreadFollowing): void {
    if (this.more) this.more.set(following.threadId, following);
    else if (this.only) this.more = new Map([[this.only.threadId, this.only], [following.threadId, following]]);
    else this.only = following;
  }

  /** `subscribed`, then the replay, then live entries, in that order. */
  async subscribe(threadId: string, after: string | undefined): Promise<void> {
    const host = this.host;
    if (this.has(threadId)) {
      host.sendError('ALREADY_SUBSCRIBED', `already subscribed to thread "${threadId}"`, threadId);
      return;
    }
    if (this.size >= host.maxSubscriptions) {
      host.sendError('TOO_MANY_SUBSCRIPTIONS', `at most ${host.maxSubscriptions} subscriptions per connection`, threadId);
      return;
    }
    const following = new ThreadFollowing(this, host, threadId, after);
    const follower = following.follower;
    this.add(following);
    host.subscriptionsChanged(this.size);
    let result: FollowResult;
    try {
      result = await follower.start(host.log);
    } catch (error) {
      host.stats.subscribeFailures++;
      closeQuietly(follower);
      this.forget(following);
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
      this.forget(following);
      const { gap } = result;
      host.sendFrame({ type: 'history_gap', threadId, requested: gap.requested, reason: gap.reason, message: gap.message });
      return;
    }
    if (result.status === 'ended') {
      // Unsubscribed or closed while the log was answering: nothing to say. Ended by the log or an overflow: as when following.
      if (result.reason !== 'closed') this.ended(following, result.reason);
      return;
    }
    // `replayed` counts what follows: entries that are JSON (others are skipped for everyone).
    const replay: LogEntry[] = [];
    for (let i = 0; i < result.replayed; i++) {
      const entry = follower.next()!;
      if (host.scheduler.eventJson(entry) !== undefined) replay.push(entry);
    }
    host.sendFrame({ type: 'subscribed', threadId, cursor: result.cursor, replayed: replay.length });
    host.enqueueReplay(replay);
    following.handedOver = true;
    this.drain(following);
    // Live entries from now on go straight into the send queue while the follower holds none.
    if (this.get(threadId) === following) follower.handOver();
  }

  unsubscribe(threadId: string): boolean {
    const following = this.get(threadId);
    if (!following) return false;
    closeQuietly(following.follower);
    this.forget(following);
    return true;
  }

  /** Stops following every thread (the connection is closing). */
  closeAll(): void {
    if (this.more) for (const following of this.more.values()) closeQuietly(following.follower);
    else if (this.only) closeQuietly(this.only.follower);
    this.only = undefined;
    this.more = undefined;
  }

  /** Moves the follower's readable entries into the send queue. */
  drain(following: ThreadFollowing): void {
    if (this.get(following.threadId) !== following) return;
    const follower = following.follower;
    let entry: LogEntry | undefined;
    while ((entry = follower.next()) !== undefined) this.host.enqueue(entry);
  }

  ended(following: ThreadFollowing, reason: 'log_closed' | 'overflow'): void {
    const { threadId } = following;
    if (this.get(threadId) !== following) return;
    this.forget(following);
    if (reason === 'overflow') {
      this.host.closeSlowConsumer();
      return;
    }
    // The log ended the subscription (closed, evicted): the client resumes from its cursor.
    this.host.sendError('SUBSCRIPTION_ENDED', `the event log ended the subscription to thread "${threadId}"`, threadId);
  }

  private forget(following: ThreadFollowing): void {
    const { threadId } = following;
    if (this.get(threadId) !== following) return;
    if (this.more) {
      this.more.delete(threadId);
      if (this.more.size === 0) this.more = undefined;
    } else {
      this.only = undefined;
    }
    this.host.subscriptionsChanged(this.size);
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
