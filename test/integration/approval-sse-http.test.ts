import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport, validateLifecycle } from '../../src/index.js';
import { AnswerEndpoint } from '../../src/gateway/index.js';
import { SseGateway } from '../../src/transport/sse/index.js';
import { BankAgent, pendingOf } from '../helpers/interactive.js';
import { SseTestClient } from '../helpers/sse-client.js';
import { testAuthenticate } from '../helpers/sse-server.js';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** SSE for reading, `POST /answer` (node handler) and `POST /web-answer` (web handler) for answering, one server. */
async function start(approvalTimeoutMs?: number) {
  const transport = new MemoryTransport();
  const gateway = new SseGateway({ authenticate: testAuthenticate, log: transport });
  const endpoint = new AnswerEndpoint({ authenticate: testAuthenticate, log: transport, maxBodyBytes: 2048 });
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/answer')) return void endpoint.node(req, res);
    if (req.url?.startsWith('/web-answer')) {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const request = new Request(`http://${req.headers.host}${req.url}`, {
          method: req.method,
          headers: req.headers as Record<string, string>,
          ...(req.method === 'POST' && { body: Buffer.concat(chunks) }),
        });
        void endpoint.web(request).then(async (response) => {
          const headers: Record<string, string> = {};
          response.headers.forEach((value, name) => (headers[name] = value));
          res.writeHead(response.status, headers);
          res.end(Buffer.from(await response.arrayBuffer()));
        });
      });
      return;
    }
    if (gateway.handle(req, res)) return;
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const bridge = new AgentBridge({ transport });
  await bridge.initialize();
  const agent = new BankAgent({ bridge, ...(approvalTimeoutMs !== undefined && { approvalTimeoutMs }) });
  stops.push(async () => {
    await bridge.close();
    await gateway.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  });
  const stream = (threadId: string, userId: string) => SseTestClient.open(`${base}${gateway.path}?threadId=${threadId}&token=tok-${userId}`);
  const post = (path: string, userId: string, body: unknown) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { Authorization: `Bearer tok-${userId}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { agent, stream, post };
}

async function waiting(setup: Awaited<ReturnType<typeof start>>, threadId: string, signal?: AbortSignal) {
  const sse = await setup.stream(threadId, 'alice');
  stops.push(async () => sse.close());
  const run = setup.agent.run({ transfer: 300 }, { userId: 'alice', threadId, ...(signal && { signal }) });
  await sse.waitFor((client) => pendingOf(client.events) !== undefined, 'the pending request over SSE');
  return { sse, run, pending: pendingOf(sse.events)! };
}

describe('approval over SSE + the HTTP answer endpoint', () => {
  it('allowed through the node handler: 200 with the cursor; the SSE stream shows the answer, then the result', async () => {
    const setup = await start();
    const { sse, run, pending } = await waiting(setup, 'sse-1');
    const response = await setup.post('/answer', 'alice', { threadId: 'sse-1', runId: pending.runId, requestId: pending.requestId, approved: true });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ requestId: pending.requestId, cursor: expect.any(String) });
    await sse.waitFor((client) => client.events.some((e) => e.type === 'agent_completed'), 'the run end');
    expect(sse.events.map((e) => e.type)).toEqual(['agent_started', 'tool_executing', 'user_answered', 'tool_completed', 'agent_completed']);
    expect(validateLifecycle(sse.events)).toEqual({ ok: true, runs: 1 });
    expect((await run).output).toEqual({ sent: 300 });
  });

  it('denied through the web handler; a second answer is 409, another user 403, no auth 401, a bad body 400, a huge body 413', async () => {
    const setup = await start();
    const { sse, run, pending } = await waiting(setup, 'sse-2');
    const body = { threadId: 'sse-2', runId: pending.runId, requestId: pending.requestId };
    const forbidden = await setup.post('/web-answer', 'mallory', { ...body, approved: true });
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ error: { code: 'ANSWER_FORBIDDEN' } });
    const unauthenticated = await fetch(`${new URL(forbidden.url).origin}/answer`, { method: 'POST', body: JSON.stringify({ ...body, approved: true }) });
    expect(unauthenticated.status).toBe(401);
    const malformed = await setup.post('/answer', 'alice', { ...body, requestId: 42 });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ error: { code: 'INVALID_REQUEST', field: 'requestId' } });
    const huge = await setup.post('/answer', 'alice', { ...body, reason: 'x'.repeat(4096) });
    expect(huge.status).toBe(413);
    expect((await setup.post('/web-answer', 'alice', { ...body, approved: false })).status).toBe(200);
    const again = await setup.post('/answer', 'alice', { ...body, approved: true });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: { code: 'ANSWER_ALREADY_GIVEN' } });
    await sse.waitFor((client) => client.events.some((e) => e.type === 'agent_completed'), 'the run end');
    expect(sse.events.find((e) => e.type === 'tool_completed')).toMatchObject({ data: { status: 'failed', error: { code: 'TOOL_DENIED' } } });
    expect(sse.events.filter((e) => e.type === 'user_answered')).toHaveLength(1);
    expect((await run).output).toEqual({ failed: 'TOOL_DENIED' });
    expect(setup.agent.executed).toEqual([]);
  });

  it('timed out and cancelled: the SSE stream shows the failed call; late answers are 409', async () => {
    const setup = await start(200);
    const timed = await waiting(setup, 'sse-3');
    await timed.sse.waitFor((client) => client.events.some((e) => e.type === 'agent_completed'), 'the timeout');
    expect(timed.sse.events[2]).toMatchObject({ type: 'tool_completed', data: { error: { code: 'APPROVAL_TIMEOUT' } } });
    const late = await setup.post('/answer', 'alice', { threadId: 'sse-3', runId: timed.pending.runId, requestId: timed.pending.requestId, approved: true });
    expect(late.status).toBe(409);

    const controller = new AbortController();
    const cancelled = await waiting(setup, 'sse-4', controller.signal);
    controller.abort();
    await cancelled.sse.waitFor((client) => client.events.some((e) => e.type === 'agent_completed'), 'the cancel');
    expect(cancelled.sse.events.at(-1)).toMatchObject({ data: { status: 'cancelled' } });
    expect((await cancelled.run).status).toBe('cancelled');
    expect(setup.agent.executed).toEqual([]);
  });
});
