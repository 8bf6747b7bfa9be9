import type { ErrorInfo } from '../../events/schema.js';
import type { Histogram } from '../../bridge/histogram.js';
import type { RedisConnection } from '../../transport/redis/connection.js';
import { RedisKeys } from '../../transport/redis/keys.js';
import { closeRunInLog } from './close-run.js';
import type { QueueKeys, ResolvedQueueOptions } from './options.js';
import { DUE, FINISH } from './scripts.js';
import type { RunOutcome } from '../types.js';

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
  };
}

export const WORKER_LOST_ERROR: ErrorInfo = {
  name: 'StateError',
  message: 'The worker running this run was lost: it stopped renewing its lease',
  code: 'WORKER_LOST',
};
export const CANCELLED_QUEUED_ERROR: ErrorInfo = { name: 'AbortError', message: 'The run was cancelled before a worker took it', code: 'ABORTED' };

/** Records a run's end in the queue; `worker` '' for a reaper. Returns FINISH's reply. */
export function finish(ctx: QueueContext, runId: string, userId: string, worker: string, outcome: RunOutcome, error: ErrorInfo | undefined): Promise<string> {
  const { keys } = ctx;
  return FINISH.run<string>(ctx.connection, 4, [
    keys.run(runId),
    keys.user(userId),
    keys.leases,
    keys.queued,
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
  }
  const reply = await finish(ctx, runId, userId, '', outcome, shown);
  if (reply === 'ok' && result.kind === 'ended' && !cancelled) ctx.counters.workerLost++;
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
