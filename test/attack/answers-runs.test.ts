/**
 * Outside attacks on the HTTP AnswerEndpoint, the RunsHandler (POST /runs, GET /runs/:id,
 * POST /runs/:id/cancel), MemoryRunQueue with waiting runs, and useChat on a queue.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect as netConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ModelAgent } from '../../src/ai-sdk/index.js';
import { AgentBridge, MemoryTransport, defineTool, tokenFrom, validateLifecycle, type AgentEvent, type Authenticate } from '../../src/index.js';
import { RunsHandler } from '../../src/gateway/runs/index.js';
import { MemoryRunQueue } from '../../src/runs/index.js';
import { AnswerEndpoint } from '../../src/transport/sse/index.js';
import { startChatServer, type ChatServer } from '../helpers/ai-chat.js';
import { BankAgent, pendingOf } from '../helpers/interactive.js';
import { until } from '../helpers/wait.js';
import { approvalModel, nested, sseChunks } from './harness.js';
import { listenHttp } from '../helpers/http-listen.js';

const authenticate: Authenticate = (req) => {
  const token = tokenFrom(req);
  return token?.startsWith('tok-') ? { userId: token.slice(4) } : null;
};

const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

const listen = (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> => listenHttp(handler, stops);

/** A queue serving BankAgent, the run endpoints and the answer endpoint on one server. */
async function start(options: { concurrency?: number; maxRunsPerUser?: number } = {}) {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  await bridge.initialize();
  const bank = new BankAgent({ bridge, approvalTimeoutMs: 20_000 });
  const queue = new MemoryRunQueue({ ...(options.maxRunsPerUser !== undefined && { maxRunsPerUser: options.maxRunsPerUser }) });
  queue.serve({ agents: [bank] }, { concurrency: options.concurrency ?? 4 });
  const runs = new RunsHandler({ queue, authenticate, agents: ['bank'], bodyTimeoutMs: 300 });
  const answers = new AnswerEndpoint({ authenticate, log: transport, allowedOrigins: ['https://app.example'], bodyTimeoutMs: 300 });
  stops.push(async () => {
    await queue.close({ timeoutMs: 50 });
    await bridge.close();
  });
  const base = await listen((req, res) => {
    if (req.url?.startsWith('/answer')) return void answers.node(req, res);
    void runs.handle(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  const post = (path: string, user: string | undefined, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(user && { Authorization: `Bearer tok-${user}` }), ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const get = (path: string, user: string) => fetch(`${base}${path}`, { headers: { Authorization: `Bearer tok-${user}` } });
  const events = (threadId: string, user = 'alice'): AgentEvent[] => transport.read(threadId, user);
  const waiting = async (user: string, threadId: string, transfer = 500) => {
    const response = await post('/runs', user, { agent: 'bank', threadId, input: { transfer } });
    expect(response.status).toBe(202);
    const { runId } = (await response.json()) as { runId: string };
    await until(() => pendingOf(events(threadId, user)) !== undefined, `the waiting run of ${user}`);
    return { runId, pending: pendingOf(events(threadId, user))! };
  };
  return { transport, bank, queue, base, post, get, events, waiting };
}

const answersIn = (events: AgentEvent[]) => events.filter((event) => event.type === 'user_answered');

/** Raw HTTP/1.1 on a socket: writes `head` and a partial body, returns what the server sent before closing. */
function slowloris(base: string, head: string, partial: string): Promise<string> {
  const { port } = new URL(base);
  return new Promise<string>((resolve, reject) => {
    const socket = netConnect(Number(port), '127.0.0.1', () => socket.write(`${head}\r\n\r\n${partial}`));
    let got = '';
    socket.on('data', (data) => (got += data.toString()));
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  });
}

describe('attack: AnswerEndpoint', () => {
  it("bob naming alice's request under his own thread, or hers, is refused; nothing appended; alice then answers once", async () => {
    const s = await start();
    const { runId, pending } = await s.waiting('alice', 'a-thread');
    const bob = await s.waiting('bob', 'b-thread');
    const viaHis = await s.post('/answer', 'bob', { threadId: 'b-thread', runId, requestId: pending.requestId, approved: true });
    expect([403, 404]).toContain(viaHis.status);
    const viaHers = await s.post('/answer', 'bob', { threadId: 'a-thread', runId, requestId: pending.requestId, approved: true });
    expect(viaHers.status).toBe(403);
    // His own run id with her request id.
    const mixed = await s.post('/answer', 'bob', { threadId: 'b-thread', runId: bob.runId, requestId: pending.requestId, approved: true });
    expect([403, 404]).toContain(mixed.status);
    expect(answersIn(s.events('a-thread'))).toEqual([]);
    expect(answersIn(s.events('b-thread', 'bob'))).toEqual([]);
    const mine = await s.post('/answer', 'alice', { threadId: 'a-thread', runId, requestId: pending.requestId, approved: true });
    expect(mine.status).toBe(200);
    expect(await mine.json()).toMatchObject({ requestId: pending.requestId, cursor: expect.any(String), eventId: expect.any(String) });
    await until(() => s.events('a-thread').at(-1)?.type === 'agent_completed', "alice's run to end");
    expect(s.bank.executed).toEqual([500]);
    // Bob's run still waits, and is his to answer.
    expect(s.events('b-thread', 'bob').at(-1)!.type).toBe('tool_executing');
  });

  it('20 racing answers (node handler): exactly one 200, the rest 409; one user_answered', async () => {
    const s = await start();
    const { runId, pending } = await s.waiting('alice', 'race');
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => s.post('/answer', 'alice', { threadId: 'race', runId, requestId: pending.requestId, approved: i % 3 !== 0 })),
    );
    expect(responses.filter((response) => response.status === 200)).toHaveLength(1);
    expect(responses.filter((response) => response.status === 409)).toHaveLength(19);
    await until(() => s.events('race').at(-1)?.type === 'agent_completed', 'the run to end');
    expect(answersIn(s.events('race'))).toHaveLength(1);
    expect(validateLifecycle(s.events('race'))).toEqual({ ok: true, runs: 1 });
  });

  it('hostile bodies and requests: 400 deep / wrong types / malformed ids, 405, 403 origin, 408 slow; nothing appended', async () => {
    const s = await start();
    const { runId, pending } = await s.waiting('alice', 'hostile');
    const body = { threadId: 'hostile', runId, requestId: pending.requestId };
    expect((await s.post('/answer', 'alice', { ...body, approved: 'true' })).status).toBe(400);
    expect((await s.post('/answer', 'alice', { ...body, approved: true, reason: nested(80) })).status).toBe(400);
    // A run id that is no run id: refused as unknown (404) or invalid (400), never looked up as a path.
    expect([400, 404]).toContain((await s.post('/answer', 'alice', { ...body, runId: '../../etc', approved: true })).status);
    expect((await s.post('/answer', 'alice', { ...body, threadId: 'a'.repeat(129), approved: true })).status).toBe(400);
    expect((await s.post('/answer', 'alice', '{"threadId":')).status).toBe(400);
    expect((await s.post('/answer', 'alice', JSON.stringify({ ...body, approved: true }).replace('{', '['))).status).toBe(400);
    expect((await s.post('/answer', undefined, { ...body, approved: true })).status).toBe(401);
    expect((await fetch(`${s.base}/answer`, { headers: { Authorization: 'Bearer tok-alice' } })).status).toBe(405);
    const evil = await s.post('/answer', 'alice', { ...body, approved: true }, { Origin: 'https://evil.example' });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const json = JSON.stringify({ ...body, approved: true });
    const slow = await slowloris(s.base, `POST /answer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-alice\r\nContent-Type: application/json\r\nContent-Length: ${json.length}`, json.slice(0, 10));
    expect(slow).toMatch(/^HTTP\/1\.1 408/);
    expect(answersIn(s.events('hostile'))).toEqual([]);
    expect(s.events('hostile').at(-1)!.type).toBe('tool_executing');
    const allowed = await s.post('/answer', 'alice', { ...body, approved: false }, { Origin: 'https://app.example' });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
  });
});

describe('attack: RunsHandler and MemoryRunQueue', () => {
  it("another user's run: GET and cancel are 403 and leak no status; malformed ids are 4xx, never 5xx; the run is unaffected", async () => {
    const s = await start();
    const { runId, pending } = await s.waiting('alice', 'owned');
    const peek = await s.get(`/runs/${encodeURIComponent(runId)}`, 'bob');
    expect(peek.status).toBe(403);
    const text = await peek.text();
    expect(text).not.toContain('running');
    expect(text).not.toContain('queuedAt');
    expect(text).not.toContain('alice');
    const cancel = await s.post(`/runs/${encodeURIComponent(runId)}/cancel`, 'bob', {});
    expect(cancel.status).toBe(403);
    // Bob cannot submit into her thread or reuse her run id.
    const intoHers = await s.post('/runs', 'bob', { agent: 'bank', threadId: 'owned', input: { transfer: 1 } });
    expect(intoHers.status).toBe(403);
    const reuse = await s.post('/runs', 'bob', { agent: 'bank', threadId: 'bobs', runId, input: { transfer: 1 } });
    expect([400, 403, 409]).toContain(reuse.status);
    for (const id of ['%00', 'x'.repeat(5_000), '..%2F..%2Fetc', 'thread_a_run_1_%F0%9F%92%A3', '%E0%A4%A', `${encodeURIComponent(runId)}%2Fcancel`]) {
      const got = await s.get(`/runs/${id}`, 'bob');
      expect(got.status, id.slice(0, 40)).toBeGreaterThanOrEqual(400);
      expect(got.status, id.slice(0, 40)).toBeLessThan(500);
      const cancelled = await s.post(`/runs/${id}/cancel`, 'bob', {});
      expect(cancelled.status, id.slice(0, 40)).toBeGreaterThanOrEqual(400);
      expect(cancelled.status, id.slice(0, 40)).toBeLessThan(500);
    }
    expect(s.events('owned').at(-1)!.type).toBe('tool_executing');
    const own = await s.get(`/runs/${encodeURIComponent(runId)}`, 'alice');
    expect(own.status).toBe(200);
    expect(await own.json()).toMatchObject({ state: 'running' });
    const answered = await s.post('/answer', 'alice', { threadId: 'owned', runId, requestId: pending.requestId, approved: true });
    expect(answered.status).toBe(200);
    await until(() => s.events('owned').at(-1)?.type === 'agent_completed', 'the run to end');
    expect(s.events('owned').at(-1)).toMatchObject({ data: { status: 'succeeded' } });
  });

  it('slow POST /runs bodies are 408 and queue nothing', async () => {
    const s = await start();
    const json = JSON.stringify({ agent: 'bank', threadId: 'slow', input: { transfer: 1 } });
    const slow = await slowloris(s.base, `POST /runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-alice\r\nContent-Type: application/json\r\nContent-Length: ${json.length}`, json.slice(0, 5));
    expect(slow).toMatch(/^HTTP\/1\.1 408/);
    expect(s.events('slow')).toEqual([]);
    expect((await s.queue.stats()).queued + (await s.queue.stats()).running).toBe(0);
  });

  it('a waiting run holds its worker slot (concurrency 1: the next run stays queued) until answered; cancel of a waiting run closes its request', async () => {
    const s = await start({ concurrency: 1 });
    const first = await s.waiting('alice', 'slot-a');
    const next = await s.post('/runs', 'bob', { agent: 'bank', threadId: 'slot-b', input: { transfer: 5 } });
    expect(next.status).toBe(202);
    const { runId: bobRun } = (await next.json()) as { runId: string };
    expect((await s.queue.status(bobRun))?.state).toBe('queued');
    // Alice cancels her waiting run over HTTP: the request is closed, a late answer is refused.
    const cancel = await s.post(`/runs/${encodeURIComponent(first.runId)}/cancel`, 'alice', {});
    expect(cancel.status).toBe(202);
    await until(() => s.events('slot-a').at(-1)?.type === 'agent_completed', 'the cancelled end');
    expect(s.events('slot-a').at(-1)).toMatchObject({ data: { status: 'cancelled' } });
    const late = await s.post('/answer', 'alice', { threadId: 'slot-a', runId: first.runId, requestId: first.pending.requestId, approved: true });
    expect(late.status).toBe(409);
    expect(s.bank.executed).not.toContain(500);
    // The slot was given back: bob's run ran (5 needs no approval).
    await until(() => s.events('slot-b', 'bob').at(-1)?.type === 'agent_completed', "bob's run to end");
    expect(s.bank.executed).toEqual([5]);
    expect(validateLifecycle(s.events('slot-a'))).toEqual({ ok: true, runs: 1 });
    expect(validateLifecycle(s.events('slot-b', 'bob'))).toEqual({ ok: true, runs: 1 });
  });
});

describe('attack: useChat on a run queue', () => {
  const chatServers: ChatServer[] = [];
  afterEach(async () => {
    for (const server of chatServers.splice(0)) await server.close();
  });

  it("a paused queued run counts toward the queue's maxRunsPerUser; its resend is an answer, not a submit", async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    await bridge.initialize();
    const executed: number[] = [];
    const transfer = defineTool({
      name: 'transfer',
      description: 'Moves money',
      parameters: z.object({ amount: z.number() }),
      needsApproval: true,
      execute: ({ amount }) => {
        executed.push(amount);
        return { sent: amount };
      },
    });
    const agent = new ModelAgent({ name: 'banker', model: approvalModel(), bridge, tools: [transfer] });
    const queue = new MemoryRunQueue({ maxRunsPerUser: 1 });
    queue.serve({ agents: [agent] }, { concurrency: 4 });
    stops.push(async () => {
      await queue.close({ timeoutMs: 50 });
      await bridge.close();
    });
    const server = await startChatServer({ agent: 'banker', queue, log: transport, heartbeatIntervalMs: 0 });
    chatServers.push(server);
    const post = (token: string, body: unknown) =>
      fetch(`${server.url}/api/chat`, { method: 'POST', headers: { 'Content-Type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
    const user = (chat: string) => ({ id: `m-${chat}`, role: 'user', parts: [{ type: 'text', text: 'send 250' }] });
    const first = await post('alice-token', { id: 'q1', trigger: 'submit-message', messages: [user('q1')] });
    expect(first.status).toBe(200);
    const chunks = await sseChunks(first);
    expect(chunks.map((chunk) => chunk.type)).toContain('tool-approval-request');
    const pending = pendingOf(transport.read('q1', 'alice'))!;
    const second = await post('alice-token', { id: 'q2', trigger: 'submit-message', messages: [user('q2')] });
    expect(second.status).toBe(429);
    // Bob is not held by alice's limit.
    const bob = await post('bob-token', { id: 'qb', trigger: 'submit-message', messages: [user('qb')] });
    expect(bob.status).toBe(200);
    await bob.text();
    const resend = await post('alice-token', {
      id: 'q1',
      trigger: 'submit-message',
      messageId: pending.runId,
      messages: [
        user('q1'),
        {
          id: pending.runId,
          role: 'assistant',
          parts: [{ type: 'tool-transfer', toolCallId: pending.toolCallId, state: 'approval-responded', input: { amount: 250 }, approval: { id: pending.requestId, approved: true } }],
        },
      ],
    });
    expect(resend.status).toBe(200);
    const rest = await sseChunks(resend);
    expect(rest[0]).toMatchObject({ type: 'start', messageId: pending.runId });
    expect(rest.map((chunk) => chunk.type)).toContain('tool-output-available');
    expect(executed).toEqual([250]);
    await until(() => transport.read('q1', 'alice').at(-1)?.type === 'agent_completed', 'the run to end');
    expect(validateLifecycle(transport.read('q1', 'alice'))).toEqual({ ok: true, runs: 1 });
    // Alice's slot is free once the queue saw the run finish.
    const third = await post('alice-token', { id: 'q3', trigger: 'submit-message', messages: [user('q3')] });
    expect(third.status).toBe(200);
    await third.text();
  });
});
