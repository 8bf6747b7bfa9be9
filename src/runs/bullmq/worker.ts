import { Worker, type Job } from 'bullmq';
import { EventEmitter } from 'eventemitter3';
import { nanoid } from 'nanoid';
import type { BaseAgent } from '../../agent/base-agent.js';
import type { AgentBridge } from '../../bridge/agent-bridge.js';
import { AbortError, StateError } from '../../errors/index.js';
import { given } from '../../errors/options.js';
import { isRunId } from '../../ids/run-id.js';
import { RedisStreamsTransport } from '../../transport/redis/transport.js';
import { closeRunInLog } from './close-run.js';
import { bullConnection, type BullConnection } from './connection.js';
import { finish, type QueueContext } from './context.js';
import { CLAIM, RENEW } from './scripts.js';
import { closeTimeout, executeJob, positiveInt, type RunEnd, type RunJob } from '../shared.js';
import type { CloseOptions, RunWorker, RunWorkerEvents, ServeOptions } from '../types.js';

/**
 * Whether the agent's log refuses a second start of a run id at append (the Redis log's fencing):
 * then a run the queue admitted and this worker claimed needs no reuse check before its first
 * event (a round trip saved per run; see `RUN_ID_ADMITTED`).
 */
function fencesAtAppend(agent: BaseAgent<never, unknown> | undefined): boolean {
  return agent?.bridge?.transport instanceof RedisStreamsTransport;
}

/**
 * How often BullMQ may hand out a job again whose worker stopped renewing its lock (died, or its
 * event loop was blocked): each time, CLAIM lets it run only if no worker had claimed it.
 */
const STALLED_REDELIVERIES = 10;

interface ActiveRun {
  job: RunJob;
  controller: AbortController;
  done: Promise<unknown>;
  lost: boolean;
}

/**
 * A worker on BullMQ: takes runs from the queue (up to `concurrency` at once), executes them
 * through the agents' bridges, renews their leases, and aborts a run when its owner cancels it
 * (pub/sub, with the renewal as the fallback) or when its lease was lost (then the log fences it).
 */
export class BullMQWorker implements RunWorker {
  private readonly events = new EventEmitter<RunWorkerEvents>();
  readonly id = `worker-${nanoid(10)}`;
  private readonly bull: Worker;
  private readonly bridge: AgentBridge | undefined;
  private readonly runs = new Map<string, ActiveRun>();
  private readonly renewTimer: NodeJS.Timeout;
  private readonly subscriber: BullConnection;
  private readonly bullClient: BullConnection;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly ctx: QueueContext,
    private readonly agents: Map<string, BaseAgent<never, unknown>>,
    options: ServeOptions,
    private readonly onClosed: (worker: BullMQWorker) => void,
  ) {
    const concurrency = positiveInt('concurrency', given(options.concurrency, 1), 1, 'serve()');
    this.bridge = options.bridge ?? [...agents.values()].find((agent) => agent.bridge)?.bridge;
    if (options.bridge) for (const agent of agents.values()) if (!agent.bridge) agent.setBridge(options.bridge);
    const { options: o } = ctx;
    this.bullClient = bullConnection(o, 'agentwire-runs-worker');
    this.bullClient.on('error', (error: Error) => this.report(error));
    this.bull = new Worker(o.queueName, (job, _token, signal) => this.process(job as Job<RunJob>, signal), {
      connection: this.bullClient as never,
      prefix: ctx.keys.bullPrefix,
      concurrency,
      // Our lease decides whether a run is lost (and ends it). A job BullMQ hands out again after
      // its worker died (stalled) is run only if that worker had not claimed it yet (CLAIM needs
      // 'queued'): it never started, so running it is no retry. With 0 here such a job went to
      // BullMQ's failed set and its run stayed queued forever.
      maxStalledCount: STALLED_REDELIVERIES,
      lockDuration: o.leaseMs,
      stalledInterval: o.leaseMs,
    });
    this.bull.on('error', (error) => this.report(error));
    this.renewTimer = setInterval(() => void this.renew(), Math.max(10, Math.floor(o.leaseMs / 3)));
    this.subscriber = bullConnection(o, 'agentwire-runs-cancel');
    this.subscriber.on('error', (error: Error) => this.report(error));
    void this.subscriber
      .connect()
      .then(() => this.subscriber.subscribe(ctx.keys.cancelChannel, (runId: string) => this.abort(runId, new AbortError('The run was cancelled by its user'))))
      .catch((error: unknown) => this.report(error));
  }

  on<K extends keyof RunWorkerEvents>(event: K, listener: RunWorkerEvents[K]): this {
    this.events.on(event, listener as never);
    return this;
  }

  get active(): number {
    return this.runs.size;
  }

  private async process(job: Job<RunJob>, _signal?: AbortSignal): Promise<void> {
    const data = job.data;
    const { ctx } = this;
    const now = Date.now();
    const claim = await CLAIM.run<string[]>(ctx.connection, 3, [
      ctx.keys.run(data.runId),
      ctx.keys.queued,
      ctx.keys.leases,
      data.runId,
      this.id,
      String(now),
      String(now + ctx.options.leaseMs),
    ]);
    // Cancelled while queued (ended elsewhere), or unknown: nothing to run.
    if (claim[0] !== 'ok') return;
    ctx.counters.waits.record(Math.max(0, now - Number(claim[2] ?? data.queuedAt)));
    const controller = new AbortController();
    if (claim[1] === '1') controller.abort(new AbortError('The run was cancelled by its user'));
    const run: ActiveRun = { job: data, controller, done: Promise.resolve(), lost: false };
    const done = this.execute(run);
    run.done = done;
    this.runs.set(data.runId, run);
    try {
      await done;
    } finally {
      this.runs.delete(data.runId);
    }
  }

  private async execute(run: ActiveRun): Promise<void> {
    const { job, controller } = run;
    const agent = this.agents.get(job.agent);
    // A standard run id names its thread, so the thread's own fencing sees any earlier start of it;
    // a custom one could have been used in another thread: that needs the reuse check.
    const admitted = isRunId(job.runId) && fencesAtAppend(agent);
    const end: RunEnd & { emitted: boolean } = await executeJob(job, agent, this.bridge, controller.signal, admitted);
    if (!end.emitted && !run.lost) {
      // run() refused before any event (e.g. a run id in use): the run still ends in the log, once.
      await closeRunInLog(this.ctx.connection, this.ctx.logKeys, this.ctx.options.log, {
        runId: job.runId,
        userId: job.userId,
        threadId: job.threadId,
        agent: job.agent,
        status: 'failed',
        error: end.error ?? { name: 'Error', message: 'The run could not start' },
        metadata: job.metadata,
      }).catch((error: unknown) => this.report(error));
    }
    const reply = await finish(this.ctx, job, this.id, end.outcome, end.error).catch((error: unknown) => {
      this.report(error);
      return 'error';
    });
    if (reply === 'fenced' || run.lost) this.fence(job.runId);
    else if (reply === 'ok') this.ctx.counters.finished[end.outcome]++;
  }

  private fence(runId: string): void {
    this.ctx.counters.fenced++;
    const error = new StateError('RUN_FENCED', `Run ${runId} was lost by this worker and ended elsewhere; its later events were refused`, {
      details: { runId, worker: this.id },
    });
    if (this.events.listenerCount('fenced') > 0) this.events.emit('fenced', error, runId);
  }

  private abort(runId: string, reason: Error): void {
    const run = this.runs.get(runId);
    if (run && !run.controller.signal.aborted) run.controller.abort(reason);
  }

  private async renew(): Promise<void> {
    if (this.runs.size === 0) return;
    const ids = [...this.runs.keys()];
    const { ctx } = this;
    let replies: string[];
    try {
      replies = await RENEW.run<string[]>(ctx.connection, ids.length + 1, [
        ctx.keys.leases,
        ...ids.map((id) => ctx.keys.run(id)),
        this.id,
        String(Date.now() + ctx.options.leaseMs),
        ...ids,
      ]);
    } catch (error) {
      this.report(error);
      return;
    }
    ids.forEach((runId, i) => {
      if (replies[i] === 'c') this.abort(runId, new AbortError('The run was cancelled by its user'));
      else if (replies[i] === 'l') {
        const run = this.runs.get(runId);
        if (run) run.lost = true;
        this.abort(runId, new StateError('RUN_FENCED', `Run ${runId} was lost by this worker`));
      }
    });
  }

  private report(error: unknown): void {
    if (this.events.listenerCount('error') > 0) this.events.emit('error', error instanceof Error ? error : new Error(String(error)));
  }

  close(options?: CloseOptions): Promise<void> {
    let timeoutMs: number;
    try {
      timeoutMs = closeTimeout(options, 'BullMQWorker');
    } catch (error) {
      return Promise.reject(error);
    }
    this.closing ??= this.shutdown(timeoutMs);
    return this.closing;
  }

  /** Stops taking runs, lets active ones finish up to `timeoutMs`, cancels the rest, then closes. */
  private async shutdown(timeoutMs: number): Promise<void> {
    await this.bull.pause(true).catch((error: unknown) => this.report(error));
    const all = () => Promise.allSettled([...this.runs.values()].map((run) => run.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    for (const runId of this.runs.keys()) this.abort(runId, new AbortError('The worker is shutting down'));
    await all();
    clearInterval(this.renewTimer);
    await this.bull.close().catch((error: unknown) => this.report(error));
    await Promise.allSettled([this.subscriber.quit(), this.bullClient.isOpen ? this.bullClient.quit() : undefined]);
    this.onClosed(this);
  }
}
