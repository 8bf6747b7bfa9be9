import type { AgentEvent } from '../../events/schema.js';
import type { LogEntry, LogListener } from '../types.js';

/** A log entry whose cursor string is only built when read (most entries are never resumed from). */
class MemoryLogEntry implements LogEntry {
  json?: string;
  constructor(
    private readonly epoch: string,
    readonly offset: number,
    readonly event: AgentEvent,
  ) {}

  get cursor(): string {
    return `${this.epoch}:${this.offset}`;
  }
}

export interface Subscriber {
  readonly userId: string;
  readonly listener: LogListener;
}

/**
 * One thread's ordered, bounded log. Offsets start at 1 and never repeat within an epoch; the
 * oldest entries are dropped past `maxEntries`. Storage is an array with a moving head that is
 * compacted occasionally, so appends and trims are O(1) amortized.
 */
export class ThreadLog {
  private entries: LogEntry[] = [];
  private head = 0;
  /** Offset the next appended entry gets (starts at `firstOffset`, 1 for the first log of a thread in an epoch). */
  nextOffset: number;
  readonly subscribers = new Set<Subscriber>();
  /** Whether the last append trimmed the oldest entry. */
  trimmed = false;
  lastActivity: number;

  constructor(
    readonly threadId: string,
    readonly epoch: string,
    /** Set by the first event; a thread never changes owner. */
    public owner: string | undefined,
    private readonly maxEntries: number,
    now: number,
    firstOffset = 1,
  ) {
    this.lastActivity = now;
    this.nextOffset = firstOffset;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  /** Offset of the oldest retained entry (equals `nextOffset` when empty). */
  get firstOffset(): number {
    return this.nextOffset - this.size;
  }

  cursorAt(offset: number): string {
    return `${this.epoch}:${offset}`;
  }

  /** Appends; `trimmed` tells whether the oldest entry was dropped to stay within `maxEntries`. */
  append(event: AgentEvent, now: number): LogEntry {
    const entry = new MemoryLogEntry(this.epoch, this.nextOffset++, event);
    this.entries.push(entry);
    this.trimmed = false;
    if (this.size > this.maxEntries) {
      this.trimmed = true;
      this.entries[this.head++] = undefined as unknown as LogEntry; // let it be collected
      if (this.head > 1024 && this.head * 2 > this.entries.length) {
        this.entries = this.entries.slice(this.head);
        this.head = 0;
      }
    }
    this.lastActivity = now;
    return entry;
  }

  /** Drops every retained entry but keeps offsets and subscribers; returns how many were dropped. */
  clear(): number {
    const dropped = this.size;
    this.entries = [];
    this.head = 0;
    return dropped;
  }

  /** Entries with offset > `offset`, oldest first. */
  after(offset: number): LogEntry[] {
    const start = this.head + Math.max(0, offset - this.firstOffset + 1);
    return this.entries.slice(start);
  }
}
