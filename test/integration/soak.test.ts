/**
 * The soak, shortened for `npm test`: 100 users with real WebSocket clients, 100-event runs with
 * interleaved tool calls (at once, then paced over 2 s), then 5,000 small runs with heap samples
 * after a full GC. It runs
 * scripts/soak.ts in a child process (`node --expose-gc`), so the heap it measures is its own and
 * not vitest's. `npm run soak` runs the full size (1,000 users, 100,000 runs).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { figures } from '../helpers/reliability-harness.js';
import type { SoakReport } from '../helpers/reliability-soak.js';

const script = fileURLToPath(new URL('../../scripts/soak.ts', import.meta.url));

function soak(args: string[]): Promise<{ code: number | null; report: SoakReport | undefined; stderr: string }> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', script, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const guard = setTimeout(() => child.kill('SIGKILL'), 110_000); // never leave it behind
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(guard);
      const line = stdout.trim().split('\n').at(-1) ?? '';
      let report: SoakReport | undefined;
      try {
        report = JSON.parse(line) as SoakReport;
      } catch {
        report = undefined;
      }
      resolve({ code, report, stderr });
    });
  });
}

describe('soak (shortened)', () => {
  it('100 users × 100-event runs, then 5,000 runs: nothing lost, repeated, reordered or leaked across users; memory flat', async () => {
    const { code, report, stderr } = await soak(['--users', '100', '--events', '100', '--paced-seconds', '2', '--runs-total', '5000', '--sample-every', '1000']);
    expect(stderr).toBe('');
    expect(report, 'the soak printed no report').toBeDefined();
    const { load, paced, memory, violations } = report!;
    expect(violations).toEqual([]);
    expect(code).toBe(0);
    expect(load).toMatchObject({ users: 100, runs: 100, lost: 0, repeatedAfterDedupe: 0, droppedByDedupe: 0, outOfOrder: 0, crossUser: 0, clientErrors: 0 });
    expect(load.eventsPerRun).toBeGreaterThanOrEqual(100);
    expect(load.delivered).toBe(load.emitted);
    expect(paced).toMatchObject({ runs: 100, lost: 0, repeatedAfterDedupe: 0, outOfOrder: 0, crossUser: 0 });
    expect(paced.delivered).toBe(paced.emitted);
    expect(memory).toMatchObject({ runs: 5_000, lost: 0, repeatedAfterDedupe: 0, outOfOrder: 0, crossUser: 0 });
    expect(memory.delivered).toBe(memory.events);
    // Finished runs leave nothing behind: no bridge queue, no active run, registry emptied by its
    // TTL, log within its retention, one connection and one subscription per user, no queued frame.
    for (const sample of memory.samples) {
      expect(sample).toMatchObject({ bridgeQueues: 0, activeRuns: 0, registryRuns: 0, connections: 100, subscriptions: 100, queuedFrames: 0 });
      expect(sample.logEvents).toBeLessThanOrEqual(100 * 100);
    }
    expect(memory.samples).toHaveLength(6);
    figures('soak (shortened)', {
      load: { ...load },
      paced: { ...paced },
      heapMiB: memory.samples.map((s) => s.heapUsedMiB),
      heapGrowthMiB: memory.heapGrowthMiB,
      slope: memory.heapSlopeMiB,
      seconds: memory.seconds,
    });
  });
});
