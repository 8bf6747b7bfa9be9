/**
 * `agentwire/runs/bullmq`: the run queue on Redis, for runs submitted by gateway processes and
 * executed by worker processes (needs the optional peers `bullmq` v6 and `redis`, node-redis v6).
 */
export { BullMQRunQueue } from './queue.js';
export type { BullMQRunQueueOptions, ResolvedQueueOptions, RetryLostRuns } from './options.js';
