import { AuthError, GatewayError } from '../errors/index.js';
import { eventJson } from '../events/json.js';
import type { EventLog, HistoryGap, LogEntry, LogListener, Subscription } from '../transport/types.js';
import { threadForbidden } from '../errors/thread-forbidden.js';
import { agentwireCode } from '../errors/code-of.js';
import { isInstance, readField } from '../errors/guards.js';

/** What to follow: one thread, for one user, optionally after a cursor. */
export interface FollowTarget {
  userId: string;
  threadId: string;
  after?: string | undefined;
  /**
   * Only entries of this run (surfaces that stream one run: AG-UI, useChat). Entries of the
   * thread's other runs are skipped silently (they are the user's own, not an isolation drop) and
   * do not count toward the bound.
   */
  runId?: string | undefined;
}

export interface FollowerOptions {
  /**
   * Bound on live entries waiting to be taken (those that arrive before the replay is handed over,
   * and those the consumer has not taken yet), in entries and in characters of event JSON. Past
   * either the follower ends with `overflow` (a slow consumer: it resumes from its cursor). The
   * replay itself is not counted: the log holds it anyway.
   */
  maxQueuedEntries: number;
  maxQueuedChars: number;
  /** New entries are waiting: call `next()` until it returns undefined. Not called during `start()`. */
  readable(): void;
  /** The follower ended for good after `start()` resolved `following`: the log closed the subscription, or the queue overflowed. Called once. */
  ended(reason: 'log_closed' | 'overflow', error?: Error): void;
  /** An entry of another user or thread reached the follower and was withheld (must not happen). */
  isolationDrop?(entry: LogEntry): void;
  /** Where live entries go once `handOver()` was called and nothing is queued (must not throw). */
  deliver?(entry: LogEntry): void;
}

export type FollowResult =
  | {
      status: 'following';
      /** Cursor of the newest entry when the subscription was made (null for an empty thread). */
      cursor: string | null;
      /** Entries replayed (queued first, before any live entry). */
      replayed: number;
    }
  | { status: 'history_gap'; gap: HistoryGap }
  /**
   * Ended before the handover: closed by its owner, the log closed it, or the held live entries
   * overflowed. `error`: the log's reason, when it gave one (an `AuthError`: the thread turned out
   * to be another user's).
   */
  | { status: 'ended'; reason: 'closed' | 'log_closed' | 'overflow'; error?: Error | undefined };

/** Characters an entry weighs in the queue bound (0 when it cannot be serialized: it is skipped when written). */
export function entryChars(entry: LogEntry): number {
  const json = entry.json;
  if (json !== undefined) return json.length;
  try {
    return eventJson(entry.event).length;
  } catch {
    return 0;
  }
}

/**
 * The one replay → live handover of every surface. It subscribes to the thread, queues the
 * replay, then live entries: live entries that arrive while the log is still answering (a
 * networked log) are held, bounded, and those the replay already holds are dropped by event id.
 * Every entry is checked against the user and the thread; `history_gap` is surfaced, never a
 * partial replay. Consumers pull (`next()`), so each paces it by its own backpressure (a
 * socket's drain, a `ReadableStream`'s `desiredSize`, a per-tick flush).
 *
 * `FollowerCore` is the handover itself, told through its own methods (`FollowerOptions`'
 * members, implemented by a subclass): a consumer that is one object per follower (a WebSocket
 * connection's thread) holds no options or target object. `Follower` takes them as objects.
 */
const NO_ENTRIES: LogEntry[] = Object.freeze([]) as unknown as LogEntry[];

export abstract class FollowerCore implements LogListener {
  readonly userId: string;
  readonly threadId: string;
  /**
   * `delivering`: following, handed over (`handOver()`): live entries that find the queue empty
   * go straight to `deliver`. The three ends: closed by its owner, by the log, by an overflow.
   * An `Error`: ended by the log (`log_closed`) with that reason while the log was answering
   * `subscribe`, until `follow()` tells it in the `ended` result (the reason rides on the state
   * instead of a field every follower would carry).
   */
  private state: 'idle' | 'subscribing' | 'following' | 'delivering' | 'closed' | 'log_closed' | 'overflow' | Error = 'idle';
  /** Live entries that arrived while the log was answering `subscribe` (made when the first one does). */
  private early: LogEntry[] | undefined;
  /** Shared empty (frozen) while nothing was ever queued: an idle follower holds no array. */
  private queue: LogEntry[] = NO_ENTRIES;
  private head = 0;
  /** Index in `queue` where live entries start (entries before it are the replay). */
  private liveFrom = 0;
  private liveChars = 0;
  private subscription: Subscription | undefined;

  constructor(userId: string, threadId: string) {
    this.userId = userId;
    this.threadId = threadId;
  }

  /** See `FollowerOptions`. */
  protected abstract get maxQueuedEntries(): number;
  protected abstract get maxQueuedChars(): number;
  protected abstract readable(): void;
  protected abstract ended(reason: 'log_closed' | 'overflow', error?: Error): void;
  protected abstract isolationDrop(entry: LogEntry): void;
  /** Whether `deliver` takes live entries after `handOver()`. */
  protected abstract get delivers(): boolean;
  protected abstract deliver(entry: LogEntry): void;

  /** Entries waiting to be taken. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  get following(): boolean {
    return this.state === 'following' || this.state === 'delivering';
  }

  /** Handed over (`handOver()`) and still following. */
  protected get delivering(): boolean {
    return this.state === 'delivering';
  }

  /** Closed, or ended by the log or an overflow. */
  private get over(): boolean {
    const state = this.state;
    return state === 'closed' || state === 'log_closed' || state === 'overflow' || isInstance(state, Error);
  }

  /**
   * Subscribes. Throws `AuthError` `THREAD_FORBIDDEN` (403) for another user's thread and
   * `GatewayError` `SUBSCRIBE_FAILED` (503, the log's error as `cause`) when the log fails.
   */
  protected async follow(log: EventLog, after: string | undefined): Promise<FollowResult> {
    if (this.state !== 'idle') throw new Error('Follower.start() called twice');
    this.state = 'subscribing';
    const { userId, threadId } = this;
    let result;
    try {
      result = await log.subscribe({ userId, threadId, after }, this);
    } catch (error) {
      this.state = 'closed';
      this.early = undefined;
      // What the log threw is read guarded: a value that throws when looked at is a failure like any other.
      if (isInstance(error, AuthError)) throw threadForbidden(threadId, error);
      throw subscribeFailed(error, 'Could not subscribe to the thread');
    }
    if (result.status === 'history_gap') {
      this.state = 'closed';
      this.early = undefined;
      return { status: 'history_gap', gap: result.gap };
    }
    // The state may have changed while the log was answering.
    if (this.over) {
      // Closed, or ended by the log or an overflow, while the log was answering.
      result.subscription.close();
      const state = this.state as 'closed' | 'log_closed' | 'overflow' | Error;
      if (!isInstance(state, Error)) return { status: 'ended', reason: state, error: undefined };
      this.state = 'log_closed';
      return { status: 'ended', reason: 'log_closed', error: state };
    }
    this.subscription = result.subscription;
    const replay = result.replay.filter((entry) => this.owns(entry) && this.wanted(entry));
    const replayed = replay.length;
    // `filter` made a copy: the queue may grow it with live entries (an empty one is not kept).
    this.queue = replayed > 0 ? replay : NO_ENTRIES;
    this.liveFrom = replayed;
    const early = this.early;
    this.early = undefined;
    this.state = 'following';
    if (early !== undefined && early.length > 0) {
      const replayedIds = new Set(replay.map(entryId));
      for (const entry of early) if (!replayedIds.has(entryId(entry))) this.push(entry);
      // liveChars already counts the early entries (dropped duplicates were counted too: recount).
      this.liveChars = 0;
      for (let i = this.liveFrom; i < this.queue.length; i++) this.liveChars += entryChars(this.queue[i]!);
    }
    return { status: 'following', cursor: result.cursor, replayed };
  }

  private push(entry: LogEntry): void {
    if (this.queue === NO_ENTRIES) this.queue = [];
    this.queue.push(entry);
  }

  /** The next entry in order (replay first), or undefined when none is waiting. */
  next(): LogEntry | undefined {
    if (this.head >= this.queue.length) return undefined;
    const index = this.head++;
    const entry = this.queue[index]!;
    this.queue[index] = undefined as unknown as LogEntry;
    if (index >= this.liveFrom) this.liveChars -= entryChars(entry);
    if (this.head === this.queue.length) {
      // Truncated, not replaced: a follower taking one entry per tick allocates nothing.
      if (this.queue.length > 1024) this.queue = [];
      else this.queue.length = 0;
      this.head = 0;
      this.liveFrom = 0;
      this.liveChars = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.liveFrom = Math.max(0, this.liveFrom - this.head);
      this.head = 0;
    }
    return entry;
  }

  /**
   * From now on, a live entry that arrives while nothing is queued is handed to the options'
   * `deliver` at once (in the log's call, in order) instead of being queued for `next()` with a
   * `readable()`; entries still queued are taken with `next()` as before, and while any is, new
   * ones queue behind them. For a consumer with a bounded queue of its own (a WebSocket
   * connection's send queue): a live event then costs no queue slot, no `readable()` and no
   * `next()` here. Without `deliver` in the options, nothing changes.
   */
  handOver(): void {
    if (this.state === 'following' && this.delivers) this.state = 'delivering';
  }

  /** Stops following (idempotent); queued entries are dropped. `ended` is not called. */
  close(): void {
    if (this.over) return;
    this.state = 'closed';
    this.release();
  }

  /** @internal LogListener: one live entry from the log. */
  onLiveEntry(entry: LogEntry): void {
    if (this.state === 'delivering' && this.head >= this.queue.length) {
      if (this.owns(entry) && this.wanted(entry)) this.deliver(entry);
      return;
    }
    this.onEntries([entry]);
  }

  /** @internal LogListener: live entries from the log. */
  onEntries(entries: readonly LogEntry[]): void {
    if (this.state !== 'subscribing' && !this.following) return;
    let added = false;
    for (const entry of entries) {
      if (!this.owns(entry) || !this.wanted(entry)) continue;
      if (this.state === 'subscribing') (this.early ??= []).push(entry);
      else this.push(entry);
      this.liveChars += entryChars(entry);
      added = true;
    }
    const live = this.state === 'subscribing' ? (this.early?.length ?? 0) : this.queue.length - Math.max(this.head, this.liveFrom);
    if (live > this.maxQueuedEntries || this.liveChars > this.maxQueuedChars) {
      this.end('overflow');
      return;
    }
    if (added && this.state !== 'subscribing') this.readable();
  }

  /** @internal LogListener: the log ended the subscription. */
  onClose(reason?: Error): void {
    if (this.over || this.state === 'idle') return;
    this.end('log_closed', reason);
  }

  private end(reason: 'log_closed' | 'overflow', error?: Error): void {
    const wasFollowing = this.following;
    // While subscribing, start() tells its caller instead: the log's reason is kept as the state.
    this.state = !wasFollowing && reason === 'log_closed' && isInstance(error, Error) ? error : reason;
    this.release();
    if (wasFollowing) this.ended(reason, error);
  }

  private release(): void {
    this.subscription?.close();
    this.subscription = undefined;
    this.early = undefined;
    this.queue = NO_ENTRIES;
    this.head = 0;
    this.liveFrom = 0;
    this.liveChars = 0;
  }

  /** Whether an entry of its user and thread is one it follows (all of them, unless a subclass says otherwise). */
  protected wanted(_entry: LogEntry): boolean {
    return true;
  }

  private owns(entry: LogEntry): boolean {
    // A log that breaks its contract may hand anything: withheld, never a throw. The entry's own
    // user and thread (`LogEntry.userId`, `threadId`) when the log gives them, so that a replay
    // needs no event parsed; its event's otherwise.
    const given = entry as LogEntry | null | undefined;
    if (given !== null && given !== undefined && given.userId !== undefined && given.threadId !== undefined) {
      if (given.userId === this.userId && given.threadId === this.threadId) return true;
    } else {
      const event = given?.event;
      if (event?.userId === this.userId && event.threadId === this.threadId) return true;
    }
    this.isolationDrop(entry);
    return false;
  }
}

/** The handover for a consumer that gives its target and options as objects (SSE, run streams). */
export class Follower extends FollowerCore {
  readonly runId: string | undefined;
  private readonly after: string | undefined;

  constructor(
    target: FollowTarget,
    private readonly options: FollowerOptions,
  ) {
    super(target.userId, target.threadId);
    this.runId = target.runId;
    this.after = target.after;
  }

  /** What it follows. */
  get target(): FollowTarget {
    return { userId: this.userId, threadId: this.threadId, after: this.after, runId: this.runId };
  }

  /**
   * Subscribes. Throws `AuthError` `THREAD_FORBIDDEN` (403) for another user's thread and
   * `GatewayError` `SUBSCRIBE_FAILED` (503, the log's error as `cause`) when the log fails.
   */
  start(log: EventLog): Promise<FollowResult> {
    return this.follow(log, this.after);
  }

  /** Only entries of `runId`, when given. */
  protected override wanted(entry: LogEntry): boolean {
    return this.runId === undefined || (entry.runId ?? entry.event.runId) === this.runId;
  }

  protected get maxQueuedEntries(): number {
    return this.options.maxQueuedEntries;
  }
  protected get maxQueuedChars(): number {
    return this.options.maxQueuedChars;
  }
  protected readable(): void {
    this.options.readable();
  }
  protected ended(reason: 'log_closed' | 'overflow', error?: Error): void {
    this.options.ended(reason, error);
  }
  protected isolationDrop(entry: LogEntry): void {
    this.options.isolationDrop?.(entry);
  }
  protected get delivers(): boolean {
    return this.options.deliver !== undefined;
  }
  protected deliver(entry: LogEntry): void {
    this.options.deliver!(entry);
  }
}

/** The entry's event id (`LogEntry.eventId` when the log gives it). */
function entryId(entry: LogEntry): string {
  return entry.eventId ?? entry.event.id;
}

/**
 * What a client is told when the log refused or failed a subscription: a fixed phrase per cause
 * (the log's own message may name its internals: a Redis URL, its bounds).
 */
export function subscribeFailure(error: unknown): string {
  const code = agentwireCode(error);
  if (code === 'TOO_MANY_THREADS') {
    return 'the event log holds as many threads as it may (TOO_MANY_THREADS); a new thread opens once idle ones expire';
  }
  if (code === 'TOO_MANY_REPLAYS') {
    return 'this user has as many replays of the event log under way as allowed (TOO_MANY_REPLAYS); retry shortly';
  }
  return 'the event log failed; retry later';
}

/**
 * `GatewayError` `SUBSCRIBE_FAILED` (503) for what a log threw at a subscribe, `what` first, then
 * the fixed phrase of `subscribeFailure` (the log's own message may name its internals; it stays
 * the `cause`, for `onError`), with `Retry-After: 1` when the log's error is retryable.
 */
export function subscribeFailed(error: unknown, what: string): GatewayError {
  // What the log threw is read guarded: a value that throws when looked at is a failure like any other.
  const retryable = agentwireCode(error) !== undefined && readField(error as object, 'retryable') === true;
  return new GatewayError('SUBSCRIBE_FAILED', `${what}: ${subscribeFailure(error)}`, {
    cause: error,
    ...(retryable && { headers: { 'Retry-After': '1' } }),
  });
}
