/**
 * A child process that takes one job of the run queue from BullMQ and holds it without claiming
 * its run: what a worker killed between BullMQ's hand-out and agentwire's claim leaves behind. The
 * test SIGKILLs it. Env: REDIS_URL, AGENTWIRE_KEY_PREFIX, LEASE_MS. Prints `ready`, then `took`.
 */
import { Worker } from 'bullmq';
import { bullConnection } from '../../src/runs/bullmq/connection.js';
import { QueueKeys, resolveQueueOptions } from '../../src/runs/bullmq/options.js';

const say = (message: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(message)}\n`);
const options = resolveQueueOptions({ url: process.env.REDIS_URL, keyPrefix: process.env.AGENTWIRE_KEY_PREFIX, leaseMs: Number(process.env.LEASE_MS) });
const keys = new QueueKeys(options.keyPrefix, options.queueName);
const worker = new Worker(
  options.queueName,
  (job) => {
    say({ type: 'took', runId: (job.data as { runId: string }).runId });
    return new Promise<never>(() => undefined);
  },
  { connection: bullConnection(options, 'job-taker') as never, prefix: keys.bullPrefix, concurrency: 1, lockDuration: options.leaseMs, stalledInterval: options.leaseMs },
);
await worker.waitUntilReady();
say({ type: 'ready' });
