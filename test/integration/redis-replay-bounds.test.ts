import fc from 'fast-check';
import { beforeAll, expect, it } from 'vitest';
import { nanoid } from 'nanoid';
import type { AgentEvent, LogEntry } from '../../src/index.js';
import { RedisEventLog, type RedisEventLogOptions } from '../../src/transport/redis/index.js';
import { READ_PAGE_SCRIPT } from '../../src/transport/redis/scripts.js';
import { WebSocketGateway } from '../../src/transport/websocket/index.js';
import { startGateway as startSse } from '../helpers/sse-server.js';
import { authenticate, follow } from '../helpers/ws-harness.js';
import { startChatServer } from '../helpers/ai-chat.js';
import { MemoryRunQueue } from '../../src/runs/index.js';
import { Collector, REDIS_URL, describeWithRedis, probeRedis, useRedisLogs } from '../helpers/redis-env.js';
import { until } from '../helpers/wait.js';

/**
 * What a replay from the Redis log may cost (real Redis): a refused subscribe transfers no entry
 * of the other user's thread; a replay holds at most `maxReplayBytes` of entry JSON, the newest
 * (a cursor whose successors do not fit gets `history_gap` `trimmed`).
 */

/** The newest entries of `all` whose JSON (UTF-8) fits `budget` together: what a replay may hold. */
function newestWithin(all: readonly LogEntry[], budget: number): LogEntry[] {
  let total = 0;
  let from = all.length;
  while (from > 0) {
    total += Buffer.byteLength(all[from - 1]!.json!);
    if (total > budget) break;
    from--;
  }
  return all.slice(from);
}

const availability = await probeRedis();

/** An `agent_thinking` event of `runId` whose text is `size` characters. */
function thinking(userId: string, threadId: string, runId: string, seq: number, size = 16): AgentEvent {
  return {
    v: 1,
    id: `t-${nanoid(10)}`,
    type: 'agent_thinking',
    runId,
    threadId,
    userId,
    agent: 'a',
    seq,
    ts: Date.now(),
    data: { text: `${seq}:`.padEnd(size, 'x') },
  } as AgentEvent;
}

describeWithRedis('Redis log: bounded replays (real Redis)', availability, () => {
  let prefix: string;
  beforeAll(() => {
    prefix = `aw-rr-${Date.now()}-${nanoid(6)}:`;
  });
  const { closers, transport, gateway } = useRedisLogs(() => prefix);

  function log(options: RedisEventLogOptions = {}): RedisEventLog {
    const made = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix, ...options });
    closers.push(() => made.close());
    return made;
  }

  /** Every entry the thread retains, read with a budget larger than it. */
  async function everything(threadId: string, userId = 'alice'): Promise<LogEntry[]> {
    const result = await log({ maxReplayBytes: 1 << 30 }).subscribe({ userId, threadId }, new Collector());
    if (result.status !== 'subscribed') throw new Error(result.status);
    result.subscription.close();
    return result.replay;
  }

  /** Appends `count` thinking events of one run to the thread; returns them in order. */
  async function fill(userId: string, threadId: string, count: number, size = 16): Promise<AgentEvent[]> {
    const writer = transport();
    const runId = `thread_${threadId}_run_${Date.now()}_${nanoid(6)}`;
    const events = Array.from({ length: count }, (_, i) => thinking(userId, threadId, runId, i + 1, size));
    for (let i = 0; i < events.length; i += 200) await Promise.all(events.slice(i, i + 200).map((event) => writer.send(event)));
    return events;
  }

  it("a subscribe to another user's thread is refused before any of its entries is read", async () => {
    const threadId = `victim-${nanoid(6)}`;
    await fill('alice', threadId, 600);
    const log = gateway();
    const listener = new Collector();
    await expect(log.subscribe({ userId: 'mallory', threadId }, listener)).rejects.toMatchObject({ name: 'AuthError', code: 'THREAD_FORBIDDEN' });
    await expect(log.subscribe({ userId: 'mallory', threadId, after: undefined }, listener)).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
    expect(log.stats().replayEntriesRead).toBe(0);
    expect(listener.entries).toEqual([]);
    // The owner's own subscribe reads (and counts) them: the counter is the one that would show a transfer.
    const own = await log.subscribe({ userId: 'alice', threadId }, new Collector());
    if (own.status !== 'subscribed') throw new Error(own.status);
    own.subscription.close();
    expect(own.replay).toHaveLength(600);
    expect(log.stats().replayEntriesRead).toBe(600);
  });

  it('a subscribe without a cursor replays the newest entries within maxReplayBytes, in order, up to the newest; live ones follow', async () => {
    const threadId = `fat-${nanoid(6)}`;
    // Sizes vary (64 B to 3 KB) so that the window's edge falls inside a page of the script's walk back.
    const writer = transport();
    const runId = `thread_${threadId}_run_${Date.now()}_${nanoid(6)}`;
    for (let i = 0; i < 400; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => writer.send(thinking('alice', threadId, runId, i + j + 1, 64 + (((i + j) * 7919) % 3000)))));
    }
    const all = await everything(threadId);
    expect(all).toHaveLength(400);
    const total = all.reduce((sum, entry) => sum + Buffer.byteLength(entry.json!), 0);
    for (const budget of [1, 3_000, 20_000, 100_000, total - 1, total]) {
      const reader = log({ maxReplayBytes: budget, readCount: 7 });
      const listener = new Collector();
      const result = await reader.subscribe({ userId: 'alice', threadId }, listener);
      if (result.status !== 'subscribed') throw new Error(result.status);
      const expected = newestWithin(all, budget);
      expect(result.replay.map((entry) => entry.event.id), `budget ${budget}`).toEqual(expected.map((entry) => entry.event.id));
      expect(result.replay.reduce((sum, entry) => sum + Buffer.byteLength(entry.json!), 0)).toBeLessThanOrEqual(budget);
      // The cursor is the newest entry's, whether or not it was replayed (an entry larger than the budget is not).
      expect(result.cursor).toBe(all.at(-1)!.cursor);
      expect(reader.stats().replayEntriesRead).toBe(expected.length);
      result.subscription.close();
    }
    // Live events after a bounded replay reach the listener, once each, in order.
    const reader = log({ maxReplayBytes: 5_000 });
    const listener = new Collector();
    const result = await reader.subscribe({ userId: 'alice', threadId }, listener);
    if (result.status !== 'subscribed') throw new Error(result.status);
    listener.takeReplay(result.replay);
    const live = Array.from({ length: 5 }, (_, i) => thinking('alice', threadId, runId, 1000 + i));
    for (const event of live) await writer.send(event);
    await until(() => listener.entries.length >= result.replay.length + 5);
    expect(listener.events.map((event) => event.id)).toEqual([...newestWithin(all, 5_000), ...live.map((event) => ({ event }))].map((entry) => entry.event.id));
    result.subscription.close();
  });

  it('a cursor whose successors exceed maxReplayBytes gets history_gap trimmed; one whose successors fit replays them all', async () => {
    const threadId = `cursor-${nanoid(6)}`;
    await fill('alice', threadId, 100, 500);
    const all = await everything(threadId);
    const budget = 10_000;
    const window = newestWithin(all, budget);
    expect(window.length).toBeGreaterThan(3);
    expect(window.length).toBeLessThan(all.length - 3);
    const reader = log({ maxReplayBytes: budget });
    // The entry just before the window: its successors are exactly the window.
    const edge = all.length - window.length - 1;
    const fits = await reader.subscribe({ userId: 'alice', threadId, after: all[edge]!.cursor }, new Collector());
    if (fits.status !== 'subscribed') throw new Error(JSON.stringify(fits));
    fits.subscription.close();
    expect(fits.replay.map((entry) => entry.event.id)).toEqual(window.map((entry) => entry.event.id));
    for (const older of [edge - 1, 0]) {
      const result = await reader.subscribe({ userId: 'alice', threadId, after: all[older]!.cursor }, new Collector());
      expect(result).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
    }
    // The other checks still come first: a cursor of another thread is unknown, not trimmed.
    const foreign = await reader.subscribe({ userId: 'alice', threadId: `${threadId}-x`, after: all[0]!.cursor }, new Collector());
    expect(foreign).toMatchObject({ status: 'history_gap', gap: { reason: 'unknown_cursor' } });
  });

  it('an entry larger than maxReplayBytes alone is delivered live but not replayed; a cursor before it gets trimmed', async () => {
    const threadId = `huge-${nanoid(6)}`;
    const [first] = await fill('alice', threadId, 1, 100);
    const budget = 4_000;
    const reader = log({ maxReplayBytes: budget });
    const listener = new Collector();
    const sub = await reader.subscribe({ userId: 'alice', threadId }, listener);
    if (sub.status !== 'subscribed') throw new Error(sub.status);
    expect(sub.replay.map((entry) => entry.event.id)).toEqual([first!.id]);
    const huge = thinking('alice', threadId, first!.runId, 2, 10_000);
    await transport().send(huge);
    await until(() => listener.entries.length === 1);
    expect(listener.events.map((event) => event.id)).toEqual([huge.id]);
    sub.subscription.close();
    const fresh = await reader.subscribe({ userId: 'alice', threadId }, new Collector());
    if (fresh.status !== 'subscribed') throw new Error(fresh.status);
    fresh.subscription.close();
    expect(fresh.replay).toEqual([]);
    expect(fresh.cursor).toBe(listener.entries[0]!.cursor);
    const before = await reader.subscribe({ userId: 'alice', threadId, after: sub.replay[0]!.cursor }, new Collector());
    expect(before).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
  });

  /**
   * Holds the log's replay page reads of `userId` (the script's reading-user argument) until
   * `open()`; records the stream of each held read, in the order they were issued.
   */
  function holdReplaysOf(reader: RedisEventLog, userId: string) {
    const main = (reader as unknown as { main: { send: (command: string[]) => Promise<unknown> } }).main;
    const send = main.send.bind(main);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const streams: string[] = [];
    main.send = async (command: string[]) => {
      // EVALSHA sha 2 stream meta start end count lookup user budget whole
      const script = command[1] === READ_PAGE_SCRIPT.sha || command[1] === READ_PAGE_SCRIPT.source;
      if ((command[0] === 'EVALSHA' || command[0] === 'EVAL') && script && command[9] === userId) {
        streams.push(command[3]!);
        await gate;
      }
      return send(command);
    };
    return { streams, open };
  }

  it("one user's replays take turns (maxConcurrentReplaysPerUser) and past maxQueuedReplaysPerUser are refused TOO_MANY_REPLAYS; another user's subscribe and live events are not delayed", async () => {
    const threads = Array.from({ length: 5 }, (_, i) => `turn-${i}-${nanoid(6)}`);
    const written = await Promise.all(threads.map((threadId) => fill('alice', threadId, 3)));
    const bobThread = `bob-${nanoid(6)}`;
    await fill('bob', bobThread, 2);
    const reader = log({ maxConcurrentReplaysPerUser: 2, maxQueuedReplaysPerUser: 3 });
    await reader.connect();
    const held = holdReplaysOf(reader, 'alice');
    const settled: boolean[] = [];
    const subscribes = threads.map((threadId, i) => {
      settled[i] = false;
      return reader.subscribe({ userId: 'alice', threadId }, new Collector()).finally(() => (settled[i] = true));
    });
    // A failing assertion below must not leave them unhandled when the log closes.
    for (const subscribe of subscribes) subscribe.catch(() => undefined);
    // Two read (held in Redis's path), three wait their turn.
    await until(() => held.streams.length === 2 && reader.stats().replaysWaiting === 3);
    expect(reader.stats()).toMatchObject({ replaysActive: 2, replaysWaiting: 3, replaysQueued: 3 });
    await expect(reader.subscribe({ userId: 'alice', threadId: threads[0]! }, new Collector())).rejects.toMatchObject({
      name: 'TransportError',
      code: 'TOO_MANY_REPLAYS',
      retryable: true,
    });
    expect(reader.stats().replaysRefused).toBe(1);
    // Bob is served meanwhile: his replay, then a live event, while none of alice's has completed.
    const bob = new Collector();
    const bobSub = await reader.subscribe({ userId: 'bob', threadId: bobThread }, bob);
    if (bobSub.status !== 'subscribed') throw new Error(bobSub.status);
    expect(bobSub.replay).toHaveLength(2);
    const live = thinking('bob', bobThread, bobSub.replay[0]!.event.runId, 99);
    await transport().send(live);
    await until(() => bob.entries.length === 1);
    expect(bob.events.map((event) => event.id)).toEqual([live.id]);
    expect(settled).toEqual([false, false, false, false, false]);
    expect(held.streams).toHaveLength(2);
    bobSub.subscription.close();
    held.open();
    const results = await Promise.all(subscribes);
    // Each got its whole thread; the waiting ones read in the order they asked.
    results.forEach((result, i) => {
      if (result.status !== 'subscribed') throw new Error(result.status);
      expect(result.replay.map((entry) => entry.event.id)).toEqual(written[i]!.map((event) => event.id));
      result.subscription.close();
    });
    expect(held.streams.slice(2)).toEqual(threads.slice(2).map((threadId) => reader.keys.stream(threadId)));
    expect(reader.stats()).toMatchObject({ replaysActive: 0, replaysWaiting: 0 });
  });

  it('closing the log refuses the replays waiting for a turn', async () => {
    const threadId = `close-${nanoid(6)}`;
    await fill('alice', threadId, 2);
    const reader = log({ maxConcurrentReplaysPerUser: 1 });
    await reader.connect();
    const held = holdReplaysOf(reader, 'alice');
    const first = reader.subscribe({ userId: 'alice', threadId }, new Collector());
    const second = reader.subscribe({ userId: 'alice', threadId }, new Collector());
    await until(() => held.streams.length === 1 && reader.stats().replaysWaiting === 1);
    const closing = reader.close();
    await expect(second).rejects.toMatchObject({ code: 'TRANSPORT_CLOSED' });
    held.open();
    await first.catch(() => undefined);
    await closing;
  });

  it('through the gateways: a refused replay is SSE 503 SUBSCRIBE_FAILED with Retry-After and a WebSocket error the client recovers from; the client then gets the newest window and live events', async () => {
    const threadId = `gw-${nanoid(6)}`;
    await fill('alice', threadId, 40, 200);
    const all = await everything(threadId);
    const budget = 2_000;
    const window = newestWithin(all, budget);
    expect(window.length).toBeGreaterThan(2);
    expect(window.length).toBeLessThan(all.length);
    const bobThread = `gw-bob-${nanoid(6)}`;
    const [bobFirst] = await fill('bob', bobThread, 1);
    const shared = transport({ log: { maxReplayBytes: budget, maxConcurrentReplaysPerUser: 1, maxQueuedReplaysPerUser: 0 } });
    const reader = shared.eventLog();
    await reader.connect();
    const ws = new WebSocketGateway({ authenticate, log: shared });
    const { url } = await ws.listen(0, '127.0.0.1');
    closers.push(() => ws.close());
    const sse = await startSse({ log: reader });
    closers.push(() => sse.close());
    const held = holdReplaysOf(reader, 'alice');
    // Alice's one turn is taken (and held in Redis's path).
    const taking = reader.subscribe({ userId: 'alice', threadId }, new Collector());
    taking.catch(() => undefined);
    await until(() => held.streams.length === 1);
    const refused = await fetch(sse.url(threadId, 'alice'));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    const body = await refused.text();
    expect(body).toContain('SUBSCRIBE_FAILED');
    expect(body).toContain('TOO_MANY_REPLAYS');
    const alice = follow(url, 'alice', threadId);
    closers.push(async () => alice.client.close());
    const bob = follow(url, 'bob', bobThread);
    closers.push(async () => bob.client.close());
    await until(() => alice.errors.some((error) => error.code === 'SUBSCRIBE_FAILED'));
    expect(alice.errors.find((error) => error.code === 'SUBSCRIBE_FAILED')!.message).toContain('TOO_MANY_REPLAYS');
    // Bob is served while alice waits: his replay and a live event.
    await until(() => bob.events.length === 1);
    const bobLive = thinking('bob', bobThread, bobFirst!.runId, 2);
    await shared.send(bobLive);
    await until(() => bob.events.length === 2);
    expect(bob.events.map((event) => event.id)).toEqual([bobFirst!.id, bobLive.id]);
    expect(alice.events).toEqual([]);
    held.open();
    const first = await taking;
    if (first.status === 'subscribed') first.subscription.close();
    // The client reconnects on its own and gets the newest entries within the budget, then live ones.
    await until(() => alice.events.length >= window.length);
    const live = thinking('alice', threadId, all[0]!.event.runId, 1000);
    await shared.send(live);
    await until(() => alice.events.length === window.length + 1);
    expect(alice.events.map((event) => event.id)).toEqual([...window.map((entry) => entry.event.id), live.id]);
  });

  it('property: for any entry sizes, budget and cursor, a replay is the newest entries within the budget, or all successors of the cursor, or trimmed', async () => {
    const writer = transport();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 8, max: 3_000 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 40_000 }),
        fc.nat(),
        async (sizes, budget, at) => {
          const threadId = `prop-${nanoid(8)}`;
          const runId = `thread_${threadId}_run_${Date.now()}_${nanoid(6)}`;
          await Promise.all(sizes.map((size, i) => writer.send(thinking('alice', threadId, runId, i + 1, size))));
          const all = await everything(threadId);
          expect(all).toHaveLength(sizes.length);
          const bounded = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix, maxReplayBytes: budget, readCount: 5 });
          try {
            const fresh = await bounded.subscribe({ userId: 'alice', threadId }, new Collector());
            if (fresh.status !== 'subscribed') throw new Error(fresh.status);
            fresh.subscription.close();
            expect(fresh.replay.map((entry) => entry.event.id)).toEqual(newestWithin(all, budget).map((entry) => entry.event.id));
            expect(fresh.cursor).toBe(all.at(-1)!.cursor);
            const index = at % all.length;
            const successors = all.slice(index + 1);
            const bytes = successors.reduce((sum, entry) => sum + Buffer.byteLength(entry.json!), 0);
            const resumed = await bounded.subscribe({ userId: 'alice', threadId, after: all[index]!.cursor }, new Collector());
            if (bytes <= budget) {
              if (resumed.status !== 'subscribed') throw new Error(JSON.stringify(resumed));
              resumed.subscription.close();
              expect(resumed.replay.map((entry) => entry.event.id)).toEqual(successors.map((entry) => entry.event.id));
            } else {
              expect(resumed).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
            }
          } finally {
            await bounded.close();
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it("useChat's resume (GET /api/chat/:id/stream) refused for too many replays is 503 SUBSCRIBE_FAILED with Retry-After, and answers once the turn is free", async () => {
    const threadId = `chat-${nanoid(6)}`;
    await fill('alice', threadId, 3);
    const shared = transport({ log: { maxConcurrentReplaysPerUser: 1, maxQueuedReplaysPerUser: 0 } });
    const reader = shared.eventLog();
    await reader.connect();
    const queue = new MemoryRunQueue({});
    closers.push(() => queue.close());
    const chat = await startChatServer({ agent: 'weather', queue, log: shared, heartbeatIntervalMs: 0 });
    closers.push(() => chat.close());
    const held = holdReplaysOf(reader, 'alice');
    const taking = reader.subscribe({ userId: 'alice', threadId }, new Collector());
    taking.catch(() => undefined);
    await until(() => held.streams.length === 1);
    const resume = () => fetch(`${chat.url}/api/chat/${threadId}/stream`, { headers: { authorization: 'Bearer alice-token' } });
    const refused = await resume();
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    const body = await refused.text();
    expect(body).toContain('SUBSCRIBE_FAILED');
    expect(body).toContain('TOO_MANY_REPLAYS');
    held.open();
    const first = await taking;
    if (first.status === 'subscribed') first.subscription.close();
    // No run under way in the thread (only thinking events of a run without a start): nothing to resume.
    expect((await resume()).status).toBe(204);
  });
});
