import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport } from '../../src/index.js';
import { tokenFrom, type AuthRequest } from '../../src/gateway/index.js';
import { RunsHandler } from '../../src/gateway/runs/index.js';
import { MemoryRunQueue } from '../../src/runs/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { REDIS_URL, deletePrefix, describeWithRedis, probeRedis, testPrefix } from '../helpers/redis-env.js';
import { StepAgent } from '../helpers/runs-agents.js';

const availability = await probeRedis();
const authenticate = (request: AuthRequest) => {
  const token = tokenFrom(request);
  if (token === 'slow') return new Promise<null>(() => undefined);
  return token ? { userId: token } : null;
};

describe('run endpoints (node handler over HTTP, MemoryRunQueue)', () => {
  let server: Server;
  let base: string;
  let queue: MemoryRunQueue;
  let bridge: AgentBridge;

  afterEach(async () => {
    await queue.close({ timeoutMs: 50 });
    await bridge.close();
    await new Promise((resolve) => server.close(resolve));
  });

  async function start() {
    bridge = new AgentBridge({ transport: new MemoryTransport() });
    queue = new MemoryRunQueue();
    queue.serve({ agents: [new StepAgent({ bridge })] }, { concurrency: 2 });
    const handler = new RunsHandler({ queue, authenticate, authTimeoutMs: 200, maxBodyBytes: 2_000, allowedOrigins: ['https://app.example'], agents: ['steps'] });
    server = createServer((req, res) => {
      void handler.handle(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/runs`;
    return handler;
  }
  const post = (url: string, body: unknown, user?: string, headers: Record<string, string> = {}) =>
    fetch(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'Content-Type': 'application/json', ...(user && { Authorization: `Bearer ${user}` }), ...headers } });
  const get = (url: string, user?: string) => fetch(url, { headers: user ? { Authorization: `Bearer ${user}` } : {} });

  it('submit → 202 with the run id at once; status and cancel for the owner only (403 others, 404 unknown)', async () => {
    const handler = await start();
    const submitted = await post(base, { agent: 'steps', input: { steps: 50, stepMs: 50 }, threadId: 'h-1' }, 'alice');
    expect(submitted.status).toBe(202);
    const { runId, threadId, state } = (await submitted.json()) as { runId: string; threadId: string; state: string };
    expect({ threadId, state }).toEqual({ threadId: 'h-1', state: 'queued' });
    expect(submitted.headers.get('x-agentwire-run-id')).toBe(runId);
    const url = `${base}/${encodeURIComponent(runId)}`;
    expect((await get(url, 'mallory')).status).toBe(403);
    expect((await get(`${base}/thread_h-1_run_1_none`, 'alice')).status).toBe(404);
    expect((await post(`${url}/cancel`, {}, 'mallory')).status).toBe(403);
    const status = (await (await get(url, 'alice')).json()) as { state: string; userId: string };
    expect(status).toMatchObject({ userId: 'alice' });
    const cancelled = await post(`${url}/cancel`, {}, 'alice');
    expect(cancelled.status).toBe(202);
    expect(await cancelled.json()).toMatchObject({ runId });
    for (let i = 0; i < 100 && ((await (await get(url, 'alice')).json()) as { state: string }).state !== 'finished'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await (await get(url, 'alice')).json()).toMatchObject({ state: 'finished', outcome: 'cancelled', cancelRequested: true });
    const stats = await handler.stats();
    expect(stats.refused).toMatchObject({ thread_forbidden: 2, run_not_found: 1 });
    expect(stats.queue.waitMs.count).toBe(1);
  });

  it('refusals on the contract: auth (401, 503 timeout), method, body, schema, unknown agent, origin; CORS preflight', async () => {
    await start();
    expect((await post(base, { agent: 'steps', threadId: 't' })).status).toBe(401);
    expect((await post(base, { agent: 'steps', threadId: 't' }, 'slow')).status).toBe(503);
    const wrong = await get(base, 'alice');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toContain('POST');
    expect((await post(base, 'x'.repeat(3_000), 'alice')).status).toBe(413);
    expect((await post(base, '{not json', 'alice')).status).toBe(400);
    const invalid = await post(base, { agent: 'steps' }, 'alice');
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({ error: { code: 'INVALID_REQUEST', field: 'threadId' } });
    expect(await (await post(base, { agent: 'nope', threadId: 't' }, 'alice')).json()).toMatchObject({ error: { code: 'UNKNOWN_AGENT' } });
    expect((await post(base, { agent: 'steps', threadId: 't' }, 'alice', { Origin: 'https://evil.example' })).status).toBe(403);
    const preflight = await fetch(base, { method: 'OPTIONS', headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const allowed = await post(base, { agent: 'steps', input: { steps: 1, stepMs: 1 }, threadId: 't-cors' }, 'alice', { Origin: 'https://app.example' });
    expect(allowed.status).toBe(202);
    expect(allowed.headers.get('access-control-expose-headers')).toContain('X-Agentwire-Run-Id');
  });
});

describeWithRedis('run endpoints: admission across two gateways (web handlers, BullMQRunQueue)', availability, () => {
  const prefix = testPrefix('runs-gateway');
  const queues: BullMQRunQueue[] = [];
  afterAll(async () => {
    await Promise.all(queues.map((queue) => queue.close()));
    await deletePrefix(prefix);
  });

  it('runs per user and queue length hold across gateways: 429 with the reason and Retry-After; queue figures in stats', async () => {
    const gateways = [0, 1].map(() => {
      const queue = new BullMQRunQueue({ url: REDIS_URL, keyPrefix: prefix, maxRunsPerUser: 2, maxQueued: 3 });
      queues.push(queue);
      return new RunsHandler({ queue, authenticate });
    });
    const submit = (gateway: number, user: string, threadId: string) =>
      gateways[gateway]!.fetch(
        new Request('http://gw/runs', { method: 'POST', headers: { Authorization: `Bearer ${user}` }, body: JSON.stringify({ agent: 'steps', input: {}, threadId }) }),
      );
    expect((await submit(0, 'ann', 'a-1')).status).toBe(202);
    expect((await submit(1, 'ann', 'a-2')).status).toBe(202);
    const perUser = await submit(0, 'ann', 'a-3');
    expect(perUser.status).toBe(429);
    expect(perUser.headers.get('retry-after')).toBe('1');
    expect(await perUser.json()).toMatchObject({ error: { code: 'TOO_MANY_RUNS' } });
    expect((await submit(1, 'ben', 'b-1')).status).toBe(202);
    const full = await submit(0, 'cat', 'c-1');
    expect(full.status).toBe(429);
    expect(await full.json()).toMatchObject({ error: { code: 'QUEUE_FULL' } });
    const stats = await gateways[1]!.stats();
    expect(stats.queue).toMatchObject({ queued: 3, running: 0 });
    expect(stats.queue.oldestQueuedMs).toBeGreaterThanOrEqual(0);
    expect((await gateways[0]!.stats()).refused).toMatchObject({ too_many_runs: 1, queue_full: 1 });
    const unknown = await gateways[0]!.fetch(new Request('http://gw/elsewhere'));
    expect(unknown.status).toBe(404);
  });
});
