import { describe, expect, it } from 'vitest';
import { AgentBridge, AuthError, MemoryTransport, StateError, ValidationError, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { BankAgent, pendingOf } from '../helpers/interactive.js';
import { until } from '../helpers/wait.js';

async function setup(options: { approvalTimeoutMs?: number } = {}) {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  await bridge.initialize();
  const agent = new BankAgent({ bridge, ...options });
  return { transport, bridge, agent };
}

/** Starts a run and waits until its request is in the log (what a user would see). */
async function startWaiting(agent: BankAgent, transport: MemoryTransport, threadId: string, input: { transfer?: number; ask?: string }, signal?: AbortSignal) {
  const run = agent.run(input, { userId: 'alice', threadId, ...(signal && { signal }) });
  await until(() => pendingOf(transport.read(threadId, 'alice')) !== undefined, 'the pending request in the log');
  return { run, pending: pendingOf(transport.read(threadId, 'alice'))! };
}

function lifecycleOk(events: AgentEvent[]) {
  expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
}

describe('approval in one process (memory log)', () => {
  it('approved: the tool runs after the answer; the answer is in the log between request and completion', async () => {
    const { transport, agent } = await setup();
    const { run, pending } = await startWaiting(agent, transport, 'a1', { transfer: 500 });
    expect(agent.executed).toEqual([]);
    const receipt = await transport.answerRequest({ runId: pending.runId, requestId: pending.requestId, userId: 'alice', approved: true });
    expect(receipt.event).toMatchObject({ type: 'user_answered', seq: pending.seq, data: { approved: true, toolCallId: pending.toolCallId } });
    const result = await run;
    expect(result).toMatchObject({ status: 'succeeded', output: { sent: 500 } });
    expect(agent.executed).toEqual([500]);
    const events = transport.read('a1', 'alice');
    expect(events.map((e) => e.type)).toEqual(['agent_started', 'tool_executing', 'user_answered', 'tool_completed', 'agent_completed']);
    expect(events[3]).toMatchObject({ data: { status: 'succeeded' } });
    lifecycleOk(events);
  });

  it('no approval needed below the threshold: an ordinary call, no pending field', async () => {
    const { transport, agent } = await setup();
    await agent.run({ transfer: 5 }, { userId: 'alice', threadId: 'a0' });
    const events = transport.read('a0', 'alice');
    expect(pendingOf(events)).toBeUndefined();
    expect(agent.executed).toEqual([5]);
  });

  it('denied: tool_completed failed TOOL_DENIED, the tool never ran', async () => {
    const { transport, agent } = await setup();
    const { run, pending } = await startWaiting(agent, transport, 'a2', { transfer: 500 });
    await transport.answerRequest({ runId: pending.runId, requestId: pending.requestId, userId: 'alice', approved: false, reason: 'too much' });
    expect((await run).output).toEqual({ failed: 'TOOL_DENIED' });
    expect(agent.executed).toEqual([]);
    const events = transport.read('a2', 'alice');
    expect(events[3]).toMatchObject({ type: 'tool_completed', data: { status: 'failed', error: { code: 'TOOL_DENIED' } } });
    lifecycleOk(events);
  });

  it('timed out: APPROVAL_TIMEOUT, and a late answer is refused (REQUEST_CLOSED)', async () => {
    const { transport, agent } = await setup({ approvalTimeoutMs: 50 });
    const { run, pending } = await startWaiting(agent, transport, 'a3', { transfer: 500 });
    expect((await run).output).toEqual({ failed: 'APPROVAL_TIMEOUT' });
    await expect(transport.answerRequest({ runId: pending.runId, requestId: pending.requestId, userId: 'alice', approved: true })).rejects.toMatchObject({
      code: 'REQUEST_CLOSED',
    });
    expect(agent.executed).toEqual([]);
    const events = transport.read('a3', 'alice');
    expect(events.map((e) => e.type)).toEqual(['agent_started', 'tool_executing', 'tool_completed', 'agent_completed']);
    lifecycleOk(events);
  });

  it('cancelled while waiting: the call closes as aborted, the run is cancelled, a later answer is refused', async () => {
    const { transport, agent } = await setup();
    const controller = new AbortController();
    const { run, pending } = await startWaiting(agent, transport, 'a4', { transfer: 500 }, controller.signal);
    controller.abort();
    expect((await run).status).toBe('cancelled');
    const events = transport.read('a4', 'alice');
    expect(events[2]).toMatchObject({ type: 'tool_completed', data: { status: 'failed', error: { name: 'AbortError' } } });
    lifecycleOk(events);
    await expect(transport.answerRequest({ runId: pending.runId, requestId: pending.requestId, userId: 'alice', approved: true })).rejects.toBeInstanceOf(StateError);
    expect(agent.executed).toEqual([]);
  });

  it("another user's answer and a second answer are refused with typed errors; nothing appended", async () => {
    const { transport, agent } = await setup();
    const { run, pending } = await startWaiting(agent, transport, 'a5', { transfer: 500 });
    const base = { runId: pending.runId, requestId: pending.requestId };
    const foreign = transport.answerRequest({ ...base, userId: 'mallory', approved: true });
    await expect(foreign).rejects.toBeInstanceOf(AuthError);
    await expect(foreign).rejects.toMatchObject({ code: 'ANSWER_FORBIDDEN' });
    await expect(transport.answerRequest({ ...base, userId: 'alice' })).rejects.toMatchObject({ code: 'ANSWER_INVALID' });
    await transport.answerRequest({ ...base, userId: 'alice', approved: false });
    await expect(transport.answerRequest({ ...base, userId: 'alice', approved: true })).rejects.toMatchObject({ code: 'ANSWER_ALREADY_GIVEN' });
    await expect(transport.answerRequest({ ...base, requestId: 'req_unknown', userId: 'alice', approved: true })).rejects.toMatchObject({ code: 'ANSWER_UNKNOWN_REQUEST' });
    await run;
    const answers = transport.read('a5', 'alice').filter((e) => e.type === 'user_answered');
    expect(answers).toHaveLength(1);
    expect(agent.executed).toEqual([]);
  });

  it('ask(): the question carries the JSON Schema; the answer value is the result; a value the schema refuses fails the call', async () => {
    const { transport, agent } = await setup();
    const first = await startWaiting(agent, transport, 'q1', { ask: 'Which color?' });
    const question = transport.read('q1', 'alice')[1]!;
    expect(question).toMatchObject({ type: 'tool_executing', data: { tool: 'ask_user', pending: { kind: 'question', question: 'Which color?' } } });
    expect(question.type === 'tool_executing' && (question.data.pending?.schema as { type?: string }).type).toBe('object');
    await transport.answerRequest({ runId: first.pending.runId, requestId: first.pending.requestId, userId: 'alice', value: { color: 'blue' } });
    expect(await first.run).toMatchObject({ status: 'succeeded', output: { color: 'blue' } });
    lifecycleOk(transport.read('q1', 'alice'));

    const second = await startWaiting(agent, transport, 'q2', { ask: 'Which color?' });
    await transport.answerRequest({ runId: second.pending.runId, requestId: second.pending.requestId, userId: 'alice', value: { color: 'green' } });
    const failed = await second.run;
    expect(failed.status).toBe('failed');
    expect(failed.error).toBeInstanceOf(ValidationError);
    expect(transport.read('q2', 'alice')[3]).toMatchObject({ type: 'tool_completed', data: { status: 'failed', error: { code: 'ANSWER_INVALID' } } });
  });

  it('the validator catches a forged or repeated answer', () => {
    const base = { v: 1 as const, runId: 'thread_t_run_1_x', threadId: 't', userId: 'u', agent: 'a', ts: 1 };
    const started = { ...base, id: '1', seq: 1, type: 'agent_started' as const, data: { metadata: {} } };
    const executing = {
      ...base,
      id: '2',
      seq: 2,
      type: 'tool_executing' as const,
      data: { toolCallId: 'c', tool: 'x', pending: { requestId: 'r', kind: 'approval' as const, timeoutMs: 1 } },
    };
    const answer = { ...base, id: '3', seq: 2, type: 'user_answered' as const, data: { requestId: 'r', toolCallId: 'c', kind: 'approval' as const, approved: true } };
    const completed = { ...base, id: '4', seq: 3, type: 'tool_completed' as const, data: { toolCallId: 'c', tool: 'x', status: 'succeeded' as const, durationMs: 1 } };
    const end = { ...base, id: '5', seq: 4, type: 'agent_completed' as const, data: { status: 'succeeded' as const, durationMs: 1 } };
    expect(validateLifecycle([started, executing, answer, completed, end])).toEqual({ ok: true, runs: 1 });
    const repeated = validateLifecycle([started, executing, answer, { ...answer, id: '3b' }, completed, end]);
    expect(repeated.ok === false && repeated.violation.rule).toBe('answer_repeated');
    const forged = validateLifecycle([started, executing, { ...answer, data: { ...answer.data, requestId: 'other' } }, completed, end]);
    expect(forged.ok === false && forged.violation.rule).toBe('answer_unknown');
    const late = validateLifecycle([started, executing, completed, answer, end]);
    expect(late.ok === false && late.violation.rule).toBe('answer_unknown');
  });
});
