import type { AgentEvent } from '../../events/schema.js';
import type { LogEntry, LogListener } from '../types.js';
import { threadTag } from './log-common.js';

/**
 * What the log knows of one run while any of its events is retained: how many are, and its
 * `agent_started` / `agent_completed` entries (a repeat of the same event is not stored twice;
 * nothing may follow the terminal one). Forgotten with its last retained event.
 */
export interface RunRecord {
  readonly runId: string;
  retained: number;
  /** The run's first and last entries (for the fencing checks, which read their ids from the JSON). */
  start: MemoryLogEntry | undefined;
  end: MemoryLogEntry | undefined;
}

/** What every log of one transport retains together (its bounds are the transport's totals). */
export interface Retention {
  events: number;
  /** Sum of the retained entries' JSON lengths. */
  bytes: number;
  readonly runs: Map<string, RunRecord>;
}

/** What an entry reads from its thread's log (the `ThreadLog` itself): one reference per entry. */
export interface EntryOrigin {
  /** `<epoch>.<log id>.<thread tag>`: shared by every entry of one thread log. */
  readonly cursorPrefix: string;
  readonly threadId: string;
  /** The thread's owner: set by its first event, never changed, and every appended event's `userId` (append refuses others). */
  readonly owner: string | undefined;
  /** `{"type":"event","threadId":"<thread id>","cursor":"<cursorPrefix>:`: the start of every event frame of its entries (see `eventFrameJson`). */
  readonly eventFramePrefix: string;
}

/** `{"v":<n>,"id":"<id>"` at the start of an event's JSON (how `eventJson` writes every event of a `RunEmitter`); ids with escapes are left to the parser. */
const LEADING_ID = /^\{"v":\d+,"id":"([^"\\]*)"/;
/** `{"v":<n>,"id":"<id>","type":"<type>"` (the same canonical start, up to the type); types with escapes are left to the parser. */
const LEADING_TYPE = /^\{"v":\d+,"id":"[^"\\]*","type":"([^"\\]*)"/;

/**
 * A log entry as the log hands it out: its JSON (made once at append; its length is what the byte
 * bounds count), its offset and run. The log itself retains only the JSON string and the run of
 * each entry (one string per event instead of the event object, its data and a copy of every
 * string inside it: the event's JSON is what a replay writes anyway). Its `event` is always that
 * JSON parsed back (the first time it is read; kept as long as the caller keeps the entry), live
 * entries included: never the object the agent built, whose getters, proxies or `toJSON` may read
 * differently (bigger, a BigInt) once the event was checked and serialized. So every reader of
 * `event` (the AG-UI and useChat mappers, run streams) gets exactly what the log holds and what a
 * replay or the Redis log gives, and one live event is parsed at most once for all its
 * subscribers (they share the entry). Its user, thread, run, id and type come from the log's own
 * records and the JSON's canonical start (`LogEntry.userId` …), so an entry is routed, checked
 * and written without parsing its event. The cursor string is only built when read (most entries
 * are never resumed from).
 */
export class MemoryLogEntry implements LogEntry {
  private parsed: AgentEvent | undefined = undefined;

  constructor(
    private readonly origin: EntryOrigin,
    readonly offset: number,
    readonly json: string,
    readonly run: RunRecord,
  ) {}

  get event(): AgentEvent {
    // A plain parse, like the Redis log's: its JSON is not remembered for `eventJson` (a WeakMap
    // entry per event costs about a microsecond; every reader of an entry takes `json` from it).
    return (this.parsed ??= JSON.parse(this.json) as AgentEvent);
  }

  get cursor(): string {
    return `${this.origin.cursorPrefix}:${this.offset}`;
  }

  /** The entry's `event` frame (`{"type":"event","threadId":…,"cursor":…,"event":<json>}`) with `json` as its event: no cursor string made. */
  eventFrame(json: string): string {
    return this.origin.eventFramePrefix + this.offset + '","event":' + json + '}';
  }

  get userId(): string {
    // Never undefined while the log holds an entry: the first event sets the owner.
    return this.origin.owner ?? this.event.userId;
  }

  get threadId(): string {
    return this.origin.threadId;
  }

  get runId(): string {
    return this.run.runId;
  }

  get eventId(): string {
    const parsed = this.parsed;
    if (parsed !== undefined) return parsed.id;
    return LEADING_ID.exec(this.json)?.[1] ?? this.event.id;
  }

  get eventType(): string {
    const parsed = this.parsed;
    if (parsed !== undefined) return parsed.type;
    return LEADING_TYPE.exec(this.json)?.[1] ?? this.event.type;
  }
}

export interface Subscriber {
  readonly userId: string;
  readonly listener: LogListener;
}

const NO_JSONS: string[] = Object.freeze([]) as unknown as string[];
const NO_RUNS: RunRecord[] = Object.freeze([]) as unknown as RunRecord[];

export interface ThreadLogLimits {
  maxEntries: number;
  maxBytes: number;
}

/** What every log of one transport shares (one reference per log). */
export interface ThreadLogShared {
  /** The transport's epoch: the start of every cursor. */
  readonly epoch: string;
  readonly limits: ThreadLogLimits;
  readonly retention: Retention;
  /** The transport's logs by thread id. */
  readonly threads: Map<string, ThreadLog>;
  /** The transport's clock when it was made: logs keep their times relative to it (small integers, no heap number per log). */
  readonly origin: number;
  /** The transport's clock. */
  readonly now: () => number;
  /** The logs without subscribers, least recently active first: what the TTL drops. */
  readonly idle: IdleList;
}

/**
 * What a log holds once it has held an entry: its storage (two parallel arrays, each entry's JSON
 * and run, with a moving head) and its links in the transport's `ActivityList`. A thread that is
 * only followed (most threads of idle connections) has none.
 */
class ThreadHistory {
  jsons: string[] = NO_JSONS;
  runs: RunRecord[] = NO_RUNS;
  head = 0;
  /** JSON length of the retained entries. */
  bytes = 0;
  /** `ThreadLog.eventFramePrefix`, made when first asked for (here: only a log that holds entries writes frames). */
  framePrefix: string | undefined = undefined;
  /** Neighbours in the transport's list of logs holding entries, least recently appended to first (see `ActivityList`). */
  olderActive: ThreadLog | undefined = undefined;
  newerActive: ThreadLog | undefined = undefined;
  inActivityList = false;
}

/**
 * One thread's ordered, bounded log (one incarnation of it: a thread dropped and recreated gets a
 * new log with a new `logId`). Offsets start at 1 and never repeat within the log; the oldest
 * entries are dropped past `maxEntries` or `maxBytes`. Storage (`ThreadHistory`, made on the first
 * append) is two parallel arrays with a moving head that is compacted occasionally, so appends and
 * trims are O(1) amortized; the offset of the entry at index `i` is `firstOffset + i - head`.
 */
export class ThreadLog implements EntryOrigin {
  /** Made on the first append: a thread that is only followed holds none. */
  private history: ThreadHistory | undefined = undefined;
  /** Offset the next appended entry gets. */
  nextOffset = 1;
  /**
   * Its live subscribers: most threads have one, held as it is; a `Set` from the second (kept,
   * in subscription order, until the log goes). An idle connection's thread holds no `Set`.
   */
  private subs: Subscriber | Set<Subscriber> | undefined = undefined;
  /** When it was created, last appended to or last left by its last subscriber, in ms after `shared.origin`. */
  private activeAt: number;
  /** `cursorPrefix`, made when first asked for (a thread without entries never is). */
  private prefix: string | undefined = undefined;
  /** @internal Neighbours in the transport's `IdleList` (while the log has no subscriber). */
  olderIdle: ThreadLog | undefined = undefined;
  newerIdle: ThreadLog | undefined = undefined;
  inIdleList = false;

  constructor(
    readonly threadId: string,
    /** Unique per log within the transport's epoch (base 36 in cursors). */
    readonly logId: number,
    /** Set by the first event; a thread never changes owner. */
    public owner: string | undefined,
    readonly shared: ThreadLogShared,
    now: number,
  ) {
    this.activeAt = now - shared.origin;
  }

  /** When it was created or last appended to (the transport's clock). */
  get lastActivity(): number {
    return this.activeAt + this.shared.origin;
  }

  /** Every cursor of this log starts with it (`<epoch>.<logId>.<thread tag>`). */
  get cursorPrefix(): string {
    // `join` makes one flat string (a template would keep a rope of its parts).
    return (this.prefix ??= [this.shared.epoch, this.logId.toString(36), threadTag(this.threadId)].join('.'));
  }

  /** The start of every event frame of this log's entries, up to the cursor's offset (one flat string, kept with the history). */
  get eventFramePrefix(): string {
    const history = this.history;
    if (history !== undefined && history.framePrefix !== undefined) return history.framePrefix;
    // Thread ids are restricted to [A-Za-z0-9_.:-] (checked before any append) and cursors are base 36 and dots: no escaping.
    const prefix = ['{"type":"event","threadId":"', this.threadId, '","cursor":"', this.cursorPrefix, ':'].join('');
    if (history !== undefined) history.framePrefix = prefix;
    return prefix;
  }

  get size(): number {
    const history = this.history;
    return history === undefined ? 0 : history.jsons.length - history.head;
  }

  /** JSON length of the retained entries. */
  get bytes(): number {
    return this.history?.bytes ?? 0;
  }

  get subscriberCount(): number {
    const subs = this.subs;
    return subs === undefined ? 0 : subs instanceof Set ? subs.size : 1;
  }

  /** The subscriber when there is exactly one and no `Set` (the common case: no iteration). */
  get soleSubscriber(): Subscriber | undefined {
    const subs = this.subs;
    return subs instanceof Set ? undefined : subs;
  }

  /** Every subscriber, in subscription order (a copy: safe to change the log while walking it). */
  subscribers(): Subscriber[] {
    const subs = this.subs;
    return subs === undefined ? [] : subs instanceof Set ? [...subs] : [subs];
  }

  /** The subscribers when there are (or were) more than one: walked in place on the append path. */
  get manySubscribers(): ReadonlySet<Subscriber> | undefined {
    const subs = this.subs;
    return subs instanceof Set ? subs : undefined;
  }

  addSubscriber(subscriber: Subscriber): void {
    const subs = this.subs;
    if (subs instanceof Set) subs.add(subscriber);
    else if (subs === undefined) this.subs = subscriber;
    else if (subs !== subscriber) this.subs = new Set([subs, subscriber]);
    // Followed: in use, out of the TTL's reach.
    this.shared.idle.remove(this);
  }

  deleteSubscriber(subscriber: Subscriber): void {
    const subs = this.subs;
    if (subs instanceof Set) subs.delete(subscriber);
    else if (subs === subscriber) this.subs = undefined;
    else return;
    // A thread is in use while it is followed: its TTL counts from when its last subscriber left,
    // not from its last event (else a thread watched past its TTL would be free the moment it is left).
    if (this.subscriberCount === 0) {
      this.activeAt = this.shared.now() - this.shared.origin;
      // Its TTL runs from now: it is the newest idle log (unless it is no longer the transport's).
      if (this.shared.threads.get(this.threadId) === this) this.shared.idle.touched(this);
    }
  }

  clearSubscribers(): void {
    this.subs = undefined;
  }

  /** Offset of the oldest retained entry (equals `nextOffset` when empty). */
  get firstOffset(): number {
    return this.nextOffset - this.size;
  }

  cursorAt(offset: number): string {
    return `${this.cursorPrefix}:${offset}`;
  }

  /** @internal The history's links, for `ActivityList` (made when asked for: a log is listed only once it holds entries). */
  links(): ThreadHistory {
    return (this.history ??= new ThreadHistory());
  }

  /** @internal The links when the log has any. */
  linksIfAny(): ThreadHistory | undefined {
    return this.history;
  }

  /** Appends, then drops the oldest entries (possibly this one, if it alone exceeds `maxBytes`) to stay within the limits. */
  append(json: string, run: RunRecord, now: number): MemoryLogEntry {
    // The entry reads its event from `json` (see `MemoryLogEntry`), never the object the agent built.
    const entry = new MemoryLogEntry(this, this.nextOffset++, json, run);
    const history = (this.history ??= new ThreadHistory());
    if (history.jsons === NO_JSONS) {
      history.jsons = [];
      history.runs = [];
    }
    const { limits, retention } = this.shared;
    history.jsons.push(json);
    history.runs.push(run);
    run.retained++;
    history.bytes += json.length;
    retention.events++;
    retention.bytes += json.length;
    const { maxEntries, maxBytes } = limits;
    const jsons = history.jsons;
    while (history.head < jsons.length && (jsons.length - history.head > maxEntries || history.bytes > maxBytes)) {
      this.release(history, jsons[history.head]!, history.runs[history.head]!);
      // Let them be collected.
      jsons[history.head] = undefined as unknown as string;
      history.runs[history.head++] = undefined as unknown as RunRecord;
    }
    if (history.head > 1024 && history.head * 2 > jsons.length) {
      history.jsons = jsons.slice(history.head);
      history.runs = history.runs.slice(history.head);
      history.head = 0;
    }
    this.activeAt = now - this.shared.origin;
    if (this.subscriberCount === 0) this.shared.idle.touched(this);
    return entry;
  }

  /** Drops every retained entry but keeps the offsets and subscribers; returns how many were dropped. */
  clear(): number {
    const history = this.history;
    if (history === undefined) return 0;
    const dropped = this.size;
    for (let i = history.head; i < history.jsons.length; i++) this.release(history, history.jsons[i]!, history.runs[i]!);
    history.jsons = NO_JSONS;
    history.runs = NO_RUNS;
    history.head = 0;
    // Kept while the activity list still links it (the transport takes it out first).
    if (!history.inActivityList) this.history = undefined;
    return dropped;
  }

  /** Entries with offset > `offset`, oldest first (each parses its event only when asked for it). */
  after(offset: number): MemoryLogEntry[] {
    const history = this.history;
    if (history === undefined) return [];
    const { jsons, runs, head } = history;
    const first = this.firstOffset;
    const start = head + Math.max(0, offset - first + 1);
    const out = new Array<MemoryLogEntry>(Math.max(0, jsons.length - start));
    for (let i = start, k = 0; i < jsons.length; i++, k++) {
      out[k] = new MemoryLogEntry(this, first + i - head, jsons[i]!, runs[i]!);
    }
    return out;
  }

  private release(history: ThreadHistory, json: string, run: RunRecord): void {
    const length = json.length;
    const retention = this.shared.retention;
    history.bytes -= length;
    retention.events--;
    retention.bytes -= length;
    if (--run.retained === 0 && retention.runs.get(run.runId) === run) retention.runs.delete(run.runId);
  }
}

/**
 * The logs that hold entries, least recently appended to first: what the total bounds trim from
 * (`MemoryTransport` drops the oldest one's history). A log moves to the end when appended to and
 * leaves when it holds nothing, so finding the oldest is O(1) instead of a scan of every thread.
 * Intrusive (the links are fields of `ThreadLog`): nothing is allocated per append.
 */
export class ActivityList {
  private oldest: ThreadLog | undefined;
  private newest: ThreadLog | undefined;

  /** `log` was appended to: it becomes the newest (or leaves, if it holds nothing after its own trim). */
  touched(log: ThreadLog): void {
    if (log.size === 0) {
      this.remove(log);
      return;
    }
    if (this.newest === log) return;
    this.remove(log);
    const links = log.links();
    links.olderActive = this.newest;
    links.newerActive = undefined;
    if (this.newest) this.newest.links().newerActive = log;
    else this.oldest = log;
    this.newest = log;
    links.inActivityList = true;
  }

  remove(log: ThreadLog): void {
    const links = log.linksIfAny();
    if (links === undefined || !links.inActivityList) return;
    const { olderActive, newerActive } = links;
    if (olderActive) olderActive.links().newerActive = newerActive;
    else this.oldest = newerActive;
    if (newerActive) newerActive.links().olderActive = olderActive;
    else this.newest = olderActive;
    links.olderActive = undefined;
    links.newerActive = undefined;
    links.inActivityList = false;
  }

  /** The least recently appended-to log holding entries, other than `except`. */
  oldestExcept(except: ThreadLog): ThreadLog | undefined {
    const oldest = this.oldest;
    return oldest === except ? oldest?.linksIfAny()?.newerActive : oldest;
  }

  clear(): void {
    for (let log = this.oldest; log !== undefined; ) {
      const links = log.linksIfAny();
      const next = links?.newerActive;
      if (links !== undefined) {
        links.olderActive = undefined;
        links.newerActive = undefined;
        links.inActivityList = false;
      }
      log = next;
    }
    this.oldest = undefined;
    this.newest = undefined;
  }
}

/**
 * The logs without subscribers, least recently active first (last appended to, created, or left by
 * their last subscriber): what `threadTtlMs` drops, from the oldest, so that a sweep costs O(1)
 * plus the logs it drops, and the least recently active idle log (what `maxThreads` drops) is the
 * first one. Intrusive (the links are fields of `ThreadLog`): nothing is allocated per append, and
 * an append to the newest idle log (or to a followed one) touches no link. `onIdle` is called when
 * a log joins while the list was empty (the transport arms its timer then).
 */
export class IdleList {
  oldest: ThreadLog | undefined = undefined;
  private newest: ThreadLog | undefined = undefined;

  constructor(private readonly onIdle: () => void) {}

  /** `log` has no subscriber and was just active: it becomes the newest. */
  touched(log: ThreadLog): void {
    if (this.newest === log) return;
    this.remove(log);
    log.olderIdle = this.newest;
    log.newerIdle = undefined;
    if (this.newest) this.newest.newerIdle = log;
    else this.oldest = log;
    this.newest = log;
    log.inIdleList = true;
    if (this.oldest === log) this.onIdle();
  }

  remove(log: ThreadLog): void {
    if (!log.inIdleList) return;
    const { olderIdle, newerIdle } = log;
    if (olderIdle) olderIdle.newerIdle = newerIdle;
    else this.oldest = newerIdle;
    if (newerIdle) newerIdle.olderIdle = olderIdle;
    else this.newest = olderIdle;
    log.olderIdle = undefined;
    log.newerIdle = undefined;
    log.inIdleList = false;
  }

  clear(): void {
    for (let log = this.oldest; log !== undefined; ) {
      const next = log.newerIdle;
      log.olderIdle = undefined;
      log.newerIdle = undefined;
      log.inIdleList = false;
      log = next;
    }
    this.oldest = undefined;
    this.newest = undefined;
  }
}
