import { MAX_TIMER_MS, checker, given, shown } from '../../errors/options.js';
import type { RedisConnectionOptions } from '../../transport/redis/options.js';
import { resolveConnectionOptions, type ResolvedConnectionOptions } from '../../transport/redis/options.js';
import { positiveInt, resolveAdmission } from '../shared.js';
import type { AdmissionLimits } from '../types.js';

const OWNER = 'BullMQRunQueue';

export interface BullMQRunQueueOptions extends RedisConnectionOptions, AdmissionLimits {
  /**
   * Name of the queue; processes that share runs use the same name and `keyPrefix`. The queue's
   * keys (BullMQ's and agentwire's) share the hash tag `{<queueName>}`: one slot on a Redis
   * Cluster. Default `'runs'`.
   */
  queueName?: string;
  /**
   * A worker renews the lease of each of its runs every `leaseMs / 3`; a run whose lease is
   * `leaseMs` old is presumed lost: it ends with `agent_completed` failed, code `WORKER_LOST`,
   * within `leaseMs + reapIntervalMs` of the worker's last renewal. Default 15,000 ms.
   */
  leaseMs?: number;
  /** How often each process with a worker (or `reap: true`) looks for expired leases. Default 1,000 ms. */
  reapIntervalMs?: number;
  /** Whether this process looks for expired leases even without a worker (e.g. a gateway). Default false: every worker does. */
  reap?: boolean;
  /** How long a finished run's status is kept. Default 86,400 s (24 h). */
  statusTtlSeconds?: number;
  /**
   * The event log's retention, as the workers' `RedisStreamsTransport` has it (the terminal event
   * of a lost run is appended with it). Default the transport's: 10,000 entries, 86,400 s.
   */
  log?: { maxLenPerThread?: number; threadTtlSeconds?: number };
  /**
   * Opt-in: a run that ends `WORKER_LOST` is submitted again as a new run (new run id, same
   * thread, user, agent, input and metadata), linked both ways (`retryOf` / `retriedAs`). Off by
   * default: agents have side effects. Decided at submit by the submitting process and kept with
   * the run, so whichever process reaps it honours it. See `RetryLostRuns`.
   */
  retryLostRuns?: RetryLostRuns;
}

/** How lost runs are retried (`BullMQRunQueueOptions.retryLostRuns`). */
export interface RetryLostRuns {
  /** How many times one submitted run may be run again after lost workers (1-10): a run and its retries are `attempts + 1` runs at most. */
  attempts: number;
}

export interface ResolvedQueueOptions extends ResolvedConnectionOptions {
  queueName: string;
  leaseMs: number;
  reapIntervalMs: number;
  reap: boolean;
  statusTtlSeconds: number;
  maxRunsPerUser: number;
  maxQueued: number;
  log: { maxLenPerThread: number; threadTtlSeconds: number };
  /** Retries of a lost run: 0 when off. */
  retryAttempts: number;
}

export function resolveQueueOptions(options: BullMQRunQueueOptions): ResolvedQueueOptions {
  const connection = resolveConnectionOptions(options, OWNER);
  const check = checker(OWNER);
  // Only undefined means the default: a null queue name (or log, or retryLostRuns) is refused.
  const queueName: unknown = given(options.queueName, 'runs');
  if (typeof queueName !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(queueName)) {
    throw check.fail('queueName', `must be 1-64 letters, digits, _ . - (got ${shown(queueName)})`);
  }
  for (const name of ['log', 'retryLostRuns'] as const) {
    const value: unknown = options[name];
    if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
      throw check.fail(name, `must be an object (got ${shown(value)})`);
    }
  }
  return {
    ...connection,
    ...resolveAdmission(options, OWNER),
    queueName,
    // Timers: a lease is renewed every leaseMs / 3, leases are looked for every reapIntervalMs.
    leaseMs: positiveInt('leaseMs', given(options.leaseMs, 15_000), 30, OWNER, MAX_TIMER_MS),
    reapIntervalMs: positiveInt('reapIntervalMs', given(options.reapIntervalMs, 1_000), 10, OWNER, MAX_TIMER_MS),
    reap: check.boolean('reap', given(options.reap, false)),
    statusTtlSeconds: positiveInt('statusTtlSeconds', given(options.statusTtlSeconds, 86_400), 1, OWNER),
    retryAttempts: options.retryLostRuns === undefined ? 0 : positiveInt('retryLostRuns.attempts', options.retryLostRuns?.attempts as number, 1, OWNER, 10),
    log: {
      maxLenPerThread: positiveInt('log.maxLenPerThread', given(options.log?.maxLenPerThread, 10_000), 1, OWNER),
      threadTtlSeconds: positiveInt('log.threadTtlSeconds', given(options.log?.threadTtlSeconds, 86_400), 1, OWNER),
    },
  };
}

/** Keys of one queue: all under the hash tag of its name. */
export class QueueKeys {
  /** BullMQ's prefix: its keys are `<bullPrefix>:<queueName>:…`. */
  readonly bullPrefix: string;
  private readonly base: string;
  readonly runPrefix: string;
  readonly queued: string;
  readonly leases: string;
  readonly cancelChannel: string;

  constructor(keyPrefix: string, queueName: string) {
    this.bullPrefix = `${keyPrefix}{${queueName}}`;
    this.base = `${this.bullPrefix}:aw:`;
    this.runPrefix = `${this.base}run:`;
    this.queued = `${this.base}queued`;
    this.leases = `${this.base}leases`;
    this.cancelChannel = `${this.base}cancel`;
  }

  run(runId: string): string {
    return this.runPrefix + runId;
  }

  user(userId: string): string {
    return `${this.base}user:${userId}`;
  }

  /** Who the thread's queued or running runs belong to (SUBMIT). */
  thread(threadId: string): string {
    return `${this.base}thread:${threadId}`;
  }
}
