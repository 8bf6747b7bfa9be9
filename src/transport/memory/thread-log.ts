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

/**
 * A log entry: the event, its JSON (made once at append; its length is what the byte bounds
 * count) and the run it belongs to. The cursor string is only built when read (most entries are
 * never resumed from).
 */
export class MemoryLogEntry implements LogEntry {
  constructor(
    /** `<epoch>.<log id>.<thread tag>`: shared by every entry of one thread log. */
    private readonly prefix: string,
    readonly offset: number,
    readonly event: AgentEvent,
    readonly json: string,
    readonly run: RunRecord,
  ) {}

  get cursor(): string {
    return `${this.prefix}:${this.offset}`;
  }
}

export interface Subscriber {
  readonly userId: string;
  readonly listener: LogListener;
}

export interface ThreadLogLimits {
  maxEntries: number;
  maxBytes: number;
}

/**
 * One thread's ordered, bounded log (one incarnation of it: a thread dropped and recreated gets a
 * new log with a new `logId`). Offsets start at 1 and never repeat within the log; the oldest
 * entries are dropped past `maxEntries` or `maxBytes`. Storage is an array with a moving head
 * that is compacted occasionally, so appends and trims are O(1) amortized.
 */
export class ThreadLog {
  private entries: MemoryLogEntry[] = [];
  private head = 0;
  /** Offset the next appended entry gets. */
  nextOffset = 1;
  /** JSON length of the retained entries. */
  bytes = 0;
  readonly subscribers = new Set<Subscriber>();
  lastActivity: number;
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
  }

  get size(): number {
    return this.entries.length - this.head;
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
    const entry = new MemoryLogEntry(this.cursorPrefix, this.nextOffset++, event, json, run);
    this.entries.push(entry);
    run.retained++;
    this.bytes += json.length;
    this.retention.events++;
    this.retention.bytes += json.length;
    const { maxEntries, maxBytes } = this.limits;
    while (this.head < this.entries.length && (this.entries.length - this.head > maxEntries || this.bytes > maxBytes)) {
      this.release(this.entries[this.head]!);
      this.entries[this.head++] = undefined as unknown as MemoryLogEntry; // let it be collected
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    this.lastActivity = now;
    return entry;
  }

  /** Drops every retained entry but keeps the offsets and subscribers; returns how many were dropped. */
  clear(): number {
    const dropped = this.size;
    for (let i = this.head; i < this.entries.length; i++) this.release(this.entries[i]!);
    this.entries = [];
    this.head = 0;
    return dropped;
  }

  /** Entries with offset > `offset`, oldest first. */
  after(offset: number): MemoryLogEntry[] {
    const start = this.head + Math.max(0, offset - this.firstOffset + 1);
    return this.entries.slice(start);
  }

  private release(entry: MemoryLogEntry): void {
    const length = entry.json.length;
    this.bytes -= length;
    this.retention.events--;
    this.retention.bytes -= length;
    const run = entry.run;
    if (--run.retained === 0 && this.retention.runs.get(run.runId) === run) this.retention.runs.delete(run.runId);
  }
}
