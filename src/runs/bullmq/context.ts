import type { ErrorInfo } from '../../events/schema.js';
import type { Histogram } from '../../bridge/histogram.js';
import type { RedisConnection } from '../../transport/redis/connection.js';
import { RedisKeys } from '../../transport/redis/keys.js';
import { closeRunInLog } from './close-run.js';
import type { QueueKeys, ResolvedQueueOptions } from './options.js';
import { DUE, FINISH } from './scripts.js';
import type { RunOutcome } from '../types.js';
import { generateRunId } from '../../ids/run-id.js';
import type { RunJob } from '../shared.js';

/** What the queue, its workers and its reaper share in one process. */
export interface QueueContext {
  readonly options: ResolvedQueueOptions;
  readonly keys: QueueKeys;
  readonly logKeys: RedisKeys;
  readonly connection: RedisConnection;
  readonly counters: {
    submitted: number;
    refused: number;
    workerLost: number;
    fenced: number;
    finished: Record<RunOutcome, number>;
    waits: Histogram;
    /** Lost runs this process submitted again (`retryLostRuns`). */
    retried: number;
  };
  /** Submits a retry of a lost run through admission (the queue's SUBMIT and its BullMQ job); SUBMIT's reply. */
  readonly resubmit?: (job: RunJob, retry: RetryFields) => Promise<string>;
}

/** What a run carries for `retryLostRuns`: retries left, and for a retry its link. */
export interface RetryFields {
  retries: number;
  retryOf?: string;
  attempt?: number;
}

export const WORKER_LOST_ERROR: ErrorInfo = {
  name: 'StateError',
  message: 'The worker running this run was lost: it stopped renewing its lease',
  code: 'WORKER_LOST',
};
/** A run ended in the queue whose run id another thread of the log holds: nothing of it is in its thread. */
export const RUN_ID_CLAIMED_ERROR: ErrorInfo = { name: 'ValidationError', message: 'The run id is in use by a run of another thread: a run id is used once', code: 'RUN_ID_CONFLICT' };
export const CANCELLED_QUEUED_ERROR: ErrorInfo = { name: 'AbortError', message: 'The run was cancelled before a worker took it', code: 'ABORTED' };

/** Records a run's end in the queue; `worker` '' for a reaper. Returns FINISH's reply. */
export function finish(
  ctx: QueueContext,
  run: { runId: string; userId: string; threadId: string },
  worker: string,
  outcome: RunOutcome,
  error: ErrorInfo | undefined,
): Promise<string> {
  const { keys } = ctx;
  const { runId, userId, threadId } = run;
  return FINISH.run<string>(ctx.connection, 5, [
    keys.run(runId),
    keys.user(userId),
    keys.leases,
    keys.queued,
    keys.thread(threadId),
    runId,
    worker,
    outcome,
    error ? JSON.stringify(error) : '',
    String(Date.now()),
    String(ctx.options.statusTtlSeconds),
  ]);
}

/**
 * Ends a run that is `closing` (its lease expired, or it was cancelled while queued): its terminal
 * event goes to the log conditionally (`closeRunInLog`), then the queue records the outcome the
 * log holds. Idempotent: any process may do it, any number of times.
 */
export async function closeRun(ctx: QueueContext, runId: string, fields: Record<string, string>): Promise<void> {
  const cancelled = fields.closeAs === 'cancelled';
  const error = cancelled ? CANCELLED_QUEUED_ERROR : WORKER_LOST_ERROR;
  const userId = fields.userId ?? '';
  let metadata: Record<string, unknown> = {};
  try {
    metadata = JSON.parse(fields.meta ?? '{}') as Record<string, unknown>;
  } catch {
    // Written by SUBMIT from JSON.stringify: cannot happen; the run still ends.
  }
  const result = await closeRunInLog(ctx.connection, ctx.logKeys, ctx.options.log, {
    runId,
    userId,
    threadId: fields.threadId ?? '',
    agent: fields.agent ?? 'agent',
    status: cancelled ? 'cancelled' : 'failed',
    error,
    metadata,
  });
  let outcome: RunOutcome = cancelled ? 'cancelled' : 'failed';
  let shown: ErrorInfo | undefined = error;
  if (result.kind === 'closed') {
    // The worker's own terminal event got there first: that is how the run ended.
    const terminal = parseTerminal(result.terminal);
    outcome = terminal?.status ?? outcome;
    shown = terminal?.error;
  } else if (result.kind === 'owner') {
    shown = { name: 'TransportError', message: 'The thread belongs to another user', code: 'THREAD_OWNER_MISMATCH' };
  } else if (result.kind === 'conflict') {
    shown = RUN_ID_CLAIMED_ERROR;
  }
  // A lost run (this pass's terminal event, or an earlier pass's that died before finishing) may be
  // retried, unless its user had asked to cancel it (the worker died before the cancel reached it).
  const lost = !cancelled && (result.kind === 'ended' || (result.kind === 'closed' && shown?.code === WORKER_LOST_ERROR.code));
  if (lost && fields.cancel !== '1' && Number(fields.retries ?? 0) > 0) await retryLostRun(ctx, runId, fields, metadata);
  const reply = await finish(ctx, { runId, userId, threadId: fields.threadId ?? '' }, '', outcome, shown);
  if (reply === 'ok' && result.kind === 'ended' && !cancelled) ctx.counters.workerLost++;
}

/**
 * Submits a lost run again (`retryLostRuns`), before the lost run is recorded finished, so a
 * reaper that dies half-way leaves the run to the next one, which redoes each step: the retry's
 * id is fixed first in the lost run's hash (HSETNX), its admission is SUBMIT's (a second pass
 * finds it admitted), its BullMQ job id is derived from its run id (added once). The lost run's
 * slot in its user's admission set is given up first: the run is over, its terminal event is in
 * the log. Admission refusing the retry is recorded on the lost run (`retryRefused`).
 */
async function retryLostRun(ctx: QueueContext, runId: string, fields: Record<string, string>, metadata: Record<string, unknown>): Promise<void> {
  if (!ctx.resubmit || fields.retryRefused) return;
  const { keys } = ctx;
  const threadId = fields.threadId ?? '';
  const userId = fields.userId ?? '';
  const key = keys.run(runId);
  const [, retryId] = await Promise.all([
    ctx.connection.send(['HSETNX', key, 'retriedAs', generateRunId(threadId)]),
    ctx.connection.send<string>(['HGET', key, 'retriedAs']),
    ctx.connection.send(['SREM', keys.user(userId), runId]),
  ]);
  let input: unknown = null;
  try {
    input = JSON.parse(fields.input ?? 'null');
  } catch {
    // Written by submit from JSON.stringify: cannot happen; the retry gets null.
  }
  const attempt = Number(fields.attempt ?? 1) + 1;
  const job: RunJob = {
    runId: retryId,
    threadId,
    userId,
    agent: fields.agent ?? 'agent',
    input,
    metadata: { ...stripLink(metadata), retryOf: runId, attempt },
    queuedAt: Date.now(),
  };
  const reply = await ctx.resubmit(job, { retries: Number(fields.retries) - 1, retryOf: runId, attempt });
  if (reply === 'ok') {
    ctx.counters.retried++;
    return;
  }
  if (reply === 'user' || reply === 'queue' || reply === 'thread') {
    // 'thread': the thread's queued runs are another user's (its claim expired under the lost run); the log would refuse the retry anyway.
    const reason = reply === 'user' ? 'runs_per_user' : reply === 'queue' ? 'queue_length' : 'thread_forbidden';
    await ctx.connection.send(['HSET', key, 'retryRefused', reason]);
    await ctx.connection.send(['HDEL', key, 'retriedAs']);
  }
}

/** A retry's metadata is the lost run's with its own link (a retry of a retry links to its direct parent). */
function stripLink(metadata: Record<string, unknown>): Record<string, unknown> {
  const { retryOf: _retryOf, attempt: _attempt, ...rest } = metadata;
  return rest;
}

function parseTerminal(json: string): { status: RunOutcome; error?: ErrorInfo } | undefined {
  try {
    const event = JSON.parse(json) as { data?: { status?: RunOutcome; error?: ErrorInfo } };
    return event.data?.status ? { status: event.data.status, ...(event.data.error && { error: event.data.error }) } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Looks for runs whose lease expired, every `reapIntervalMs`, and ends them. Runs in every
 * process with a worker (and with `reap: true`): the first to take a run holds it for a while,
 * another takes it over if that one dies too.
 */
export class Reaper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly ctx: QueueContext,
    private readonly onError: (error: Error) => void,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.ctx.options.reapIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  tick(): Promise<void> {
    this.running ??= this.reap().finally(() => (this.running = undefined));
    return this.running;
  }

  private async reap(): Promise<void> {
    const { ctx } = this;
    const now = Date.now();
    let due: Array<[string, string[]]>;
    try {
      const candidates = await ctx.connection.send<string[]>(['ZRANGEBYSCORE', ctx.keys.leases, '-inf', String(now), 'LIMIT', '0', '100']);
      if (candidates.length === 0) return;
      due = await DUE.run<Array<[string, string[]]>>(ctx.connection, candidates.length + 1, [
        ctx.keys.leases,
        ...candidates.map((runId) => ctx.keys.run(runId)),
        String(now),
        String(now + Math.max(ctx.options.leaseMs, 5_000)),
        ...candidates,
      ]);
    } catch (error) {
      this.onError(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    await Promise.all(
      due.map(async ([runId, flat]) => {
        const fields: Record<string, string> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
        try {
          await closeRun(ctx, runId, fields);
        } catch (error) {
          // Held until claimUntil, then any reaper retries.
          this.onError(error instanceof Error ? error : new Error(String(error)));
        }
      }),
    );
  }
}
