import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpAgent, type AgentSubscriber, type BaseEvent, type ResumeEntry } from '@ag-ui/client';
import { EventSchema } from '@ag-ui/core/schemas';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createAguiHandler } from '../../src/agui/index.js';
import { AgentBridge, MemoryTransport, tokenFrom, validateLifecycle, type AgentEvent, type Authenticate } from '../../src/index.js';
import { BankAgent, pendingOf, type InteractiveInput } from '../helpers/interactive.js';
import { until } from '../helpers/wait.js';

/** `Bearer user-<name>` authenticates as `<name>`. */
const authenticate: Authenticate = (req) => {
  const token = tokenFrom(req);
  return token?.startsWith('user-') ? { userId: token.slice(5) } : null;
};

const cleanups: Array<() => Promise<void> | void> = [];
let consoleSpies: Array<ReturnType<typeof vi.spyOn>> = [];
beforeEach(() => {
  // The client reports what it strips or cannot apply (console.warn / console.error): none may happen.
  consoleSpies = [vi.spyOn(console, 'warn').mockImplementation(() => undefined), vi.spyOn(console, 'error').mockImplementation(() => undefined)];
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.restoreAllMocks();
});

async function setup(approvalTimeoutMs = 20_000) {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  await bridge.initialize();
  const bank = new BankAgent({ bridge, approvalTimeoutMs });
  const handler = createAguiHandler<InteractiveInput>({
    agent: bank,
    log: transport,
    authenticate,
    heartbeatIntervalMs: 0,
    toInput: (input) => (input.forwardedProps ?? {}) as InteractiveInput,
  });
  const server = createServer((req, res) => {
    if (!handler.handle(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/agui`;
  cleanups.push(() => bridge.close());
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  cleanups.push(() => server.closeAllConnections());
  cleanups.push(() => handler.close());
  const client = (user: string, threadId: string) =>
    new HttpAgent({ url, headers: { Authorization: `Bearer user-${user}` }, threadId, initialMessages: [{ id: 'u1', role: 'user', content: 'send money' }] });
  const post = (user: string, body: unknown) =>
    fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer user-${user}` }, body: JSON.stringify(body) });
  return { transport, bank, client, post, events: (threadId: string, user = 'alice') => transport.read(threadId, user) };
}

/** Runs the HttpAgent (its verifier and schema enforcement are in the pipeline), recording what its subscribers saw. */
async function run(agent: HttpAgent, params: Parameters<HttpAgent['runAgent']>[0]) {
  const seen: BaseEvent[] = [];
  const failures: Error[] = [];
  const subscriber: AgentSubscriber = {
    onEvent: ({ event }) => void seen.push(event),
    onRunFailed: ({ error }) => void failures.push(error),
  };
  const outcome = await agent.runAgent(params, subscriber);
  for (const event of seen) expect(EventSchema.safeParse(event).success).toBe(true);
  expect(failures).toEqual([]);
  return { ...outcome, seen, types: seen.map((event) => event.type) };
}

function expectNoClientComplaints(): void {
  for (const spy of consoleSpies) expect(spy.mock.calls).toEqual([]);
}

const contentOf = (event: BaseEvent | undefined): unknown => JSON.parse((event as unknown as { content: string }).content);
const answersIn = (events: readonly AgentEvent[]) => events.filter((event) => event.type === 'user_answered');
const finished = (seen: BaseEvent[]) => seen.find((event) => event.type === 'RUN_FINISHED') as { outcome?: { type: string }; result?: unknown; runId: string } | undefined;

/** The first run: the stream ends with RUN_FINISHED outcome interrupt at the approval request. */
async function interrupted(s: Awaited<ReturnType<typeof setup>>, agent: HttpAgent, threadId: string) {
  const first = await run(agent, { forwardedProps: { transfer: 500 } });
  const pending = pendingOf(s.events(threadId))!;
  expect(first.types).toEqual(['RUN_STARTED', 'TOOL_CALL_START', 'TOOL_CALL_ARGS', 'TOOL_CALL_END', 'RUN_FINISHED']);
  expect(finished(first.seen)).toMatchObject({
    runId: pending.runId,
    outcome: {
      type: 'interrupt',
      interrupts: [{ id: pending.requestId, reason: 'tool_approval', toolCallId: pending.toolCallId, metadata: { agentwire: { runId: pending.runId, kind: 'approval' } } }],
    },
  });
  expect(agent.pendingInterrupts.map((interrupt) => interrupt.id)).toEqual([pending.requestId]);
  // The run waits: nothing after its request yet.
  expect(s.events(threadId).at(-1)).toMatchObject({ type: 'tool_executing', data: { pending: { requestId: pending.requestId } } });
  return pending;
}

describe('AG-UI interrupts with @ag-ui/client HttpAgent: the resume answers the waiting run, which streams on', () => {
  it('approved: RUN_FINISHED interrupt, then the resume streams the tool result and the end of the same run', async () => {
    const s = await setup();
    const agent = s.client('alice', 'thread-approve');
    const pending = await interrupted(s, agent, 'thread-approve');
    const resume: ResumeEntry[] = [{ interruptId: pending.requestId, status: 'resolved', payload: { approved: true } }];
    const second = await run(agent, { resume });
    expect(second.types).toEqual(['RUN_STARTED', 'TOOL_CALL_RESULT', 'RUN_FINISHED']);
    expect(second.seen[0]).toMatchObject({ runId: pending.runId, threadId: 'thread-approve' });
    expect(second.seen[1]).toMatchObject({ toolCallId: pending.toolCallId, content: JSON.stringify({ sent: 500 }) });
    expect(finished(second.seen)).toMatchObject({ outcome: { type: 'success' }, result: { sent: 500 } });
    expect(agent.pendingInterrupts).toEqual([]);
    // The tool call's result joined the conversation the client keeps.
    expect(agent.messages.some((message) => message.role === 'tool' && message.toolCallId === pending.toolCallId)).toBe(true);
    expect(s.bank.executed).toEqual([500]);
    const events = s.events('thread-approve');
    expect(answersIn(events)).toMatchObject([{ userId: 'alice', data: { requestId: pending.requestId, approved: true } }]);
    expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
    // A second resume of the same interrupt is refused by the log; nothing is appended.
    const again = await s.post('alice', { threadId: 'thread-approve', runId: 'again-1', messages: [], resume });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: { code: 'ANSWER_ALREADY_GIVEN' } });
    expect(answersIn(s.events('thread-approve'))).toHaveLength(1);
    expectNoClientComplaints();
  });

  it('denied: the tool does not run; the result says TOOL_DENIED and the run ends normally', async () => {
    const s = await setup();
    const agent = s.client('alice', 'thread-deny');
    const pending = await interrupted(s, agent, 'thread-deny');
    const second = await run(agent, { resume: [{ interruptId: pending.requestId, status: 'resolved', payload: { approved: false, reason: 'too much' } }] });
    expect(second.types).toEqual(['RUN_STARTED', 'TOOL_CALL_RESULT', 'RUN_FINISHED']);
    expect(contentOf(second.seen[1])).toMatchObject({ error: { code: 'TOOL_DENIED' } });
    expect(finished(second.seen)).toMatchObject({ outcome: { type: 'success' }, result: { failed: 'TOOL_DENIED' } });
    expect(s.bank.executed).toEqual([]);
    expect(answersIn(s.events('thread-deny'))).toMatchObject([{ data: { approved: false, reason: 'too much' } }]);
    expectNoClientComplaints();
  });

  it('timed out: an answer is refused (REQUEST_CLOSED); the client cancels the expired interrupt and gets the rest: APPROVAL_TIMEOUT', async () => {
    const s = await setup(300);
    const agent = s.client('alice', 'thread-timeout');
    const pending = await interrupted(s, agent, 'thread-timeout');
    const interrupt = agent.pendingInterrupts[0]!;
    expect(Date.parse(interrupt.expiresAt!)).toBe(s.events('thread-timeout').find((event) => event.type === 'tool_executing')!.ts + 300);
    await until(() => s.events('thread-timeout').some((event) => event.type === 'agent_completed'), 'the approval to time out and the run to end');
    const late = await s.post('alice', { threadId: 'thread-timeout', runId: 'late-1', messages: [], resume: [{ interruptId: pending.requestId, status: 'resolved', payload: { approved: true } }] });
    expect(late.status).toBe(409);
    expect(await late.json()).toMatchObject({ error: { code: 'REQUEST_CLOSED' } });
    const second = await run(agent, { resume: [{ interruptId: pending.requestId, status: 'cancelled' }] });
    expect(second.types).toEqual(['RUN_STARTED', 'TOOL_CALL_RESULT', 'RUN_FINISHED']);
    expect(contentOf(second.seen[1])).toMatchObject({ error: { code: 'APPROVAL_TIMEOUT' } });
    expect(finished(second.seen)).toMatchObject({ outcome: { type: 'success' }, result: { failed: 'APPROVAL_TIMEOUT' } });
    expect(agent.pendingInterrupts).toEqual([]);
    expect(s.bank.executed).toEqual([]);
    expect(answersIn(s.events('thread-timeout'))).toEqual([]);
    expectNoClientComplaints();
  });

  it('cancelled: a resume that gives the interrupt up cancels the waiting run (RUN_FINISHED cancelled); a later answer is refused', async () => {
    const s = await setup();
    const agent = s.client('alice', 'thread-cancel');
    const pending = await interrupted(s, agent, 'thread-cancel');
    const second = await run(agent, { resume: [{ interruptId: pending.requestId, status: 'cancelled' }] });
    expect(second.types).toEqual(['RUN_STARTED', 'TOOL_CALL_RESULT', 'RUN_FINISHED']);
    expect(contentOf(second.seen[1])).toMatchObject({ error: { name: 'AbortError' } });
    expect(finished(second.seen)).toMatchObject({ outcome: { type: 'cancelled' } });
    const events = s.events('thread-cancel');
    expect(events.at(-1)).toMatchObject({ type: 'agent_completed', data: { status: 'cancelled' } });
    expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
    const late = await s.post('alice', { threadId: 'thread-cancel', runId: 'late-2', messages: [], resume: [{ interruptId: pending.requestId, status: 'resolved', payload: { approved: true } }] });
    expect(late.status).toBe(409);
    expect(s.bank.executed).toEqual([]);
    expectNoClientComplaints();
  });

  it("another user's resume is refused (403 on her thread, 404 from his own) and changes nothing; her own resume works afterwards", async () => {
    const s = await setup();
    const agent = s.client('alice', 'thread-owner');
    const pending = await interrupted(s, agent, 'thread-owner');
    const resume: ResumeEntry[] = [{ interruptId: pending.requestId, status: 'resolved', payload: { approved: true } }];
    const bobOnHers = s.client('bob', 'thread-owner');
    await expect(bobOnHers.runAgent({ resume })).rejects.toMatchObject({ status: 403, payload: { error: { code: 'THREAD_FORBIDDEN' } } });
    const bobOnHis = s.client('bob', 'thread-bob');
    await expect(bobOnHis.runAgent({ resume })).rejects.toMatchObject({ status: 404, payload: { error: { code: 'ANSWER_UNKNOWN_REQUEST' } } });
    expect(answersIn(s.events('thread-owner'))).toEqual([]);
    expect(s.events('thread-owner').at(-1)!.type).toBe('tool_executing');
    const second = await run(agent, { resume });
    expect(finished(second.seen)).toMatchObject({ outcome: { type: 'success' }, result: { sent: 500 } });
    expect(answersIn(s.events('thread-owner'))).toMatchObject([{ userId: 'alice' }]);
    expect(s.bank.executed).toEqual([500]);
  });

  it('a question: the interrupt carries the question and its JSON Schema; the resume payload is the answer, checked by the run', async () => {
    const s = await setup();
    const agent = s.client('alice', 'thread-ask');
    const first = await run(agent, { forwardedProps: { ask: 'Which card color?' } });
    const pending = pendingOf(s.events('thread-ask'))!;
    expect(finished(first.seen)).toMatchObject({
      outcome: {
        type: 'interrupt',
        interrupts: [{ id: pending.requestId, reason: 'question', message: 'Which card color?', responseSchema: { type: 'object', properties: { color: { enum: ['red', 'blue'] } } } }],
      },
    });
    const second = await run(agent, { resume: [{ interruptId: pending.requestId, status: 'resolved', payload: { color: 'blue' } }] });
    expect(second.types).toEqual(['RUN_STARTED', 'TOOL_CALL_RESULT', 'RUN_FINISHED']);
    expect(finished(second.seen)).toMatchObject({ outcome: { type: 'success' }, result: { color: 'blue' } });
    expect(answersIn(s.events('thread-ask'))).toMatchObject([{ data: { kind: 'question', value: { color: 'blue' } } }]);
    expectNoClientComplaints();
  });
});
