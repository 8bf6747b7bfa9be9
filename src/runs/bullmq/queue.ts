import { Queue } from 'bullmq';
import { AuthError, GatewayError, StateError, ValidationError } from '../../errors/index.js';
import { shown } from '../../errors/options.js';
import { assertUserId } from '../../ids/user-id.js';
import type { ErrorInfo } from '../../events/schema.js';
import { RedisConnection, toTransportError } from '../../transport/redis/connection.js';
import { logHasRun } from '../../transport/redis/has-run.js';
import { RedisKeys } from '../../transport/redis/keys.js';
import { bullConnection, type BullConnection } from './connection.js';
import { closeRun, Reaper, type QueueContext, type RetryFields } from './context.js';
import { QueueKeys, resolveQueueOptions, type BullMQRunQueueOptions, type ResolvedQueueOptions } from './options.js';
import { CANCEL, SUBMIT, UNSUBMIT } from './scripts.js';
import { BullMQWorker } from './worker.js';
import { agentSetOf, agentsByName, closeTimeout, emptyFinished, newWaitHistogram, prepareJob, resolveServeOptions, type RunJob } from '../shared.js';
import type { AgentSet, CancelResult, CloseOptions, RunInfo, RunOutcome, RunQueue, RunQueueStats, RunState, RunWorker, ServeOptions, SubmitOptions } from '../types.js';
import { threadForbidden } from '../../errors/thread-forbidden.js';

/**
 * The run queue on Redis, for runs submitted by any process (gateways) and executed by worker
 * processes. Jobs travel through BullMQ (v6, on node-redis: no ioredis); agentwire keeps each
 * run's state, the admission sets and the leases beside BullMQ's keys, under one hash tag.
 *
 * - `submit` is one atomic check-and-record (runs per user, queue length: cluster-wide), then a
 *   BullMQ job; it resolves with the run id as soon as both are stored.
 * - `cancel` (owner only) is a flag in the run's state plus a `PUBLISH` to the workers: the one
 *   running it aborts it at once; the flag is also read at every lease renewal (`leaseMs / 3`),
 *   so a missed message delays a cancel by at most that. A queued run is ended at once.
 * - Worker loss: a run whose lease was not renewed for `leaseMs` is ended by any live process
 *   with `agent_completed` failed `WORKER_LOST` (open tools closed first), appended atomically
 *   with the log's fencing: the lost worker's later events are refused (`RUN_CLOSED`) and it
 *   reports `RUN_FENCED`. Lost runs are not retried (a claimed run is never claimed again) unless
 *   `retryLostRuns` is on: then a lost run is submitted again as a new run, linked both ways. A
 *   job the lost worker had taken from BullMQ but not claimed yet never started: another worker runs it.
 */
export class BullMQRunQueue implements RunQueue {
  readonly options: ResolvedQueueOptions;
  private readonly ctx: QueueContext;
  private readonly connection: RedisConnection;
  private readonly bullClient: BullConnection;
  private readonly bull: Queue;
  private readonly reaper: Reaper;
  private readonly workers = new Set<BullMQWorker>();
  private closed = false;

  constructor(options: BullMQRunQueueOptions = {}) {
    this.options = resolveQueueOptions(options);
    this.connection = new RedisConnection(this.options, 'agentwire-runs');
    this.connection.start();
    this.ctx = {
      options: this.options,
      keys: new QueueKeys(this.options.keyPrefix, this.options.queueName),
      logKeys: new RedisKeys(this.options.keyPrefix, this.options.cluster?.slotGroups),
      connection: this.connection,
      counters: { submitted: 0, refused: 0, workerLost: 0, fenced: 0, retried: 0, finished: emptyFinished(), waits: newWaitHistogram() },
      resubmit: (job, retry) => this.resubmit(job, retry),
    };
    this.bullClient = bullConnection(this.options, 'agentwire-runs-queue');
    this.bullClient.on('error', (error: Error) => this.options.onError?.(error));
    this.bull = new Queue(this.options.queueName, { connection: this.bullClient as never, prefix: this.ctx.keys.bullPrefix });
    // Without a listener BullMQ prints its connection errors (console.error); they go to onError, as the client's do.
    this.bull.on('error', (error: Error) => this.options.onError?.(error));
    this.reaper = new Reaper(this.ctx, (error) => this.options.onError?.(error));
    if (this.options.reap) this.reaper.start();
  }

  /** Resolves once connected to Redis; false after `timeoutMs`. */
  connect(timeoutMs = this.options.connectTimeoutMs): Promise<boolean> {
    return this.connection.waitReady(timeoutMs);
  }

  async submit(agent: string, input: unknown, options: SubmitOptions): Promise<string> {
    this.assertOpen();
    const job = prepareJob(agent, input, options);
    try {
      return await this.submitJob(job, options.runId !== undefined);
    } catch (error) {
      // Redis unreachable (node-redis's ClientOfflineError, a refused socket): REDIS_UNAVAILABLE, retryable, a 503.
      throw toTransportError(error, `Submitting run ${job.runId}`);
    }
  }

  private async submitJob(job: RunJob, clientRunId: boolean): Promise<string> {
    const { keys, logKeys } = this.ctx;
    const o = this.options;
    const scriptKeys = [keys.run(job.runId), keys.user(job.userId), keys.queued, keys.thread(job.threadId)];
    // The thread's owner (the log's meta hash, another slot on a Cluster), and for a client-given
    // run id whether the log holds a run of that id, are read in the same round trip as the
    // admission script runs: a run refused by either is undone before its job exists, so no worker
    // can see it; it held an admission slot for that round trip only. A client run id claimed by
    // another thread is refused here too (the same claim the worker's agent_started takes, see
    // `claimRunId`: one contract); one claimed between this check and the worker's start is
    // refused there, and the run ends failed RUN_ID_CONFLICT without writing to the log.
    const [owner, reply, known] = await Promise.all([
      settled(this.connection.send<string | null>(['HGET', logKeys.meta(job.threadId), 'owner'])),
      settled(this.admit(job)),
      settled(clientRunId ? logHasRun(this.connection, logKeys, job.runId, o.log.threadTtlSeconds, job.threadId) : Promise.resolve(false)),
    ]);
    const refused = !owner.ok || !known.ok || (owner.value !== null && owner.value !== job.userId) || known.value;
    if (refused && reply.ok && reply.value === 'ok') await UNSUBMIT.run(this.connection, 4, [...scriptKeys, job.runId]).catch(() => undefined);
    if (!reply.ok) throw reply.error;
    if (!owner.ok) throw owner.error;
    if (owner.value !== null && owner.value !== job.userId) throw threadForbidden(job.threadId);
    if (reply.value === 'thread') throw threadForbidden(job.threadId);
    if (!known.ok) throw known.error;
    if (reply.value === 'conflict' || known.value) throw new ValidationError(`Run id ${job.runId} is in use`, { field: 'runId', code: 'RUN_ID_CONFLICT' });
    if (reply.value === 'user' || reply.value === 'queue') {
      this.ctx.counters.refused++;
      if (reply.value === 'user') {
        throw new GatewayError('TOO_MANY_RUNS', `The user has ${o.maxRunsPerUser} runs queued or running (maxRunsPerUser)`, {
          details: { reason: 'runs_per_user', limit: o.maxRunsPerUser },
        });
      }
      throw new GatewayError('QUEUE_FULL', `The queue holds ${o.maxQueued} runs (maxQueued)`, { details: { reason: 'queue_length', limit: o.maxQueued } });
    }
    try {
      await this.enqueue(job, o.retryAttempts > 0 ? { retries: o.retryAttempts } : undefined);
    } catch (error) {
      await UNSUBMIT.run(this.connection, 4, [...scriptKeys, job.runId]).catch(() => undefined);
      throw toTransportError(error, `Queueing run ${job.runId}`);
    }
    this.ctx.counters.submitted++;
    return job.runId;
  }

  /** SUBMIT for `job`: the atomic check-and-record of admission; its reply ('ok', 'conflict', 'user', 'queue'). */
  private admit(job: RunJob): Promise<string> {
    const o = this.options;
    const { keys } = this.ctx;
    return SUBMIT.run<string>(this.connection, 4, [
      keys.run(job.runId),
      keys.user(job.userId),
      keys.queued,
      keys.thread(job.threadId),
      job.runId,
      job.userId,
      job.threadId,
      job.agent,
      String(job.queuedAt),
      String(o.maxRunsPerUser),
      String(o.maxQueued),
      JSON.stringify(job.metadata),
      String(o.statusTtlSeconds),
    ]);
  }

  /**
   * After SUBMIT admitted a run: what a reaper needs to run it again (its input, retries left,
   * its link), then its BullMQ job. A retry's job id is derived from its run id, so a reaper
   * that adds it again (after a crash between the two) adds nothing.
   */
  private async enqueue(job: RunJob, retry: RetryFields | undefined): Promise<void> {
    if (retry) {
      const fields = ['input', JSON.stringify(job.input ?? null), 'retries', String(retry.retries)];
      if (retry.retryOf !== undefined) fields.push('retryOf', retry.retryOf, 'attempt', String(retry.attempt ?? 2));
      await this.connection.send(['HSET', this.ctx.keys.run(job.runId), ...fields]);
    }
    const jobId = retry?.retryOf !== undefined ? `retry-${encodeURIComponent(job.runId)}` : undefined;
    await this.bull.add(job.agent, job, { attempts: 1, removeOnComplete: true, removeOnFail: true, ...(jobId && { jobId }) });
  }

  /** The reaper's retry of a lost run (`retryLostRuns`): admitted like any submit; 'conflict' means an earlier pass admitted it. */
  private async resubmit(job: RunJob, retry: RetryFields): Promise<string> {
    const reply = await this.admit(job);
    if (reply === 'user' || reply === 'queue') this.ctx.counters.refused++;
    if (reply !== 'ok' && reply !== 'conflict') return reply;
    // 'conflict': the retry's id is this lost run's own (HSETNX), so an earlier pass admitted it and
    // may have died before its job was added: add it (again; a job id added twice is one job, and a
    // worker claims a run only while it is queued).
    await this.enqueue(job, retry);
    return 'ok';
  }

  async cancel(runId: string, options: { userId: string }): Promise<CancelResult> {
    this.assertOpen();
    // Before the script: Redis would compare a lone surrogate as U+FFFD, i.e. as another user's id.
    assertUserId(options?.userId, 'cancel()');
    try {
      return await this.cancelRun(runId, options);
    } catch (error) {
      throw toTransportError(error, `Cancelling run ${shown(runId)}`);
    }
  }

  private async cancelRun(runId: string, options: { userId: string }): Promise<CancelResult> {
    const { keys } = this.ctx;
    const reply = await CANCEL.run<string>(this.connection, 3, [
      keys.run(runId),
      keys.queued,
      keys.leases,
      runId,
      options.userId,
      String(Date.now()),
      keys.cancelChannel,
    ]);
    switch (reply) {
      case 'missing':
        throw new StateError('RUN_NOT_FOUND', `No run ${shown(runId)}`);
      case 'forbidden':
        throw new AuthError(`Run ${runId} belongs to another user`, { code: 'THREAD_FORBIDDEN' });
      case 'finished':
        return 'already_finished';
      case 'queued': {
        // Due now: end it here at once (a reaper would, within reapIntervalMs, if this process died).
        const fields = await this.connection.send<string[]>(['HGETALL', keys.run(runId)]);
        await closeRun(this.ctx, runId, pairs(fields));
        return 'cancelled';
      }
      default:
        return 'requested';
    }
  }

  async status(runId: string): Promise<RunInfo | undefined> {
    this.assertOpen();
    const flat = await this.connection.send<string[]>(['HGETALL', this.ctx.keys.run(runId)]).catch((error: unknown) => {
      throw toTransportError(error, `Reading the status of run ${shown(runId)}`);
    });
    if (flat.length === 0) return undefined;
    return toRunInfo(runId, pairs(flat));
  }

  serve(set: { agents: AgentSet }, options?: ServeOptions): RunWorker {
    this.assertOpen();
    const worker = new BullMQWorker(this.ctx, agentsByName(agentSetOf(set)), resolveServeOptions(options), (closed) => this.workers.delete(closed));
    this.workers.add(worker);
    this.reaper.start();
    return worker;
  }

  async stats(): Promise<RunQueueStats> {
    this.assertOpen();
    const { keys, counters } = this.ctx;
    const [queued, running, oldest] = await Promise.all([
      this.connection.send<number>(['ZCARD', keys.queued]),
      this.connection.send<number>(['ZCARD', keys.leases]),
      this.connection.send<string[]>(['ZRANGE', keys.queued, '0', '0', 'WITHSCORES']),
    ]).catch((error: unknown) => {
      throw toTransportError(error, 'Reading the queue stats');
    });
    return {
      queued,
      running,
      oldestQueuedMs: oldest[1] ? Math.max(0, Date.now() - Number(oldest[1])) : 0,
      submitted: counters.submitted,
      refused: counters.refused,
      waitMs: counters.waits.snapshot(),
      finished: { ...counters.finished },
      workerLost: counters.workerLost,
      fenced: counters.fenced,
      retried: counters.retried,
    };
  }

  /** Runs one reaper pass now (tests, and processes that want a pass before exiting). */
  reapNow(): Promise<void> {
    return this.reaper.tick();
  }

  /** After `close()` its Redis connection is gone: every operation refuses with `QUEUE_CLOSED` (not the connection's `TRANSPORT_CLOSED`). */
  private assertOpen(): void {
    if (this.closed) throw new StateError('QUEUE_CLOSED', 'The run queue is closed');
  }

  async close(options?: CloseOptions): Promise<void> {
    const timeoutMs = closeTimeout(options, 'BullMQRunQueue');
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.workers].map((worker) => worker.close({ timeoutMs })));
    await this.reaper.stop();
    await this.bull.close().catch(() => undefined);
    if (this.bullClient.isOpen) await this.bullClient.quit().catch(() => undefined);
    await this.connection.close();
  }
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

function settled<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

function pairs(flat: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fields;
}

function toRunInfo(runId: string, f: Record<string, string>): RunInfo {
  const state: RunState = f.state === 'finished' ? 'finished' : f.state === 'queued' ? 'queued' : 'running';
  const num = (value: string | undefined) => (value === undefined || value === '' ? undefined : Number(value));
  const queuedAt = num(f.queuedAt) ?? 0;
  const startedAt = num(f.startedAt);
  const finishedAt = num(f.finishedAt);
  let error: ErrorInfo | undefined;
  if (f.error) {
    try {
      error = JSON.parse(f.error) as ErrorInfo;
    } catch {
      error = undefined;
    }
  }
  return {
    runId,
    threadId: f.threadId ?? '',
    userId: f.userId ?? '',
    agent: f.agent ?? '',
    state,
    ...(state === 'finished' && f.outcome && { outcome: f.outcome as RunOutcome }),
    ...(error && { error }),
    queuedAt,
    ...(startedAt !== undefined && { startedAt, waitMs: Math.max(0, startedAt - queuedAt) }),
    ...(finishedAt !== undefined && { finishedAt }),
    cancelRequested: f.cancel === '1',
    ...(f.retryOf && { retryOf: f.retryOf, attempt: Number(f.attempt ?? 2) }),
    ...(f.retriedAs && { retriedAs: f.retriedAs }),
    ...(f.retryRefused && { retryRefused: f.retryRefused }),
  };
}
