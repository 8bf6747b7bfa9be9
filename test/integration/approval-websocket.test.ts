import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AgentBridge, MemoryTransport, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { connect } from '../../src/client/node.js';
import { WebSocketGateway } from '../../src/transport/websocket/index.js';
import { BankAgent, pendingOf } from '../helpers/interactive.js';
import { RawClient, authenticate, tokenOf, until } from '../helpers/ws-harness.js';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

async function start(approvalTimeoutMs?: number) {
  const transport = new MemoryTransport();
  const gateway = new WebSocketGateway({ authenticate, transport });
  const { url } = await gateway.listen(0, '127.0.0.1');
  const bridge = new AgentBridge({ transport: gateway });
  await bridge.initialize();
  // The bridge writes through the gateway; requests and answers go to the same memory log.
  const agent = new BankAgent({ bridge, interaction: transport, ...(approvalTimeoutMs !== undefined && { approvalTimeoutMs }) });
  stops.push(async () => {
    await bridge.close();
    await gateway.close();
    await transport.close();
  });
  return { transport, url, agent };
}

async function waitingRun(url: string, agent: BankAgent, threadId: string, signal?: AbortSignal) {
  const alice = await RawClient.open(url, 'alice');
  stops.push(async () => void alice.ws.close());
  alice.subscribe(threadId);
  await alice.waitFor(() => alice.ofType('subscribed').length === 1, 'subscribed');
  const run = agent.run({ transfer: 900 }, { userId: 'alice', threadId, ...(signal && { signal }) });
  await alice.waitFor(() => pendingOf(alice.events()) !== undefined, 'the pending tool_executing');
  return { alice, run, pending: pendingOf(alice.events())! };
}

const types = (events: AgentEvent[]) => events.map((event) => event.type);

describe('approval over the raw WebSocket protocol', () => {
  it('allowed: answer frame → answered frame, user_answered event, the tool runs', async () => {
    const { url, agent } = await start();
    const { alice, run, pending } = await waitingRun(url, agent, 'ws-1');
    alice.send({ type: 'answer', threadId: 'ws-1', runId: pending.runId, requestId: pending.requestId, approved: true });
    await alice.waitFor(() => alice.events().some((event) => event.type === 'agent_completed'), 'the run end');
    expect(alice.ofType('answered')).toEqual([{ type: 'answered', threadId: 'ws-1', requestId: pending.requestId, cursor: expect.any(String) }]);
    expect(types(alice.events())).toEqual(['agent_started', 'tool_executing', 'user_answered', 'tool_completed', 'agent_completed']);
    expect(validateLifecycle(alice.events())).toEqual({ ok: true, runs: 1 });
    expect((await run).output).toEqual({ sent: 900 });
    expect(agent.executed).toEqual([900]);
  });

  it('denied: tool_completed failed TOOL_DENIED; a second answer gets an error frame naming the request', async () => {
    const { url, agent } = await start();
    const { alice, run, pending } = await waitingRun(url, agent, 'ws-2');
    const frame = { type: 'answer', threadId: 'ws-2', runId: pending.runId, requestId: pending.requestId };
    alice.send({ ...frame, approved: false });
    alice.send({ ...frame, approved: true });
    await alice.waitFor(() => alice.ofType('error').length === 1 && alice.events().some((e) => e.type === 'agent_completed'), 'refusal and run end');
    expect(alice.ofType('error')[0]).toMatchObject({ code: 'ANSWER_ALREADY_GIVEN', requestId: pending.requestId });
    expect(alice.events().find((e) => e.type === 'tool_completed')).toMatchObject({ data: { status: 'failed', error: { code: 'TOOL_DENIED' } } });
    expect(alice.events().filter((e) => e.type === 'user_answered')).toHaveLength(1);
    expect((await run).output).toEqual({ failed: 'TOOL_DENIED' });
    expect(agent.executed).toEqual([]);
  });

  it("timed out: APPROVAL_TIMEOUT on the wire; another user's answer is refused (ANSWER_FORBIDDEN) and never seen by alice", async () => {
    const { url, agent } = await start(300);
    const { alice, run, pending } = await waitingRun(url, agent, 'ws-3');
    const mallory = await RawClient.open(url, 'mallory');
    stops.push(async () => void mallory.ws.close());
    mallory.send({ type: 'answer', threadId: 'ws-3', runId: pending.runId, requestId: pending.requestId, approved: true });
    await mallory.waitFor(() => mallory.ofType('error').length === 1, "mallory's refusal");
    expect(mallory.ofType('error')[0]).toMatchObject({ code: 'ANSWER_FORBIDDEN', requestId: pending.requestId });
    await alice.waitFor(() => alice.events().some((e) => e.type === 'agent_completed'), 'the run end');
    expect(types(alice.events())).toEqual(['agent_started', 'tool_executing', 'tool_completed', 'agent_completed']);
    expect(alice.events()[2]).toMatchObject({ data: { status: 'failed', error: { code: 'APPROVAL_TIMEOUT' } } });
    expect((await run).output).toEqual({ failed: 'APPROVAL_TIMEOUT' });
    expect(agent.executed).toEqual([]);
  });

  it('cancelled while waiting: the call fails as aborted, the run is cancelled; a late answer gets REQUEST_CLOSED', async () => {
    const { url, agent } = await start();
    const controller = new AbortController();
    const { alice, run, pending } = await waitingRun(url, agent, 'ws-4', controller.signal);
    controller.abort();
    await alice.waitFor(() => alice.events().some((e) => e.type === 'agent_completed'), 'the run end');
    expect(alice.events().at(-1)).toMatchObject({ data: { status: 'cancelled' } });
    expect(alice.events()[2]).toMatchObject({ type: 'tool_completed', data: { status: 'failed', error: { name: 'AbortError' } } });
    alice.send({ type: 'answer', threadId: 'ws-4', runId: pending.runId, requestId: pending.requestId, approved: true });
    await alice.waitFor(() => alice.ofType('error').length === 1, 'the refusal');
    expect(['REQUEST_CLOSED', 'RUN_CLOSED']).toContain(alice.ofType('error')[0]!.code);
    expect((await run).status).toBe('cancelled');
    expect(agent.executed).toEqual([]);
  });

  it('reconnect while waiting: the question is replayed, answered once through the client, nothing shown twice', async () => {
    const { url, agent } = await start();
    const first = connect(url, { token: tokenOf('alice'), threadId: 'ws-5', WebSocket });
    const shown: AgentEvent[] = [];
    let cursor: string | undefined;
    first.on('event', (event, at) => {
      shown.push(event);
      cursor = at;
    });
    await until(() => first.status === 'open', 'first client open');
    const run = agent.run({ transfer: 700 }, { userId: 'alice', threadId: 'ws-5' });
    await until(() => pendingOf(shown) !== undefined, 'the question');
    first.close();
    // A new page load: replay from the start shows the question again, still pending.
    const second = connect(url, { token: tokenOf('alice'), threadId: 'ws-5', WebSocket });
    stops.push(async () => second.close());
    const replayed: AgentEvent[] = [];
    second.on('event', (event) => replayed.push(event));
    await until(() => pendingOf(replayed) !== undefined && second.status === 'open', 'the replayed question');
    const pending = pendingOf(replayed)!;
    expect(pending).toEqual(pendingOf(shown));
    await expect(second.answer({ runId: pending.runId, requestId: pending.requestId, approved: true })).resolves.toEqual(expect.any(String));
    await expect(second.answer({ runId: pending.runId, requestId: pending.requestId, approved: true })).rejects.toMatchObject({ code: 'ANSWER_ALREADY_GIVEN' });
    await until(() => replayed.some((e) => e.type === 'agent_completed'), 'the run end');
    expect(types(replayed)).toEqual(['agent_started', 'tool_executing', 'user_answered', 'tool_completed', 'agent_completed']);
    expect(validateLifecycle(replayed)).toEqual({ ok: true, runs: 1 });
    expect(agent.executed).toEqual([700]);
    // Resuming from the first client's cursor: the answer and the rest follow, nothing before it.
    const third = connect(url, { token: tokenOf('alice'), threadId: 'ws-5', WebSocket, after: cursor! });
    stops.push(async () => third.close());
    const resumed: AgentEvent[] = [];
    third.on('event', (event) => resumed.push(event));
    await until(() => resumed.some((e) => e.type === 'agent_completed'), 'the resumed tail');
    expect(types(resumed)).toEqual(['user_answered', 'tool_completed', 'agent_completed']);
    await run;
  });
});
