import { ExampleProcess } from '../../examples/scale-out/processes.js';
import { REDIS_URL } from './redis-env.js';

/**
 * Starts a BullMQ run worker in a child process (examples/runs/worker.ts) on `keyPrefix`, one run
 * at a time, and resolves once it is ready; the caller's `processes` list stops it.
 */
export async function spawnRunsWorker(processes: ExampleProcess[], name: string, keyPrefix: string, timing: { leaseMs: number; reapMs: number }): Promise<ExampleProcess> {
  const child = new ExampleProcess(name, '../runs/worker.ts', {
    REDIS_URL,
    AGENTWIRE_KEY_PREFIX: keyPrefix,
    LEASE_MS: String(timing.leaseMs),
    REAP_INTERVAL_MS: String(timing.reapMs),
    CONCURRENCY: '1',
  });
  processes.push(child);
  await child.message('ready');
  return child;
}
