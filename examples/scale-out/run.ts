/**
 * Scale-out demo: Redis, two gateway processes, one agent worker process. A client follows the
 * run on gateway A; A is killed mid-run; the client resumes on gateway B with its last cursor and
 * every event arrives exactly once, in order.
 *
 *   node --import tsx examples/scale-out/run.ts
 *
 * Uses the Redis at REDIS_URL (default redis://127.0.0.1:6379); when none answers, starts a
 * `redis-server` of its own on a free port (nothing kept on disk) and stops it at the end.
 * Environment: STEPS (default 40), STEP_DELAY_MS (default 25).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { nanoid } from 'nanoid';
import { createClient } from 'redis';
import { validateLifecycle } from '../../src/index.js';
import { probeRedis } from '../../src/transport/redis/index.js';
import { runScaleOutScenario } from './scenario.js';

async function ping(url: string): Promise<boolean> {
  return (await probeRedis(url, 1_000)).ok;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The Redis to use, and how to stop it if this script started it. */
async function redis(): Promise<{ url: string; stop: () => void }> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (await ping(url)) return { url, stop: () => undefined };
  const port = await freePort();
  console.log(`no Redis at ${url}: starting redis-server on port ${port}`);
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const own = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100 && !(await ping(own)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!(await ping(own))) throw new Error('could not start redis-server (is it installed?)');
  return { url: own, stop: () => child.kill('SIGTERM') };
}

async function deletePrefix(url: string, prefix: string): Promise<void> {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) if (keys.length > 0) await client.unlink(keys);
  client.destroy();
}

const server = await redis();
const keyPrefix = `agentwire-scale-out:${nanoid(6)}:`;
try {
  const result = await runScaleOutScenario({
    redisUrl: server.url,
    keyPrefix,
    steps: Number(process.env.STEPS ?? 40),
    stepDelayMs: Number(process.env.STEP_DELAY_MS ?? 25),
    log: (line) => console.log(`  ${line}`),
  });
  const all = [...result.fromA, ...result.fromB];
  const unique = new Set(all.map((event) => event.id)).size;
  const lifecycle = validateLifecycle(all);
  const gapless = all.every((event, i) => event.seq === i + 1);
  console.log(`\nthread ${result.threadId} of ${result.userId}`);
  console.log(`  via gateway A (killed mid-run): ${result.fromA.length} events`);
  console.log(`  via gateway B (resumed after ${result.resumedAfter}): ${result.fromB.length} events`);
  console.log(`  total ${all.length}, unique ids ${unique}, seq gapless ${gapless}, lifecycle ${lifecycle.ok ? 'valid' : JSON.stringify(lifecycle)}`);
  console.log(`  worker: run ${String(result.worker.status)}, ${String(result.worker.delivered)} events delivered to Redis, ${String(result.worker.failed)} failed`);
  const ok = unique === all.length && gapless && lifecycle.ok;
  console.log(ok ? '\nevery event arrived exactly once, in order' : '\nFAILED: see above');
  process.exitCode = ok ? 0 : 1;
} finally {
  await deletePrefix(server.url, keyPrefix).catch(() => undefined);
  server.stop();
}
