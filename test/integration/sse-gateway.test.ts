import { until } from '../helpers/wait.js';
import { createServer, request, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AgentBridge,
  MemoryTransport,
  generateRunId,
  validateLifecycle,
  type AgentEvent,
  type EventLog,
  type LogEntry,
} from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { SseGateway } from '../../src/transport/sse/index.js';
import { ScriptedAgent, type Step } from '../helpers/agents.js';
import { SseTestClient } from '../helpers/sse-client.js';
import { scriptedRun, startGateway, testAuthenticate, type GatewayFixture } from '../helpers/sse-server.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function fixture(options: Partial<ConstructorParameters<typeof SseGateway>[0]> & { transport?: MemoryTransport } = {}) {
  const transport = options.transport ?? new MemoryTransport();
  const gw: GatewayFixture = await startGateway({ log: transport, ...options });
  cleanups.push(() => transport.close());
  cleanups.push(() => gw.close());
  const open = async (url: string, opts?: Parameters<typeof SseTestClient.open>[1]) => {
    const client = await SseTestClient.open(url, opts);
    cleanups.push(() => client.close());
    return client;
  };
  return { transport, ...gw, open };
}

/** Asserts the events are each unique by id, a valid complete lifecycle, and all of `userId`. */
function expectExactlyOnce(events: AgentEvent[], expected: AgentEvent[], userId: string): void {
  expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  expect(events.map((e) => e.id)).toEqual(expected.map((e) => e.id));
  const check = validateLifecycle(events);
  expect(check.ok ? 'valid' : check.violation.message).toBe('valid');
  expect(events.every((e) => e.userId === userId)).toBe(true);
}

const offsetOf = (cursor: string | undefined) => Number(cursor?.split(':')[1]);

describe('SseGateway wire format', () => {
  it('streams a run live: retry hint, subscribed, then id = cursor, event = type, data = the event JSON', async () => {
    const { transport, url, open } = await fixture();
    const client = await open(url('t1', 'alice'));
    expect(client.status).toBe(200);
    expect(client.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(client.headers['cache-control']).toContain('no-cache');
    await client.waitFor((c) => c.messages.length >= 1, 'subscribed');
    expect(client.messages[0]).toMatchObject({ id: undefined, event: 'subscribed' });
    expect(JSON.parse(client.messages[0]?.data ?? '')).toEqual({ type: 'subscribed', threadId: 't1', cursor: null, replayed: 0 });
    expect(client.raw.startsWith('retry: 2000\n\n')).toBe(true);

    const run = scriptedRun(transport, 'alice', 't1');
    run.start();
    run.think(2);
    run.tool();
    run.complete();
    await client.waitForEvent('agent_completed');

    const stored = transport.read('t1', 'alice');
    const eventMessages = client.messages.filter((m) => m.id !== undefined);
    expect(eventMessages.map((m) => m.event)).toEqual(stored.map((e) => e.type));
    expect(eventMessages.map((m) => JSON.parse(m.data))).toEqual(stored);
    // Cursors are the log's: one epoch, offsets 1..n.
    expect(eventMessages.map((m) => offsetOf(m.id))).toEqual(stored.map((_, i) => i + 1));
    expect(new Set(eventMessages.map((m) => m.id?.split(':')[0])).size).toBe(1);
    expectExactlyOnce(client.events, stored, 'alice');
  });

  it('replays everything retained on the first connection, then follows live; ?after= starts after a cursor', async () => {
    const { transport, url, open } = await fixture();
    const run = scriptedRun(transport, 'alice', 't1');
    run.start();
    run.think(5);
    const first = await open(url('t1', 'alice'));
    await first.waitFor((c) => c.events.length === 6, 'replay of 6');
    expect(JSON.parse(first.messages[0]?.data ?? '')).toMatchObject({ type: 'subscribed', replayed: 6 });
    const third = first.messages.filter((m) => m.id !== undefined)[2]?.id ?? '';

    const fromThird = await open(url('t1', 'alice', `&after=${encodeURIComponent(third)}`));
    await fromThird.waitFor((c) => c.events.length === 3, 'replay after the third event');
    run.complete();
    await first.waitForEvent('agent_completed');
    await fromThird.waitForEvent('agent_completed');
    const stored = transport.read('t1', 'alice');
    expectExactlyOnce(first.events, stored, 'alice');
    expect(fromThird.events.map((e) => e.seq)).toEqual([4, 5, 6, 7]);
  });
});

describe('SseGateway with an asynchronous log', () => {
  it('live entries delivered before subscribe() resolves follow the replay; overlaps are dropped', async () => {
    const inner = new MemoryTransport();
    const emitter = new RunEmitter(
      { runId: generateRunId('t1'), threadId: 't1', userId: 'alice', agent: 'async-log' },
      { onEvent: (event) => void entries.push(inner.append(event)) },
    );
    const entries: LogEntry[] = [];
    emitter.emit('agent_started', { metadata: {} });
    emitter.emit('agent_thinking', { text: 'before subscribe' });
    const log: EventLog = {
      ownerOf: (threadId) => inner.ownerOf(threadId),
      async subscribe(request, listener) {
        const result = inner.subscribeSync(request, listener);
        if (result.status !== 'subscribed') return result;
        // Like a networked log: live entries reach the listener while the replay is still being read…
        emitter.emit('agent_thinking', { text: 'during subscribe 1' });
        emitter.emit('agent_thinking', { text: 'during subscribe 2' });
        await new Promise((resolve) => setTimeout(resolve, 10));
        // …and the replay read overlaps the first of them.
        return { ...result, replay: [...result.replay, entries[2]!] };
      },
    };
    const { url, open } = await fixture({ log });
    cleanups.push(() => inner.close());
    const client = await open(url('t1', 'alice'));
    await client.waitFor((c) => c.events.length >= 4, '4 events');
    emitter.emit('agent_completed', { status: 'succeeded', result: null, durationMs: 1 });
    await client.waitForEvent('agent_completed');
    expectExactlyOnce(client.events, inner.read('t1', 'alice'), 'alice');
    expect(client.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('SseGateway refusals', () => {
  it('answers bad requests with a status and a JSON error body', async () => {
    const { transport, base, url, open, gateway } = await fixture();
    scriptedRun(transport, 'alice', 'owned').start();

    const cases: Array<[string, Record<string, string> | undefined, number, string]> = [
      [`${base}/events?threadId=t1`, undefined, 401, 'AUTH_FAILED'],
      [`${base}/events?threadId=t1&token=nope`, undefined, 401, 'AUTH_FAILED'],
      [`${base}/events?threadId=t1&token=expired`, undefined, 401, 'TOKEN_EXPIRED'],
      [url('owned', 'bob'), undefined, 403, 'THREAD_FORBIDDEN'],
      [`${base}/events?token=tok-alice`, undefined, 400, 'MISSING_THREAD_ID'],
      [url('bad thread!', 'alice'), undefined, 400, 'INVALID_THREAD_ID'],
      [url('t1', 'alice', '&after=%20spaced%20'), undefined, 400, 'INVALID_CURSOR'],
      [url('t1', 'alice'), { 'Last-Event-ID': 'x'.repeat(200) }, 400, 'INVALID_CURSOR'],
    ];
    for (const [target, headers, status, code] of cases) {
      const client = await open(target, { headers: headers ?? {} });
      await client.ended;
      expect({ target, status: client.status, code: client.error.code }).toEqual({ target, status, code });
      expect(client.headers['content-type']).toContain('application/json');
      expect(client.error.message.length).toBeGreaterThan(0);
    }
    // The bearer header works as well as ?token=.
    const viaHeader = await open(`${base}/events?threadId=owned`, { headers: { Authorization: 'Bearer tok-alice' } });
    expect(viaHeader.status).toBe(200);

    const post = await fetch(url('t1', 'alice'), { method: 'POST' });
    expect([post.status, post.headers.get('allow')]).toEqual([405, 'GET, OPTIONS']);
    const other = await fetch(`${base}/elsewhere`);
    expect(other.status).toBe(404); // handle() returned false: the host server answered
    expect(await other.text()).toBe('not the gateway');
    const refused = Object.values(gateway.stats().refused).reduce((sum, n) => sum + n, 0);
    expect(refused).toBe(cases.length + 1);
  });

  it("refuse-newest: a user's stream past the limit gets 429 without affecting other users; a disconnect frees the slot", async () => {
    const { url, open, gateway } = await fixture({ maxConnectionsPerUser: 2, userLimitPolicy: 'refuse-newest' });
    const a1 = await open(url('t1', 'alice'));
    const a2 = await open(url('t2', 'alice'));
    const a3 = await open(url('t3', 'alice'));
    const b1 = await open(url('t4', 'bob'));
    expect([a1.status, a2.status, a3.status, b1.status]).toEqual([200, 200, 429, 200]);
    await a3.ended;
    expect(a3.error.code).toBe('TOO_MANY_CONNECTIONS');
    expect(a3.headers['retry-after']).toBe('5');

    a1.close();
    await until(() => gateway.connectionCount === 2, 'the server to notice the closed stream', 5_000);
    const a4 = await open(url('t1', 'alice'));
    expect(a4.status).toBe(200);
  });

  it('close-oldest (the default): the newest stream is served and the oldest ends with a close event TOO_MANY_CONNECTIONS', async () => {
    const { url, open, gateway } = await fixture({ maxConnectionsPerUser: 2 });
    const a1 = await open(url('t1', 'alice'));
    const a2 = await open(url('t2', 'alice'));
    const b1 = await open(url('t4', 'bob'));
    await Promise.all([a1, a2, b1].map((c) => c.waitFor((x) => x.messages.length >= 1, 'subscribed')));
    const a3 = await open(url('t3', 'alice'));
    expect(a3.status).toBe(200);
    await a3.waitFor((c) => c.messages.length >= 1, 'subscribed');
    expect(await a1.ended).toBe('end');
    expect(a1.messages.at(-1)?.event).toBe('close');
    expect(JSON.parse(a1.messages.at(-1)?.data ?? '{}')).toMatchObject({ type: 'close', code: 'TOO_MANY_CONNECTIONS' });
    expect([a2.outcome, b1.outcome, a3.outcome]).toEqual([undefined, undefined, undefined]);
    expect(gateway.stats()).toMatchObject({ connections: { open: 3 }, users: 2, disconnects: { user_limit: 1 } });
  });

  it('limits open streams in total (503 SERVER_AT_CAPACITY)', async () => {
    const { url, open } = await fixture({ maxConnections: 2 });
    const clients = [];
    for (const user of ['a', 'b', 'c']) clients.push(await open(url('t1', user)));
    expect(clients.map((c) => c.status)).toEqual([200, 200, 503]);
    await clients[2]!.ended;
    expect(clients[2]!.error.code).toBe('SERVER_AT_CAPACITY');
  });
});

describe('SseGateway authentication edge cases', () => {
  it('a client that leaves during authentication leaves nothing behind; a hanging hook gets 503 AUTH_TIMEOUT', async () => {
    const gates: Array<() => void> = [];
    const seen: IncomingMessage[] = [];
    let gated = true;
    const { url, open, gateway } = await fixture({
      authTimeoutMs: 150,
      authenticate: async (req) => {
        if (gated) seen.push(req.raw as IncomingMessage);
        const principal = await testAuthenticate(req);
        if (principal?.userId === 'hang') return new Promise<null>(() => undefined);
        if (gated) await new Promise<void>((resolve) => gates.push(resolve));
        return principal;
      },
    });
    const leaving = request(url('t1', 'alice'), { agent: false });
    leaving.on('error', () => undefined);
    leaving.end();
    await until(() => gates.length === 1 && seen.length === 1, 'the auth hook to be called', 5_000);
    leaving.destroy();
    // Barrier: the server has seen the client go (its request closed) before the hook answers.
    await until(() => seen[0]!.destroyed, 'the server to see the client leave', 5_000);
    gates[0]?.();
    // Barrier: authentication finished (the handler then returns in the same turn).
    await until(() => gateway.stats().connections.authenticating === 0, 'authentication to finish', 5_000);
    expect(gateway.stats()).toMatchObject({ connections: { open: 0, authenticating: 0 }, users: 0, refused: {} });
    gated = false;

    const hanging = await open(url('t1', 'hang'));
    await hanging.ended;
    expect([hanging.status, hanging.error.code]).toEqual([503, 'AUTH_TIMEOUT']);

    // The slots are free: alice can still open her full quota.
    const streams = [await open(url('t1', 'alice')), await open(url('t2', 'alice')), await open(url('t3', 'alice'))];
    expect(streams.map((c) => c.status)).toEqual([200, 200, 200]);
  });
});

describe('SseGateway isolation', () => {
  it('many users run concurrently through the real agent pipeline; each stream gets exactly its own events', async () => {
    const { transport, url, open, gateway } = await fixture();
    const bridge = new AgentBridge({ transport });
    await bridge.initialize();
    cleanups.push(() => bridge.close());
    const agent = new ScriptedAgent({ bridge });
    const users = Array.from({ length: 12 }, (_, i) => `user${i}`);
    const clients = await Promise.all(users.map((user) => open(url(`thread-${user}`, user))));
    // A squatter subscribes to a thread before its owner's first event: it must see nothing.
    const squatter = await open(url('thread-user0-b', 'mallory'));
    await Promise.all([...clients, squatter].map((c) => c.waitFor((x) => x.messages.length >= 1, 'subscribed')));

    const script = (user: string): Step[] => [
      { think: `hello ${user}` },
      ...Array.from({ length: 10 }, (_, i) => ({ tool: 'echo', args: { text: `${user}-${i}` } })),
      { tool: 'boom', args: {}, catchError: true },
    ];
    const results = await Promise.all([
      ...users.map((user) => agent.run(script(user), { userId: user, threadId: `thread-${user}` })),
      agent.run(script('user0'), { userId: 'user0', threadId: 'thread-user0-b' }),
    ]);
    expect(results.every((r) => r.status === 'succeeded')).toBe(true);

    await Promise.all(clients.map((c) => c.waitForEvent('agent_completed')));
    users.forEach((user, i) => {
      const events = clients[i]?.events ?? [];
      expectExactlyOnce(events, transport.read(`thread-${user}`, user), user);
      expect(events.length).toBe(2 + 1 + 2 * 11);
    });
    // Barrier: the squatter's stream has ended (the owner's first event refused it); nothing can follow.
    await squatter.ended;
    expect(squatter.events).toEqual([]);
    expect(gateway.stats().isolationDrops).toBe(0); // the log filtered; the gateway check is the second line
  });
});

describe('SseGateway resume', () => {
  it('resumes with Last-Event-ID after a cut mid-burst: no gap, no duplicate', async () => {
    const { transport, url, open } = await fixture();
    const run = scriptedRun(transport, 'alice', 't1');
    const first = await open(url('t1', 'alice'));
    await first.waitFor((c) => c.messages.length >= 1, 'subscribed');
    run.start();
    for (let i = 0; i < 100; i++) run.tool();
    await first.waitFor((c) => c.events.length >= 80, '80 events');
    first.close(); // cut in the middle of the burst (more may be in flight; the parser drops a partial message)
    await first.ended;
    const resumeFrom = first.lastEventId;
    expect(resumeFrom).toBeDefined();

    for (let i = 0; i < 100; i++) run.tool(); // emitted while nobody is connected
    const second = await open(url('t1', 'alice'), { lastEventId: resumeFrom });
    for (let i = 0; i < 50; i++) run.tool(); // and live after the reconnect
    run.complete();
    await second.waitForEvent('agent_completed');

    const received = [...first.events, ...second.events];
    expectExactlyOnce(received, transport.read('t1', 'alice'), 'alice');
    expect(received.length).toBe(1 + 2 * 250 + 1);
    expect(offsetOf(second.lastEventId)).toBe(received.length);
  });

  it('answers a trimmed cursor with history_gap and ends the response, replaying nothing', async () => {
    const { transport, url, open } = await fixture({ transport: new MemoryTransport({ maxEventsPerThread: 10 }) });
    const run = scriptedRun(transport, 'alice', 't1');
    const first = await open(url('t1', 'alice'));
    run.start();
    run.think(4);
    await first.waitFor((c) => c.events.length === 5, '5 events');
    first.close();
    const stale = first.messages.filter((m) => m.id !== undefined)[1]?.id ?? '';
    run.think(20); // trims past the stale cursor
    const resumed = await open(url('t1', 'alice'), { lastEventId: stale });
    expect(resumed.status).toBe(200);
    expect(await resumed.ended).toBe('end');
    expect(resumed.events).toEqual([]);
    const gaps = resumed.messages.filter((m) => m.event === 'history_gap');
    expect(gaps).toHaveLength(1);
    expect(JSON.parse(gaps[0]?.data ?? '')).toMatchObject({ type: 'history_gap', threadId: 't1', requested: stale, reason: 'trimmed' });
  });

  it('answers a cursor from another log incarnation (epoch) or past the end with history_gap', async () => {
    const { transport, url, open } = await fixture();
    const run = scriptedRun(transport, 'alice', 't1');
    run.start();
    // A cursor issued by another MemoryTransport (e.g. before a restart).
    const previous = new MemoryTransport();
    const foreign = previous.append({ ...transport.read('t1', 'alice')[0]! }).cursor;
    await previous.close();

    const cases: Array<[string, string]> = [
      [foreign, 'epoch_changed'],
      [`${transport.epoch}:999`, 'unknown_cursor'],
      ['not-a-cursor', 'unknown_cursor'],
    ];
    for (const [cursor, reason] of cases) {
      const resumed = await open(url('t1', 'alice'), { lastEventId: cursor });
      expect(await resumed.ended).toBe('end');
      expect(resumed.events).toEqual([]);
      expect(resumed.messages.map((m) => m.event)).toEqual(['history_gap']);
      expect(JSON.parse(resumed.messages[0]?.data ?? '')).toMatchObject({ requested: cursor, reason });
    }
  });
});

describe('SseGateway liveness and bounds', () => {
  it('sends heartbeat comments at the configured interval on an idle stream', async () => {
    const { url, open } = await fixture({ heartbeatIntervalMs: 40 });
    const client = await open(url('t1', 'alice'));
    await client.waitFor((c) => c.comments.filter((x) => x === 'heartbeat').length >= 3, '3 heartbeats');
    expect(client.raw).toContain('\n: heartbeat\n\n');
    expect(client.outcome).toBeUndefined();
  });

  it('cuts a reader that stops reading once live events pass the bound; a reading client is not cut; both lose nothing', async () => {
    const { transport, url, open, gateway } = await fixture({
      transport: new MemoryTransport({ maxEventsPerThread: 100_000 }),
      maxQueuedBytes: 64 * 1024,
    });
    const run = scriptedRun(transport, 'alice', 't1');
    const slow = await open(url('t1', 'alice'));
    const steady = await open(url('t1', 'alice'));
    await Promise.all([slow, steady].map((c) => c.waitFor((x) => x.messages.length >= 1, 'subscribed')));
    slow.pause();
    run.start();
    // Bursts smaller than the bound, so only a reader that stops reading can pile up past it;
    // in total far more than the kernel's socket buffers absorb.
    for (let burst = 0; burst < 1_000 && (gateway.stats().disconnects.slow_consumer ?? 0) === 0; burst++) {
      run.think(8, 4_096);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(gateway.stats().disconnects.slow_consumer).toBe(1);
    slow.resume();
    expect(await slow.ended).toBe('aborted');

    const resumed = await open(url('t1', 'alice'), { lastEventId: slow.lastEventId });
    run.think(3);
    run.complete();
    await resumed.waitForEvent('agent_completed', 1, 20_000);
    await steady.waitForEvent('agent_completed', 1, 20_000);
    const stored = transport.read('t1', 'alice');
    expect(slow.events.length).toBeLessThan(stored.length);
    expectExactlyOnce([...slow.events, ...resumed.events], stored, 'alice');
    expectExactlyOnce(steady.events, stored, 'alice');
    expect(steady.outcome).toBeUndefined();
    expect(gateway.stats().disconnects.slow_consumer).toBe(1); // neither the steady reader nor the paced replay tripped it
  });

  it('close() ends every stream, refuses new ones with 503 and leaves no timer behind', async () => {
    const transport = new MemoryTransport();
    cleanups.push(() => transport.close());
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    const clearIntervalSpy = vi.spyOn(globalThis, 'clearInterval');
    cleanups.push(() => void vi.restoreAllMocks());
    const gateway = new SseGateway({ log: transport, authenticate: testAuthenticate, heartbeatIntervalMs: 1_000 });
    const address = await gateway.listen(0);
    cleanups.push(() => gateway.close());
    const url = (user: string) => `http://127.0.0.1:${address.port}/events?threadId=t-${user}&token=tok-${user}`;
    const clients = await Promise.all(['alice', 'bob'].map((user) => SseTestClient.open(url(user))));
    await Promise.all(clients.map((c) => c.waitFor((x) => x.messages.length >= 1, 'subscribed')));
    expect(gateway.connectionCount).toBe(2);
    expect(setIntervalSpy).toHaveBeenCalledTimes(1); // one heartbeat timer for all streams
    const heartbeat = setIntervalSpy.mock.results[0]?.value as NodeJS.Timeout;

    await gateway.close();
    expect(await Promise.all(clients.map((c) => c.ended))).toHaveLength(2);
    expect(clients.every((c) => c.outcome !== undefined)).toBe(true);
    expect(gateway.connectionCount).toBe(0);
    expect(clearIntervalSpy).toHaveBeenCalledWith(heartbeat);

    // A gateway mounted on a host server answers 503 after close().
    const mounted = new SseGateway({ log: transport, authenticate: testAuthenticate });
    await mounted.close();
    const host = createServer((req, res) => void mounted.handle(req, res));
    await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => host.close(() => resolve())));
    const port = (host.address() as { port: number }).port;
    const late = await SseTestClient.open(`http://127.0.0.1:${port}/events?threadId=t1&token=tok-alice`);
    await late.ended;
    expect([late.status, late.error.code]).toEqual([503, 'GATEWAY_CLOSED']);
  });
});

