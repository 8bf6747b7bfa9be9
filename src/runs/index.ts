/**
 * `agentwire/runs`: run queues. Submit a run from any process, execute it on a worker with
 * capacity, cancel it from any process (its owner only), read its status; every run ends with
 * exactly one `agent_completed`, also when its worker dies (`WORKER_LOST`).
 * `MemoryRunQueue` is the embedded default (one process); `BullMQRunQueue` (`agentwire/runs/bullmq`) scales
 * out on Redis (needs the optional peers `bullmq` v6 and `redis`).
 */
export { MemoryRunQueue, type MemoryRunQueueOptions } from './memory-queue.js';
export { WAIT_BUCKETS_MS, DEFAULT_MAX_QUEUED, DEFAULT_MAX_RUNS_PER_USER, DEFAULT_CLOSE_TIMEOUT_MS } from './shared.js';
export type {
  AdmissionLimits,
  AgentSet,
  CancelResult,
  CloseOptions,
  RunInfo,
  RunOutcome,
  RunQueue,
  RunQueueStats,
  RunState,
  RunWorker,
  RunWorkerEvents,
  ServeOptions,
  SubmitOptions,
} from './types.js';
