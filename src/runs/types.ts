import type { BaseAgent } from '../agent/base-agent.js';
import type { AgentBridge } from '../bridge/agent-bridge.js';
import type { ErrorInfo } from '../events/schema.js';
import type { HistogramSnapshot } from '../bridge/histogram.js';
import type { StateError } from '../errors/index.js';

/** Where a run is: waiting for a worker, on one, or ended (then `outcome` says how). */
export type RunState = 'queued' | 'running' | 'finished';
/** How a finished run ended: the `status` of its `agent_completed`. */
export type RunOutcome = 'succeeded' | 'failed' | 'cancelled';

export interface SubmitOptions {
  userId: string;
  threadId: string;
  /** Default `generateRunId(threadId)`. A run id is used once: a known one is refused (`RUN_ID_CONFLICT`). */
  runId?: string;
  /**
   * Carried by `agent_started.data.metadata`. Must be JSON. `retryOf` and `attempt` are the queue's
   * (set on a retry of a lost run): metadata carrying either is refused, `ValidationError`
   * `INVALID_RUN_OPTIONS` naming `metadata.retryOf` / `metadata.attempt`.
   */
  metadata?: Record<string, unknown>;
}

/** A run as the queue knows it (`status()`). Times are epoch milliseconds. */
export interface RunInfo {
  runId: string;
  threadId: string;
  userId: string;
  agent: string;
  state: RunState;
  /** Present once `state` is `finished`. */
  outcome?: RunOutcome;
  /** Present for failed and cancelled runs, as its `agent_completed` carries it (`code` `WORKER_LOST` for a lost worker). */
  error?: ErrorInfo;
  queuedAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** Time from submit to a worker taking the run (ms), once it did. */
  waitMs?: number;
  /** Whether its owner asked to cancel it. */
  cancelRequested: boolean;
  /** A retry of a lost run (`retryLostRuns`): the run it retries, and which run of the chain it is (2 = the first retry). */
  retryOf?: string;
  attempt?: number;
  /** A run that ended `WORKER_LOST` and was submitted again: the retry's run id. */
  retriedAs?: string;
  /** A lost run whose retry admission refused: its reason (`runs_per_user`, `queue_length`). */
  retryRefused?: string;
}

/** What `cancel()` did: asked the run's worker to abort it, ended a queued run at once, or found it ended. */
export type CancelResult = 'requested' | 'cancelled' | 'already_finished';

/** Cluster-wide admission: checked atomically at submit, in every process. */
export interface AdmissionLimits {
  /** Runs one user may have queued or running. Default 10. */
  maxRunsPerUser?: number;
  /** Runs waiting for a worker, all users together. Default 10,000. */
  maxQueued?: number;
}

/** Queue figures: across the cluster for `queued`/`running`, this process's workers for the rest. */
export interface RunQueueStats {
  queued: number;
  running: number;
  /** Age of the oldest queued run (ms), 0 when none. */
  oldestQueuedMs: number;
  /** Runs this process submitted, and refused at admission. */
  submitted: number;
  refused: number;
  /** Submit → picked up by a worker of this process (ms). */
  waitMs: HistogramSnapshot;
  /** Runs this process's workers ended, by outcome; runs ended for lost workers by this process. */
  finished: Record<RunOutcome, number>;
  workerLost: number;
  /** Runs of this process's workers whose events the log refused after they were presumed lost. */
  fenced: number;
  /** Lost runs this process submitted again (`retryLostRuns` of `BullMQRunQueue`; always 0 in one process). */
  retried: number;
}

export interface ServeOptions {
  /** Runs executed at once by this worker. Default 1. */
  concurrency?: number;
  /**
   * The bridge of agents that have none, and of the stand-in that ends runs naming an agent this
   * worker does not serve (`UNKNOWN_AGENT`). Default: the first served agent's bridge.
   */
  bridge?: AgentBridge;
}

export interface CloseOptions {
  /** How long active runs may go on before they are cancelled (`agent_completed` cancelled). Default 10,000 ms. */
  timeoutMs?: number;
}

/** Agents a worker executes, by the name `submit` gives (default: each agent's `name`). */
export type AgentSet = Record<string, BaseAgent<never, unknown>> | ReadonlyArray<BaseAgent<never, unknown>>;

/**
 * A worker of a run queue. `close()` is the graceful shutdown: it stops taking runs, lets active
 * ones finish up to `timeoutMs`, cancels the rest (terminal `cancelled`) and resolves once each
 * has ended.
 */
export interface RunWorker {
  readonly id: string;
  /** Runs executing now on this worker. */
  readonly active: number;
  close(options?: CloseOptions): Promise<void>;
  on<K extends keyof RunWorkerEvents>(event: K, listener: RunWorkerEvents[K]): this;
}

/** What a worker reports. */
export interface RunWorkerEvents {
  /**
   * The worker lost a run it was executing (its lease expired and another process ended it with
   * `WORKER_LOST`, or the run was ended elsewhere): `StateError` `RUN_FENCED`; the run was aborted
   * here and the log refused its later events.
   */
  fenced: (error: StateError, runId: string) => void;
  /** A failure of the worker's own machinery (Redis, BullMQ); runs go on or are ended by the lease. */
  error: (error: Error) => void;
}

/**
 * Runs submitted from any process, executed by workers with capacity, cancelled from any process
 * by their owner. Every run ends with exactly one `agent_completed` in the shared log, also when
 * its worker dies (`WORKER_LOST`). `MemoryRunQueue` (one process) and `BullMQRunQueue` (Redis)
 * implement it; the run endpoints (`agentwire/gateway/runs`), and any other surface that stops a
 * run (a WebSocket frame, AG-UI abort, useChat stop), call this contract.
 */
export interface RunQueue {
  /** Queues a run and resolves with its id at once (before any worker took it). */
  submit(agent: string, input: unknown, options: SubmitOptions): Promise<string>;
  /**
   * Cancels a run for its owner: `RUN_NOT_FOUND` for an unknown run, `AuthError` `THREAD_FORBIDDEN` for another user's,
   * `ValidationError` `INVALID_USER_ID` for a `userId` that is no user id (see `isValidUserId`), before anything else.
   */
  cancel(runId: string, options: { userId: string }): Promise<CancelResult>;
  /** The run's state, or undefined when the queue does not know it. */
  status(runId: string): Promise<RunInfo | undefined>;
  /** Starts a worker in this process. */
  serve(agents: { agents: AgentSet }, options?: ServeOptions): RunWorker;
  stats(): Promise<RunQueueStats>;
  /** Closes the workers this queue started (gracefully, see `RunWorker.close`) and its connections. */
  close(options?: CloseOptions): Promise<void>;
}
