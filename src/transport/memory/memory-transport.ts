/**
 * `agentwire/transport/memory`: the in-memory transport and event log (the embedded default, also
 * exported at the root): one process, bounded by events, bytes, threads and a TTL, resumable by cursor.
 *
 * @module agentwire/transport/memory
 */
import { customAlphabet } from 'nanoid';
import { StateError, TransportError, ValidationError } from '../../errors/index.js';
import { checker, given, shown } from '../../errors/options.js';
import { eventJson } from '../../events/json.js';
import type { AgentEvent } from '../../events/schema.js';
import type {
  EventLog,
  HistoryGap,
  LogEntry,
  LogListener,
  SubscribeRequest,
  SubscribeResult,
  Transport,
  TransportHealth,
} from '../types.js';
import { ActivityList, IdleList, ThreadLog, type Retention, type RunRecord, type Subscriber, type ThreadLogLimits, type ThreadLogShared } from './thread-log.js';
import { refusal, threadTag } from './log-common.js';
import { MemoryRequests } from './answers.js';
import { FormerOwners } from './former-owners.js';
import type { AnswerInput, AnswerReceipt, InteractionLog, PendingRequest } from '../interaction.js';
import type { UserAnsweredEvent } from '../../events/schema.js';
import { threadForbidden } from '../../errors/thread-forbidden.js';

const ACCEPTED = Promise.resolve();
const makeEpoch = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 10);
const MiB = 1024 * 1024;
/** Owners of threads dropped for room kept per retained thread (`maxThreads`), and at least (about 150 B each: 40,000 by default, 6 MB). */
const FORMER_OWNERS_PER_THREAD = 4;
const MIN_FORMER_OWNERS = 10_000;
/** Kept owners per user that no number of other accounts can make the log forget before their TTL (`FormerOwners`). */
const KEPT_OWNERS_PER_USER = 16;

/**
 * `<epoch>.<log id>.<thread tag>:<offset>` (what this log issues), or `<epoch>:<offset>` (the
 * format of earlier versions: from this epoch it is refused as unknown, from another one it is a
 * cursor of another incarnation). Offsets and log ids are canonical (no leading zeros).
 */
const CURSOR_PATTERN = /^([0-9a-z]{1,32})(?:\.([1-9a-z][0-9a-z]{0,10})\.([0-9a-z]{1,7}))?:([1-9]\d{0,14})$/;

/**
 * Every bound is a positive integer and `threadTtlMs` a finite number of ms > 0; anything else
 * (`NaN`, `0`, `1.5`, `Infinity`, `'10'`, …) throws `ValidationError` `INVALID_OPTION` naming the
 * option. `undefined` means the default.
 */
export interface MemoryTransportOptions {
  /** Events retained per thread for replay; older ones are trimmed. Default 10,000. */
  maxEventsPerThread?: number;
  /**
   * JSON size of the events retained per thread (the length of each event's JSON text: its UTF-8
   * bytes for ASCII; a non-ASCII character counts one, or two outside the BMP); older ones are
   * trimmed, and an event larger than this alone is delivered live but not retained.
   * Default 8 MiB (8,388,608).
   */
  maxBytesPerThread?: number;
  /**
   * Threads retained; past it the least recently active thread without subscribers is dropped.
   * Its owner is kept until the thread's TTL runs out (up to 4 × maxThreads such owners, at least
   * 10,000), so flooding the log with threads cannot free another user's thread: past that bound a
   * user holding more than 16 kept owners loses their oldest, and when nobody does, a new thread is
   * refused (`TOO_MANY_THREADS`, not retryable) instead. Default 10,000.
   */
  maxThreads?: number;
  /**
   * Events retained across all threads. Past it, the history of the least recently active thread
   * is dropped (its offsets and subscribers stay, so resuming into it yields `history_gap`). Default 200,000.
   */
  maxTotalEvents?: number;
  /** JSON size of the events retained across all threads, counted like `maxBytesPerThread`; past it, like `maxTotalEvents`. Default 64 MiB (67,108,864). */
  maxTotalBytes?: number;
  /**
   * A thread with no subscribers and no new event for this long is dropped (counted from its last
   * event or from when its last subscriber left, whichever is later), by a timer (unref'd, stopped
   * by `close()`) and on every call; its owner is forgotten and a cursor of it gets `history_gap`
   * `trimmed`. Default 1 h.
   */
  threadTtlMs?: number;
  /** Clock (epoch ms), injectable for tests: a function. Default `Date.now`. */
  now?: () => number;
}

/**
 * The embedded default transport: per-thread ordered logs in this process, with cursors for
 * resume and live subscriptions filtered by user.
 *
 * - Cursors name their log and thread: `<epoch>.<log id>.<thread tag>:<offset>`. The epoch is new
 *   for every instance (a cursor from a previous process is `epoch_changed`), the log id for every
 *   incarnation of a thread's log (a cursor of a thread log that was dropped, idle or over
 *   `maxThreads`, is `trimmed`, also once the thread has a new log), the tag names the thread (a
 *   cursor of another thread is `unknown_cursor`). Anything that is not
 *   exactly "this thread, this log, still retained" gets `history_gap`, never a partial replay.
 * - Bounded in events and in JSON size, per thread and in total, and in threads.
 * - Run ids are used once: an `agent_started` for a run with retained events is refused
 *   (`ValidationError` RUN_ID_CONFLICT), as is any event of a run after its retained
 *   `agent_completed` (`StateError` RUN_CLOSED); `hasRun()` tells whether a run is retained. A
 *   repeat of the same `agent_started` or `agent_completed` (same event id) is accepted and not
 *   stored twice. A run is forgotten with its last retained event.
 * - An event that is not JSON (`eventJson` throws) is refused alone (`TransportError`
 *   TRANSPORT_REFUSED, not retryable, the `ValidationError` as its cause).
 */
export class MemoryTransport implements Transport, EventLog, InteractionLog {
  /** Identifies this incarnation of the logs; every cursor starts with it. */
  readonly epoch = makeEpoch();
  private readonly threads = new Map<string, ThreadLog>();
  /** Owners of threads dropped for room (not for their TTL), with their last activity, in dropping order. */
  private readonly formerOwners: FormerOwners;
  /** Logs holding entries, least recently appended to first: what the total bounds trim. */
  private readonly activity = new ActivityList();
  private readonly limits: ThreadLogLimits;
  /** What every thread log of this transport shares (one reference per log). */
  private readonly shared: ThreadLogShared;
  private readonly maxThreads: number;
  private readonly maxTotalEvents: number;
  private readonly maxTotalBytes: number;
  private readonly retention: Retention = { events: 0, bytes: 0, runs: new Map<string, RunRecord>() };
  /** Id of the last thread log created in this epoch (every incarnation of a thread's log gets a new one). */
  private lastLogId = 0;
  private readonly threadTtlMs: number;
  private readonly now: () => number;
  private closed = false;
  /** Logs without subscribers, least recently active first: what the TTL drops. */
  private readonly idle = new IdleList(() => this.armSweep());
  /** Fires when the oldest idle log's TTL runs out (unref'd: it never keeps the process alive). */
  private sweepTimer: ReturnType<typeof setTimeout> | undefined;
  /** A live entry is being handed to subscribers; entries appended meanwhile (by a listener) wait in `deferred` (log, entry, user triples). */
  private delivering = false;
  private deferred: Array<ThreadLog | LogEntry | string> | undefined;
  /** Subscriptions ended because their listener threw while handed a live entry. */
  listenerFailures = 0;
  /** Events withheld from a subscriber because its user differs (should stay 0). */
  isolationDrops = 0;
  /** Requests to users and their answers (see `InteractionLog`). */
  private readonly requests = new MemoryRequests((event) => this.append(event));

  constructor(options: MemoryTransportOptions = {}) {
    const check = checker('MemoryTransport');
    if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object (got ${shown(options)})`);
    this.maxThreads = check.integer('maxThreads', given(options.maxThreads, 10_000));
    this.formerOwners = new FormerOwners(Math.max(FORMER_OWNERS_PER_THREAD * this.maxThreads, MIN_FORMER_OWNERS), KEPT_OWNERS_PER_USER);
    this.maxTotalEvents = check.integer('maxTotalEvents', given(options.maxTotalEvents, 200_000));
    this.maxTotalBytes = check.integer('maxTotalBytes', given(options.maxTotalBytes, 64 * MiB));
    // A thread never holds more than the whole transport may: the total bound always finds another thread to trim.
    this.limits = {
      maxEntries: Math.min(check.integer('maxEventsPerThread', given(options.maxEventsPerThread, 10_000)), this.maxTotalEvents),
      maxBytes: Math.min(check.integer('maxBytesPerThread', given(options.maxBytesPerThread, 8 * MiB)), this.maxTotalBytes),
    };
    this.threadTtlMs = check.duration('threadTtlMs', given(options.threadTtlMs, 3_600_000));
    this.now = check.fn('now', given(options.now, Date.now));
    this.shared = { epoch: this.epoch, limits: this.limits, retention: this.retention, threads: this.threads, origin: this.now(), now: this.now, idle: this.idle };
  }

  /** Threads retained (threads idle past `threadTtlMs` are dropped first). */
  get threadCount(): number {
    this.expire(this.now());
    return this.threads.size;
  }

  /** Events currently retained across all threads. */
  get eventCount(): number {
    this.expire(this.now());
    return this.retention.events;
  }

  /** JSON size of the events currently retained across all threads (what `maxTotalBytes` bounds). */
  get byteCount(): number {
    this.expire(this.now());
    return this.retention.bytes;
  }

  /** Runs with at least one retained event. */
  get runCount(): number {
    this.expire(this.now());
    return this.retention.runs.size;
  }

  send(event: AgentEvent): Promise<void> {
    try {
      this.append(event);
    } catch (error) {
      return Promise.reject(error);
    }
    // A shared settled promise: no allocation per event on the in-process hot path.
    return ACCEPTED;
  }

  sendSync(event: AgentEvent): void {
    this.append(event);
  }

  /** Whether events of this run are retained (its id is in use). */
  hasRun(runId: string): boolean {
    this.expire(this.now());
    return this.retention.runs.has(runId);
  }

  /**
   * Synchronous append; returns the stored entry (with its cursor), or the entry already stored
   * for a repeat of a run's `agent_started` / `agent_completed`. Throws (nothing stored) for an
   * event that is not JSON, a run id in use, an event after its run's end, or another user's thread.
   */
  append(event: AgentEvent): LogEntry {
    if (this.closed) throw new TransportError('MemoryTransport is closed', { code: 'TRANSPORT_CLOSED', retryable: false });
    return this.appendSerialized(event, serialized(event));
  }

  /**
   * `append` with the event's JSON already made (exactly what `eventJson(event)` returns), for a
   * caller that serialized the event itself (the WebSocket gateway's `send()`).
   * @internal
   */
  appendSerialized(event: AgentEvent, json: string): LogEntry {
    if (this.closed) throw new TransportError('MemoryTransport is closed', { code: 'TRANSPORT_CLOSED', retryable: false });
    const now = this.now();
    this.expire(now);
    const known = this.retention.runs.get(event.runId);
    if (known) {
      const repeat = checkRun(known, event);
      if (repeat) return repeat;
    }
    let log = this.threads.get(event.threadId);
    if (!log) {
      // Another user's thread dropped for room stays dropped: refused before it takes room or renews its TTL.
      const former = this.formerOwner(event.threadId, now);
      if (former !== undefined && former !== event.userId) throw ownerMismatch(event.threadId);
      // The kept owner, if any, is this user: the new log is theirs.
      log = this.createLog(event.threadId, event.userId, now, former);
    } else if (log.owner === undefined) {
      // A subscriber opened the thread before any event: the first event fixes the owner, and
      // subscribers of other users are told they are refused instead of silently receiving nothing.
      log.owner = event.userId;
      for (const subscriber of log.subscribers()) {
        if (subscriber.userId === event.userId) continue;
        log.deleteSubscriber(subscriber);
        subscriber.listener.onClose?.(threadForbidden(event.threadId));
      }
    } else if (log.owner !== event.userId) {
      throw ownerMismatch(event.threadId);
    }
    let run = known;
    if (!run) {
      run = { runId: event.runId, retained: 0, start: undefined, end: undefined };
      this.retention.runs.set(event.runId, run);
    }
    const entry = log.append(json, run, now);
    this.activity.touched(log);
    if (event.type === 'agent_started') run.start = entry;
    else if (event.type === 'agent_completed') run.end = entry;
    const retention = this.retention;
    while ((retention.events > this.maxTotalEvents || retention.bytes > this.maxTotalBytes) && this.dropOldestHistory(log)) {
      // Each pass clears one other thread's history.
    }
    if (this.delivering) {
      // Appended by a listener while an earlier entry is being handed out: it waits for that
      // entry to reach every subscriber, so that no subscriber gets the two out of log order.
      (this.deferred ??= []).push(log, entry, event.userId);
      return entry;
    }
    this.delivering = true;
    try {
      this.deliverToSubscribers(log, entry, event.userId);
      const deferred = this.deferred;
      if (deferred !== undefined) {
        for (let i = 0; i < deferred.length; i += 3) this.deliverToSubscribers(deferred[i] as ThreadLog, deferred[i + 1] as LogEntry, deferred[i + 2] as string);
      }
    } finally {
      this.delivering = false;
      this.deferred = undefined;
    }
    return entry;
  }

  /** Hands a live entry to the subscribers its thread has now. */
  private deliverToSubscribers(log: ThreadLog, entry: LogEntry, userId: string): void {
    const sole = log.soleSubscriber;
    if (sole !== undefined) {
      this.deliverLive(log, sole, entry, userId, undefined);
      return;
    }
    const many = log.manySubscribers;
    if (many === undefined || many.size === 0) return;
    let batch: LogEntry[] | undefined;
    for (const subscriber of many) batch = this.deliverLive(log, subscriber, entry, userId, batch);
  }

  /** Hands a live entry to one subscriber of its thread (its owner's only); returns the shared one-entry batch. */
  private deliverLive(log: ThreadLog, subscriber: Subscriber, entry: LogEntry, userId: string, batch: LogEntry[] | undefined): LogEntry[] | undefined {
    if (subscriber.userId !== userId) {
      this.isolationDrops++;
      return batch;
    }
    const listener = subscriber.listener;
    try {
      if (listener.onLiveEntry !== undefined) listener.onLiveEntry(entry);
      else listener.onEntries((batch ??= [entry]));
    } catch (error) {
      // A listener that throws has missed this entry: its subscription ends (it resumes from its
      // cursor, with nothing skipped), and neither the sender nor the other subscribers pay for it.
      this.listenerFailures++;
      log.deleteSubscriber(subscriber);
      try {
        listener.onClose?.(new StateError('LISTENER_FAILED', 'A log listener threw; its subscription ended', { cause: error }));
      } catch {
        // Already counted; the rest of the delivery goes on.
      }
    }
    return batch;
  }

  /** Records a request of a waiting run (`InteractionLog`). */
  openRequest(request: PendingRequest): void {
    this.requests.open(request);
  }

  /** Appends the answer to a pending request, once, by the run's user (`AnswerLog.answerRequest`). */
  async answerRequest(input: AnswerInput): Promise<AnswerReceipt> {
    return this.requests.answer(input);
  }

  /** Closes a request without an answer, or returns the answer that came first. */
  async closeRequest(request: PendingRequest): Promise<UserAnsweredEvent | undefined> {
    return this.requests.close(request);
  }

  async subscribe(request: SubscribeRequest, listener: LogListener): Promise<SubscribeResult> {
    return this.subscribeSync(request, listener);
  }

  /** Synchronous subscribe: the replay and the live registration happen in one turn, so nothing falls between. */
  subscribeSync(request: SubscribeRequest, listener: LogListener): SubscribeResult {
    if (this.closed) throw new TransportError('MemoryTransport is closed', { code: 'TRANSPORT_CLOSED', retryable: false });
    const { userId, threadId, after } = request;
    const now = this.now();
    this.expire(now);
    let log = this.threads.get(threadId);
    const owner = this.ownerNow(threadId, log, now);
    if (owner !== undefined && owner !== userId) {
      throw threadForbidden(threadId);
    }
    let replayFrom = 0;
    if (after !== undefined) {
      const checked = this.checkCursor(threadId, log, after);
      if (typeof checked !== 'number') return { status: 'history_gap', gap: checked };
      replayFrom = checked;
    }
    if (!log) {
      log = this.createLog(threadId, undefined, now);
      // Subscriptions must not grow the thread map past its bound (events always may: they were accepted).
      if (this.threads.size > this.maxThreads) {
        this.threads.delete(threadId);
        // A thread dropped for room that came back with its owner keeps that owner.
        if (log.owner !== undefined) this.formerOwners.set(threadId, log.owner, log.lastActivity);
        throw new TransportError(`Too many threads (${this.maxThreads}) to follow a new one`, { code: 'TOO_MANY_THREADS' });
      }
    }
    // The subscription is its own log's subscriber: one object per subscriber.
    const subscription = new MemorySubscription(log, userId, listener);
    log.addSubscriber(subscription);
    const owned = log;
    // Every entry of a log is its owner's (append refuses other users' events), and the owner was
    // checked above: the replay is the log's tail as it is, no event parsed to filter it.
    const replay: LogEntry[] = owned.owner === userId ? owned.after(replayFrom) : [];
    const cursor = owned.size > 0 ? owned.cursorAt(owned.nextOffset - 1) : null;
    return {
      status: 'subscribed',
      replay,
      cursor,
      subscription,
    };
  }

  async ownerOf(threadId: string): Promise<string | undefined> {
    const now = this.now();
    this.expire(now);
    return this.ownerNow(threadId, this.threads.get(threadId), now);
  }

  /**
   * A thread's owner: its log's, or (no log) the owner it kept when it was dropped for room. A
   * thread dropped for its TTL keeps none: it is free.
   */
  private ownerNow(threadId: string, log: ThreadLog | undefined, now: number): string | undefined {
    return log ? log.owner : this.formerOwner(threadId, now);
  }

  /** Every retained event of a thread visible to `userId` (tests and debugging). */
  read(threadId: string, userId: string): AgentEvent[] {
    this.expire(this.now());
    const log = this.threads.get(threadId);
    if (!log) return [];
    return log.after(0).flatMap((entry) => (entry.event.userId === userId ? [entry.event] : []));
  }

  health(): TransportHealth {
    return this.closed ? { ok: false, detail: 'closed' } : { ok: true, detail: `${this.threads.size} threads` };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const log of this.threads.values()) {
      for (const subscriber of log.subscribers()) subscriber.listener.onClose?.();
      log.clearSubscribers();
      log.clear();
    }
    this.activity.clear();
    this.idle.clear();
    this.threads.clear();
  }

  /**
   * Drops the threads idle (no subscriber) for `threadTtlMs` or longer, oldest first: O(1) when
   * none is, plus O(1) per thread dropped (the idle list is in order of last activity). Their
   * owners are forgotten (a thread dropped for its TTL is free), and a cursor of them gets
   * `history_gap` `trimmed`. Run on every operation and by a timer, so that the TTL holds with
   * no other traffic.
   */
  private expire(now: number): void {
    const idle = this.idle;
    const cutoff = now - this.threadTtlMs;
    for (let log = idle.oldest; log !== undefined && log.lastActivity <= cutoff; log = idle.oldest) {
      this.dropThread(log);
    }
  }

  /** Arms the timer for when the oldest idle thread's TTL runs out, if it is not armed. */
  private armSweep(): void {
    if (this.sweepTimer !== undefined || this.closed) return;
    const oldest = this.idle.oldest;
    if (oldest === undefined) return;
    // At least 1 ms; at most what setTimeout takes (24.8 days), after which it is re-armed.
    const delay = Math.min(Math.max(oldest.lastActivity + this.threadTtlMs - this.now(), 1), 2_147_483_647);
    const timer = setTimeout(() => {
      this.sweepTimer = undefined;
      if (this.closed) return;
      this.expire(this.now());
      this.armSweep();
    }, delay);
    timer.unref?.();
    this.sweepTimer = timer;
  }

  /**
   * Returns the offset to replay after, or the gap that makes the cursor unusable. Only a cursor
   * this log issued for this thread's current log, whose successors are all retained, passes.
   */
  private checkCursor(threadId: string, log: ThreadLog | undefined, cursor: string): number | HistoryGap {
    const gap = (reason: HistoryGap['reason'], message: string): HistoryGap => ({
      threadId,
      requested: cursor,
      reason,
      message,
    });
    const match = CURSOR_PATTERN.exec(cursor);
    if (!match) return gap('unknown_cursor', 'cursor is not one this server issued');
    const [, epoch, logIdText, tag, offsetText] = match;
    if (epoch !== this.epoch) return gap('epoch_changed', 'the event log was recreated since this cursor was issued');
    if (logIdText === undefined || tag === undefined) return gap('unknown_cursor', 'cursor is not one this server issued');
    if (tag !== threadTag(threadId)) return gap('unknown_cursor', 'cursor belongs to another thread');
    const logId = parseInt(logIdText, 36);
    if (logId > this.lastLogId) return gap('unknown_cursor', 'cursor is not one this server issued');
    if (!log || log.logId !== logId) {
      return gap('trimmed', "the thread's log was dropped (idle, or over maxThreads) since this cursor was issued");
    }
    const offset = Number(offsetText);
    if (offset >= log.nextOffset) return gap('unknown_cursor', 'cursor points past the end of the thread');
    if (offset < log.firstOffset - 1) return gap('trimmed', 'events after this cursor are no longer retained');
    return offset;
  }

  /** A new log for a thread; a thread dropped for capacity whose TTL has not run out comes back with its owner (`former`, when the caller already looked it up). */
  private createLog(threadId: string, owner: string | undefined, now: number, former = this.formerOwner(threadId, now)): ThreadLog {
    // Its kept owner goes first: the room that frees is what the thread dropped next for room
    // takes, so a thread coming back to its owner is never refused for the owners kept.
    if (former !== undefined) this.formerOwners.delete(threadId);
    this.evictIdle(now, this.threads.size >= this.maxThreads);
    const log = new ThreadLog(threadId, ++this.lastLogId, former ?? owner, this.shared, now);
    this.threads.set(threadId, log);
    return log;
  }

  /**
   * Keeps the total bounds: clears the history of the least recently active thread other than
   * `current`. False when there is none (cannot happen: a thread alone stays within the totals).
   */
  private dropOldestHistory(current: ThreadLog): boolean {
    const oldest = this.activity.oldestExcept(current);
    if (!oldest) return false;
    this.activity.remove(oldest);
    oldest.clear();
    return true;
  }

  /** Drops threads idle past their TTL, then (if still full) the least recently active idle one: O(1) plus what is dropped. */
  private evictIdle(now: number, full: boolean): void {
    if (!full) return;
    this.expire(now);
    const oldest = this.idle.oldest;
    if (this.threads.size >= this.maxThreads && oldest) {
      // Dropped for room, not for its TTL: its owner stays the owner until the TTL runs out.
      if (oldest.owner !== undefined) {
        // Forgetting an owner early would hand its thread to whoever claims it next: the new thread is refused instead.
        if (!this.formerOwners.admits(oldest.owner, now - this.threadTtlMs)) throw formerOwnersFull(this.maxThreads);
        this.formerOwners.set(oldest.threadId, oldest.owner, oldest.lastActivity);
      }
      this.dropThread(oldest);
    }
  }

  /** Forgets a thread's log, its events and their runs; a cursor of it then gets `trimmed`. */
  private dropThread(log: ThreadLog): void {
    this.threads.delete(log.threadId);
    this.activity.remove(log);
    this.idle.remove(log);
    log.clear();
  }


  /** The owner of a thread dropped for room whose TTL has not run out. */
  private formerOwner(threadId: string, now: number): string | undefined {
    const former = this.formerOwners.get(threadId);
    if (former === undefined) return undefined;
    if (former.lastActivity + this.threadTtlMs > now) return former.owner;
    this.formerOwners.delete(threadId);
    return undefined;
  }
}

/** A live subscription to one thread log, and its subscriber there (a class: an idle subscriber holds no closure). */
class MemorySubscription implements Subscriber {
  constructor(
    private readonly log: ThreadLog,
    readonly userId: string,
    readonly listener: LogListener,
  ) {}

  close(): void {
    const log = this.log;
    log.deleteSubscriber(this);
    // A thread that only ever had subscribers (no event, so no owner and no offsets) holds
    // nothing: forget it with its last subscriber, so subscribe/unsubscribe churn on made-up
    // thread ids cannot fill the thread map and push real threads' history out.
    const threads = log.shared.threads;
    if (log.subscriberCount === 0 && log.owner === undefined && threads.get(log.threadId) === log) {
      threads.delete(log.threadId);
      log.shared.idle.remove(log);
    }
  }
}

/** The refusal of another user's event on a thread (not retryable: the owner does not change). */
function ownerMismatch(threadId: string): TransportError {
  return new TransportError(`Thread "${threadId}" belongs to another user`, { code: 'THREAD_OWNER_MISMATCH', retryable: false });
}

/**
 * The refusal of a new thread when making room would forget an owner before its TTL (many accounts
 * each holding a few kept owners fill the bound); not retryable: it lasts until kept owners expire.
 */
function formerOwnersFull(maxThreads: number): TransportError {
  return new TransportError(
    `Too many threads (${maxThreads}) to open a new one: making room would forget the owner of a thread dropped for room before its TTL (every user's ${KEPT_OWNERS_PER_USER} newest are kept); raise maxThreads or use the Redis log`,
    { code: 'TOO_MANY_THREADS', retryable: false },
  );
}

/** The event's JSON, or the refusal of this one event (not retryable: it will never serialize). */
function serialized(event: AgentEvent): string {
  try {
    return eventJson(event);
  } catch (error) {
    throw refusal(event, error);
  }
}

/**
 * Fencing of a run the log knows: the stored entry when `event` repeats its `agent_started` or
 * `agent_completed` (same event id), undefined when it may be appended; throws when it may not.
 */
function checkRun(run: RunRecord, event: AgentEvent): LogEntry | undefined {
  if (event.type === 'agent_started') {
    if (run.start !== undefined && run.start.eventId === event.id) return run.start;
    throw new ValidationError(`Run id ${event.runId} is in use: its events are still retained`, {
      code: 'RUN_ID_CONFLICT',
      field: 'runId',
      details: { runId: event.runId },
    });
  }
  if (run.end === undefined) return undefined;
  if (run.end.eventId === event.id) return run.end;
  throw new StateError('RUN_CLOSED', `Run ${event.runId} has completed: its ${String(event.type)} event ${event.id} cannot follow agent_completed`, {
    details: { runId: event.runId, eventId: event.id },
  });
}
