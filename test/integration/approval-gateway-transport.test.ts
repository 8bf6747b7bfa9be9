import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport, validateLifecycle, type AgentEvent, type EventLog } from '../../src/index.js';
import { connect, type AgentwireClient } from '../../src/client/node.js';
import { AnswerEndpoint } from '../../src/gateway/index.js';
import { SseGateway } from '../../src/transport/sse/index.js';
import { WebSocketGateway } from '../../src/transport/websocket/index.js';
import { interactionLogOf } from '../../src/transport/interaction.js';
import { BankAgent, pendingOf } from '../helpers/interactive.js';
import { SseTestClient } from '../helpers/sse-client.js';
import { testAuthenticate } from '../helpers/sse-server.js';
import { authenticate, tokenOf, until } from '../helpers/ws-harness.js';

// The README's wiring: the gateway is the bridge's transport, and the agent gets no `interaction`
// option. The answer log is found through the gateway (its `log`), so requests are recorded in the
// log the gateway appends the run's events to, and answers given at the gateway reach the run.

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** A WebSocketGateway over its default log, given to the bridge as its transport: nothing else wired. */
async function readmeWiring(approvalTimeoutMs?: number) {
  const gateway = new WebSocketGateway({ authenticate });
  const { url } = await gateway.listen(0, '127.0.0.1');
  const bridge = new AgentBridge({ transport: gateway });
  await bridge.initialize();
  const agent = new BankAgent({ bridge, ...(approvalTimeoutMs !== undefined && { approvalTimeoutMs }) });
  stops.push(async () => {
    await bridge.close();
    await gateway.close();
  });
  return { gateway, url, agent };
}

/** A real agentwire/client on the thread, recording what it received; open once subscribed. */
async function client(url: string, userId: string, threadId: string): Promise<{ client: AgentwireClient; events: AgentEvent[] }> {
  const opened = connect(url, { token: tokenOf(userId), threadId });
  stops.push(async () => opened.close());
  const events: AgentEvent[] = [];
  opened.on('event', (event) => events.push(event));
  await until(() => opened.status === 'open', `${userId}'s client open`);
  return { client: opened, events };
}

const types = (events: readonly AgentEvent[]) => events.map((event) => event.type);

/** Every event the log holds for the thread (a replay from its start). */
async function logged(log: EventLog, userId: string, threadId: string): Promise<AgentEvent[]> {
  const result = await log.subscribe({ userId, threadId }, { onEntries: () => undefined });
  if (result.status !== 'subscribed') throw new Error(`replay refused: ${result.gap.reason}`);
  result.subscription.close();
  return result.replay.map((entry) => entry.event);
}

describe('interactive runs with the gateway as the bridge transport (no `interaction` option)', () => {
  it("the agent's answer log is the gateway's log", async () => {
    const { gateway, agent } = await readmeWiring();
    expect(agent.interaction).toBe(gateway.log);
  });

  it('ask(): answered with client.answer over the WebSocket, the run waits and completes with the answer', async () => {
    const { gateway, url, agent } = await readmeWiring();
    const alice = await client(url, 'alice', 'gw-ask');
    const local: string[] = [];
    agent.on('event', (event) => local.push(event.type));
    const run = agent.run({ ask: 'Which color?' }, { userId: 'alice', threadId: 'gw-ask' });
    await until(() => pendingOf(alice.events) !== undefined, 'the question over the socket');
    const question = alice.events.find((event) => event.type === 'tool_executing')!;
    expect(question).toMatchObject({ data: { tool: 'ask_user', pending: { kind: 'question', question: 'Which color?' } } });
    const pending = pendingOf(alice.events)!;
    await expect(alice.client.answer({ runId: pending.runId, requestId: pending.requestId, value: { color: 'blue' } })).resolves.toEqual(expect.any(String));
    const result = await run;
    expect(result.status).toBe('succeeded');
    expect(result.output).toEqual({ color: 'blue' });
    await until(() => alice.events.some((event) => event.type === 'agent_completed'), 'the run end over the socket');
    expect(types(alice.events)).toEqual(['agent_started', 'tool_executing', 'user_answered', 'tool_completed', 'agent_completed']);
    expect(alice.events[2]).toMatchObject({ userId: 'alice', data: { requestId: pending.requestId, kind: 'question', value: { color: 'blue' } } });
    expect(alice.events[3]).toMatchObject({ data: { status: 'succeeded', result: { color: 'blue' } } });
    expect(validateLifecycle(alice.events)).toEqual({ ok: true, runs: 1 });
    // What the log holds is what the client got; local listeners saw the run's events (and the answer).
    expect(await logged(gateway.log, 'alice', 'gw-ask')).toEqual(alice.events);
    expect(local).toEqual(['agent_started', 'tool_executing', 'tool_completed', 'agent_completed']);
  });

  it('needsApproval: approved with client.answer over the WebSocket, the tool runs; a second answer is refused', async () => {
    const { url, agent } = await readmeWiring();
    const alice = await client(url, 'alice', 'gw-approve');
    const run = agent.run({ transfer: 500 }, { userId: 'alice', threadId: 'gw-approve' });
    await until(() => pendingOf(alice.events) !== undefined, 'the approval request over the socket');
    const pending = pendingOf(alice.events)!;
    await expect(alice.client.answer({ runId: pending.runId, requestId: pending.requestId, approved: true })).resolves.toEqual(expect.any(String));
    await expect(alice.client.answer({ runId: pending.runId, requestId: pending.requestId, approved: false })).rejects.toMatchObject({ code: 'ANSWER_ALREADY_GIVEN' });
    expect((await run).output).toEqual({ sent: 500 });
    expect(agent.executed).toEqual([500]);
    await until(() => alice.events.some((event) => event.type === 'agent_completed'), 'the run end over the socket');
    expect(types(alice.events)).toEqual(['agent_started', 'tool_executing', 'user_answered', 'tool_completed', 'agent_completed']);
    expect(alice.events[3]).toMatchObject({ data: { status: 'succeeded', result: { sent: 500 } } });
    expect(validateLifecycle(alice.events)).toEqual({ ok: true, runs: 1 });
  });

  it("another user's answer is refused and the run times out; agent.answer() hands answers to the gateway log", async () => {
    const { url, agent } = await readmeWiring(300);
    const alice = await client(url, 'alice', 'gw-foreign');
    const run = agent.run({ transfer: 900 }, { userId: 'alice', threadId: 'gw-foreign' });
    await until(() => pendingOf(alice.events) !== undefined, 'the approval request over the socket');
    const pending = pendingOf(alice.events)!;
    await expect(agent.answer({ runId: pending.runId, requestId: pending.requestId, userId: 'mallory', approved: true })).rejects.toMatchObject({ code: 'ANSWER_FORBIDDEN' });
    expect((await run).output).toEqual({ failed: 'APPROVAL_TIMEOUT' });
    expect(agent.executed).toEqual([]);
    await until(() => alice.events.some((event) => event.type === 'agent_completed'), 'the run end over the socket');
    expect(types(alice.events)).toEqual(['agent_started', 'tool_executing', 'tool_completed', 'agent_completed']);
    expect(alice.events[2]).toMatchObject({ data: { status: 'failed', error: { code: 'APPROVAL_TIMEOUT' } } });
  });

  it('SSE and the HTTP answer endpoint on the gateway log: answered over HTTP, the run completes', async () => {
    // SSE is read-only (it is not a transport); answers come through AnswerEndpoint on the same log.
    const { gateway, agent } = await readmeWiring();
    const sse = new SseGateway({ authenticate: testAuthenticate, log: gateway.log });
    // The gateway's default log is a MemoryTransport (typed as the gateway's `Transport & EventLog`).
    const answers = new AnswerEndpoint({ authenticate: testAuthenticate, log: gateway.log as MemoryTransport });
    const server: Server = createServer((req, res) => {
      if (req.url?.startsWith('/answer')) return void answers.node(req, res);
      if (!sse.handle(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    stops.push(async () => {
      await sse.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const stream = await SseTestClient.open(`${base}${sse.path}?threadId=gw-sse&token=tok-alice`);
    stops.push(async () => stream.close());
    const run = agent.run({ ask: 'Which color?' }, { userId: 'alice', threadId: 'gw-sse' });
    await stream.waitFor((reader) => pendingOf(reader.events) !== undefined, 'the question over SSE');
    const pending = pendingOf(stream.events)!;
    const response = await fetch(`${base}/answer`, {
      method: 'POST',
      headers: { Authorization: 'Bearer tok-alice', 'Content-Type': 'application/json' },
      body: JSON.stringify({ threadId: 'gw-sse', runId: pending.runId, requestId: pending.requestId, value: { color: 'red' } }),
    });
    expect(response.status).toBe(200);
    const result = await run;
    expect(result.status).toBe('succeeded');
    expect(result.output).toEqual({ color: 'red' });
    await stream.waitFor((reader) => reader.events.some((event) => event.type === 'agent_completed'), 'the run end over SSE');
    expect(types(stream.events)).toEqual(['agent_started', 'tool_executing', 'user_answered', 'tool_completed', 'agent_completed']);
    expect(validateLifecycle(stream.events)).toEqual({ ok: true, runs: 1 });
  });

  it('an explicit `interaction` wins over the gateway log', async () => {
    const gateway = new WebSocketGateway({ authenticate });
    const own = new MemoryTransport();
    const agent = new BankAgent({ bridge: new AgentBridge({ transport: gateway }), interaction: own });
    stops.push(async () => {
      await gateway.close();
      await own.close();
    });
    expect(agent.interaction).toBe(own);
  });
});

describe('interactionLogOf', () => {
  it('a transport that is one, a transport whose `log` is one, nothing else', () => {
    const memory = new MemoryTransport();
    expect(interactionLogOf(memory)).toBe(memory);
    expect(interactionLogOf({ log: memory })).toBe(memory);
    expect(interactionLogOf({ log: { subscribe: () => undefined } })).toBeUndefined();
    expect(interactionLogOf({ send: async () => undefined })).toBeUndefined();
    expect(interactionLogOf(undefined)).toBeUndefined();
    expect(interactionLogOf(null)).toBeUndefined();
  });
});
