/**
 * Outside attacks on AG-UI interrupts (`RUN_FINISHED` outcome interrupt, `RunAgentInput.resume`),
 * with raw HTTP clients reading the SSE responses, and a bystander whose run goes on.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createAguiHandler } from '../../src/agui/index.js';
import { AgentBridge, MemoryTransport, tokenFrom, validateLifecycle, type AgentEvent, type Authenticate } from '../../src/index.js';
import { BankAgent, pendingOf, type InteractiveInput } from '../helpers/interactive.js';
import { until } from '../helpers/wait.js';
import { nested } from './harness.js';

const authenticate: Authenticate = (req) => {
  const token = tokenFrom(req);
  return token?.startsWith('user-') ? { userId: token.slice(5) } : null;
};

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: { approvalTimeoutMs?: number; maxRunsPerUser?: number } = {}) {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  await bridge.initialize();
  const bank = new BankAgent({ bridge, approvalTimeoutMs: options.approvalTimeoutMs ?? 20_000 });
  const handler = createAguiHandler<InteractiveInput>({
    agent: bank,
    log: transport,
    authenticate,
    heartbeatIntervalMs: 0,
    ...(options.maxRunsPerUser !== undefined && { maxRunsPerUser: options.maxRunsPerUser }),
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
  let n = 0;
  const post = (user: string, body: Record<string, unknown>) =>
    fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer user-${user}`, Accept: 'text/event-stream' },
      body: JSON.stringify({ runId: `client-${++n}`, messages: [], state: {}, tools: [], context: [], ...body }),
    });
  const events = (threadId: string, user = 'alice'): AgentEvent[] => transport.read(threadId, user);
  /** Starts a run that waits for approval; returns its pending request and the AG-UI events the client got. */
  const interrupt = async (user: string, threadId: string, forwardedProps: InteractiveInput = { transfer: 500 }) => {
    const before = events(threadId, user).length;
    const response = await post(user, { threadId, forwardedProps });
    expect(response.status).toBe(200);
    const seen = await aguiEvents(response);
    expect(seen.at(-1)).toMatchObject({ type: 'RUN_FINISHED', outcome: { type: 'interrupt' } });
    return { pending: pendingOf(events(threadId, user).slice(before))!, seen };
  };
  const resume = (user: string, threadId: string, entries: unknown[]) => post(user, { threadId, resume: entries });
  const answersIn = (threadId: string, user = 'alice') => events(threadId, user).filter((event) => event.type === 'user_answered');
  return { bank, post, events, interrupt, resume, answersIn };
}

async function aguiEvents(response: Response): Promise<Array<Record<string, unknown>>> {
  const body = await response.text();
  return body
    .split('\n\n')
    .map((block) => block.split('\n').find((line) => line.startsWith('data: '))?.slice(6))
    .filter((data): data is string => data !== undefined)
    .map((data) => JSON.parse(data) as Record<string, unknown>);
}

const approve = (interruptId: string, approved: unknown = true) => ({ interruptId, status: 'resolved', payload: { approved } });

describe('attack: AG-UI interrupts and resume', () => {
  it("bob's 'cancelled' resume naming alice's interrupt cancels nothing (403 on her thread, 404 on his); her run still waits", async () => {
    const s = await setup();
    const { pending } = await s.interrupt('alice', 'victim');
    const bystander = await s.interrupt('bob', 'bob-thread');
    const onHers = await s.resume('bob', 'victim', [{ interruptId: pending.requestId, status: 'cancelled' }]);
    expect(onHers.status).toBe(403);
    const onHis = await s.resume('bob', 'bob-thread', [{ interruptId: pending.requestId, status: 'cancelled' }]);
    expect(onHis.status).toBe(404);
    expect(await onHis.json()).toMatchObject({ error: { code: 'ANSWER_UNKNOWN_REQUEST' } });
    expect(s.events('victim').at(-1)).toMatchObject({ type: 'tool_executing', data: { pending: { requestId: pending.requestId } } });
    expect(s.events('bob-thread', 'bob').at(-1)!.type).toBe('tool_executing');
    // Alice still decides.
    const mine = await s.resume('alice', 'victim', [approve(pending.requestId)]);
    expect(mine.status).toBe(200);
    const seen = await aguiEvents(mine);
    expect(seen.at(-1)).toMatchObject({ type: 'RUN_FINISHED', outcome: { type: 'success' } });
    expect(new Set(seen.map((event) => event.runId).filter(Boolean))).toEqual(new Set([pending.runId]));
    // The bystander's interrupt is untouched and still his to answer.
    const his = await s.resume('bob', 'bob-thread', [approve(bystander.pending.requestId, false)]);
    expect(his.status).toBe(200);
    await his.text();
    expect(s.bank.executed).toEqual([500]);
    expect(validateLifecycle(s.events('victim'))).toEqual({ ok: true, runs: 1 });
    expect(validateLifecycle(s.events('bob-thread', 'bob'))).toEqual({ ok: true, runs: 1 });
  });

  it('racing resumes of one interrupt (8 at once, approve and deny mixed): one is taken, the rest 409; the tool runs at most once', async () => {
    const s = await setup();
    const { pending } = await s.interrupt('alice', 'race');
    const responses = await Promise.all(Array.from({ length: 8 }, (_, i) => s.resume('alice', 'race', [approve(pending.requestId, i % 2 === 0)])));
    expect(responses.filter((response) => response.status === 200)).toHaveLength(1);
    for (const response of responses) {
      if (response.status === 200) await response.text();
      else expect(response.status).toBe(409);
    }
    await until(() => s.events('race').at(-1)?.type === 'agent_completed', 'the run to end');
    expect(s.answersIn('race')).toHaveLength(1);
    expect(s.bank.executed.length).toBeLessThanOrEqual(1);
    expect(validateLifecycle(s.events('race'))).toEqual({ ok: true, runs: 1 });
  });

  it('one resume that both resolves and cancels the same interrupt: one outcome, a valid run, never executed-and-cancelled', async () => {
    const s = await setup();
    const { pending } = await s.interrupt('alice', 'both');
    const response = await s.resume('alice', 'both', [approve(pending.requestId), { interruptId: pending.requestId, status: 'cancelled' }]);
    if (response.ok) await response.text();
    else expect(response.status).toBeLessThan(500);
    if (!response.ok) {
      expect(s.answersIn('both')).toEqual([]);
      expect(s.events('both').at(-1)!.type).toBe('tool_executing');
      return;
    }
    await until(() => s.events('both').at(-1)?.type === 'agent_completed', 'the run to end');
    const terminal = s.events('both').at(-1) as Extract<AgentEvent, { type: 'agent_completed' }>;
    if (terminal.data.status === 'cancelled') expect(s.bank.executed).toEqual([]);
    expect(s.answersIn('both').length).toBeLessThanOrEqual(1);
    expect(validateLifecycle(s.events('both'))).toEqual({ ok: true, runs: 1 });
  });

  it('a resume naming interrupts of two runs of one thread is refused with nothing appended', async () => {
    const s = await setup();
    const first = await s.interrupt('alice', 'two-runs');
    const second = await s.interrupt('alice', 'two-runs', { transfer: 700 });
    expect(second.pending.runId).not.toBe(first.pending.runId);
    const response = await s.resume('alice', 'two-runs', [approve(first.pending.requestId), approve(second.pending.requestId)]);
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(s.answersIn('two-runs')).toEqual([]);
    expect(s.bank.executed).toEqual([]);
  });

  it('hostile resume payloads (too deep, non-boolean approval, 65 entries, not an array) are 400s; nothing appended; the real answer then works', async () => {
    const s = await setup();
    const { pending } = await s.interrupt('alice', 'hostile');
    const deep = await s.resume('alice', 'hostile', [{ interruptId: pending.requestId, status: 'resolved', payload: nested(100) }]);
    expect(deep.status).toBe(400);
    expect(await deep.json()).toMatchObject({ error: { code: 'BODY_TOO_DEEP' } });
    const stringy = await s.resume('alice', 'hostile', [approve(pending.requestId, 'true')]);
    expect(stringy.status).toBe(400);
    const many = await s.resume('alice', 'hostile', Array.from({ length: 65 }, (_, i) => approve(i === 0 ? pending.requestId : `req_forged_${i}`)));
    expect(many.status).toBe(400);
    const notArray = await s.post('alice', { threadId: 'hostile', resume: { interruptId: pending.requestId, status: 'resolved', payload: true } });
    expect(notArray.status).toBe(400);
    const badStatus = await s.resume('alice', 'hostile', [{ interruptId: pending.requestId, status: 'approved' }]);
    expect(badStatus.status).toBe(400);
    expect(s.answersIn('hostile')).toEqual([]);
    expect(s.events('hostile').at(-1)!.type).toBe('tool_executing');
    const real = await s.resume('alice', 'hostile', [approve(pending.requestId)]);
    expect(real.status).toBe(200);
    await real.text();
    expect(s.bank.executed).toEqual([500]);
  });

  it('resuming a finished run: resolved is 409, cancelled changes nothing in the log', async () => {
    const s = await setup();
    const { pending } = await s.interrupt('alice', 'done');
    const first = await s.resume('alice', 'done', [approve(pending.requestId)]);
    await first.text();
    await until(() => s.events('done').at(-1)?.type === 'agent_completed', 'the run to end');
    const length = s.events('done').length;
    const again = await s.resume('alice', 'done', [approve(pending.requestId, false)]);
    expect(again.status).toBe(409);
    const cancel = await s.resume('alice', 'done', [{ interruptId: pending.requestId, status: 'cancelled' }]);
    if (cancel.ok) await cancel.text();
    else expect(cancel.status).toBe(409);
    expect(s.events('done')).toHaveLength(length);
    expect(s.events('done').at(-1)).toMatchObject({ type: 'agent_completed', data: { status: 'succeeded' } });
  });

  it('paused runs hold slots (maxRunsPerUser 1: a new run is 429) but a resume needs none', async () => {
    const s = await setup({ maxRunsPerUser: 1 });
    const { pending } = await s.interrupt('alice', 'slot-1');
    const refused = await s.post('alice', { threadId: 'slot-2', forwardedProps: { transfer: 1 } });
    expect(refused.status).toBe(429);
    const resumed = await s.resume('alice', 'slot-1', [approve(pending.requestId)]);
    expect(resumed.status).toBe(200);
    const seen = await aguiEvents(resumed);
    expect(seen.at(-1)).toMatchObject({ type: 'RUN_FINISHED', outcome: { type: 'success' } });
    await until(() => s.events('slot-1').at(-1)?.type === 'agent_completed', 'the run to end');
    const after = await s.post('alice', { threadId: 'slot-2', forwardedProps: { transfer: 1 } });
    expect(after.status).toBe(200);
    await after.text();
  });

  it('a question answered with a value its schema refuses: the call fails ANSWER_INVALID (or 400), the run stays valid', async () => {
    const s = await setup();
    const { pending } = await s.interrupt('alice', 'question', { ask: 'Which color?' });
    const response = await s.resume('alice', 'question', [{ interruptId: pending.requestId, status: 'resolved', payload: { color: 'green', extra: nested(10) } }]);
    if (response.status === 200) {
      const seen = await aguiEvents(response);
      expect(seen.at(-1)!.type).toMatch(/RUN_FINISHED|RUN_ERROR/);
      await until(() => s.events('question').at(-1)?.type === 'agent_completed', 'the run to end');
      expect(s.events('question').find((event) => event.type === 'tool_completed')).toMatchObject({ data: { status: 'failed', error: { code: 'ANSWER_INVALID' } } });
    } else {
      expect(response.status).toBe(400);
    }
    expect(validateLifecycle(s.events('question')).ok).toBe(true);
  });
});
