import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';
import { AuthError, generateRunId, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { WebSocketGateway } from '../../src/transport/websocket/index.js';
import type { Step } from '../helpers/agents.js';
import { RawClient, authenticate, follow, refusedStatus, startGateway, tokenOf, until } from '../helpers/ws-harness.js';

type Harness = Awaited<ReturnType<typeof startGateway>>;
let harness: Harness | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

const script: Step[] = [
  { think: 'planning' },
  { tool: 'echo', args: { text: 'hello' } },
  { think: 'checking' },
  { tool: 'boom', args: {}, catchError: true },
  { think: 'done' },
];
/** agent_started, 3 thoughts, 2 × (tool_executing + tool_completed), agent_completed. */
const EVENTS_PER_RUN = 9;

describe('WebSocketGateway: isolation', () => {
  it('200 users × 3 connections with concurrent runs: each client gets exactly its user\'s events, in order', async () => {
    harness = await startGateway();
    const { url, agent, transport, gateway } = harness;
    const users = Array.from({ length: 200 }, (_, i) => `user${i}`);
    const clients = users.flatMap((userId) => [0, 1, 2].map(() => follow(url, userId, `thread-${userId}`)));
    // Closed even when an assertion fails (600 reconnecting clients would slow every later test).
    onTestFinished(() => clients.forEach((c) => c.client.close()));
    // Generous: this is about isolation, and the machine may be shared.
    await until(() => clients.every((c) => c.client.status === 'open'), 'all 600 clients subscribed', 15_000);
    expect(gateway.stats()).toMatchObject({ connections: 600, users: 200, subscriptions: 600 });

    // Two concurrent runs per user, all users at once, on one shared agent instance.
    const results = await Promise.all(
      users.flatMap((userId) => [0, 1].map(() => agent.run(script, { userId, threadId: `thread-${userId}` }))),
    );
    expect(results.every((r) => r.status === 'succeeded' && r.deliveryErrors.length === 0)).toBe(true);
    await until(() => clients.every((c) => c.events.length >= 2 * EVENTS_PER_RUN), 'every client received both runs', 15_000);

    for (const { events, userId, threadId, errors, client } of clients) {
      const expected = transport.read(threadId, userId);
      expect(expected).toHaveLength(2 * EVENTS_PER_RUN);
      // What this client received: exactly its user's log, same ids, same order, nothing foreign.
      expect(events.map((e) => e.id)).toEqual(expected.map((e) => e.id));
      expect(events.every((e) => e.userId === userId && e.threadId === threadId)).toBe(true);
      expect(validateLifecycle(events)).toEqual({ ok: true, runs: 2 });
      expect(errors).toEqual([]);
      expect(client.stats).toMatchObject({ duplicates: 0, foreign: 0 });
    }
    expect(gateway.stats().isolationDrops).toBe(0);
    expect(transport.isolationDrops).toBe(0);
    clients.forEach((c) => c.client.close());
  });

  it('refuses a subscription to another user\'s thread with THREAD_FORBIDDEN and leaks nothing of it', async () => {
    harness = await startGateway();
    const { url, agent } = harness;
    await agent.run(script, { userId: 'alice', threadId: 'alice-thread' });

    const mallory = await RawClient.open(url, 'mallory');
    mallory.subscribe('alice-thread');
    await mallory.waitFor(() => mallory.ofType('error').length === 1, 'error frame');
    expect(mallory.ofType('error')[0]).toMatchObject({ type: 'error', code: 'THREAD_FORBIDDEN', threadId: 'alice-thread' });

    // The real client surfaces it as an AuthError and stops (retrying cannot help).
    const client = follow(url, 'mallory', 'alice-thread');
    await until(() => client.client.status === 'closed', 'client closed');
    expect(client.errors.map((e) => [e.code, e instanceof AuthError])).toEqual([['THREAD_FORBIDDEN', true]]);

    // Mallory follows her own thread on the same connection: it is the barrier below.
    mallory.subscribe('mallory-thread');
    await mallory.waitFor(() => mallory.ofType('subscribed').length === 1, 'own thread subscribed');
    await agent.run(script, { userId: 'alice', threadId: 'alice-thread' });
    const barrier = await agent.run([{ think: 'barrier' }], { userId: 'mallory', threadId: 'mallory-thread' });
    // A connection's frames arrive in the order they were queued: anything of alice's run would have come first.
    await mallory.waitFor(() => mallory.events().length >= barrier.events, "mallory's own run");
    expect(mallory.events().map((e) => [e.userId, e.threadId])).toEqual(Array.from({ length: barrier.events }, () => ['mallory', 'mallory-thread']));
    expect(client.events).toEqual([]);
    expect(mallory.closed).toBeUndefined(); // refused, not disconnected
    mallory.close();
  });

  it('a subscription made before the thread exists never receives another user\'s events on it', async () => {
    harness = await startGateway();
    const { url, agent } = harness;
    const mallory = await RawClient.open(url, 'mallory');
    mallory.subscribe('future-thread');
    await mallory.waitFor(() => mallory.ofType('subscribed').length === 1, 'subscribed');
    // Mallory's own thread on the same connection is the barrier below.
    mallory.subscribe('mallory-own');
    await mallory.waitFor(() => mallory.ofType('subscribed').length === 2, 'own thread subscribed');
    const alice = follow(url, 'alice', 'future-thread');
    await agent.run(script, { userId: 'alice', threadId: 'future-thread' });
    await until(() => alice.events.length === EVENTS_PER_RUN, 'alice received her run');
    const barrier = await agent.run([{ think: 'barrier' }], { userId: 'mallory', threadId: 'mallory-own' });
    // A connection's frames arrive in the order they were queued: anything of alice's run would have come first.
    await mallory.waitFor(() => mallory.events().length >= barrier.events, "mallory's own run");
    expect(mallory.events().map((e) => [e.userId, e.threadId])).toEqual(Array.from({ length: barrier.events }, () => ['mallory', 'mallory-own']));
    alice.client.close();
    mallory.close();
  });
});

describe('WebSocketGateway: authentication', () => {
  it('refuses a missing, wrong or throwing authentication with HTTP 401 and opens no socket', async () => {
    const throwing = new WebSocketGateway({
      authenticate: () => {
        throw new AuthError('token expired');
      },
    });
    const { url: throwingUrl } = await throwing.listen();
    harness = await startGateway();
    const { url, gateway } = harness;

    expect(await refusedStatus(url)).toBe(401);
    expect(await refusedStatus(`${url}?token=wrong`)).toBe(401);
    expect(await refusedStatus(url, { Authorization: 'Bearer nope' })).toBe(401);
    expect(await refusedStatus(throwingUrl)).toBe(401);
    expect(gateway.stats()).toMatchObject({ rejectedUnauthorized: 3, connections: 0 });

    // The header form of a good token is accepted.
    const viaHeader = new WebSocket(url, { headers: { Authorization: `Bearer ${tokenOf('alice')}` } });
    await new Promise((resolve) => viaHeader.once('open', resolve));
    viaHeader.close();

    // The real client reports AUTH_FAILED and stops instead of retrying forever.
    const client = follow(url, 'x', 't', { token: 'wrong' });
    await until(() => client.client.status === 'closed', 'client closed');
    expect(client.errors.map((e) => e.code)).toEqual(['AUTH_FAILED']);
    await throwing.close();
  });

  it('answers 503 when authenticate does not answer in time', async () => {
    const gateway = new WebSocketGateway({ authenticate: () => new Promise(() => undefined), authTimeoutMs: 20 });
    const { url } = await gateway.listen();
    expect(await refusedStatus(`${url}?token=a`)).toBe(503);
    expect(gateway.stats()).toMatchObject({ rejectedUnavailable: 1, pendingHandshakes: 0 });
    await gateway.close();
  });

  it('attaches beside an existing HTTP app: only upgrades on its path, the app keeps serving requests', async () => {
    const app = createServer((_request, response) => response.end('app says hi'));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const { port } = app.address() as AddressInfo;
    const gateway = new WebSocketGateway({ authenticate, server: app, path: '/events' });

    const body = await fetch(`http://127.0.0.1:${port}/anything`).then((response) => response.text());
    expect(body).toBe('app says hi');
    expect(await refusedStatus(`ws://127.0.0.1:${port}/other?token=${tokenOf('a')}`)).toBe(404);
    const client = await RawClient.open(`ws://127.0.0.1:${port}/events`, 'alice');
    expect(client.frames[0]).toMatchObject({ type: 'hello', v: 1, userId: 'alice' });

    await gateway.close();
    expect(await client.waitForClose()).toMatchObject({ code: 1001 });
    // The app's server is not the gateway's to close.
    expect(app.listening).toBe(true);
    await new Promise((resolve) => app.close(resolve));
  });
});

describe('WebSocketGateway: malformed client frames', () => {
  it('answers each bad frame with an error frame, closes 1009 on a huge one, and keeps serving everyone', async () => {
    harness = await startGateway({ maxPayload: 1024 });
    const { url, agent, transport, gateway } = harness;
    const bob = follow(url, 'bob', 'bob-thread');
    await until(() => bob.client.status === 'open', 'bob open');
    const bobRun = agent.run([{ think: 'a' }, { think: 'b' }, { think: 'c' }], { userId: 'bob', threadId: 'bob-thread' });

    const abuser = await RawClient.open(url, 'eve');
    const bad: Array<[string | Buffer, string]> = [
      ['not json', 'INVALID_JSON'],
      ['{"type":', 'INVALID_JSON'],
      ['42', 'INVALID_FRAME'],
      ['[]', 'INVALID_FRAME'],
      ['null', 'INVALID_FRAME'],
      ['{"threadId":"t"}', 'INVALID_FRAME'],
      ['{"type":7}', 'INVALID_FRAME'],
      ['{"type":"explode"}', 'UNKNOWN_FRAME_TYPE'],
      ['{"type":"subscribe"}', 'INVALID_FRAME'],
      ['{"type":"subscribe","threadId":"has spaces!"}', 'INVALID_FRAME'],
      ['{"type":"subscribe","threadId":"t","after":5}', 'INVALID_CURSOR'],
      [Buffer.from([0xde, 0xad, 0xbe, 0xef]), 'BINARY_NOT_SUPPORTED'],
    ];
    for (const [frame] of bad.slice(0, 10)) abuser.send(frame);
    await abuser.waitFor(() => abuser.ofType('error').length === 10, '10 error frames');
    // The limit is 10 invalid frames: the next two would close it, so use a fresh connection.
    const abuser2 = await RawClient.open(url, 'eve');
    abuser2.send(bad[10]![0]);
    abuser2.ws.send(bad[11]![0], { binary: true });
    await abuser2.waitFor(() => abuser2.ofType('error').length === 2, '2 error frames');
    const codes = [...abuser.ofType('error'), ...abuser2.ofType('error')].map((frame) => frame.code);
    expect(codes).toEqual(bad.map(([, code]) => code));
    for (const frame of [...abuser.ofType('error'), ...abuser2.ofType('error')]) expect(frame.message.length).toBeGreaterThan(0);
    expect(abuser.closed).toBeUndefined();

    // Frames over maxPayload close the connection with 1009.
    abuser2.send(JSON.stringify({ type: 'subscribe', threadId: 'x'.repeat(4000) }));
    expect(await abuser2.waitForClose()).toMatchObject({ code: 1009 });

    // Repeated abuse: the 11th invalid frame closes with 1008.
    abuser.send('still not json');
    expect(await abuser.waitForClose()).toMatchObject({ code: 1008 });

    // Meanwhile bob kept being served: his whole run arrived, in order.
    await bobRun;
    await until(() => bob.events.length === 5, 'bob received his run');
    expect(bob.events.map((e) => e.id)).toEqual(transport.read('bob-thread', 'bob').map((e) => e.id));
    expect(validateLifecycle(bob.events).ok).toBe(true);
    expect(gateway.stats()).toMatchObject({ invalidFrames: 13, oversizedFrames: 1, closedInvalidFrames: 1 });
    bob.client.close();
  });

  it('answers unsubscribe/ack/duplicate subscriptions with the right frames', async () => {
    harness = await startGateway({ maxSubscriptionsPerConnection: 2 });
    const client = await RawClient.open(harness.url, 'alice');
    client.subscribe('a');
    client.subscribe('a');
    client.subscribe('b');
    client.subscribe('c');
    client.send({ type: 'unsubscribe', threadId: 'zzz' });
    client.send({ type: 'ack', threadId: 'a', cursor: 'x:1' });
    client.send({ type: 'unsubscribe', threadId: 'a' });
    await client.waitFor(() => client.ofType('unsubscribed').length === 1, 'unsubscribed');
    expect(client.ofType('error').map((f) => f.code).sort()).toEqual(['ALREADY_SUBSCRIBED', 'NOT_SUBSCRIBED', 'TOO_MANY_SUBSCRIPTIONS']);
    expect(client.ofType('subscribed').map((f) => f.threadId)).toEqual(['a', 'b']);
    expect(harness.gateway.stats()).toMatchObject({ acks: 1, subscriptions: 1 });
    client.close();
  });
});

describe('WebSocketGateway: batching and serialization', () => {
  /** Appends `count` events of one run to the log within one tick. */
  function appendBurst(transport: Harness['transport'], count: number, userId = 'alice', threadId = 'batch'): AgentEvent[] {
    const emitter = new RunEmitter({ runId: generateRunId(threadId), threadId, userId, agent: 'a' });
    const events: AgentEvent[] = [emitter.emit('agent_started', { metadata: {} }).event];
    for (let i = 1; i < count; i++) events.push(emitter.emit('agent_thinking', { text: `t${i}` }).event);
    for (const event of events) transport.append(event);
    return events;
  }

  it('sends events queued in one tick as one message holding an array; a lone frame as a plain object', async () => {
    harness = await startGateway();
    const client = await RawClient.open(harness.url, 'alice');
    client.subscribe('batch');
    await client.waitFor(() => client.ofType('subscribed').length === 1, 'subscribed');
    const before = client.messages.length;

    const events = appendBurst(harness.transport, 50);
    await client.waitFor(() => client.events().length === 50, '50 events');
    const burstMessages = client.messages.slice(before);
    expect(burstMessages).toHaveLength(1);
    expect(Array.isArray(burstMessages[0])).toBe(true);
    expect(client.events().map((e) => e.id)).toEqual(events.map((e) => e.id));

    const emitter = new RunEmitter({ runId: generateRunId('batch'), threadId: 'batch', userId: 'alice', agent: 'a' });
    harness.transport.append(emitter.emit('agent_started', { metadata: {} }).event);
    await client.waitFor(() => client.events().length === 51, 'lone event');
    expect(client.messages.at(-1)).toMatchObject({ type: 'event', threadId: 'batch', event: { seq: 1 } });
    client.close();
  });

  it('with batching off, every frame is its own message', async () => {
    harness = await startGateway({ batching: false });
    const client = await RawClient.open(harness.url, 'alice');
    client.subscribe('batch');
    await client.waitFor(() => client.ofType('subscribed').length === 1, 'subscribed');
    appendBurst(harness.transport, 20);
    await client.waitFor(() => client.events().length === 20, '20 events');
    expect(client.messages.every((message) => !Array.isArray(message))).toBe(true);
    client.close();
  });

  it('serializes each event once, whatever the number of connections receiving it', async () => {
    harness = await startGateway({ maxConnectionsPerUser: 20 });
    const clients = await Promise.all(Array.from({ length: 20 }, () => RawClient.open(harness!.url, 'alice')));
    clients.forEach((client) => client.subscribe('batch'));
    await until(() => clients.every((client) => client.ofType('subscribed').length === 1), 'subscribed');
    const stringify = vi.spyOn(JSON, 'stringify');
    try {
      const events = appendBurst(harness.transport, 3);
      await until(() => clients.every((client) => client.events().length === 3), 'delivered to all');
      // Once per event where it was built (the emitter stringifies the data and joins the envelope), never per connection.
      for (const event of events) expect(stringify.mock.calls.filter(([value]) => value === event || value === event.data)).toHaveLength(1);
    } finally {
      stringify.mockRestore();
    }
    clients.forEach((client) => client.close());
  });
});
