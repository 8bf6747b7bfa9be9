import { describe, expect, it } from 'vitest';
import { HistoryGapError, MemoryTransport, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { RawClient, follow, startGateway, until } from '../helpers/ws-harness.js';
import { TcpProxy } from '../helpers/ws-proxy.js';
import { useCleanup } from '../helpers/cleanup.js';

type Harness = Awaited<ReturnType<typeof startGateway>>;
const cleanup = useCleanup();
async function gateway(options: Parameters<typeof startGateway>[0] = {}): Promise<Harness> {
  const harness = await startGateway(options);
  cleanup.push(() => harness.stop());
  return harness;
}
async function proxyTo(port: number): Promise<TcpProxy> {
  const proxy = await TcpProxy.start(port);
  cleanup.push(() => proxy.close());
  return proxy;
}
const ids = (events: AgentEvent[]): string[] => events.map((event) => event.id);

describe('resume without loss', () => {
  it('sends subscribed, then the replay after the cursor, then live events; a resumed stream has no gap and no duplicate', async () => {
    const { url, burst, transport } = await gateway();
    const first = await RawClient.open(url, 'alice');
    first.subscribe('t');
    const run = burst.run({ thoughts: 600, yieldEvery: 20 }, { userId: 'alice', threadId: 't' });
    // Leave mid-burst, remembering the cursor of the last event this connection received.
    await first.waitFor(() => first.events().length >= 150, '150 events');
    first.close();
    await first.waitForClose();
    const received = first.ofType('event');
    const cursor = received.at(-1)!.cursor;

    const second = await RawClient.open(url, 'alice');
    second.subscribe('t', cursor);
    await run;
    await second.waitFor(() => received.length + second.events().length >= 602, 'the rest of the run');

    expect(second.frames[1]).toMatchObject({ type: 'subscribed', threadId: 't' });
    const subscribed = second.ofType('subscribed')[0]!;
    // Every frame after `subscribed` is an event: `replayed` of them from history, then live ones.
    expect(second.frames.slice(2).every((frame) => frame.type === 'event')).toBe(true);
    expect(subscribed.replayed).toBeGreaterThan(0);
    const all = [...received.map((frame) => frame.event), ...second.events()];
    expect(ids(all)).toEqual(ids(transport.read('t', 'alice')));
    expect(validateLifecycle(all)).toEqual({ ok: true, runs: 1 });
    second.close();
  });

  it('a client cut off three times in the middle of a burst reconnects and receives every event exactly once', async () => {
    const { port, burst, transport } = await gateway();
    const proxy = await proxyTo(port);
    const alice = follow(proxy.url(), 'alice', 'burst-thread');
    cleanup.push(() => alice.client.close());
    // Cut the network from inside the client's own listener, i.e. in the middle of a received batch.
    const cutAt = new Set([300, 1200, 2100]);
    alice.client.on('event', () => {
      if (cutAt.has(alice.events.length)) proxy.cut();
    });
    await until(() => alice.client.status === 'open', 'open');

    const result = await burst.run({ thoughts: 3000, yieldEvery: 10 }, { userId: 'alice', threadId: 'burst-thread' });
    expect(result.status).toBe('succeeded');
    await until(() => alice.events.length >= 3002, 'every event', 4_000);
    // Barrier: one more run on the same thread. A stray duplicate of the burst would be queued,
    // and so would arrive, before this run's events.
    const marker = await burst.run({ thoughts: 0 }, { userId: 'alice', threadId: 'burst-thread' });
    await until(() => alice.events.at(-1)?.runId === marker.runId && alice.events.at(-1)?.type === 'agent_completed', 'the barrier run');

    expect(proxy.cuts).toBe(3);
    expect(alice.client.stats.reconnects).toBeGreaterThanOrEqual(3);
    expect(ids(alice.events)).toEqual(ids(transport.read('burst-thread', 'alice')));
    expect(validateLifecycle(alice.events)).toEqual({ ok: true, runs: 2 });
    // The gateway resumed exactly after the cursor: not even the client's dedupe had to drop anything.
    expect(alice.client.stats.duplicates).toBe(0);
    expect(alice.errors).toEqual([]);
    expect(alice.statuses.filter((s) => s === 'reconnecting').length).toBeGreaterThanOrEqual(3);
  });

  it('many users bursting concurrently through repeated network cuts each get exactly their own events', async () => {
    const { port, burst, transport } = await gateway();
    const proxy = await proxyTo(port);
    const users = Array.from({ length: 20 }, (_, i) => `u${i}`);
    const clients = users.map((userId) => follow(proxy.url(), userId, `th-${userId}`));
    cleanup.push(() => clients.forEach((c) => c.client.close()));
    await until(() => clients.every((c) => c.client.status === 'open'), 'all open');

    let cuts = 0;
    const runs = Promise.all(users.map((userId) => burst.run({ thoughts: 400, yieldEvery: 5 }, { userId, threadId: `th-${userId}` })));
    const total = (): number => clients.reduce((sum, c) => sum + c.events.length, 0);
    for (const threshold of [1000, 3000, 5500]) {
      await until(() => total() >= threshold, `${threshold} events`, 4_000);
      proxy.cut();
      cuts++;
    }
    await runs;
    await until(() => clients.every((c) => c.events.length >= 402), 'every run complete', 4_000);
    expect(cuts).toBe(3);
    for (const { events, userId, threadId, client } of clients) {
      expect(ids(events)).toEqual(ids(transport.read(threadId, userId)));
      expect(events.every((e) => e.userId === userId)).toBe(true);
      expect(validateLifecycle(events).ok).toBe(true);
      expect(client.stats.duplicates).toBe(0);
    }
  });

  it('paces a replay larger than the send buffer instead of dropping the client', async () => {
    const { url, burst, transport, gateway: gw } = await gateway({ maxBufferedBytes: 16 * 1024 });
    await burst.run({ thoughts: 2000, text: 'x'.repeat(400) }, { userId: 'alice', threadId: 'big' });
    const alice = follow(url, 'alice', 'big');
    cleanup.push(() => alice.client.close());
    await until(() => alice.events.length === 2002, 'whole replay', 4_000);
    expect(ids(alice.events)).toEqual(ids(transport.read('big', 'alice')));
    expect(gw.stats()).toMatchObject({ closedSlowConsumer: 0, queuedFrames: 0 });
    expect(alice.client.stats.reconnects).toBe(0);
  });
});

describe('history gaps', () => {
  it('answers history_gap for a cursor of another epoch and for a trimmed one (raw protocol)', async () => {
    const { url, burst } = await gateway({ memory: { maxEventsPerThread: 5 } });
    await burst.run({ thoughts: 18 }, { userId: 'alice', threadId: 't' });
    const client = await RawClient.open(url, 'alice');
    client.subscribe('t');
    await client.waitFor(() => client.events().length === 5, 'retained events');
    // MemoryTransport cursors are `<epoch>:<offset>`; one before the oldest retained event is trimmed.
    const [epoch, offset] = client.ofType('event')[0]!.cursor.split(':') as [string, string];
    client.send({ type: 'unsubscribe', threadId: 't' });

    client.subscribe('t', `${new MemoryTransport().epoch}:3`);
    await client.waitFor(() => client.ofType('history_gap').length === 1, 'gap 1');
    client.subscribe('t', `${epoch}:${Number(offset) - 3}`);
    await client.waitFor(() => client.ofType('history_gap').length === 2, 'gap 2');
    expect(client.ofType('history_gap')).toEqual([
      expect.objectContaining({ threadId: 't', reason: 'epoch_changed', requested: expect.stringMatching(/:3$/) }),
      expect.objectContaining({ threadId: 't', reason: 'trimmed' }),
    ]);
    // Never a partial replay: no event followed either gap.
    expect(client.events()).toHaveLength(5);
    client.close();
  });

  it('the client surfaces a trimmed cursor as history_gap + HISTORY_GAP error, then re-subscribes from the retained start', async () => {
    const { url, burst, transport } = await gateway({ memory: { maxEventsPerThread: 5 } });
    const watcher = follow(url, 'alice', 't');
    cleanup.push(() => watcher.client.close());
    await burst.run({ thoughts: 2 }, { userId: 'alice', threadId: 't' });
    await until(() => watcher.events.length === 4, 'first run');
    const stale = watcher.client.cursor!;
    watcher.client.close();
    await burst.run({ thoughts: 10 }, { userId: 'alice', threadId: 't' });

    const gaps: unknown[] = [];
    const resumed = follow(url, 'alice', 't', { after: stale });
    cleanup.push(() => resumed.client.close());
    resumed.client.on('history_gap', (gap) => gaps.push(gap));
    await until(() => resumed.events.length === 5, 'retained events after the gap');
    expect(gaps).toEqual([expect.objectContaining({ threadId: 't', reason: 'trimmed', requested: stale })]);
    expect(resumed.errors).toHaveLength(1);
    expect(resumed.errors[0]).toBeInstanceOf(HistoryGapError);
    expect(resumed.errors[0]!.code).toBe('HISTORY_GAP');
    expect(ids(resumed.events)).toEqual(ids(transport.read('t', 'alice')));
    expect(resumed.client.status).toBe('open');
  });

  it('after a server restart (new epoch) the client reports the gap and follows the new log; with onHistoryGap "stop" it stops', async () => {
    const first = await gateway();
    const proxy = await proxyTo(first.port);
    const resubscriber = follow(proxy.url(), 'alice', 't');
    const stopper = follow(proxy.url(), 'alice', 't', { onHistoryGap: 'stop' });
    cleanup.push(() => resubscriber.client.close(), () => stopper.client.close());
    await first.agent.run([{ think: 'before restart' }], { userId: 'alice', threadId: 't' });
    await until(() => resubscriber.events.length === 3 && stopper.events.length === 3, 'first run');

    const second = await gateway();
    proxy.target = second.port;
    proxy.cut();
    await until(() => resubscriber.errors.length === 1 && stopper.client.status === 'closed', 'gap reported');
    await second.agent.run([{ think: 'after restart' }], { userId: 'alice', threadId: 't' });
    await until(() => resubscriber.events.length === 6, 'second run');

    for (const client of [resubscriber, stopper]) {
      expect(client.errors.map((e) => [e.code, (e.details as { reason?: string }).reason])).toEqual([['HISTORY_GAP', 'epoch_changed']]);
    }
    expect(validateLifecycle(resubscriber.events)).toEqual({ ok: true, runs: 2 });
    expect(ids(resubscriber.events.slice(3))).toEqual(ids(second.transport.read('t', 'alice')));
    expect(stopper.events).toHaveLength(3);
  });
});
