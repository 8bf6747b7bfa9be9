import { ThreadResolutionError, ValidationError } from '../errors/index.js';
import { parseRunId } from './run-id.js';
import { assertThreadId, isValidRunIdShape } from './thread-id.js';
import { threadForbidden } from '../errors/thread-forbidden.js';

export interface ThreadRoute {
  runId: string;
  threadId: string;
  /** Owner of the thread, when known to this registry. */
  userId: string | undefined;
  /** Where the thread came from: the registry, or parsing a standard run id. */
  source: 'registry' | 'run_id';
}

export interface ThreadRegistryOptions {
  /** Most runs remembered at once; past it the oldest (finished first) are forgotten. Default 100,000. */
  maxRuns?: number;
  /** How long a finished run stays resolvable from the registry. Default 60 s. */
  finishedRunTtlMs?: number;
  /** Most threads remembered at once. Default 100,000. */
  maxThreads?: number;
  /** How long a thread with no active run keeps its owner. Default 1 h. */
  threadTtlMs?: number;
  /** Clock, injectable for tests. */
  now?: () => number;
}

interface RunEntry {
  threadId: string;
  userId: string;
  /** A run started under this id (its `agent_started` was emitted or accepted). */
  started: boolean;
  /** An event of the run reached the transport (`delivered`): `forget` leaves it alone. */
  delivered: boolean;
  finishedAt: number | undefined;
}

interface ThreadEntry {
  userId: string;
  activeRuns: number;
  lastSeen: number;
  /**
   * Runs registered on the thread since this entry was made, less those forgotten (`forget`). At 0
   * nothing but forgotten runs ever established the owner, so the thread is forgotten with them.
   */
  holds: number;
}

/**
 * Maps run → thread → user. Resolution never guesses: registry first, then the standard
 * run id format, and otherwise a `ThreadResolutionError`. Bounded in entries and time.
 */
export class ThreadRegistry {
  private readonly runs = new Map<string, RunEntry>();
  /** Finished run ids in finishing order, so expiry sweeps from the front. */
  private readonly finished = new Map<string, number>();
  /** Threads in least-recently-seen order (touching re-inserts). */
  private readonly threads = new Map<string, ThreadEntry>();
  private readonly maxRuns: number;
  private readonly finishedRunTtlMs: number;
  private readonly maxThreads: number;
  private readonly threadTtlMs: number;
  private readonly now: () => number;
  /** Runs forgotten because of the size bound rather than their TTL. */
  evictions = 0;
  /** Resolutions that failed (counted so bridges can surface them). */
  resolutionFailures = 0;

  constructor(options: ThreadRegistryOptions = {}) {
    this.maxRuns = options.maxRuns ?? 100_000;
    this.finishedRunTtlMs = options.finishedRunTtlMs ?? 60_000;
    this.maxThreads = options.maxThreads ?? 100_000;
    this.threadTtlMs = options.threadTtlMs ?? 3_600_000;
    this.now = options.now ?? Date.now;
  }

  get size(): { runs: number; threads: number } {
    return { runs: this.runs.size, threads: this.threads.size };
  }

  /**
   * Records that `runId` belongs to `threadId` of `userId`. A thread has one owner: registering a
   * run of another user's thread throws an `AuthError`, so nobody can inject events into it.
   */
  register(runId: string, threadId: string, userId: string): void {
    if (!isValidRunIdShape(runId)) parseRunId(runId); // throws the descriptive ValidationError
    assertThreadId(threadId);
    if (typeof userId !== 'string' || userId.length === 0) {
      throw new ValidationError('userId must be a non-empty string', { field: 'userId', code: 'INVALID_USER_ID' });
    }
    const now = this.now();
    this.sweep(now);
    const existing = this.runs.get(runId);
    if (existing) {
      if (existing.threadId !== threadId || existing.userId !== userId) {
        throw new ValidationError(`Run id "${runId}" is already registered to another thread or user`, {
          field: 'runId',
          code: 'RUN_ID_CONFLICT',
        });
      }
      return;
    }
    const thread = this.threads.get(threadId);
    if (thread && thread.userId !== userId) {
      throw threadForbidden(threadId);
    }
    if (this.runs.size >= this.maxRuns) this.evictOldestRun();
    this.runs.set(runId, { threadId, userId, started: false, delivered: false, finishedAt: undefined });
    this.touchThread(threadId, userId, now, +1, 1);
  }

  /**
   * Marks a registered run as started: from now on its id is in use (`isUsed`). A run id that was
   * only registered (a front end that checks the thread's owner before it starts the run) is not.
   */
  markStarted(runId: string): void {
    const entry = this.runs.get(runId);
    if (entry) entry.started = true;
  }

  /**
   * Records that an event of the run reached the transport (the bridge calls it on a run's first
   * delivery through a queue): the thread's owner is then established by the transport's answer, and
   * `forget` no longer drops the run or that owner. A run this registry does not know (its id is a
   * standard run id routed by `parseRunId`, or it was forgotten after a refused start while its
   * later events were held) makes the user the owner of a thread it knows no owner of.
   */
  delivered(runId: string, threadId: string, userId: string): void {
    const entry = this.runs.get(runId);
    if (entry) {
      entry.delivered = true;
      return;
    }
    const thread = this.threads.get(threadId);
    if (thread) {
      if (thread.userId === userId) thread.holds++;
      return;
    }
    // Held (no run counted active in it): the owner lasts `threadTtlMs` from now, as after a finished run.
    this.touchThread(threadId, userId, this.now(), 0, 1);
  }

  /** Whether a run already started (or finished) under this id, as far as this registry remembers. */
  isUsed(runId: string): boolean {
    const entry = this.runs.get(runId);
    return entry !== undefined && (entry.started || entry.finishedAt !== undefined);
  }

  /** Marks a run finished; it stays resolvable for `finishedRunTtlMs`. */
  finish(runId: string): void {
    const entry = this.runs.get(runId);
    if (!entry || entry.finishedAt !== undefined) return;
    const now = this.now();
    entry.finishedAt = now;
    this.finished.set(runId, now);
    this.touchThread(entry.threadId, entry.userId, now, -1);
    this.sweep(now);
  }

  /**
   * Forgets a run entirely, as if it had never been registered: for a run none of whose events was
   * delivered (its `agent_started` was refused for good: another user's thread, a run id in use).
   * Its id is no longer used here, and the thread's owner goes too when only forgotten runs had
   * established it; a thread that any other run registered on (delivered, in progress) keeps its owner.
   *
   * A run any event of which was delivered (`delivered`) is left alone: e.g. a second, different
   * `agent_started` of a run whose queue the bridge had swept (idle) and that the transport refuses
   * (`RUN_ID_CONFLICT`) must not drop the run nor the owner its earlier events established.
   *
   * Until the transport answers, a registered run holds its thread on this registry: another
   * user's start of it (e.g. the real owner's, while an intruder's start is in flight) is refused
   * `THREAD_FORBIDDEN` by `register` for that short while, and is accepted once the intruder's start
   * is refused and forgotten.
   */
  forget(runId: string): void {
    const entry = this.runs.get(runId);
    if (!entry || entry.delivered) return;
    this.runs.delete(runId);
    this.finished.delete(runId);
    const thread = this.threads.get(entry.threadId);
    if (!thread || thread.userId !== entry.userId) return;
    if (entry.finishedAt === undefined) thread.activeRuns = Math.max(0, thread.activeRuns - 1);
    thread.holds = Math.max(0, thread.holds - 1);
    if (thread.holds === 0 && thread.activeRuns === 0) this.threads.delete(entry.threadId);
  }

  /** Resolution order: registry, then `parseRunId`; otherwise `ThreadResolutionError`. */
  resolve(runId: string): ThreadRoute {
    const entry = this.runs.get(runId);
    if (entry) return { runId, threadId: entry.threadId, userId: entry.userId, source: 'registry' };
    let threadId: string;
    try {
      threadId = parseRunId(runId).threadId;
    } catch (cause) {
      this.resolutionFailures++;
      throw new ThreadResolutionError(
        `Cannot resolve the thread of run ${JSON.stringify(String(runId).slice(0, 120))}: not registered and not a standard run id`,
        { cause, details: { runId } },
      );
    }
    return { runId, threadId, userId: this.threads.get(threadId)?.userId, source: 'run_id' };
  }

  /** Whether the registry currently remembers this run (active, or finished within its TTL). */
  has(runId: string): boolean {
    return this.runs.has(runId);
  }

  /** Owner of a thread, if this registry knows it. */
  ownerOf(threadId: string): string | undefined {
    const thread = this.threads.get(threadId);
    if (!thread) return undefined;
    if (thread.activeRuns === 0 && thread.lastSeen + this.threadTtlMs <= this.now()) return undefined;
    return thread.userId;
  }

  /** Forgets expired finished runs and idle threads. Called on every register/finish. */
  sweep(now: number = this.now()): void {
    for (const [runId, finishedAt] of this.finished) {
      if (finishedAt + this.finishedRunTtlMs > now) break;
      this.finished.delete(runId);
      this.runs.delete(runId);
    }
    for (const [threadId, thread] of this.threads) {
      if (thread.lastSeen + this.threadTtlMs > now) break;
      if (thread.activeRuns === 0) this.threads.delete(threadId);
    }
  }

  private touchThread(threadId: string, userId: string, now: number, activeDelta: number, hold = 0): void {
    // Remade by a run finishing after its thread was forgotten: that run held it.
    const thread = this.threads.get(threadId) ?? { userId, activeRuns: 0, lastSeen: now, holds: hold > 0 ? 0 : 1 };
    thread.holds += hold;
    this.threads.delete(threadId);
    thread.activeRuns = Math.max(0, thread.activeRuns + activeDelta);
    thread.lastSeen = now;
    if (this.threads.size >= this.maxThreads) this.evictOldestIdleThread();
    this.threads.set(threadId, thread);
  }

  private evictOldestRun(): void {
    const victim = this.finished.keys().next();
    const runId = victim.done ? this.runs.keys().next().value : victim.value;
    if (runId === undefined) return;
    const entry = this.runs.get(runId);
    this.finished.delete(runId);
    this.runs.delete(runId);
    if (entry && entry.finishedAt === undefined) this.touchThread(entry.threadId, entry.userId, this.now(), -1);
    this.evictions++;
  }

  private evictOldestIdleThread(): void {
    for (const [threadId, thread] of this.threads) {
      if (thread.activeRuns === 0) {
        this.threads.delete(threadId);
        return;
      }
    }
  }
}
