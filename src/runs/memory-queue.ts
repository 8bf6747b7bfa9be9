import { EventEmitter } from 'eventemitter3';
import { nanoid } from 'nanoid';
import type { BaseAgent } from '../agent/base-agent.js';
import type { AgentBridge } from '../bridge/agent-bridge.js';
import type { EventLog } from '../transport/types.js';
import { AbortError, AuthError, GatewayError, StateError, ValidationError } from '../errors/index.js';
import { given, shown } from '../errors/options.js';
import { assertUserId } from '../ids/user-id.js';
import {
  closeTimeout,
  agentSetOf,
  agentsByName,
  resolveServeOptions,
  emptyFinished,
  executeJob,
  newWaitHistogram,
  positiveInt,
  prepareJob,
  resolveAdmission,
  type RunJob,
} from './shared.js';
import type { AdmissionLimits, AgentSet, CancelResult, CloseOptions, RunInfo, RunQueue, RunQueueStats, RunWorker, RunWorkerEvents, ServeOptions, SubmitOptions } from './types.js';
import { threadForbidden } from '../errors/thread-forbidden.js';

export interface MemoryRunQueueOptions extends AdmissionLimits {
  /** Finished runs whose status is kept (the oldest are forgotten first). Default 10,000. */
  maxFinished?: number;
}

interface Entry {
  job: RunJob;
  info: RunInfo;
  controller?: AbortController;
  /** The run no longer counts toward its thread's queue-side owner (it was refused the thread). */
  released?: boolean;
  /** Why it ends without running, when it was cancelled (or the queue closed) while it waited. */
  endBefore?: AbortError;
  /** Settles once the run ended and its status says so (set when a worker takes it). */
  ended?: Promise<void>;
}

const CANCELLED_QUEUED = 'The run was cancelled before a worker took it';
const CLOSED_QUEUED = 'The run queue closed before a worker took it';

/**
 * The embedded run queue: submit, cancel and status in one process, workers served by the same
 * process. Same contract as `BullMQRunQueue`, no Redis needed (the demo uses it). A run cancelled
 * while queued ends at once on a worker's pipeline (`agent_started`, `agent_completed` cancelled);
 * with no worker yet it ends as soon as one is served. `close()` ends the runs still waiting for a
 * slot the same way.
 */
export class MemoryRunQueue implements RunQueue {
  private readonly limits: Required<AdmissionLimits>;
  private readonly maxFinished: number;
  private readonly runs = new Map<string, Entry>();
  private readonly waiting: Entry[] = [];
  private readonly finishedOrder: string[] = [];
  private readonly workers: MemoryWorker[] = [];
  /** The logs the served workers' agents write to (where a thread's owner is established). */
  private readonly ownerLogs = new Set<ThreadOwners>();
  /** The served workers' bridges: asked whether a client-given run id is in use. */
  private readonly bridges = new Set<AgentBridge>();
  private readonly activeByUser = new Map<string, number>();
  /** Thread → its owner and how many retained runs name it: the ownership check at submit without a scan. */
  private readonly threads = new Map<string, { userId: string; runs: number }>();
  private closed = false;
  private submitted = 0;
  private refused = 0;
  private readonly waits = newWaitHistogram();
  private readonly finished = emptyFinished();

  constructor(options: MemoryRunQueueOptions = {}) {
    this.limits = resolveAdmission(options, 'MemoryRunQueue');
    this.maxFinished = positiveInt('maxFinished', given(options.maxFinished, 10_000), 1, 'MemoryRunQueue');
  }

  submit(agent: string, input: unknown, options: SubmitOptions): Promise<string> {
    let job: RunJob;
    try {
      if (this.closed) throw new StateError('QUEUE_CLOSED', 'The run queue is closed');
      job = prepareJob(agent, input, options);
    } catch (error) {
      return Promise.reject(error);
    }
    // The thread may be owned in the workers' logs by runs this queue never saw (`agent.run`
    // directly, another queue): asked before anything is queued, so another user's submit is
    // refused and does not make this queue take them for the thread's owner. A run id the client
    // gave may be in use there too (its status forgotten, or never here): refused now, as `run()`
    // would refuse it on the worker. A generated id is new: no round trip for it.
    const named = options.runId !== undefined;
    if (this.ownerLogs.size === 0 && !(named && this.bridges.size > 0)) return this.admit(job);
    return (async () => {
      const owner = await ownerIn(this.ownerLogs, job.threadId);
      if (owner !== undefined && owner !== job.userId) throw threadForbidden(job.threadId);
      if (named && (await runIdUsedIn(this.bridges, job.runId))) throw runIdConflict(job.runId);
      return this.admit(job);
    })();
  }

  /** Admission of a prepared job: the queue's own checks, then it waits for a worker. */
  private admit(job: RunJob): Promise<string> {
    try {
      if (this.closed) throw new StateError('QUEUE_CLOSED', 'The run queue is closed');
      if (this.runs.has(job.runId)) throw runIdConflict(job.runId);
      const thread = this.threads.get(job.threadId);
      if (thread && thread.userId !== job.userId) throw threadForbidden(job.threadId);
      const active = this.activeByUser.get(job.userId) ?? 0;
      if (active >= this.limits.maxRunsPerUser) {
        this.refused++;
        throw new GatewayError('TOO_MANY_RUNS', `User has ${active} runs queued or running (maxRunsPerUser ${this.limits.maxRunsPerUser})`, {
          details: { reason: 'runs_per_user', limit: this.limits.maxRunsPerUser },
        });
      }
      if (this.waiting.length >= this.limits.maxQueued) {
        this.refused++;
        throw new GatewayError('QUEUE_FULL', `The queue holds ${this.waiting.length} runs (maxQueued ${this.limits.maxQueued})`, {
          details: { reason: 'queue_length', limit: this.limits.maxQueued },
        });
      }
      const entry: Entry = {
        job,
        info: { runId: job.runId, threadId: job.threadId, userId: job.userId, agent: job.agent, state: 'queued', queuedAt: job.queuedAt, cancelRequested: false },
      };
      this.runs.set(job.runId, entry);
      if (thread) thread.runs++;
      else this.threads.set(job.threadId, { userId: job.userId, runs: 1 });
      this.activeByUser.set(job.userId, active + 1);
      this.waiting.push(entry);
      this.submitted++;
      queueMicrotask(() => this.dispatch());
      return Promise.resolve(job.runId);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  cancel(runId: string, options: { userId: string }): Promise<CancelResult> {
    try {
      assertUserId(options?.userId, 'cancel()');
    } catch (error) {
      return Promise.reject(error);
    }
    const entry = this.runs.get(runId);
    if (!entry) return Promise.reject(new StateError('RUN_NOT_FOUND', `No run ${shown(runId)}`));
    if (entry.job.userId !== options?.userId) return Promise.reject(new AuthError(`Run ${runId} belongs to another user`, { code: 'THREAD_FORBIDDEN' }));
    if (entry.info.state === 'finished') return Promise.resolve('already_finished');
    entry.info.cancelRequested = true;
    if (entry.info.state === 'running') {
      entry.controller?.abort(new AbortError('The run was cancelled by its user'));
      return Promise.resolve('requested');
    }
    // Queued: it jumps the line and ends at once with cancelled (no capacity needed), resolved
    // once its events are in the log. With no worker to write them it ends when one is served.
    entry.endBefore ??= new AbortError(CANCELLED_QUEUED);
    this.dispatch();
    return entry.ended ? entry.ended.then(() => 'cancelled' as const) : Promise.resolve('requested');
  }

  status(runId: string): Promise<RunInfo | undefined> {
    const entry = this.runs.get(runId);
    return Promise.resolve(entry ? { ...entry.info } : undefined);
  }

  serve(set: { agents: AgentSet }, options?: ServeOptions): RunWorker {
    if (this.closed) throw new StateError('QUEUE_CLOSED', 'The run queue is closed');
    const worker = new MemoryWorker(this, agentsByName(agentSetOf(set)), resolveServeOptions(options));
    this.workers.push(worker);
    for (const log of worker.logs) this.ownerLogs.add(log);
    for (const bridge of worker.bridges) this.bridges.add(bridge);
    queueMicrotask(() => this.dispatch());
    return worker;
  }

  stats(): Promise<RunQueueStats> {
    let running = 0;
    for (const worker of this.workers) running += worker.active;
    const oldest = this.waiting[0];
    return Promise.resolve({
      queued: this.waiting.length,
      running,
      oldestQueuedMs: oldest ? Date.now() - oldest.job.queuedAt : 0,
      submitted: this.submitted,
      refused: this.refused,
      waitMs: this.waits.snapshot(),
      finished: { ...this.finished },
      workerLost: 0,
      fenced: 0,
      retried: 0,
    });
  }

  async close(options?: CloseOptions): Promise<void> {
    const timeoutMs = closeTimeout(options, 'MemoryRunQueue');
    this.closed = true;
    // Runs still waiting for a slot will never get one: each ends now the way a cancelled queued
    // run does (`agent_started`, `agent_completed` cancelled), on an open worker, without capacity.
    for (const entry of this.waiting) entry.endBefore ??= new AbortError(CLOSED_QUEUED);
    this.dispatch();
    // No open worker (none served, or all closed): no bridge to write their events. Their status
    // says so instead of `queued` forever; the thread's log gets nothing.
    for (const entry of this.waiting.splice(0)) this.endUnwritten(entry);
    await Promise.all(this.workers.map((worker) => worker.close({ timeoutMs })));
  }

  /** Ends a waiting run that no worker can write the events of (the queue closed without one). */
  private endUnwritten(entry: Entry): void {
    entry.info.state = 'finished';
    entry.info.outcome = 'cancelled';
    entry.info.error = { name: 'AbortError', message: `${CLOSED_QUEUED} (no worker wrote its events)`, code: 'ABORTED' };
    entry.info.finishedAt = Date.now();
    this.settled(entry);
  }

  /** Hands waiting runs to workers with free capacity; cancelled ones first, needing none. */
  /** @internal */
  dispatch(): void {
    const open = this.workers.filter((worker) => !worker.closing);
    if (open.length === 0) return;
    for (let i = 0; i < this.waiting.length; ) {
      const entry = this.waiting[i]!;
      const worker = entry.endBefore ? open[0] : open.find((candidate) => candidate.free > 0 && candidate.serves(entry.job.agent)) ?? open.find((candidate) => candidate.free > 0);
      if (!worker) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.start(entry, worker);
    }
  }

  /** Drops a finished run's status, and its thread's ownership with its last retained run. */
  private forget(runId: string): void {
    const entry = this.runs.get(runId);
    if (!entry) return;
    this.runs.delete(runId);
    this.release(entry);
  }

  /** Its thread's queue-side owner no longer counts this run (dropped with the thread's last one). */
  private release(entry: Entry): void {
    if (entry.released) return;
    entry.released = true;
    const thread = this.threads.get(entry.job.threadId);
    if (thread && --thread.runs === 0) this.threads.delete(entry.job.threadId);
  }

  private start(entry: Entry, worker: MemoryWorker): void {
    const now = Date.now();
    entry.info.state = 'running';
    entry.info.startedAt = now;
    entry.info.waitMs = now - entry.job.queuedAt;
    this.waits.record(entry.info.waitMs);
    entry.controller = new AbortController();
    if (entry.endBefore) entry.controller.abort(entry.endBefore);
    entry.ended = worker.execute(entry.job, entry.controller).then((end) => {
      entry.info.state = 'finished';
      entry.info.outcome = end.outcome;
      if (end.error) entry.info.error = end.error;
      // Refused the thread (its owner's first event reached the log after this submit): the run
      // never held it, so it must not keep the real owner's submits out while its status is kept.
      if (end.error?.code === 'THREAD_FORBIDDEN') this.release(entry);
      entry.info.finishedAt = Date.now();
      delete entry.controller;
      this.finished[end.outcome]++;
      this.settled(entry);
      this.dispatch();
    });
  }

  /** A finished run gives up its user's slot; the oldest finished statuses beyond `maxFinished` are forgotten. */
  private settled(entry: Entry): void {
    const left = (this.activeByUser.get(entry.job.userId) ?? 1) - 1;
    if (left > 0) this.activeByUser.set(entry.job.userId, left);
    else this.activeByUser.delete(entry.job.userId);
    this.finishedOrder.push(entry.job.runId);
    while (this.finishedOrder.length > this.maxFinished) this.forget(this.finishedOrder.shift()!);
  }
}

/** A worker of a `MemoryRunQueue`: runs up to `concurrency` runs at once. */
class MemoryWorker implements RunWorker {
  private readonly events = new EventEmitter<RunWorkerEvents>();
  readonly id = `memory-${nanoid(8)}`;
  private readonly concurrency: number;
  private readonly bridge: AgentBridge | undefined;
  /** The logs its agents' bridges write to (asked for a thread's owner at submit). */
  readonly logs: ThreadOwners[];
  /** Its agents' bridges (asked at submit whether a client-given run id is in use). */
  readonly bridges: ReadonlySet<AgentBridge>;
  private readonly running = new Map<string, { controller: AbortController; done: Promise<unknown> }>();
  closing = false;

  constructor(
    private readonly queue: MemoryRunQueue,
    private readonly agents: Map<string, BaseAgent<never, unknown>>,
    options: ServeOptions,
  ) {
    this.concurrency = positiveInt('concurrency', given(options.concurrency, 1), 1, 'serve()');
    this.bridge = options.bridge ?? [...agents.values()].find((agent) => agent.bridge)?.bridge;
    if (options.bridge) for (const agent of agents.values()) if (!agent.bridge) agent.setBridge(options.bridge);
    const bridges = new Set<AgentBridge>();
    if (this.bridge) bridges.add(this.bridge);
    for (const agent of agents.values()) if (agent.bridge) bridges.add(agent.bridge);
    this.logs = ownerLogsOf(bridges);
    this.bridges = bridges;
  }

  on<K extends keyof RunWorkerEvents>(event: K, listener: RunWorkerEvents[K]): this {
    this.events.on(event, listener as never);
    return this;
  }

  get active(): number {
    return this.running.size;
  }

  get free(): number {
    return this.closing ? 0 : this.concurrency - this.running.size;
  }

  serves(agent: string): boolean {
    return this.agents.has(agent);
  }

  /** @internal */
  execute(job: RunJob, controller: AbortController) {
    // A run ended before it started (cancelled while queued, the queue closing) goes through the
    // pipeline with its signal aborted: `agent_started`, `agent_completed` cancelled with the
    // signal's reason; an agent this worker does not serve is stood in for by the bridge.
    const done = executeJob(job, this.agents.get(job.agent), this.bridge, controller.signal).finally(() => this.running.delete(job.runId));
    this.running.set(job.runId, { controller, done });
    return done;
  }

  async close(options?: CloseOptions): Promise<void> {
    const timeoutMs = closeTimeout(options, 'MemoryWorker');
    this.closing = true;
    const all = () => Promise.allSettled([...this.running.values()].map((run) => run.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    for (const run of this.running.values()) run.controller.abort(new AbortError('The worker is shutting down'));
    await all();
    this.queue.dispatch();
  }
}

/** What a log answers about a thread's owner. */
type ThreadOwners = Pick<EventLog, 'ownerOf'>;

/** The logs `bridges` write to: their transport, or a gateway's `log` (anything with `ownerOf`). */
function ownerLogsOf(bridges: Iterable<AgentBridge>): ThreadOwners[] {
  const logs: ThreadOwners[] = [];
  for (const bridge of bridges) {
    const transport = bridge.transport as Partial<ThreadOwners> & { log?: Partial<ThreadOwners> };
    const log = typeof transport.ownerOf === 'function' ? transport : transport.log;
    if (typeof log?.ownerOf === 'function') logs.push(log as ThreadOwners);
  }
  return logs;
}

/** The first owner any of `logs` knows for the thread. */
async function ownerIn(logs: Iterable<ThreadOwners>, threadId: string): Promise<string | undefined> {
  for (const log of logs) {
    const owner = await log.ownerOf(threadId);
    if (owner !== undefined) return owner;
  }
  return undefined;
}

/**
 * Whether a run id is in use where `run()` would look on a worker: a bridge's registry knows a run
 * started under it, or its transport retains events of it (`Transport.hasRun`). A failed look-up
 * rejects (an id that cannot be checked is not taken for free), as `run()` does.
 */
async function runIdUsedIn(bridges: Iterable<AgentBridge>, runId: string): Promise<boolean> {
  for (const bridge of bridges) {
    if (bridge.registry.isUsed(runId)) return true;
    if (bridge.transport.hasRun && (await bridge.transport.hasRun(runId))) return true;
  }
  return false;
}

function runIdConflict(runId: string): ValidationError {
  return new ValidationError(`Run id ${shown(runId)} is in use: a run id is used once`, { field: 'runId', code: 'RUN_ID_CONFLICT' });
}
