import type { AgentEvent } from '../../src/client/index.js';

/**
 * What the page keeps in sessionStorage per user, so a reload resumes the same thread after
 * the last cursor and still shows every earlier event: `events` are exactly the events up to
 * and including `cursor`, so the two never disagree.
 */
export interface SavedThread {
  threadId: string;
  cursor: string | undefined;
  events: AgentEvent[];
}

/** Past this many events the page stops saving them and, on reload, replays the thread from the server instead. */
const MAX_SAVED_EVENTS = 2_000;

export class ThreadStore {
  private readonly key: string;
  private saveScheduled = false;
  private current: SavedThread;

  constructor(userId: string) {
    this.key = `agentwire-demo:${userId}`;
    this.current = this.load() ?? { threadId: newThreadId(userId), cursor: undefined, events: [] };
    this.save();
  }

  get thread(): Readonly<SavedThread> {
    return this.current;
  }

  /** Records an event received with its cursor; saved in one batch per task. */
  add(event: AgentEvent, cursor: string): void {
    this.current.events.push(event);
    this.current.cursor = cursor;
    this.scheduleSave();
  }

  /** Starts a new thread (forgets the saved one). */
  reset(userId: string): SavedThread {
    this.current = { threadId: newThreadId(userId), cursor: undefined, events: [] };
    this.save();
    return this.current;
  }

  /** Writes now (also called on `pagehide`). */
  save(): void {
    this.saveScheduled = false;
    const { threadId, cursor, events } = this.current;
    // Too many to keep: save no cursor, so a reload replays everything from the server.
    const saved: SavedThread = events.length > MAX_SAVED_EVENTS ? { threadId, cursor: undefined, events: [] } : this.current;
    try {
      sessionStorage.setItem(this.key, JSON.stringify(saved));
    } catch {
      // Storage full or disabled: a reload then replays the thread from the server.
    }
  }

  private scheduleSave(): void {
    if (this.saveScheduled) return;
    this.saveScheduled = true;
    setTimeout(() => this.save(), 0);
  }

  private load(): SavedThread | undefined {
    try {
      const raw = sessionStorage.getItem(this.key);
      if (!raw) return undefined;
      const saved = JSON.parse(raw) as Partial<SavedThread>;
      if (typeof saved.threadId !== 'string' || !Array.isArray(saved.events)) return undefined;
      const cursor = typeof saved.cursor === 'string' ? saved.cursor : undefined;
      return { threadId: saved.threadId, cursor, events: cursor === undefined ? [] : saved.events };
    } catch {
      return undefined;
    }
  }
}

function newThreadId(userId: string): string {
  const random = crypto.getRandomValues(new Uint32Array(2));
  return `web-${userId}-${Array.from(random, (n) => n.toString(36)).join('')}`;
}
