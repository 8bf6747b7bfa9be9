import { parseStoredEvent } from '../../events/json.js';
import type { AgentEvent } from '../../events/schema.js';
import type { LogEntry, LogListener } from '../types.js';

/**
 * What the log knows of one run while any of its events is retained: how many are, and its
 * `agent_started` / `agent_completed` entries (a repeat of the same event is not stored twice;
 * nothing may follow the terminal one). Forgotten with its last retained event.
 */
export interface RunRecord {
  readonly runId: string;
  retained: number;
  /** The run's first and last entries (live entries: they keep their event, two per run). */
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
}

/** `{"v":<n>,"id":"<id>"` at the start of an event's JSON (how `eventJson` writes every event of a `RunEmitter`); ids with escapes are left to the parser. */
const LEADING_ID = /^\{"v":\d+,"id":"([^"\\]*)"/;

/**
 * A log entry as the log hands it out: its JSON (made once at append; its length is what the byte
 * bounds count), its offset and run. The log itself retains only the JSON string and the run of
 * each entry (one string per event instead of the event object, its data and a copy of every
 * string inside it: the event's JSON is what a replay writes anyway). A live entry carries the
 * event it was appended with; a replayed one parses its JSON the first time `event` is read, and
 * keeps the result only as long as the caller keeps the entry. Its user, thread, run and id come
 * from the log's own records (`LogEntry.userId` …), so a replay is routed, checked and written
 * without parsing a single event. The cursor string is only built when read (most entries are
 * never resumed from).
 */
export class MemoryLogEntry implements LogEntry {
  private parsed: AgentEvent | undefined;

  constructor(
    private readonly origin: EntryOrigin,
    readonly offset: number,
    readonly json: string,
    readonly run: RunRecord,
    event?: AgentEvent,
  ) {
    this.parsed = event;
  }

  get event(): AgentEvent {
    return (this.parsed ??= parseStoredEvent(this.json));
  }

  get cursor(): string {
    return `${this.origin.cursorPrefix}:${this.offset}`;
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

/**
 * One thread's ordered, bounded log (one incarnation of it: a thread dropped and recreated gets a
 * new log with a new `logId`). Offsets start at 1 and never repeat within the log; the oldest
 * entries are dropped past `maxEntries` or `maxBytes`. Storage is two parallel arrays (each entry's
 * JSON and run) with a moving head that is compacted occasionally, so appends and trims are O(1)
 * amortized; the offset of the entry at index `i` is `firstOffset + i - head`.
 */
export class ThreadLog implements EntryOrigin {
  /** Shared empty (frozen) until the first append: a thread that is only followed holds no arrays. */
  private jsons: string[] = NO_JSONS;
  private runs: RunRecord[] = NO_RUNS;
  private head = 0;
  /** Offset the next appended entry gets. */
  nextOffset = 1;
  /** JSON length of the retained entries. */
  bytes = 0;
  /**
   * Its live subscribers: most threads have one, held in a field; a `Set` is made for a second
   * (and kept, in subscription order, until the log goes). An idle connection holds no `Set`.
   */
  private onlySubscriber: Subscriber | undefined;
  private subscriberSet: Set<Subscriber> | undefined;
  lastActivity: number;
  /** Neighbours in the transport's list of logs holding entries, least recently appended to first (see `ActivityList`). */
  olderActive: ThreadLog | undefined = undefined;
  newerActive: ThreadLog | undefined = undefined;
  inActivityList = false;
  /** Every cursor of this log starts with it (`<epoch>.<logId>.<thread tag>`). */
  readonly cursorPrefix: string;

  constructor(
    readonly threadId: string,
    /** Unique per log within the transport's epoch (base 36 in cursors). */
    readonly logId: number,
    epoch: string,
    tag: string,
    /** Set by the first event; a thread never changes owner. */
    public owner: string | undefined,
    private readonly limits: ThreadLogLimits,
    private readonly retention: Retention,
    now: number,
  ) {
    this.lastActivity = now;
    this.cursorPrefix = `${epoch}.${logId.toString(36)}.${tag}`;
    // Flattened now: one string held per log instead of a rope of its parts.
    this.cursorPrefix.charCodeAt(0);
  }

  get size(): number {
    return this.jsons.length - this.head;
  }

  get subscriberCount(): number {
    return this.subscriberSet ? this.subscriberSet.size : this.onlySubscriber ? 1 : 0;
  }

  /** The subscriber when there is exactly one in the field (the common case: no iteration). */
  get soleSubscriber(): Subscriber | undefined {
    return this.onlySubscriber;
  }

  /** Every subscriber, in subscription order (a copy: safe to change the log while walking it). */
  subscribers(): Subscriber[] {
    return this.subscriberSet ? [...this.subscriberSet] : this.onlySubscriber ? [this.onlySubscriber] : [];
  }

  /** The subscribers when there are (or were) more than one: walked in place on the append path. */
  get manySubscribers(): ReadonlySet<Subscriber> | undefined {
    return this.subscriberSet;
  }

  addSubscriber(subscriber: Subscriber): void {
    if (this.subscriberSet) this.subscriberSet.add(subscriber);
    else if (this.onlySubscriber === undefined) this.onlySubscriber = subscriber;
    else if (this.onlySubscriber !== subscriber) {
      this.subscriberSet = new Set([this.onlySubscriber, subscriber]);
      this.onlySubscriber = undefined;
    }
  }

  deleteSubscriber(subscriber: Subscriber): void {
    if (this.subscriberSet) this.subscriberSet.delete(subscriber);
    else if (this.onlySubscriber === subscriber) this.onlySubscriber = undefined;
  }

  clearSubscribers(): void {
    this.onlySubscriber = undefined;
    this.subscriberSet = undefined;
  }

  /** Offset of the oldest retained entry (equals `nextOffset` when empty). */
  get firstOffset(): number {
    return this.nextOffset - this.size;
  }

  cursorAt(offset: number): string {
    return `${this.cursorPrefix}:${offset}`;
  }

  /** Appends, then drops the oldest entries (possibly this one, if it alone exceeds `maxBytes`) to stay within the limits. */
  append(event: AgentEvent, json: string, run: RunRecord, now: number): MemoryLogEntry {
    const entry = new MemoryLogEntry(this, this.nextOffset++, json, run, event);
    if (this.jsons === NO_JSONS) {
      this.jsons = [];
      this.runs = [];
    }
    this.jsons.push(json);
    this.runs.push(run);
    run.retained++;
    this.bytes += json.length;
    this.retention.events++;
    this.retention.bytes += json.length;
    const { maxEntries, maxBytes } = this.limits;
    const jsons = this.jsons;
    while (this.head < jsons.length && (jsons.length - this.head > maxEntries || this.bytes > maxBytes)) {
      this.release(jsons[this.head]!, this.runs[this.head]!);
      // Let them be collected.
      jsons[this.head] = undefined as unknown as string;
      this.runs[this.head++] = undefined as unknown as RunRecord;
    }
    if (this.head > 1024 && this.head * 2 > jsons.length) {
      this.jsons = jsons.slice(this.head);
      this.runs = this.runs.slice(this.head);
      this.head = 0;
    }
    this.lastActivity = now;
    return entry;
  }

  /** Drops every retained entry but keeps the offsets and subscribers; returns how many were dropped. */
  clear(): number {
    const dropped = this.size;
    for (let i = this.head; i < this.jsons.length; i++) this.release(this.jsons[i]!, this.runs[i]!);
    this.jsons = NO_JSONS;
    this.runs = NO_RUNS;
    this.head = 0;
    return dropped;
  }

  /** Entries with offset > `offset`, oldest first (each parses its event only when asked for it). */
  after(offset: number): MemoryLogEntry[] {
    const first = this.firstOffset;
    const start = this.head + Math.max(0, offset - first + 1);
    const out = new Array<MemoryLogEntry>(Math.max(0, this.jsons.length - start));
    for (let i = start, k = 0; i < this.jsons.length; i++, k++) {
      out[k] = new MemoryLogEntry(this, first + i - this.head, this.jsons[i]!, this.runs[i]!);
    }
    return out;
  }

  private release(json: string, run: RunRecord): void {
    const length = json.length;
    this.bytes -= length;
    this.retention.events--;
    this.retention.bytes -= length;
    if (--run.retained === 0 && this.retention.runs.get(run.runId) === run) this.retention.runs.delete(run.runId);
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
    log.olderActive = this.newest;
    log.newerActive = undefined;
    if (this.newest) this.newest.newerActive = log;
    else this.oldest = log;
    this.newest = log;
    log.inActivityList = true;
  }

  remove(log: ThreadLog): void {
    if (!log.inActivityList) return;
    const { olderActive, newerActive } = log;
    if (olderActive) olderActive.newerActive = newerActive;
    else this.oldest = newerActive;
    if (newerActive) newerActive.olderActive = olderActive;
    else this.newest = olderActive;
    log.olderActive = undefined;
    log.newerActive = undefined;
    log.inActivityList = false;
  }

  /** The least recently appended-to log holding entries, other than `except`. */
  oldestExcept(except: ThreadLog): ThreadLog | undefined {
    const oldest = this.oldest;
    return oldest === except ? oldest?.newerActive : oldest;
  }

  clear(): void {
    for (let log = this.oldest; log !== undefined; ) {
      const next = log.newerActive;
      log.olderActive = undefined;
      log.newerActive = undefined;
      log.inActivityList = false;
      log = next;
    }
    this.oldest = undefined;
    this.newest = undefined;
  }
}
