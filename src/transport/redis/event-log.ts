import { customAlphabet } from 'nanoid';
import { AuthError, HistoryGapError, TransportError } from '../../errors/index.js';
import { assertThreadId } from '../../ids/thread-id.js';
import { assertUserId } from '../../ids/user-id.js';
import { threadTag } from '../memory/log-common.js';
import type {
  EventLog,
  HistoryGap,
  HistoryGapReason,
  LogListener,
  SubscribeRequest,
  SubscribeResult,
  TransportHealth,
} from '../types.js';
import { RedisConnection, toTransportError } from './connection.js';
import { compareIds, formatCursor, ID_ZERO, parseCursor } from './cursor.js';
import { readEntry, type RawStreamEntry, type RedisLogEntry } from './entries.js';
import { RedisKeys } from './keys.js';
import { resolveEventLogOptions, type RedisEventLogOptions, type ResolvedEventLogOptions } from './options.js';
import { READ_PAGE_SCRIPT } from './scripts.js';
import { StreamTail, type LiveTail, type TailedThread, type TailHooks } from './tail.js';
import { GroupedTail } from './tail-groups.js';
import { RedisRequests } from './answers.js';
import { ReplayTurns } from './replay-turns.js';
import type { AnswerInput, AnswerReceipt, InteractionLog, PendingRequest } from '../interaction.js';
import type { UserAnsweredEvent } from '../../events/schema.js';
import { threadForbidden } from '../../errors/thread-forbidden.js';

const makeGatewayId = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 12);

/** A local subscriber of one thread. */
interface Subscriber {
  readonly userId: string;
  /** `threadTag` of the thread, for the cursors handed out. */
  readonly tag: string;
  readonly listener: LogListener;
  thread: TailedThread<Subscriber> | undefined;
  /** Epoch and id of the last entry handed over (replayed or live): later entries must be after it. */
  epoch: string | undefined;
  lastId: string;
  /** Live entries held while the replay is being completed (undefined once it is handed over). */
  held: RedisLogEntry[] | undefined;
  overflowed: boolean;
  closed: boolean;
}

/** Where a read of a thread's stream starts. */
interface ReadFrom {
  /** Epoch the position belongs to; undefined: read from the start of whatever incarnation exists. */
  epoch: string | undefined;
  /** Exclusive start id; undefined: from the first retained entry. */
  id: string | undefined;
  /** The position is a client's cursor: its entry must be one the stream holds (or held: then `trimmed`). */
  verify?: boolean;
}

type ReadOutcome =
  | { ok: true; entries: RedisLogEntry[]; epoch: string | undefined; lastId: string; owner: string | undefined }
  | { ok: false; reason: HistoryGapReason; message: string };

type PageReply = [
  owner: string,
  epoch: string,
  firstId: string,
  lastGeneratedId: string,
  maxDeletedId: string,
  entries: RawStreamEntry[],
  present: number,
  boundary: string,
];

/** Attempts at a consistent replay when retention or a recreated stream moves under it (no-cursor subscriptions). */
const MAX_REPLAY_ATTEMPTS = 3;

export interface RedisEventLogStats {
  /** Threads followed by the live tail (those with at least one local subscriber). */
  threads: number;
  subscribers: number;
  /** Entries withheld from a subscriber because they belong to another user (should stay 0). */
  isolationDrops: number;
  /** Entries skipped because they could not be read (not JSON, not a valid event). */
  invalidEntries: number;
  /** Live subscriptions that saw their thread's stream recreated. */
  epochChanges: number;
  /** Replays completed up to the live tail's position because the tail had read past their end meanwhile. */
  catchUps: number;
  /** Replays reading from Redis now, and replays waiting for their user's turn (`maxConcurrentReplaysPerUser`). */
  replaysActive: number;
  replaysWaiting: number;
  /** Replays that waited for their user's turn, and those refused because too many waited (`TOO_MANY_REPLAYS`). */
  replaysQueued: number;
  replaysRefused: number;
  /** Stream entries transferred from Redis by replays (and their catch-ups), whether or not they were handed over. */
  replayEntriesRead: number;
  /** Blocking reads issued, entries they returned, and reads that failed (then resumed). */
  reads: number;
  entriesRead: number;
  readFailures: number;
  reconnects: number;
}

/**
 * The read side of the Redis transport, for gateway processes (`WebSocketGateway`, `SseGateway`):
 * per-thread replay from a cursor with `XRANGE`, then live entries from one blocking `XREAD` loop
 * per process on a connection of its own, multiplexed over every thread with a local subscriber.
 *
 * - Ownership lives in Redis: subscribing to a thread whose owner is another user throws
 *   `AuthError` (`THREAD_FORBIDDEN`), in every process, whether or not it ever saw the run.
 *   A subscription made before the thread had any event is ended the same way (`onClose` with
 *   that `AuthError`) once the thread's first entry turns out to be another user's.
 * - A subscriber only ever receives entries whose `event.userId` is its own.
 * - Resume is all or nothing: a cursor names its thread and the incarnation of its stream
 *   (`<epoch>.<thread tag>:<entry id>`). One of another thread gives `history_gap`
 *   (`unknown_cursor`); of another incarnation of the stream (recreated, expired) `epoch_changed`;
 *   one whose successors were trimmed `trimmed` (the cursor's own entry must still be retained); a
 *   malformed one, one past the end, or one naming an entry the stream never had `unknown_cursor`.
 * - Replay hands over to live with no gap and no duplicate: each subscriber remembers the last
 *   id it was given and drops anything at or before it.
 * - A replay is bounded like the memory log's retention: at most `maxReplayBytes` of entry JSON,
 *   the newest (without a cursor; an entry larger than that alone is live-only), or all of a
 *   cursor's successors, else `history_gap` (`trimmed`). A refused subscribe reads no entry.
 * - One user's replays take turns (`maxConcurrentReplaysPerUser` at once, FIFO, at most
 *   `maxQueuedReplaysPerUser` waiting, then `TransportError` `TOO_MANY_REPLAYS`); other users'
 *   replays never wait for them.
 */
export class RedisEventLog implements EventLog, InteractionLog {
  readonly options: ResolvedEventLogOptions;
  readonly keys: RedisKeys;
  /** Names this process's wake-up stream. */
  readonly gatewayId = makeGatewayId();
  private readonly main: RedisConnection;
  private readonly ownsMain: boolean;
  private readonly tail: LiveTail<Subscriber>;
  private readonly subscribers = new Set<Subscriber>();
  private closed = false;
  private counters = { isolationDrops: 0, invalidEntries: 0, epochChanges: 0, catchUps: 0, replayEntriesRead: 0 };
  private readonly requests: RedisRequests;
  private readonly turns: ReplayTurns;

  /**
   * @param connection Share this connection for non-blocking commands (it stays open on `close()`).
   *   Default: a connection of its own.
   */
  constructor(options: RedisEventLogOptions = {}, connection?: RedisConnection) {
    this.options = resolveEventLogOptions(options);
    this.keys = new RedisKeys(this.options.keyPrefix, this.options.cluster?.slotGroups);
    this.ownsMain = connection === undefined;
    this.main = connection ?? new RedisConnection(this.options, 'agentwire-log');
    this.requests = new RedisRequests(this.main, this.keys);
    this.turns = new ReplayTurns(this.options.maxConcurrentReplaysPerUser, this.options.maxQueuedReplaysPerUser);
    const hooks: TailHooks<Subscriber> = {
      onEntries: (thread, entries) => {
        const owner = thread.owner;
        for (const subscriber of thread.subscribers) {
          // Subscribed before the thread had an owner, and its first entry is another user's.
          if (owner !== undefined && subscriber.userId !== owner) this.forbid(subscriber, thread.threadId);
          else this.deliver(subscriber, entries);
        }
      },
      onError: (error) => {
        if (error.name === 'ValidationError') this.counters.invalidEntries++;
        this.options.onError?.(error);
      },
    };
    const name = `agentwire-tail-${this.gatewayId}`;
    // One blocking connection on one Redis; on a cluster one per slot group in use (a blocking XREAD cannot span slots).
    this.tail = this.options.cluster
      ? new GroupedTail<Subscriber>(this.main, this.keys, this.gatewayId, this.options, hooks, name)
      : new StreamTail<Subscriber>(this.main.duplicate(name), this.main, this.keys, this.gatewayId, this.options, hooks);
  }

  /** Resolves once connected to Redis; false if closed first or after `timeoutMs`. */
  connect(timeoutMs = Number.MAX_SAFE_INTEGER): Promise<boolean> {
    return this.main.waitReady(Math.min(timeoutMs, 2 ** 31 - 1));
  }

  async subscribe(request: SubscribeRequest, listener: LogListener): Promise<SubscribeResult> {
    const { userId, threadId, after } = request;
    assertThreadId(threadId);
    // The owner is compared in Redis (UTF-8): a lone surrogate would read as U+FFFD, another user's id.
    assertUserId(userId, 'subscribe()');
    let from: ReadFrom = { epoch: undefined, id: undefined };
    if (after !== undefined) {
      const cursor = parseCursor(after);
      if (!cursor) return this.gap(threadId, after, 'unknown_cursor', 'cursor is not one this server issued');
      if (cursor.tag !== threadTag(threadId)) return this.gap(threadId, after, 'unknown_cursor', 'cursor belongs to another thread');
      from = { epoch: cursor.epoch, id: cursor.id, verify: true };
    }
    this.assertOpen();
    // One user's replays take turns (maxConcurrentReplaysPerUser); other users' do not wait for them.
    const giveBack = await this.turns.take(userId);
    try {
      return await this.replayAndFollow(threadId, userId, after, from, listener);
    } finally {
      giveBack();
    }
  }

  private async replayAndFollow(
    threadId: string,
    userId: string,
    after: string | undefined,
    from: ReadFrom,
    listener: LogListener,
  ): Promise<SubscribeResult> {
    for (let attempt = 1; ; attempt++) {
      this.assertOpen();
      // Without a cursor: the newest entries within maxReplayBytes. With one: all that follows it, or a gap.
      const replay = await this.read(threadId, userId, from, '+', after === undefined ? 'newest' : 'whole');
      if (!replay.ok) {
        if (after !== undefined) return this.gap(threadId, after, replay.reason, replay.message);
        if (attempt < MAX_REPLAY_ATTEMPTS) continue;
        throw new TransportError(`Replay of thread "${threadId}" kept being overtaken by retention: ${replay.message}`, { code: 'REPLAY_UNSTABLE' });
      }
      const result = await this.follow(threadId, userId, listener, replay);
      if (result) return result;
      if (attempt >= MAX_REPLAY_ATTEMPTS) {
        throw new TransportError(`Thread "${threadId}" changed while subscribing; try again`, { code: 'SUBSCRIBE_RACE' });
      }
      // Give the live tail a moment to read the new incarnation before replaying again.
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }

  /** Records a request of a waiting run in the thread's meta hash (`InteractionLog`). */
  openRequest(request: PendingRequest): Promise<void> {
    this.assertOpen();
    return this.requests.open(request);
  }

  /** Appends an answer once, by the run's user, whichever process the run waits on (`AnswerLog`). */
  answerRequest(input: AnswerInput): Promise<AnswerReceipt> {
    this.assertOpen();
    return this.requests.answer(input);
  }

  /** Closes a request without an answer, or returns the answer that was accepted first. */
  closeRequest(request: PendingRequest): Promise<UserAnsweredEvent | undefined> {
    this.assertOpen();
    return this.requests.close(request);
  }

  async ownerOf(threadId: string): Promise<string | undefined> {
    this.assertOpen();
    try {
      const owner = await this.main.send<string | null>(['HGET', this.keys.meta(threadId), 'owner']);
      return owner ?? undefined;
    } catch (error) {
      throw toTransportError(error, `Reading the owner of thread "${threadId}"`);
    }
  }

  stats(): RedisEventLogStats {
    const turns = this.turns.counts;
    return {
      threads: this.tail.threadCount,
      subscribers: this.subscribers.size,
      ...this.counters,
      replaysActive: turns.active,
      replaysWaiting: turns.waiting,
      replaysQueued: this.turns.waited,
      replaysRefused: this.turns.refused,
      reads: this.tail.reads,
      entriesRead: this.tail.entriesRead,
      readFailures: this.tail.readFailures,
      reconnects: this.main.reconnects + this.tail.reconnects,
    };
  }

  async health(): Promise<TransportHealth> {
    if (this.closed) return { ok: false, detail: 'closed' };
    const ready = await this.main.waitReady(this.main.isReady ? 0 : this.options.connectTimeoutMs);
    const tailing = this.tail.threadCount > 0;
    const tailOk = !tailing || this.tail.isReading;
    const detail =
      `redis ${this.main.describe()}; tail ${tailing ? this.tail.describe() : 'idle'}; ` +
      `${this.tail.threadCount} threads, ${this.subscribers.size} subscribers`;
    return { ok: ready && tailOk, detail };
  }

  /** Ends every subscription (`onClose` without a reason), stops the tail, quits the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.turns.refuseAll(new TransportError('RedisEventLog is closed', { code: 'TRANSPORT_CLOSED', retryable: false }));
    for (const subscriber of [...this.subscribers]) this.end(subscriber, undefined);
    await this.tail.close();
    if (this.ownsMain) await this.main.close();
  }

  /**
   * Registers the subscriber with the live tail after its replay. If the tail already follows
   * the thread and has read past the replay, the entries in between are read before handing over
   * (live ones arriving meanwhile are held). Returns undefined when the thread was recreated
   * between the replay and the registration (the caller replays again).
   */
  private async follow(
    threadId: string,
    userId: string,
    listener: LogListener,
    replay: Extract<ReadOutcome, { ok: true }>,
  ): Promise<SubscribeResult | undefined> {
    this.assertOpen();
    const subscriber: Subscriber = {
      userId,
      tag: threadTag(threadId),
      listener,
      thread: undefined,
      epoch: replay.epoch,
      lastId: replay.lastId,
      held: undefined,
      overflowed: false,
      closed: false,
    };
    let thread = this.tail.thread(threadId);
    const entries = replay.entries;
    if (!thread) {
      thread = this.tail.watch(threadId, replay.lastId, replay.epoch, replay.owner);
    } else if (thread.epoch !== replay.epoch && thread.epoch !== undefined) {
      // The replay and the tail saw different incarnations of the stream (it was just created or recreated).
      return undefined;
    } else if (compareIds(thread.lastId, replay.lastId) > 0) {
      // The tail is ahead: read (replay end, tail position], holding what the tail delivers meanwhile.
      const upTo = thread.lastId;
      subscriber.held = [];
      this.attach(subscriber, thread);
      this.counters.catchUps++;
      let gapFill: ReadOutcome;
      try {
        // What the tail read past the replay, within a budget of its own; more: replayed again (or a gap for a cursor).
        gapFill = await this.read(threadId, userId, { epoch: replay.epoch, id: replay.lastId }, upTo, 'whole');
      } catch (error) {
        // E.g. THREAD_FORBIDDEN: the thread got its owner since the replay. Not left attached.
        this.end(subscriber, undefined, false);
        throw error;
      }
      const held = subscriber.held;
      subscriber.held = undefined;
      if (!gapFill.ok || subscriber.overflowed || subscriber.closed) {
        this.end(subscriber, undefined, false);
        if (subscriber.overflowed) {
          throw new TransportError(`Too many live entries while replaying thread "${threadId}"`, { code: 'SUBSCRIBER_OVERFLOW' });
        }
        this.assertOpen();
        return undefined;
      }
      entries.push(...gapFill.entries);
      thread.owner ??= gapFill.owner;
      subscriber.epoch = gapFill.epoch ?? subscriber.epoch;
      subscriber.lastId = gapFill.lastId;
      const early = this.accept(subscriber, held);
      entries.push(...early);
      return this.subscribed(subscriber, entries);
    }
    thread.owner ??= replay.owner;
    if (thread.owner !== undefined && thread.owner !== userId) {
      throw threadForbidden(threadId);
    }
    this.attach(subscriber, thread);
    return this.subscribed(subscriber, entries);
  }

  /**
   * Ends a subscription made before its thread had an owner, now that the owner is another user
   * (as `MemoryTransport` does): `onClose` with `AuthError` `THREAD_FORBIDDEN`, once. One still
   * completing its replay is only marked: `follow()` drops it and replays again, which refuses it.
   */
  private forbid(subscriber: Subscriber, threadId: string): void {
    if (subscriber.closed) return;
    if (subscriber.held) {
      subscriber.closed = true;
      return;
    }
    this.end(subscriber, threadForbidden(threadId));
  }

  private attach(subscriber: Subscriber, thread: TailedThread<Subscriber>): void {
    subscriber.thread = thread;
    thread.subscribers.add(subscriber);
    this.subscribers.add(subscriber);
  }

  private subscribed(subscriber: Subscriber, replay: RedisLogEntry[]): SubscribeResult {
    const last = replay[replay.length - 1];
    const newest = last
      ? last.cursor
      : subscriber.epoch !== undefined && subscriber.lastId !== ID_ZERO
        ? formatCursor(subscriber.epoch, subscriber.tag, subscriber.lastId)
        : null;
    return {
      status: 'subscribed',
      replay,
      cursor: newest,
      subscription: { close: () => this.end(subscriber, undefined, false) },
    };
  }

  /** Live entries of the subscriber's thread: held during a replay, else filtered and handed to the listener. */
  private deliver(subscriber: Subscriber, entries: RedisLogEntry[]): void {
    if (subscriber.closed) return;
    if (subscriber.held) {
      if (subscriber.held.length + entries.length > this.options.maxPendingPerSubscriber) {
        subscriber.overflowed = true;
        subscriber.held = [];
        return;
      }
      for (const entry of entries) subscriber.held.push(entry);
      return;
    }
    const accepted = this.accept(subscriber, entries);
    if (accepted.length === 0) return;
    try {
      subscriber.listener.onEntries(accepted);
    } catch (error) {
      this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * What of `entries` this subscriber may get: its own user's entries after the last one it got.
   * An entry of another epoch means the stream was recreated: per `onStreamRecreated` the
   * subscriber follows the new incarnation, or is closed with a `HistoryGapError`.
   */
  private accept(subscriber: Subscriber, entries: RedisLogEntry[]): RedisLogEntry[] {
    let accepted: RedisLogEntry[] | undefined;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      let take: boolean;
      if (entry.event.userId !== subscriber.userId) {
        this.counters.isolationDrops++;
        take = false;
      } else if (subscriber.epoch === undefined || entry.epoch === subscriber.epoch) {
        take = compareIds(entry.id, subscriber.lastId) > 0;
      } else {
        this.counters.epochChanges++;
        if (this.options.onStreamRecreated === 'close') {
          const delivered = accepted ?? entries.slice(0, i);
          queueMicrotask(() =>
            this.end(
              subscriber,
              new HistoryGapError(`The stream of thread "${entry.event.threadId}" was recreated; events may have been lost`, {
                details: { threadId: entry.event.threadId, reason: 'epoch_changed' },
              }),
            ),
          );
          subscriber.closed = true;
          return delivered;
        }
        take = true;
      }
      if (take) {
        subscriber.epoch = entry.epoch;
        subscriber.lastId = entry.id;
        accepted?.push(entry);
      } else {
        accepted ??= entries.slice(0, i);
      }
    }
    return accepted ?? entries;
  }

  /** Ends one subscription; the listener is told (`onClose`) unless the subscriber itself asked. */
  private end(subscriber: Subscriber, reason: Error | undefined, notify = true): void {
    const wasOpen = this.subscribers.delete(subscriber);
    subscriber.closed = true;
    const thread = subscriber.thread;
    if (thread) {
      thread.subscribers.delete(subscriber);
      this.tail.release(thread);
    }
    if (notify && wasOpen) {
      try {
        subscriber.listener.onClose?.(reason);
      } catch (error) {
        this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  /**
   * Reads a thread's entries after `from` up to `end` (`+` or an id), in pages, each page
   * atomically with the state needed to prove nothing after `from` is missing. Only the
   * requesting user's entries are returned; a thread owned by another user throws `AuthError`.
   *
   * At most `maxReplayBytes` of entry JSON is read: the first page's script measures the range
   * from its end back and pins `end` to the stream's last id then. `window` says what happens
   * when the range does not fit: `newest` reads only the newest entries that do (the older ones
   * count as trimmed, as the memory log's `maxBytesPerThread` would have), `whole` answers a
   * `trimmed` outcome (a cursor's successors are all replayed or none).
   */
  private async read(threadId: string, userId: string, from: ReadFrom, end: string, window: 'newest' | 'whole'): Promise<ReadOutcome> {
    const stream = this.keys.stream(threadId);
    const meta = this.keys.meta(threadId);
    const entries: RedisLogEntry[] = [];
    const count = this.options.readCount;
    const tag = threadTag(threadId);
    let epoch = from.epoch;
    let position = from.id;
    let verify = from.verify === true && position !== undefined;
    // Retention bounds a stream; the page bound only guards against a stream growing faster than it is read.
    for (let page = 0; page < 10_000; page++) {
      let reply: PageReply;
      try {
        const start = position === undefined ? '-' : `(${position}`;
        const budget = page === 0 ? String(this.options.maxReplayBytes) : '';
        reply = await READ_PAGE_SCRIPT.run<PageReply>(this.main, 2, [
          stream,
          meta,
          start,
          end,
          String(count),
          verify ? position! : '',
          userId,
          budget,
          window === 'whole' ? '1' : '',
        ]);
      } catch (error) {
        throw toTransportError(error, `Reading thread "${threadId}" from Redis`);
      }
      const [owner, metaEpoch, firstId, lastGenerated, maxDeleted, raw, present, boundary] = reply;
      this.counters.replayEntriesRead += raw.length;
      if (owner !== '' && owner !== userId) {
        throw threadForbidden(threadId);
      }
      if (position === undefined) {
        // From the start: adopt whatever incarnation exists (none yet: the tail waits for it).
        epoch = lastGenerated === '' ? undefined : metaEpoch || undefined;
      } else {
        const problem = checkPosition(position, epoch, metaEpoch, firstId, lastGenerated, maxDeleted, verify ? present : -1);
        if (problem) return problem;
        verify = false;
      }
      if (page === 0) {
        if (boundary !== '') {
          if (window === 'whole') {
            return { ok: false, reason: 'trimmed', message: `the events after this cursor exceed what a replay may hold (maxReplayBytes ${this.options.maxReplayBytes})` };
          }
          // The boundary and everything before it are outside the window: read after it.
          position = boundary;
        }
        // Entries appended from now on are the live tail's: the replay stays within the budget measured.
        if (end === '+' && lastGenerated !== '') end = lastGenerated;
      }
      for (const item of raw) {
        const entry = readEntry(item, this.options.validate, tag);
        if (entry instanceof Error) {
          this.counters.invalidEntries++;
          this.options.onError?.(entry);
        } else if (entry.event.userId !== userId) {
          this.counters.isolationDrops++;
        } else {
          entries.push(entry);
        }
        position = item[0];
      }
      const last = raw[raw.length - 1];
      if (last) epoch ??= entries[entries.length - 1]?.epoch;
      if (raw.length < count || (last !== undefined && last[0] === end)) {
        return { ok: true, entries, epoch, lastId: position ?? ID_ZERO, owner: owner || undefined };
      }
    }
    throw new TransportError(`Thread "${threadId}" grows faster than it can be replayed`, { code: 'REPLAY_UNSTABLE' });
  }

  private gap(threadId: string, requested: string, reason: HistoryGapReason, message: string): SubscribeResult {
    const gap: HistoryGap = { threadId, requested, reason, message };
    return { status: 'history_gap', gap };
  }

  private assertOpen(): void {
    if (this.closed) throw new TransportError('RedisEventLog is closed', { code: 'TRANSPORT_CLOSED', retryable: false });
  }
}

/**
 * Why reading after `position` of `epoch` cannot be complete, or undefined when it can. `present`:
 * whether the stream holds the entry at `position` (1, 0), or -1 when that does not matter.
 */
function checkPosition(
  position: string,
  epoch: string | undefined,
  metaEpoch: string,
  firstId: string,
  lastGenerated: string,
  maxDeleted: string,
  present: number,
): { ok: false; reason: HistoryGapReason; message: string } | undefined {
  if (lastGenerated === '' || metaEpoch === '' || metaEpoch !== epoch) {
    return { ok: false, reason: 'epoch_changed', message: "the thread's stream was recreated (or expired) since this cursor was issued" };
  }
  if (compareIds(position, lastGenerated) > 0) {
    return { ok: false, reason: 'unknown_cursor', message: 'cursor points past the end of the thread' };
  }
  const trimmedPast = firstId === '' ? compareIds(position, lastGenerated) < 0 : compareIds(position, firstId) < 0;
  if (trimmedPast || compareIds(maxDeleted, position) > 0) {
    return { ok: false, reason: 'trimmed', message: 'events after this cursor are no longer retained' };
  }
  if (present === 0) {
    // Within the retained range but no such entry: deleted (XDEL) if it was the last one deleted, else never issued.
    return maxDeleted === position
      ? { ok: false, reason: 'trimmed', message: "the cursor's event is no longer retained" }
      : { ok: false, reason: 'unknown_cursor', message: 'cursor names no event of this thread' };
  }
  return undefined;
}
