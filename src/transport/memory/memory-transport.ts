import { customAlphabet } from 'nanoid';
import { AuthError, TransportError } from '../../errors/index.js';
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
import { ThreadLog, type Subscriber } from './thread-log.js';

const ACCEPTED = Promise.resolve();
const makeEpoch = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 10);

export interface MemoryTransportOptions {
  /** Events retained per thread for replay; older ones are trimmed. Default 10,000. */
  maxEventsPerThread?: number;
  /** Threads retained; past it the least recently active thread without subscribers is dropped. Default 10,000. */
  maxThreads?: number;
  /**
   * Events retained across all threads. Past it, the history of the least recently active thread
   * is dropped (its offsets and subscribers stay, so resuming into it yields `history_gap`). Default 200,000.
   */
  maxTotalEvents?: number;
  /** A thread with no subscribers and no new event for this long is dropped. Default 1 h. */
  threadTtlMs?: number;
  /** Clock, injectable for tests. */
  now?: () => number;
}

/**
 * The embedded default transport: per-thread ordered logs in this process, with cursors for
 * resume and live subscriptions filtered by user. The log's epoch is new for every instance,
 * so a cursor from a previous process yields `history_gap`, never a wrong replay.
 */
export class MemoryTransport implements Transport, EventLog {
  /** Identifies this incarnation of the logs; part of every cursor. */
  readonly epoch = makeEpoch();
  private readonly threads = new Map<string, ThreadLog>();
  private readonly maxEventsPerThread: number;
  private readonly maxThreads: number;
  private readonly maxTotalEvents: number;
  private totalEvents = 0;
  /**
   * Where the offsets of a thread log created now start: past every offset that a dropped log of
   * this epoch handed out. A thread evicted (TTL, `maxThreads`) and later recreated would otherwise
   * count from 1 again, and a client resuming with a cursor from the dropped incarnation would be
   * replayed the new log from the middle: a silent partial replay. With the floor, such a cursor
   * lies before the new log's first offset and yields `history_gap` (`trimmed`).
   */
  private offsetFloor = 1;
  private readonly threadTtlMs: number;
  private readonly now: () => number;
  private closed = false;
  /** Events withheld from a subscriber because its user differs (should stay 0). */
  isolationDrops = 0;

  constructor(options: MemoryTransportOptions = {}) {
    this.maxThreads = options.maxThreads ?? 10_000;
    this.maxTotalEvents = options.maxTotalEvents ?? 200_000;
    // A thread never holds more than the whole transport may: the total bound always finds another thread to trim.
    this.maxEventsPerThread = Math.min(options.maxEventsPerThread ?? 10_000, this.maxTotalEvents);
    this.threadTtlMs = options.threadTtlMs ?? 3_600_000;
    this.now = options.now ?? Date.now;
  }

  get threadCount(): number {
    return this.threads.size;
  }

  /** Events currently retained across all threads. */
  get eventCount(): number {
    return this.totalEvents;
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

  /** Synchronous append; returns the stored entry (with its cursor). */
  append(event: AgentEvent): LogEntry {
    if (this.closed) throw new TransportError('MemoryTransport is closed', { code: 'TRANSPORT_CLOSED', retryable: false });
    const now = this.now();
    let log = this.threads.get(event.threadId);
    if (!log) {
      log = this.createLog(event.threadId, event.userId, now);
    } else if (log.owner === undefined) {
      // A subscriber opened the thread before any event: the first event fixes the owner, and
      // subscribers of other users are told they are refused instead of silently receiving nothing.
      log.owner = event.userId;
      for (const subscriber of log.subscribers) {
        if (subscriber.userId === event.userId) continue;
        log.subscribers.delete(subscriber);
        subscriber.listener.onClose?.(new AuthError(`Thread "${event.threadId}" belongs to another user`, { code: 'THREAD_FORBIDDEN' }));
      }
    } else if (log.owner !== event.userId) {
      throw new TransportError(`Thread "${event.threadId}" belongs to another user`, {
        code: 'THREAD_OWNER_MISMATCH',
        retryable: false,
      });
    }
    const entry = log.append(event, now);
    if (!log.trimmed && ++this.totalEvents > this.maxTotalEvents) this.dropOldestHistory(log);
    if (log.subscribers.size === 0) return entry;
    const batch = [entry];
    for (const subscriber of log.subscribers) {
      if (subscriber.userId !== event.userId) {
        this.isolationDrops++;
        continue;
      }
      subscriber.listener.onEntries(batch);
    }
    return entry;
  }

  async subscribe(request: SubscribeRequest, listener: LogListener): Promise<SubscribeResult> {
    return this.subscribeSync(request, listener);
  }

  /** Synchronous subscribe: the replay and the live registration happen in one turn, so nothing falls between. */
  subscribeSync(request: SubscribeRequest, listener: LogListener): SubscribeResult {
    if (this.closed) throw new TransportError('MemoryTransport is closed', { code: 'TRANSPORT_CLOSED', retryable: false });
    const { userId, threadId, after } = request;
    let log = this.threads.get(threadId);
    if (log?.owner !== undefined && log.owner !== userId) {
      throw new AuthError(`Thread "${threadId}" belongs to another user`, { code: 'THREAD_FORBIDDEN' });
    }
    let replayFrom = 0;
    if (after !== undefined) {
      const gap = this.checkCursor(threadId, log, after);
      if (typeof gap !== 'number') return { status: 'history_gap', gap };
      replayFrom = gap;
    }
    if (!log) {
      log = this.createLog(threadId, undefined, this.now());
      // Subscriptions must not grow the thread map past its bound (events always may: they were accepted).
      if (this.threads.size > this.maxThreads) {
        this.threads.delete(threadId);
        throw new TransportError(`Too many threads (${this.maxThreads}) to follow a new one`, { code: 'TOO_MANY_THREADS' });
      }
    }
    const subscriber: Subscriber = { userId, listener };
    log.subscribers.add(subscriber);
    const owned = log;
    const replay = owned.after(replayFrom).filter((entry) => entry.event.userId === userId);
    const cursor = owned.size > 0 ? owned.cursorAt(owned.nextOffset - 1) : null;
    return {
      status: 'subscribed',
      replay,
      cursor,
      subscription: {
        close: () => {
          owned.subscribers.delete(subscriber);
          // A thread that only ever had subscribers (no event, so no owner and no offsets) holds
          // nothing: forget it with its last subscriber, so subscribe/unsubscribe churn on made-up
          // thread ids cannot fill the thread map and push real threads' history out.
          if (owned.subscribers.size === 0 && owned.owner === undefined && this.threads.get(threadId) === owned) {
            this.threads.delete(threadId);
          }
        },
      },
    };
  }

  async ownerOf(threadId: string): Promise<string | undefined> {
    return this.threads.get(threadId)?.owner;
  }

  /** Every retained event of a thread visible to `userId` (tests and debugging). */
  read(threadId: string, userId: string): AgentEvent[] {
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
    for (const log of this.threads.values()) {
      for (const subscriber of log.subscribers) subscriber.listener.onClose?.();
      log.subscribers.clear();
    }
    this.threads.clear();
    this.totalEvents = 0;
  }

  /** Returns the offset to replay after, or the gap that makes the cursor unusable. */
  private checkCursor(threadId: string, log: ThreadLog | undefined, cursor: string): number | HistoryGap {
    const gap = (reason: HistoryGap['reason'], message: string): HistoryGap => ({
      threadId,
      requested: cursor,
      reason,
      message,
    });
    const match = /^([0-9a-z]{1,32}):(\d{1,15})$/.exec(cursor);
    if (!match) return gap('unknown_cursor', 'cursor is not one this server issued');
    const [, epoch, offsetText] = match;
    if (epoch !== this.epoch) return gap('epoch_changed', 'the event log was recreated since this cursor was issued');
    const offset = Number(offsetText);
    // A thread not retained (never seen, or dropped) would start at the floor: cursors below it are of a dropped incarnation.
    const nextOffset = log?.nextOffset ?? this.offsetFloor;
    if (offset >= nextOffset) return gap('unknown_cursor', 'cursor points past the end of the thread');
    const firstOffset = log?.firstOffset ?? this.offsetFloor;
    if (offset < firstOffset - 1) return gap('trimmed', 'events after this cursor are no longer retained');
    return offset;
  }

  private createLog(threadId: string, owner: string | undefined, now: number): ThreadLog {
    this.evictIdle(now, this.threads.size >= this.maxThreads);
    const log = new ThreadLog(threadId, this.epoch, owner, this.maxEventsPerThread, now, this.offsetFloor);
    this.threads.set(threadId, log);
    return log;
  }

  /** Keeps the total bound: clears the history of the least recently active thread other than `current`. */
  private dropOldestHistory(current: ThreadLog): void {
    let oldest: ThreadLog | undefined;
    for (const log of this.threads.values()) {
      if (log !== current && log.size > 0 && (!oldest || log.lastActivity < oldest.lastActivity)) oldest = log;
    }
    // maxEventsPerThread ≤ maxTotalEvents, so another thread with history always exists here.
    if (oldest) this.totalEvents -= oldest.clear();
  }

  /** Drops threads idle past their TTL, then (if still full) the least recently active idle one. */
  private evictIdle(now: number, full: boolean): void {
    if (!full && this.threads.size % 64 !== 0) return;
    let oldest: ThreadLog | undefined;
    for (const log of this.threads.values()) {
      if (log.subscribers.size > 0) continue;
      if (log.lastActivity + this.threadTtlMs <= now) {
        this.dropThread(log);
        continue;
      }
      if (!oldest || log.lastActivity < oldest.lastActivity) oldest = log;
    }
    if (this.threads.size >= this.maxThreads && oldest) this.dropThread(oldest);
  }

  private dropThread(log: ThreadLog): void {
    this.threads.delete(log.threadId);
    this.offsetFloor = Math.max(this.offsetFloor, log.nextOffset);
    this.totalEvents -= log.size;
  }
}
