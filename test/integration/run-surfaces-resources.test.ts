import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { Exchange, post, startSurface, type Mount, type SurfaceFixture, type SurfaceKind, type SurfaceOptions } from '../helpers/run-surfaces.js';
import { until } from '../helpers/wait.js';

/**
 * Resources per HTTP surface that starts runs (AG-UI, useChat), node and web handler: a flood of
 * runs by one user, 120 bodies of about 1 MB, and slow bodies. The surface refuses what is past
 * its limits, holds nothing for what it refused, and the heap returns to its baseline.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const MiB = 1024 * 1024;

function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
const gc = collector();

async function settledHeap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().heapUsed;
}

describe.each([
  ['agui', 'node'],
  ['agui', 'hono'],
  ['chat', 'node'],
  ['chat', 'hono'],
] as Array<[SurfaceKind, Mount]>)('%s surface resources (%s handler)', (kind, mount) => {
  async function fixture(options: SurfaceOptions = {}): Promise<SurfaceFixture> {
    const surface = await startSurface(kind, mount, options);
    cleanups.push(() => surface.close());
    return surface;
  }
  const send = (surface: SurfaceFixture, token: string, body: unknown, options?: Parameters<typeof post>[3]): Exchange => {
    const x = post(surface, token, body, options);
    cleanups.push(() => x.destroy());
    return x;
  };
  const waiting = (surface: SurfaceFixture, threadId: string) => surface.body(threadId, [{ think: 'waiting' }, { wait: 'abort' }]);

  it('a flood of 300 concurrent runs by one user: maxRunsPerUser start, the rest get 429 and start nothing', async () => {
    const surface = await fixture({ maxConnectionsPerUser: 10 });
    const flood = Array.from({ length: 300 }, (_, i) => send(surface, 'tok-mallory', waiting(surface, `flood-${i}`)));
    await Promise.all(flood.map((x) => x.responded));
    await Promise.all(flood.filter((x) => x.status === 200).map((x) => x.waitFor((e) => e.frames.length > 0, 'the first frame')));
    const statuses = flood.map((x) => x.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(3);
    expect(statuses.filter((status) => status === 429)).toHaveLength(297);
    expect(surface.events.filter((e) => e.type === 'agent_started')).toHaveLength(3);
    // A bystander is not affected by mallory's limit.
    const bystander = send(surface, 'tok-alice', surface.body('alice-1', [{ think: 'hello' }]));
    expect(await bystander.ended).toBe('end');
    expect(bystander.status).toBe(200);
    expect(surface.handler.stats().refused).toEqual({ too_many_runs: 297 });
    surface.handler.revoke('mallory');
    await until(() => surface.events.filter((e) => e.type === 'agent_completed').length === 4, 'the flood runs to end');
  });

  it('120 POSTs of about 1 MB: 413 past maxBodyBytes, the others read and let go; the heap returns to its baseline', async () => {
    const surface = await fixture({ maxRunsPerUser: 120, maxConnectionsPerUser: 200 });
    // Warm up (first requests compile code paths and grow pools), then measure.
    const warm = send(surface, 'tok-alice', surface.body('warm', [{ think: 'warm' }]));
    await warm.ended;
    const before = await settledHeap();
    let peak = before;
    const statuses: number[] = [];
    for (let wave = 0; wave < 12; wave++) {
      const batch = Array.from({ length: 10 }, (_, i) => {
        const n = wave * 10 + i;
        // Even: ~1,000,000 bytes of padding the agent never sees (accepted); odd: past the 1 MiB limit.
        const padding = 'x'.repeat(n % 2 === 0 ? 1_000_000 : 1_100_000);
        return send(surface, `tok-u${n % 4}`, surface.body(`big-${n}`, [{ think: `run ${n}` }], { padding }));
      });
      await Promise.all(batch.map((x) => x.ended));
      statuses.push(...batch.map((x) => x.status));
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(60);
    expect(statuses.filter((s) => s === 413)).toHaveLength(60);
    await until(() => surface.handler.stats().connections.open === 0, 'every stream to end');
    const after = await settledHeap();
    console.log(
      `[resources] ${kind}/${mount}: heap before ${(before / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, after GC ${(after / MiB).toFixed(1)} MiB (${((after - before) / MiB).toFixed(1)} MiB)`,
    );
    expect(after - before).toBeLessThan(8 * MiB);
  });

  it('20 slow bodies get 408 within bodyTimeoutMs and never hold a slot: their user starts runs meanwhile', async () => {
    const surface = await fixture({ bodyTimeoutMs: 500, maxConnectionsPerUser: 10 });
    const slow = Array.from({ length: 20 }, () => send(surface, 'tok-alice', '{"threadId":"sl', { hold: true, length: 10_000 }));
    const meanwhile = [0, 1, 2].map((i) => send(surface, 'tok-alice', surface.body(`m${i}`, [{ think: `run ${i}` }])));
    await Promise.all(meanwhile.map((x) => x.ended));
    expect(meanwhile.map((x) => x.status)).toEqual([200, 200, 200]);
    const started = Date.now();
    await Promise.all(slow.map((x) => x.ended));
    expect(slow.map((x) => x.status)).toEqual(Array.from({ length: 20 }, () => 408));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(surface.handler.stats()).toMatchObject({ refused: { body_timeout: 20 }, connections: { open: 0, authenticating: 0 } });
  });
});
