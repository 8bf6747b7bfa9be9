import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateRunId, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { RawClient, follow, refusedStatus, startGateway, until } from '../helpers/ws-harness.js';
import { useCleanup } from '../helpers/cleanup.js';

type Harness = Awaited<ReturnType<typeof startGateway>>;
const cleanup = useCleanup();
async function gateway(options: Parameters<typeof startGateway>[0] = {}): Promise<Harness> {
  const harness = await startGateway(options);
  cleanup.push(() => harness.stop());
  return harness;
}
async function raw(url: string, userId: string, options: Parameters<typeof RawClient.open>[2] = {}): Promise<RawClient> {
  const client = await RawClient.open(url, userId, options);
  cleanup.push(() => client.ws.terminate());
  return client;
}
const ids = (events: AgentEvent[]): string[] => events.map((event) => event.id);

describe('slow consumers', () => {
  it('closes a consumer that stops reading with 1013, keeps its memory bounded and keeps serving others', async () => {
    const maxBufferedBytes = 64 * 1024;
    const maxQueuedFrames = 100;
    const { url, burst, gateway: gw, transport } = await gateway({ maxBufferedBytes, maxQueuedFrames });
    const slow = await raw(url, 'slow');
    slow.subscribe('slow-thread');
    await slow.waitFor(() => slow.ofType('subscribed').length === 1, 'subscribed');
    const bob = follow(url, 'bob', 'bob-thread');
    cleanup.push(() => bob.client.close());
    await until(() => bob.client.status === 'open', 'bob open');

    slow.tcp.pause(); // stop reading: the kernel buffers fill, then the gateway's
    let peakBuffered = 0;
    let peakQueued = 0;
    for (let round = 0; round < 100 && gw.stats().closedSlowConsumer === 0; round++) {
      await burst.run({ thoughts: 50, yieldEvery: 5, text: 'x'.repeat(8 * 1024) }, { userId: 'slow', threadId: 'slow-thread' });
      const stats = gw.stats();
      peakBuffered = Math.max(peakBuffered, stats.maxBufferedBytes);
      peakQueued = Math.max(peakQueued, stats.queuedFrames);
    }
    const stats = gw.stats();
    expect(stats.closedSlowConsumer).toBe(1);
    // Bounded: at most one batch past the buffer bound, at most the queue bound.
    expect(peakBuffered).toBeLessThanOrEqual(maxBufferedBytes + 256 * 1024 + 16 * 1024);
    expect(peakQueued).toBeLessThanOrEqual(maxQueuedFrames + 1);
    expect(stats).toMatchObject({ connections: 1, subscriptions: 1, queuedFrames: 0 });

    // Bob was served throughout.
    await burst.run({ thoughts: 20 }, { userId: 'bob', threadId: 'bob-thread' });
    await until(() => bob.events.length === 22, 'bob run');
    expect(ids(bob.events)).toEqual(ids(transport.read('bob-thread', 'bob')));

    // What the slow client finally reads: an unbroken prefix of its thread, then the close code.
    slow.tcp.resume();
    const closed = await slow.waitForClose();
    expect(closed.code).toBe(1013);
    expect(closed.reason).toMatch(/slow consumer/);
    const got = ids(slow.events());
    expect(got.length).toBeGreaterThan(0);
    expect(got).toEqual(ids(transport.read('slow-thread', 'slow')).slice(0, got.length));
  });
});

describe('a long replay', () => {
  it('replays more retained events than maxQueuedFrames (a replay does not count toward it), and the bound still holds for live frames', async () => {
    const maxQueuedFrames = 100;
    const { url, burst, transport, gateway: gw } = await gateway({ maxQueuedFrames });
    await burst.run({ thoughts: 400 }, { userId: 'alice', threadId: 'long' });
    const retained = ids(transport.read('long', 'alice'));
    expect(retained.length).toBe(402);
    const alice = await raw(url, 'alice');
    alice.subscribe('long');
    await alice.waitFor(() => alice.events().length === retained.length, 'the whole replay');
    expect(ids(alice.events())).toEqual(retained);
    expect(alice.closed).toBeUndefined();
    expect(gw.stats().closedSlowConsumer).toBe(0);
  });
});

describe('maxQueuedBytes: the send queue bounded in bytes, not only in frames', () => {
  /** ≈0.9 MB of event JSON: one event is more than the whole bound of these tests. */
  const big = 'x'.repeat(900 * 1024);
  const maxBufferedBytes = 64 * 1024;
  const maxQueuedBytes = 256 * 1024;

  it('closes a consumer that stops reading while ~1 MB events reach its thread with 1013, long before maxQueuedFrames, and keeps serving another user', async () => {
    const { url, burst, gateway: gw, transport } = await gateway({ maxBufferedBytes, maxQueuedBytes });
    const slow = await raw(url, 'slow');
    slow.subscribe('slow-thread');
    await slow.waitFor(() => slow.ofType('subscribed').length === 1, 'slow subscribed');
    const bob = await raw(url, 'bob');
    bob.subscribe('bob-thread');
    await bob.waitFor(() => bob.ofType('subscribed').length === 1, 'bob subscribed');

    slow.tcp.pause(); // stop reading: the kernel buffers fill, then the socket's, then the queue
    let peakQueuedBytes = 0;
    let peakQueuedFrames = 0;
    let rounds = 0;
    for (; rounds < 100 && gw.stats().closedSlowConsumer === 0; rounds++) {
      await burst.run({ thoughts: 1, text: big }, { userId: 'slow', threadId: 'slow-thread' });
      await burst.run({ thoughts: 3 }, { userId: 'bob', threadId: 'bob-thread' });
      const stats = gw.stats();
      peakQueuedBytes = Math.max(peakQueuedBytes, stats.queuedBytes);
      peakQueuedFrames = Math.max(peakQueuedFrames, stats.queuedFrames);
    }
    expect(gw.stats().closedSlowConsumer).toBe(1);
    // Bounded in bytes: what the socket still takes plus the bound (bob's few small frames aside).
    expect(peakQueuedBytes).toBeLessThanOrEqual(maxQueuedBytes + maxBufferedBytes + 16 * 1024);
    // The bytes closed it, not the frames: a handful waited, against maxQueuedFrames of 20,000.
    expect(peakQueuedFrames).toBeLessThan(50);

    // Bob was served throughout: every event of his thread, in order, on his own socket.
    await burst.run({ thoughts: 5 }, { userId: 'bob', threadId: 'bob-thread' });
    const bobs = ids(transport.read('bob-thread', 'bob'));
    expect(bobs.length).toBe(5 * rounds + 7);
    await bob.waitFor(() => bob.events().length === bobs.length, "all of bob's events");
    expect(ids(bob.events())).toEqual(bobs);
    expect(bob.closed).toBeUndefined();
    // Nothing waits any more: the count went back to 0 with the queues.
    expect(gw.stats()).toMatchObject({ connections: 1, subscriptions: 1, queuedFrames: 0, queuedBytes: 0 });

    // The slow client reads an unbroken prefix of its thread, then the close code (and resumes from its cursor).
    slow.tcp.resume();
    const closed = await slow.waitForClose();
    expect(closed.code).toBe(1013);
    expect(closed.reason).toMatch(/slow consumer/);
    const got = ids(slow.events());
    expect(got).toEqual(ids(transport.read('slow-thread', 'slow')).slice(0, got.length));
  });

  it('counts the bytes back to 0 once a queue that held big frames is read', async () => {
    const { url, burst, gateway: gw, transport } = await gateway({ maxBufferedBytes, maxQueuedBytes: 64 * 1024 * 1024 });
    const alice = await raw(url, 'alice');
    alice.subscribe('t');
    await alice.waitFor(() => alice.ofType('subscribed').length === 1, 'subscribed');
    alice.tcp.pause();
    // Until the socket is full and big frames wait in the queue past a flush.
    for (let round = 0; round < 100 && gw.stats().queuedBytes < big.length; round++) {
      await burst.run({ thoughts: 1, text: big }, { userId: 'alice', threadId: 't' });
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(gw.stats().queuedBytes).toBeGreaterThanOrEqual(big.length);
    alice.tcp.resume();
    const logged = ids(transport.read('t', 'alice'));
    await alice.waitFor(() => alice.events().length === logged.length, 'every event');
    expect(ids(alice.events())).toEqual(logged);
    expect(alice.closed).toBeUndefined();
    expect(gw.stats()).toMatchObject({ closedSlowConsumer: 0, queuedFrames: 0, queuedBytes: 0 });
  });

  it('delivers a replay larger than maxQueuedBytes whole to a reading client (a replay does not count toward it), then live events', async () => {
    const { url, burst, gateway: gw, transport } = await gateway({ maxBufferedBytes, maxQueuedBytes });
    // About 2 MiB retained (the log keeps 8 MiB per thread): eight times the bound.
    await burst.run({ thoughts: 20, text: 'y'.repeat(100 * 1024) }, { userId: 'alice', threadId: 'long' });
    const retained = ids(transport.read('long', 'alice'));
    expect(retained.length).toBe(22);
    const alice = await raw(url, 'alice');
    alice.subscribe('long');
    await alice.waitFor(() => alice.events().length === retained.length, 'the whole replay');
    expect(ids(alice.events())).toEqual(retained);
    await burst.run({ thoughts: 3 }, { userId: 'alice', threadId: 'long' });
    const all = ids(transport.read('long', 'alice'));
    await alice.waitFor(() => alice.events().length === all.length, 'the live events');
    expect(ids(alice.events())).toEqual(all);
    expect(alice.closed).toBeUndefined();
    expect(gw.stats()).toMatchObject({ closedSlowConsumer: 0, queuedFrames: 0, queuedBytes: 0 });
  });
});

describe('heartbeat, idle sockets, rate limit', () => {
  it('closes a peer that stops answering pings with 4000 and keeps the ones that answer', async () => {
    // Not much shorter: on a loaded machine a pong can take longer than one interval to come back.
    const { url } = await gateway({ heartbeatIntervalMs: 60 });
    const answering = await raw(url, 'alive');
    answering.subscribe('t');
    let pings = 0;
    answering.ws.on('ping', () => pings++);
    const deaf = await raw(url, 'deaf', { autoPong: false });
    deaf.subscribe('t2');
    expect(await deaf.waitForClose()).toMatchObject({ code: 4000 });
    await until(() => pings >= 4, 'several heartbeats');
    expect(answering.closed).toBeUndefined();
  });

  it('closes a connection that subscribes to nothing with 4001', async () => {
    const { url, gateway: gw } = await gateway({ subscribeTimeoutMs: 30 });
    const busy = await raw(url, 'busy');
    busy.subscribe('t');
    const idle = await raw(url, 'idle');
    expect(await idle.waitForClose()).toMatchObject({ code: 4001 });
    expect(busy.closed).toBeUndefined();
    expect(gw.stats()).toMatchObject({ closedNoSubscription: 1, connections: 1 });
  });

  it('closes a client that sends frames faster than its rate limit with 4008', async () => {
    const { url, gateway: gw } = await gateway({ rateLimit: { framesPerSecond: 1, burst: 5 } });
    const chatty = await raw(url, 'chatty');
    chatty.subscribe('t');
    for (let i = 0; i < 19; i++) chatty.send({ type: 'ack', threadId: 't', cursor: `c:${i}` });
    expect(await chatty.waitForClose()).toMatchObject({ code: 4008 });
    // The burst: the subscribe (answered before the close) and four acks; the rest was not read.
    expect(chatty.ofType('subscribed')).toHaveLength(1);
    expect(gw.stats()).toMatchObject({ closedRateLimited: 1, acks: 4, acksIgnored: 0 });
  });

  it('refills the rate limit at framesPerSecond, up to the burst', async () => {
    const { url, gateway: gw } = await gateway({ rateLimit: { framesPerSecond: 20, burst: 3 } });
    const steady = await raw(url, 'steady');
    steady.subscribe('t');
    await steady.waitFor(() => steady.ofType('subscribed').length === 1, 'subscribed');
    // Two tokens left; 150 ms refill three more (at most the burst of three is held).
    for (let i = 0; i < 2; i++) steady.send({ type: 'ack', threadId: 't', cursor: `c:${i}` });
    await new Promise((resolve) => setTimeout(resolve, 150));
    for (let i = 0; i < 3; i++) steady.send({ type: 'ack', threadId: 't', cursor: `d:${i}` });
    await until(() => gw.stats().acks === 5, 'five acks');
    expect(steady.closed).toBeUndefined();
    // Past the burst with no time to refill: cut.
    for (let i = 0; i < 20; i++) steady.send({ type: 'ack', threadId: 't', cursor: `e:${i}` });
    expect(await steady.waitForClose()).toMatchObject({ code: 4008 });
    expect(gw.stats().closedRateLimited).toBe(1);
  });
});

describe('connection limits', () => {
  it('close-oldest (default): a fourth connection of a user closes the oldest with 4029', async () => {
    const { url, gateway: gw } = await gateway();
    const [c1, c2, c3] = [await raw(url, 'alice'), await raw(url, 'alice'), await raw(url, 'alice')];
    const c4 = await raw(url, 'alice');
    expect(await c1!.waitForClose()).toEqual({ code: 4029, reason: 'replaced by a newer connection of the same user' });
    await c4.waitFor(() => c4.ofType('hello').length === 1, 'hello');
    expect([c2!.closed, c3!.closed, c4.closed]).toEqual([undefined, undefined, undefined]);
    expect(gw.stats()).toMatchObject({ connections: 3, closedReplaced: 1 });
  });

  it('a real client replaced by newer connections stops with TOO_MANY_CONNECTIONS instead of fighting back', async () => {
    const { url } = await gateway();
    const alice = follow(url, 'alice', 't');
    cleanup.push(() => alice.client.close());
    await until(() => alice.client.status === 'open', 'open');
    for (let i = 0; i < 3; i++) await raw(url, 'alice');
    await until(() => alice.client.status === 'closed', 'closed');
    expect(alice.errors.map((e) => e.code)).toEqual(['TOO_MANY_CONNECTIONS']);
    expect(alice.client.stats.reconnects).toBe(0);
  });

  it('refuse-newest: the connection over the limit is closed with 4029', async () => {
    const { url } = await gateway({ userLimitPolicy: 'refuse-newest', maxConnectionsPerUser: 2 });
    const [c1, c2] = [await raw(url, 'alice'), await raw(url, 'alice')];
    const c3 = await RawClient.connect(url, 'alice');
    cleanup.push(() => c3.ws.terminate());
    expect(await c3.waitForClose()).toEqual({ code: 4029, reason: 'too many connections for this user' });
    expect(c3.frames).toEqual([]); // refused before anything was sent
    expect([c1!.closed, c2!.closed]).toEqual([undefined, undefined]);
    await raw(url, 'bob'); // other users are unaffected
  });

  it('refuses upgrades past maxConnections with HTTP 503', async () => {
    const { url, gateway: gw } = await gateway({ maxConnections: 2 });
    await raw(url, 'a');
    await raw(url, 'b');
    expect(await refusedStatus(`${url}?token=token-c`)).toBe(503);
    expect(gw.stats()).toMatchObject({ connections: 2, rejectedUnavailable: 1 });
  });
});

describe('graceful close', () => {
  it('close() delivers what is queued, then closes every socket with 1001', async () => {
    const { url, transport, gateway: gw } = await gateway();
    const client = await raw(url, 'alice');
    client.subscribe('t');
    await client.waitFor(() => client.ofType('subscribed').length === 1, 'subscribed');
    const emitter = new RunEmitter({ runId: generateRunId('t'), threadId: 't', userId: 'alice', agent: 'a' });
    const events: AgentEvent[] = [emitter.emit('agent_started', { metadata: {} }).event];
    for (let i = 0; i < 30; i++) events.push(emitter.emit('agent_thinking', { text: `${i}` }).event);
    events.push(emitter.emit('agent_completed', { status: 'succeeded', result: null, durationMs: 1 }).event);
    // Queued in this tick, closed in this tick: the drain must still deliver them.
    for (const event of events) transport.append(event);
    const closing = gw.close();
    expect(await client.waitForClose()).toMatchObject({ code: 1001 });
    await closing;
    expect(ids(client.events())).toEqual(ids(events));
    expect(validateLifecycle(client.events()).ok).toBe(true);
    expect(await gw.health()).toMatchObject({ ok: false });
  });

  it('leaves nothing that keeps the process alive after close()', async () => {
    const fixture = fileURLToPath(new URL('../helpers/ws-exit-fixture.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // A guard, not a measurement: a process held open by a leaked handle never exits by itself.
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(guard);
    expect({ code, output: output.trim() }).toEqual({ code: 0, output: 'received=5 idleClose=1001' });
  });
});
