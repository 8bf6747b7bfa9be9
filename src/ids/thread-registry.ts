import { ThreadResolutionError, ValidationError } from '../errors/index.js';
import { parseRunId } from './run-id.js';
import { assertThreadId, isValidRunIdShape } from './thread-id.js';
import { assertUserId } from './user-id.js';
import { threadForbidden } from '../errors/thread-forbidden.js';
import { checker, given, shown } from '../errors/options.js';

export interface ThreadRoute {
  runId: string;
  threadId: string;
  /** Owner of the thread, when known to this registry. */
  userId: string | undefined;
  /** Where the thread came from: the registry, or parsing a standard run id. */
  source: 'registry' | 'run_id';
}

/**
 * Invalid values (`null`, `NaN`, `-1`, `1.5` for a count, `Infinity`, `'10'`, …) throw
 * `ValidationError` `INVALID_OPTION` naming the option; `undefined` means the default.
 */
export interface ThreadRegistryOptions {
  /** Most runs remembered at once; past it the oldest (finished first) are forgotten. A positive integer. Default 100,000. */
  maxRuns?: number;
  /** How long a finished run stays resolvable from the registry, a finite number of ms > 0. Default 60 s. */
  finishedRunTtlMs?: number;
  /** Most threads remembered at once. A positive integer. Default 100,000. */
  maxThreads?: number;
  /** How long a thread with no active run keeps its owner, a finite number of ms > 0. Default 1 h. */
  threadTtlMs?: number;
  /**
   * Whether a run registered on a thread that has no owner yet claims it against other users'
   * runs while it is registered and undelivered (default false). Off, a thread's owner comes only
   * from a delivered run and the transport refuses other users' events (the built-in logs do), so
   * an intruder's starts in flight cannot lock the owner out. On, for a transport that does not
   * check owners: `AgentBridge` sets it for a transport without `ownerOf`.
   */
  claimOnRegister?: boolean;
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
  /**
   * The thread's owner: the user of a run of it that delivered an event (the transport took it as
   * the thread's). Undefined while only undelivered runs (their start in flight) are registered on it:
   * those refuse nobody, the transport decides.
   */
  userId: string | undefined;
  activeRuns: number;
  lastSeen: number;
  /**
   * Runs registered on the thread since this entry was made (of any user while it has no owner),
   * less those forgotten (`forget`). At 0, with no owner, only forgotten runs ever made the entry,
   * so the thread is forgotten with them.
   */
  holds: number;
  /** With `claimOnRegister`: the user whose registered runs hold the thread before it has an owner. */
  claimant: string | undefined;
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
  private readonly claimOnRegister: boolean;
  /** Runs forgotten because of the size bound rather than their TTL. */
  evictions = 0;
  /** Resolutions that failed (counted so bridges can surface them). */
  resolutionFailures = 0;

  constructor(options: ThreadRegistryOptions = {}) {
    // Only `undefined` means the default: a TTL of -1 or NaN would make every owner expire at once (no owner check).
    const check = checker('ThreadRegistry');
    if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object (got ${shown(options)})`);
    this.maxRuns = check.integer('maxRuns', given(options.maxRuns, 100_000));
    this.finishedRunTtlMs = check.duration('finishedRunTtlMs', given(options.finishedRunTtlMs, 60_000));
    this.maxThreads = check.integer('maxThreads', given(options.maxThreads, 100_000));
    this.threadTtlMs = check.duration('threadTtlMs', given(options.threadTtlMs, 3_600_000));
    this.now = check.fn('now', given(options.now, Date.now));
    this.claimOnRegister = check.boolean('claimOnRegister', given(options.claimOnRegister, false));
  }

  get size(): { runs: number; threads: number } {
    return { runs: this.runs.size, threads: this.threads.size };
  }

  /**
   * Records that `runId` belongs to `threadId` of `userId`. A thread has one owner: registering a
   * run of another user's thread throws an `AuthError`, so nobody can inject events into it. The
   * owner is the user of a delivered run (`delivered`): a run registered but not delivered yet (its
   * start waits for the transport's answer) refuses no other user's run, so an intruder's starts in
   * flight cannot lock the real owner out; the transport, which holds the thread's owner, refuses them.
   * With `claimOnRegister` (a transport that does not check owners) a registered run claims a
   * thread with no owner yet against other users' runs until it delivers or is forgotten.
   */
  register(runId: string, threadId: string, userId: string): void {
    if (!isValidRunIdShape(runId)) parseRunId(runId); // throws the descriptive ValidationError
    assertThreadId(threadId);
    assertUserId(userId);
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
    const holder = this.holderOf(thread);
    if (holder !== undefined && holder !== userId) {
      throw threadForbidden(threadId);
    }
    if (this.runs.size >= this.maxRuns) this.evictOldestRun();
    this.runs.set(runId, { threadId, userId, started: false, delivered: false, finishedAt: undefined });
    const held = this.touchThread(threadId, undefined, now, +1, 1);
    if (this.claimOnRegister) held.claimant = userId;
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
   * delivery through a queue): the thread's owner is then established by the transport's answer (the
   * run's user, when the thread has none here yet), and `forget` no longer drops the run or that
   * owner. A delivery never takes a thread the registry knows another owner of. A run this registry
   * does not know (its id is a standard run id routed by `parseRunId`, or it was forgotten after a
   * refused start while its later events were held) makes the user the owner of a thread it knows no
   * owner of.
   */
  delivered(runId: string, threadId: string, userId: string): void {
    const entry = this.runs.get(runId);
    if (entry) {
      entry.delivered = true;
      const thread = this.threads.get(entry.threadId);
      if (thread) thread.userId ??= entry.userId;
      else this.touchThread(entry.threadId, entry.userId, this.now(), 0, 1);
      return;
    }
    const thread = this.threads.get(threadId);
    if (thread) {
      if (thread.userId === undefined) thread.userId = userId;
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
    this.touchThread(entry.threadId, entry.delivered ? entry.userId : undefined, now, -1);
    this.sweep(now);
  }

  /**
   * Forgets a run entirely, as if it had never been registered: for a run none of whose events was
   * delivered (its `agent_started` was refused for good: another user's thread, a run id in use).
   * Its id is no longer used here. An undelivered run never made the thread's owner, so forgetting
   * it never takes an owner away; the thread's entry goes when it has no owner and only forgotten
   * runs had made it.
   *
   * A run any event of which was delivered (`delivered`) is left alone: e.g. a second, different
   * `agent_started` of a run whose queue the bridge had swept (idle) and that the transport refuses
   * (`RUN_ID_CONFLICT`) must not drop the run nor the owner its earlier events established.
   *
   * Until the transport answers, a registered run does not hold its thread on this registry:
   * another user's start of it (e.g. the real owner's, while an intruder's starts are in flight) is
   * registered too, and the transport refuses whichever is not the owner's.
   */
  forget(runId: string): void {
    const entry = this.runs.get(runId);
    if (!entry || entry.delivered) return;
    this.runs.delete(runId);
    this.finished.delete(runId);
    const thread = this.threads.get(entry.threadId);
    if (!thread) return;
    if (entry.finishedAt === undefined) thread.activeRuns = Math.max(0, thread.activeRuns - 1);
    thread.holds = Math.max(0, thread.holds - 1);
    if (thread.userId === undefined && thread.holds === 0 && thread.activeRuns === 0) this.threads.delete(entry.threadId);
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
        `Cannot resolve the thread of run ${typeof runId === 'string' ? JSON.stringify(runId.slice(0, 120)) : shown(runId)}: not registered and not a standard run id`,
        { cause, details: { runId } },
      );
    }
    return { runId, threadId, userId: this.holderOf(this.threads.get(threadId)), source: 'run_id' };
  }

  /** The user a thread's runs are refused to others for: its owner, or (`claimOnRegister`) the claimant while its runs hold it. */
  private holderOf(thread: ThreadEntry | undefined): string | undefined {
    if (thread === undefined) return undefined;
    return thread.userId ?? (this.claimOnRegister && thread.holds > 0 ? thread.claimant : undefined);
  }

  /** Whether the registry currently remembers this run (active, or finished within its TTL). */
  has(runId: string): boolean {
    return this.runs.has(runId);
  }

  /** Owner of a thread (the user of a run of it that delivered; with `claimOnRegister`, also of one registered), if this registry knows it. */
  ownerOf(threadId: string): string | undefined {
    const thread = this.threads.get(threadId);
    const holder = this.holderOf(thread);
    if (holder === undefined) return undefined;
    if (thread!.activeRuns === 0 && thread!.lastSeen + this.threadTtlMs <= this.now()) return undefined;
    return holder;
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

  private touchThread(threadId: string, userId: string | undefined, now: number, activeDelta: number, hold = 0): ThreadEntry {
    // Remade by a run finishing after its thread was forgotten: that run held it.
    const thread = this.threads.get(threadId) ?? { userId, activeRuns: 0, lastSeen: now, holds: hold > 0 ? 0 : 1, claimant: undefined };
    thread.holds += hold;
    this.threads.delete(threadId);
    thread.activeRuns = Math.max(0, thread.activeRuns + activeDelta);
    thread.lastSeen = now;
    if (this.threads.size >= this.maxThreads) this.evictOldestIdleThread();
    this.threads.set(threadId, thread);
    return thread;
  }

  private evictOldestRun(): void {
    const victim = this.finished.keys().next();
    const runId = victim.done ? this.runs.keys().next().value : victim.value;
    if (runId === undefined) return;
    const entry = this.runs.get(runId);
    this.finished.delete(runId);
    this.runs.delete(runId);
    if (entry && entry.finishedAt === undefined) this.touchThread(entry.threadId, entry.delivered ? entry.userId : undefined, this.now(), -1);
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
