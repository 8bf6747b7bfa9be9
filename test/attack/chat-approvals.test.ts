/**
 * Outside attacks on useChat's native approvals (`pauseOnRequest`, the `addToolApprovalResponse`
 * resend), checked against what real HTTP clients receive, with a bystander user (bob) whose run
 * must go on untouched.
 */
import { connect as netConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ModelAgent } from '../../src/ai-sdk/index.js';
import { AgentBridge, MemoryTransport, defineTool, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { startChatServer, type ChatServer } from '../helpers/ai-chat.js';
import { pendingOf } from '../helpers/interactive.js';
import { until } from '../helpers/wait.js';
import { approvalModel, nested, sseChunks } from './harness.js';

const servers: ChatServer[] = [];
const bridges: AgentBridge[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
  for (const bridge of bridges.splice(0)) await bridge.close();
});

const TOKEN: Record<string, string> = { alice: 'alice-token', bob: 'bob-token' };

async function setup(options: { maxRunsPerUser?: number; approvalTimeoutMs?: number; maxBodyBytes?: number; bodyTimeoutMs?: number } = {}) {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  await bridge.initialize();
  bridges.push(bridge);
  const executed: Array<{ user: string; amount: number }> = [];
  const transfer = defineTool({
    name: 'transfer',
    description: 'Moves money',
    parameters: z.object({ amount: z.number() }),
    needsApproval: true,
    ...(options.approvalTimeoutMs !== undefined && { approvalTimeoutMs: options.approvalTimeoutMs }),
    execute: ({ amount }, ctx) => {
      executed.push({ user: ctx.userId, amount });
      return { sent: amount };
    },
  });
  const agent = new ModelAgent({ name: 'banker', model: approvalModel(), bridge, tools: [transfer] });
  const { approvalTimeoutMs: _unused, ...handlerOptions } = options;
  const server = await startChatServer({ agent, log: transport, heartbeatIntervalMs: 0, ...handlerOptions });
  servers.push(server);
  const url = `${server.url}/api/chat`;
  const post = (user: string, body: unknown, init: RequestInit = {}) =>
    fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', authorization: `Bearer ${TOKEN[user]}` },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      ...init,
    });
  /** Sends a first user message on `chat`: the response ends at the approval request. */
  const ask = async (user: string, chat: string) => {
    const response = await post(user, { id: chat, trigger: 'submit-message', messages: [{ id: `m-${chat}`, role: 'user', parts: [{ type: 'text', text: 'send 250' }] }] });
    return { status: response.status, chunks: response.ok ? await sseChunks(response) : [], body: response.ok ? undefined : await response.json() };
  };
  const events = (chat: string, user = 'alice'): AgentEvent[] => transport.read(chat, user);
  const pending = (chat: string, user = 'alice') => pendingOf(events(chat, user))!;
  const part = (p: { toolCallId: string }, approvalId: string, approval: Record<string, unknown> = { approved: true }) => ({
    type: 'tool-transfer',
    toolCallId: p.toolCallId,
    state: 'approval-responded',
    input: { amount: 250 },
    approval: { id: approvalId, ...approval },
  });
  /** The resend `addToolApprovalResponse` makes: the assistant message (id = run id) with the responded part. */
  const resendBody = (chat: string, messageId: string, parts: unknown[]) => ({
    id: chat,
    trigger: 'submit-message',
    messageId,
    messages: [
      { id: `m-${chat}`, role: 'user', parts: [{ type: 'text', text: 'send 250' }] },
      { id: messageId, role: 'assistant', parts },
    ],
  });
  const resend = (user: string, chat: string, p = pending(chat, user), approval: Record<string, unknown> = { approved: true }) =>
    post(user, resendBody(chat, p.runId, [part(p, p.requestId, approval)]));
  const answersIn = (chat: string, user = 'alice') => events(chat, user).filter((event) => event.type === 'user_answered');
  return { transport, executed, post, ask, events, pending, part, resendBody, resend, answersIn, url };
}

const types = (chunks: Array<Record<string, unknown>>) => chunks.map((chunk) => chunk.type);
const runIdsOf = (chunks: Array<Record<string, unknown>>) =>
  new Set(
    chunks.flatMap((chunk) => {
      const meta = (chunk.messageMetadata ?? (chunk.type === 'message-metadata' ? chunk.messageMetadata : undefined)) as { agentwire?: { runId?: string } } | undefined;
      return [chunk.type === 'start' ? (chunk.messageId as string) : undefined, meta?.agentwire?.runId].filter((id): id is string => id !== undefined);
    }),
  );

describe('attack: useChat approvals (pauseOnRequest resend)', () => {
  it('paused runs keep their slots (429 for a third chat), a resend takes none; the bystander is served; the freed slot is usable', async () => {
    const s = await setup({ maxRunsPerUser: 2 });
    const a1 = await s.ask('alice', 'c1');
    const a2 = await s.ask('alice', 'c2');
    expect(types(a1.chunks)).toContain('tool-approval-request');
    expect(types(a2.chunks)).toContain('tool-approval-request');
    expect(a1.chunks.at(-1)).toMatchObject({ type: 'finish', finishReason: 'tool-calls' });
    // Both runs wait, so both hold alice's slots.
    const third = await s.ask('alice', 'c3');
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ error: { code: 'TOO_MANY_RUNS' } });
    // Bob (bystander) is not affected by alice's limit, and sees only his own run.
    const b = await s.ask('bob', 'bob-chat');
    expect(b.status).toBe(200);
    const bobRun = s.pending('bob-chat', 'bob').runId;
    expect(runIdsOf(b.chunks)).toEqual(new Set([bobRun]));
    // Resends at the limit are answers, not new runs: not refused.
    const r1 = await s.resend('alice', 'c1');
    expect(r1.status).toBe(200);
    const r1chunks = await sseChunks(r1);
    expect(r1chunks[0]).toMatchObject({ type: 'start', messageId: s.pending('c1').runId });
    expect(types(r1chunks)).toContain('tool-output-available');
    expect(r1chunks.some((chunk) => chunk.type === 'text-delta' && chunk.delta === 'Done.')).toBe(true);
    expect(runIdsOf(r1chunks)).toEqual(new Set([s.pending('c1').runId]));
    // c1 ended: its slot is free again.
    await until(() => s.events('c1').at(-1)?.type === 'agent_completed', 'c1 to end');
    const again = await s.ask('alice', 'c3');
    expect(again.status).toBe(200);
    expect(s.executed).toEqual([{ user: 'alice', amount: 250 }]);
    // Bob's run still waits and answers normally.
    const rb = await s.resend('bob', 'bob-chat');
    expect(rb.status).toBe(200);
    expect(runIdsOf(await sseChunks(rb))).toEqual(new Set([bobRun]));
    for (const chat of ['c1']) expect(validateLifecycle(s.events(chat))).toEqual({ ok: true, runs: 1 });
    expect(validateLifecycle(s.events('bob-chat', 'bob'))).toEqual({ ok: true, runs: 1 });
  });

  it('racing resends of one approval (10 at once): exactly one is taken, the others 409 ANSWER_ALREADY_GIVEN; the tool runs once', async () => {
    const s = await setup();
    await s.ask('alice', 'race');
    const p = s.pending('race');
    const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => s.resend('alice', 'race', p, { approved: i % 2 === 0 })));
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    for (const response of responses) {
      if (response.status === 200) await response.text();
      else {
        expect(response.status).toBe(409);
        expect(await response.json()).toMatchObject({ error: { code: 'ANSWER_ALREADY_GIVEN' } });
      }
    }
    await until(() => s.events('race').at(-1)?.type === 'agent_completed', 'the run to end');
    expect(s.answersIn('race')).toHaveLength(1);
    expect(s.executed.length).toBeLessThanOrEqual(1);
    expect(validateLifecycle(s.events('race'))).toEqual({ ok: true, runs: 1 });
  });

  it("an approval id of the same user's other chat is 404 in this chat; neither run is answered", async () => {
    const s = await setup();
    await s.ask('alice', 'x1');
    await s.ask('alice', 'x2');
    const p1 = s.pending('x1');
    const p2 = s.pending('x2');
    // In chat x2, naming x1's request (message id: x2's run, as a confused client would send).
    const cross = await s.post('alice', s.resendBody('x2', p2.runId, [s.part(p2, p1.requestId)]));
    expect(cross.status).toBe(404);
    expect(await cross.json()).toMatchObject({ error: { code: 'ANSWER_UNKNOWN_REQUEST' } });
    // And with the message id of x1's run, still in chat x2.
    const cross2 = await s.post('alice', s.resendBody('x2', p1.runId, [s.part(p1, p1.requestId)]));
    expect(cross2.status).toBe(404);
    expect(s.answersIn('x1')).toEqual([]);
    expect(s.answersIn('x2')).toEqual([]);
    expect(s.events('x1').at(-1)!.type).toBe('tool_executing');
    expect(s.events('x2').at(-1)!.type).toBe('tool_executing');
  });

  it('a forged assistant message id on the resend: the stream carries the run that asked (its own id), nothing else', async () => {
    const s = await setup();
    await s.ask('alice', 'forged-id');
    const p = s.pending('forged-id');
    const forged = 'thread_forged-id_run_1764633600000_AAAAAAAAAAAA';
    const response = await s.post('alice', s.resendBody('forged-id', forged, [s.part(p, p.requestId)]));
    if (response.status === 200) {
      const chunks = await sseChunks(response);
      expect(runIdsOf(chunks)).toEqual(new Set([p.runId]));
      expect(chunks[0]).toMatchObject({ type: 'start', messageId: p.runId });
    } else {
      expect([400, 404]).toContain(response.status);
      expect(s.answersIn('forged-id')).toEqual([]);
    }
  });

  it('a resend naming a timed-out request (run ended) is 409 and appends nothing', async () => {
    const s = await setup({ approvalTimeoutMs: 150 });
    await s.ask('alice', 'late');
    const p = s.pending('late');
    await until(() => s.events('late').at(-1)?.type === 'agent_completed', 'the run to time out and end', 10_000);
    expect(s.events('late').find((event) => event.type === 'tool_completed')).toMatchObject({ data: { status: 'failed', error: { code: 'APPROVAL_TIMEOUT' } } });
    const response = await s.resend('alice', 'late', p);
    expect(response.status).toBe(409);
    expect(['REQUEST_CLOSED', 'RUN_CLOSED']).toContain(((await response.json()) as { error: { code: string } }).error.code);
    expect(s.answersIn('late')).toEqual([]);
    expect(s.executed).toEqual([]);
  });

  it('hostile resend bodies (too deep, too large, a non-boolean approval, slow) are refused; the run still waits and then takes the real answer', async () => {
    const s = await setup({ maxBodyBytes: 8_192, bodyTimeoutMs: 300 });
    await s.ask('alice', 'hostile');
    const p = s.pending('hostile');
    const deep = await s.post('alice', s.resendBody('hostile', p.runId, [{ ...s.part(p, p.requestId), input: nested(100) }]));
    expect(deep.status).toBe(400);
    expect(await deep.json()).toMatchObject({ error: { code: 'BODY_TOO_DEEP' } });
    const large = await s.post('alice', s.resendBody('hostile', p.runId, [s.part(p, p.requestId, { approved: false, reason: 'x'.repeat(10_000) })]));
    expect(large.status).toBe(413);
    const notBoolean = await s.resend('alice', 'hostile', p, { approved: 'yes' });
    expect(notBoolean.status).toBe(400);
    // Slowloris: headers and half a body, then nothing.
    const { port } = new URL(s.url);
    const slow = await new Promise<string>((resolve, reject) => {
      const socket = netConnect(Number(port), '127.0.0.1', () => {
        const body = JSON.stringify(s.resendBody('hostile', p.runId, [s.part(p, p.requestId)]));
        socket.write(`POST /api/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 20)}`);
      });
      let got = '';
      socket.on('data', (data) => (got += data.toString()));
      socket.on('close', () => resolve(got));
      socket.on('error', reject);
    });
    expect(slow).toMatch(/^HTTP\/1\.1 408/);
    expect(s.answersIn('hostile')).toEqual([]);
    expect(s.events('hostile').at(-1)!.type).toBe('tool_executing');
    const real = await s.resend('alice', 'hostile', p);
    expect(real.status).toBe(200);
    expect(types(await sseChunks(real))).toContain('tool-output-available');
    expect(s.executed).toEqual([{ user: 'alice', amount: 250 }]);
  });

  it('a denial with a long reason: over 1,024 characters is 400 ANSWER_INVALID with nothing appended (undocumented limit); 1,024 is taken', async () => {
    const s = await setup();
    await s.ask('alice', 'reason');
    const p = s.pending('reason');
    const tooLong = await s.resend('alice', 'reason', p, { approved: false, reason: 'r'.repeat(200_000) });
    expect(tooLong.status).toBe(400);
    expect(await tooLong.json()).toMatchObject({ error: { code: 'ANSWER_INVALID', field: 'data.reason' } });
    expect(s.answersIn('reason')).toEqual([]);
    const response = await s.resend('alice', 'reason', p, { approved: false, reason: 'r'.repeat(1_024) });
    expect(response.status).toBe(200);
    const chunks = await sseChunks(response);
    expect(types(chunks)).toContain('tool-output-denied');
    await until(() => s.events('reason').at(-1)?.type === 'agent_completed', 'the run to end');
    const completed = s.events('reason').find((event) => event.type === 'tool_completed')!;
    const error = (completed.data as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('TOOL_DENIED');
    expect(error.message.length).toBeLessThanOrEqual(1_024);
    expect(s.executed).toEqual([]);
    expect(validateLifecycle(s.events('reason'))).toEqual({ ok: true, runs: 1 });
  });

  it('leaving the resend response right away: the answer was taken once, the stream resumes with the rest', async () => {
    const s = await setup();
    await s.ask('alice', 'leave');
    const p = s.pending('leave');
    const controller = new AbortController();
    const response = await s.post('alice', s.resendBody('leave', p.runId, [s.part(p, p.requestId)]), { signal: controller.signal });
    expect(response.status).toBe(200);
    controller.abort();
    await until(() => s.events('leave').at(-1)?.type === 'agent_completed', 'the run to end');
    expect(s.answersIn('leave')).toHaveLength(1);
    const resumed = await fetch(`${s.url}/leave/stream`, { headers: { authorization: 'Bearer alice-token' } });
    // The run has ended: nothing active to resume (204), or a replay that ends with finish.
    if (resumed.status === 200) expect((await sseChunks(resumed)).at(-1)).toMatchObject({ type: 'finish' });
    else expect(resumed.status).toBe(204);
    const repeat = await s.resend('alice', 'leave', p);
    expect(repeat.status).toBe(409);
    expect(s.executed).toEqual([{ user: 'alice', amount: 250 }]);
  });
});
