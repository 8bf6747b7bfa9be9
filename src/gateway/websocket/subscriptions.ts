import { AuthError } from '../../errors/index.js';
import type { GatewayErrorCode } from '../../protocol/constants.js';
import type { ServerFrame } from '../../protocol/frames.js';
import type { EventLog, LogEntry } from '../../transport/types.js';
import { FollowerCore, subscribeFailure, type FollowResult } from '../follower.js';
import type { FlushScheduler } from './flush-scheduler.js';
import { Inbox } from './inbox.js';
import type { ReportedContext } from './options.js';
import type { WebSocketStatsRecorder } from './stats.js';
import { agentwireCode } from '../../errors/code-of.js';
import { isInstance, readField } from '../../errors/guards.js';

/**
 * A connection's follower of one thread: the contract's handover (`FollowerCore`), told through
 * its own methods, so an idle subscription is this one object (no target, options or closures).
 * Nothing is taken from it before `subscribed` and the replay are queued (`handOver()`): entries
 * that arrive meanwhile wait in it.
 */
class ThreadFollowing extends FollowerCore {
  constructor(
    private readonly connection: Subscriptions,
    threadId: string,
  ) {
    super(connection.userId, threadId);
  }

  /** Subscribes (see `Follower.start`), after `after` when given. */
  start(log: EventLog, after: string | undefined): Promise<FollowResult> {
    return this.follow(log, after);
  }

  protected get maxQueuedEntries(): number {
    return this.connection.maxQueuedFrames;
  }

  protected get maxQueuedChars(): number {
    return this.connection.maxQueuedBytes;
  }

  protected readable(): void {
    if (!this.delivering) return;
    try {
      this.connection.drainFollowing(this);
    } catch (error) {
      this.connection.failed(error, 'deliver', this.threadId);
    }
  }

  protected get delivers(): boolean {
    return true;
  }

  /** Live entries once handed over (`handOver()`): straight into the send queue. */
  protected deliver(entry: LogEntry): void {
    try {
      this.connection.enqueue(entry);
    } catch (error) {
      this.connection.failed(error, 'deliver', this.threadId);
    }
  }

  protected ended(reason: 'log_closed' | 'overflow', error?: Error): void {
    try {
      this.connection.followingEnded(this, reason, error);
    } catch (error) {
      this.connection.failed(error, 'deliver', this.threadId);
    }
  }

  protected isolationDrop(): void {
    this.connection.stats.isolationDrops++;
  }
}

/**
 * The threads one connection follows, each through the contract's handover (replay → live,
 * dedupe by id, owner filter, bounded pending). A follower's entries are moved into the
 * connection's send queue as soon as they are readable, so every thread's frames keep their order
 * with the control frames (`subscribed` before the replay, `unsubscribed` after what was queued).
 * Most connections follow one thread: it is held in a field, and a map is made for a second one.
 *
 * The second layer of `Connection` (after `Inbox`); what it needs of the connection is abstract here.
 */
export abstract class Subscriptions extends Inbox {
  private onlyFollowing: ThreadFollowing | undefined;
  private moreFollowing: Map<string, ThreadFollowing> | undefined;

  abstract override readonly id: string;
  abstract get scheduler(): FlushScheduler;
  abstract get maxSubscriptions(): number;
  /** Bound on live entries held before a subscription's replay is queued (the connection's `maxQueuedFrames`). */
  abstract get maxQueuedFrames(): number;
  /** The same bound in characters of event JSON (the connection's `maxQueuedBytes`). */
  abstract get maxQueuedBytes(): number;
  abstract override get stats(): WebSocketStatsRecorder;
  abstract override get log(): EventLog;
  abstract override sendFrame(frame: ServerFrame): void;
  abstract override sendError(code: GatewayErrorCode, message: string, threadId?: string): void;
  /** Queues an event frame (nothing once the connection is closing). */
  abstract enqueue(entry: LogEntry): void;
  /** Queues a replay whole (not counted toward the send queue's bound). */
  abstract enqueueReplay(entries: readonly LogEntry[]): void;
  abstract closeSlowConsumer(): void;
  /** Reports `error` and closes with 1011. Never throws. */
  abstract override failed(error: unknown, stage: ReportedContext['stage'], threadId?: string): void;
  abstract override report(error: unknown, context: ReportedContext): void;
  /** The number of subscriptions changed (the connection arms or clears its idle timer). */
  protected abstract subscriptionsChanged(count: number): void;

  get subscriptionCount(): number {
    return this.moreFollowing ? this.moreFollowing.size : this.onlyFollowing ? 1 : 0;
  }

  isSubscribed(threadId: string): boolean {
    return this.following(threadId) !== undefined;
  }

  private following(threadId: string): ThreadFollowing | undefined {
    return this.moreFollowing ? this.moreFollowing.get(threadId) : this.onlyFollowing?.threadId === threadId ? this.onlyFollowing : undefined;
  }

  private addFollowing(following: ThreadFollowing): void {
    if (this.moreFollowing) this.moreFollowing.set(following.threadId, following);
    else if (this.onlyFollowing) {
      this.moreFollowing = new Map([
        [this.onlyFollowing.threadId, this.onlyFollowing],
        [following.threadId, following],
      ]);
    } else this.onlyFollowing = following;
  }

  /** `subscribed`, then the replay, then live entries, in that order. */
  async subscribe(threadId: string, after: string | undefined): Promise<void> {
    if (this.isSubscribed(threadId)) {
      this.sendError('ALREADY_SUBSCRIBED', `already subscribed to thread "${threadId}"`, threadId);
      return;
    }
    if (this.subscriptionCount >= this.maxSubscriptions) {
      this.sendError('TOO_MANY_SUBSCRIPTIONS', `at most ${this.maxSubscriptions} subscriptions per connection`, threadId);
      return;
    }
    const following = new ThreadFollowing(this, threadId);
    this.addFollowing(following);
    this.subscriptionsChanged(this.subscriptionCount);
    let result: FollowResult;
    try {
      result = await following.start(this.log, after);
    } catch (error) {
      this.stats.subscribeFailures++;
      closeQuietly(following);
      this.forgetFollowing(following);
      // What the log threw is read guarded (the follower wraps it, but a log may break its contract).
      if (isInstance(error, AuthError)) {
        this.sendForbidden(threadId);
      } else if (agentwireCode(error) === 'SUBSCRIBE_FAILED') {
        this.sendError('SUBSCRIBE_FAILED', `could not subscribe to thread "${threadId}": ${subscribeFailure(readField(error as object, 'cause'))}`, threadId);
      } else {
        // The log answered with something that is not a SubscribeResult (it broke its contract).
        this.report(error, { stage: 'message', userId: this.userId, connectionId: this.id, threadId });
        this.sendError('SUBSCRIBE_FAILED', `could not subscribe to thread "${threadId}": the event log failed`, threadId);
      }
      return;
    }
    if (result.status === 'history_gap') {
      this.forgetFollowing(following);
      const { gap } = result;
      this.sendFrame({ type: 'history_gap', threadId, requested: gap.requested, reason: gap.reason, message: gap.message });
      return;
    }
    if (result.status === 'ended') {
      // Unsubscribed or closed while the log was answering: nothing to say. Ended by the log or an overflow: as when following.
      if (result.reason !== 'closed') this.followingEnded(following, result.reason, result.error);
      return;
    }
    // `replayed` counts what follows: entries that are JSON (others are skipped for everyone).
    const replay: LogEntry[] = [];
    const scheduler = this.scheduler;
    for (let i = 0; i < result.replayed; i++) {
      const entry = following.next()!;
      if (scheduler.eventJson(entry) !== undefined) replay.push(entry);
    }
    this.sendFrame({ type: 'subscribed', threadId, cursor: result.cursor, replayed: replay.length });
    this.enqueueReplay(replay);
    // Live entries from now on go straight into the send queue while the follower holds none;
    // what it holds now (entries that came while the log answered) is moved first.
    following.handOver();
    this.drainFollowing(following);
  }

  protected unsubscribe(threadId: string): boolean {
    const following = this.following(threadId);
    if (!following) return false;
    closeQuietly(following);
    this.forgetFollowing(following);
    return true;
  }

  /** Stops following every thread (the connection is closing). */
  protected closeSubscriptions(): void {
    if (this.moreFollowing) for (const following of this.moreFollowing.values()) closeQuietly(following);
    else if (this.onlyFollowing) closeQuietly(this.onlyFollowing);
    this.onlyFollowing = undefined;
    this.moreFollowing = undefined;
  }

  /** @internal Moves the follower's readable entries into the send queue. */
  drainFollowing(following: ThreadFollowing): void {
    if (this.following(following.threadId) !== following) return;
    let entry: LogEntry | undefined;
    while ((entry = following.next()) !== undefined) this.enqueue(entry);
  }

  /** @internal The log or an overflow ended a follower (`error`: the log's reason, if any). */
  followingEnded(following: ThreadFollowing, reason: 'log_closed' | 'overflow', error?: Error): void {
    const { threadId } = following;
    if (this.following(threadId) !== following) return;
    this.forgetFollowing(following);
    if (reason === 'overflow') {
      this.closeSlowConsumer();
      return;
    }
    // The thread's first event was another user's (subscribed before it had an owner): refused as
    // a subscribe of it is now, so the client stops instead of reconnecting to be refused (as SSE).
    if (isInstance(error, AuthError)) {
      this.sendForbidden(threadId);
      return;
    }
    // The log ended the subscription (closed, evicted): the client resumes from its cursor.
    this.sendError('SUBSCRIPTION_ENDED', `the event log ended the subscription to thread "${threadId}"`, threadId);
  }

  /** Another user's thread: the same frame whether the subscribe was refused or ended later. */
  private sendForbidden(threadId: string): void {
    this.sendError('THREAD_FORBIDDEN', `thread "${threadId}" belongs to another user`, threadId);
  }

  private forgetFollowing(following: ThreadFollowing): void {
    const { threadId } = following;
    if (this.following(threadId) !== following) return;
    if (this.moreFollowing) {
      this.moreFollowing.delete(threadId);
      if (this.moreFollowing.size === 0) this.moreFollowing = undefined;
    } else {
      this.onlyFollowing = undefined;
    }
    this.subscriptionsChanged(this.subscriptionCount);
  }
}

/** Closes a follower; a log whose subscription throws on close is not this connection's problem. */
function closeQuietly(following: ThreadFollowing): void {
  try {
    following.close();
  } catch {
    // Forgotten either way.
  }
}
