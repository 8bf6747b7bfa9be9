import { until } from '../helpers/wait.js';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { AgentBridge, AuthError, DeliveryError, validateLifecycle, type AgentEvent, type SubscribeResult } from '../../src/index.js';
import { RedisEventLog, RedisStreamsTransport, type RedisEventLogOptions, type RedisStreamsTransportOptions } from '../../src/transport/redis/index.js';
import { READ_PAGE_SCRIPT } from '../../src/transport/redis/scripts.js';
import {
  Collector,
  REDIS_URL,
  StepAgent,
  deletePrefix,
  describeWithRedis,
  probeRedis,
  rawClient,
  testPrefix,
  } from '../helpers/redis-env.js';

const availability = await probeRedis();
const fastRetry = { minTimeoutMs: 5, maxTimeoutMs: 50, randomize: false };

describeWithRedis('RedisStreamsTransport + RedisEventLog (real Redis)', availability, () => {
  let prefix: string;
  const closers: Array<() => Promise<unknown>> = [];

  beforeAll(() => {
    prefix = testPrefix('transport');
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  });
  afterAll(async () => {
    await deletePrefix(prefix);
  });

  function worker(options: RedisStreamsTransportOptions = {}) {
    const transport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix: prefix, ...options });
    const bridge = new AgentBridge({ transport, retry: fastRetry, recoveryIntervalMs: 10 });
    const agent = new StepAgent({ bridge });
    closers.push(() => bridge.close());
    return { transport, bridge, agent };
  }

  function gateway(options: RedisEventLogOptions = {}) {
    const log = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix, ...options });
    closers.push(() => log.close());
    return log;
  }

  async function follow(log: RedisEventLog, userId: string, threadId: string, after?: string) {
    const collector = new Collector();
    const result = await log.subscribe({ userId, threadId, after }, collector);
    if (result.status !== 'subscribed') throw new Error(`expected subscribed, got ${JSON.stringify(result)}`);
    collector.takeReplay(result.replay);
    return { collector, result };
  }

  /** Complete, valid runs (grammar, gapless seq) and no event twice. */
  function expectComplete(events: AgentEvent[], runs: number) {
    expect(validateLifecycle(events)).toEqual({ ok: true, runs });
    expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
  }

  it('delivers a run from the bridge through Redis to a subscriber of another log, once and in order', async () => {
    const { agent } = worker();
    const log = gateway();
    const { collector, result } = await follow(log, 'alice', 'live-1');
    expect(result.replay).toEqual([]);
    expect(result.cursor).toBeNull();

    await agent.run({ steps: 10 }, { userId: 'alice', threadId: 'live-1' });
    await until(() => collector.events.length >= StepAgent.eventCount(10), 'all events at the subscriber');

    const events = collector.events;
    expect(events).toHaveLength(StepAgent.eventCount(10));
    expectComplete(events, 1);
    expect(events.every((event) => event.userId === 'alice' && event.threadId === 'live-1')).toBe(true);
    expect(events.map((event) => event.type).at(-1)).toBe('agent_completed');
    // Every entry carries the exact stored JSON and a cursor of this log.
    for (const entry of collector.entries) {
      expect(JSON.parse(entry.json!)).toEqual(entry.event);
      expect(entry.cursor).toMatch(/^[0-9a-z.]+:\d+-\d+$/);
    }
  });

  it('replays after a cursor on another gateway, then follows live: no gap, no duplicate', async () => {
    const { agent } = worker();
    const logA = gateway();
    const a = await follow(logA, 'alice', 'resume-1');

    let release!: () => void;
    const paused = new Promise<void>((resolve) => (release = resolve));
    const run = agent.run({ steps: 20, pause: { at: 10, until: paused } }, { userId: 'alice', threadId: 'resume-1' });
    // Gateway A dies after having delivered the first events.
    await until(() => a.collector.events.length >= 8, 'first events on gateway A');
    const seenOnA = a.collector.entries.slice(0, 8);
    await logA.close();

    // The client reconnects to gateway B with its last cursor while the run goes on.
    const logB = gateway();
    const b = await follow(logB, 'alice', 'resume-1', seenOnA.at(-1)!.cursor);
    release();
    await run;
    const total = StepAgent.eventCount(20);
    await until(() => b.collector.events.length >= total - 8, 'the rest on gateway B');

    const combined = [...seenOnA.map((entry) => entry.event), ...b.collector.events];
    expect(combined).toHaveLength(total);
    expectComplete(combined, 1);
    expect(combined.map((event) => event.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });

  it('keeps threads private across processes: ownership lives in Redis', async () => {
    const { agent, bridge } = worker();
    await agent.run({ steps: 2 }, { userId: 'alice', threadId: 'owned-1' });

    // A gateway that never saw the run still knows the owner and refuses another user.
    const fresh = gateway();
    expect(await fresh.ownerOf('owned-1')).toBe('alice');
    expect(await fresh.ownerOf('never-used')).toBeUndefined();
    const refusal = fresh.subscribe({ userId: 'mallory', threadId: 'owned-1' }, new Collector());
    await expect(refusal).rejects.toBeInstanceOf(AuthError);
    await expect(refusal).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });

    // A worker elsewhere (its own registry) cannot write into alice's thread: refused for good, not retried.
    const other = worker();
    const errors: DeliveryError[] = [];
    other.bridge.on('delivery_error', (error) => errors.push(error));
    // Its run() rejects as an in-process one does: the start is refused, nothing else is sent.
    await expect(other.agent.run({ steps: 1 }, { userId: 'mallory', threadId: 'owned-1' })).rejects.toMatchObject({ name: 'AuthError', code: 'THREAD_FORBIDDEN' });
    expect(errors).toHaveLength(1);
    expect(errors.every((error) => error.causeCode === 'THREAD_OWNER_MISMATCH')).toBe(true);
    expect(other.bridge.metrics().retried).toBe(0);

    // What alice's subscriber gets from the thread: her run only.
    const { collector } = await follow(fresh, 'alice', 'owned-1');
    expect(collector.events).toHaveLength(StepAgent.eventCount(2));
    expect(collector.events.every((event) => event.userId === 'alice')).toBe(true);
    expect(bridge.state).toBe('active');
  });

  it('never hands a subscriber another user’s entry, even one written into its thread behind the transport’s back', async () => {
    const { agent } = worker();
    const log = gateway();
    const { collector } = await follow(log, 'alice', 'isolated-1');
    await agent.run({ steps: 1 }, { userId: 'alice', threadId: 'isolated-1' });
    await until(() => collector.events.length === StepAgent.eventCount(1), 'alice’s run');

    // Forge an entry of mallory's in alice's stream (bypassing the owner check), then a real one of alice's.
    const redis = await rawClient();
    const forged = { ...collector.events[0]!, id: 'forged-event-id', userId: 'mallory', runId: 'thread_isolated-1_run_1_x' };
    const epoch = collector.entries[0]!.cursor.split(':')[0]!;
    await redis.sendCommand(['XADD', log.keys.stream('isolated-1'), '*', 'e', JSON.stringify(forged), 'p', epoch]);
    redis.destroy();
    await agent.run({ steps: 1 }, { userId: 'alice', threadId: 'isolated-1' });
    await until(() => collector.events.length >= 2 * StepAgent.eventCount(1), 'alice’s second run');

    expect(collector.events.some((event) => event.userId !== 'alice')).toBe(false);
    expect(log.stats().isolationDrops).toBe(1);
    // The replay path filters too.
    const replayed = await follow(gateway(), 'alice', 'isolated-1');
    expect(replayed.collector.events.map((event) => event.id)).toEqual(collector.events.map((event) => event.id));
  });

  it('answers history_gap for trimmed history, a recreated stream and cursors it never issued', async () => {
    const { agent } = worker({ maxLenPerThread: 10 });
    const log = gateway();
    // Approximate MAXLEN trims whole nodes (100 entries): write enough to drop the first ones.
    for (let i = 0; i < 5; i++) await agent.run({ steps: 60 }, { userId: 'alice', threadId: 'gap-1' });
    const { collector } = await follow(log, 'alice', 'gap-1');
    const retained = collector.entries;
    expect(retained.length).toBeLessThan(5 * StepAgent.eventCount(60));
    const [epoch] = retained[0]!.cursor.split(':');

    // A cursor older than the retained window: trimmed, never a partial replay.
    const oldest = retained[0]!.cursor.split(':')[1]!;
    const [ms] = oldest.split('-');
    const before = `${epoch}:${Number(ms) - 1}-0`;
    const trimmed = await log.subscribe({ userId: 'alice', threadId: 'gap-1', after: before }, new Collector());
    expect(trimmed).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed', threadId: 'gap-1', requested: before } });

    // A retained cursor replays exactly what follows it.
    const middle = retained[Math.floor(retained.length / 2)]!;
    const resumed = await follow(log, 'alice', 'gap-1', middle.cursor);
    expect(resumed.collector.events.map((event) => event.id)).toEqual(
      retained.slice(Math.floor(retained.length / 2) + 1).map((entry) => entry.event.id),
    );
    expect(resumed.result.cursor).toBe(retained.at(-1)!.cursor);

    // Malformed, and past the end of the stream.
    for (const after of ['garbage', `${epoch}:99999999999999-0`]) {
      const result = await log.subscribe({ userId: 'alice', threadId: 'gap-1', after }, new Collector());
      expect(result).toMatchObject({ status: 'history_gap', gap: { reason: 'unknown_cursor' } });
    }

    // The stream is deleted (TTL, FLUSH) and recreated by a new run: the old cursor names a gone epoch.
    const redis = await rawClient();
    await redis.sendCommand(['DEL', log.keys.stream('gap-1'), log.keys.meta('gap-1')]);
    redis.destroy();
    await agent.run({ steps: 1 }, { userId: 'alice', threadId: 'gap-1' });
    const recreated = await log.subscribe({ userId: 'alice', threadId: 'gap-1', after: middle.cursor }, new Collector());
    expect(recreated).toMatchObject({ status: 'history_gap', gap: { reason: 'epoch_changed' } });
    const fresh = await follow(log, 'alice', 'gap-1');
    expect(fresh.collector.events).toHaveLength(StepAgent.eventCount(1));
    expect(fresh.collector.lastCursor!.split(':')[0]).not.toBe(epoch);
  });

  it('follows many threads over ONE blocking connection and picks up a new thread at once', async () => {
    const { agent } = worker();
    // A blocking read that would otherwise wait a minute: only the wake-up stream can cut it short.
    const log = gateway({ blockMs: 60_000 });
    const threads = Array.from({ length: 12 }, (_, i) => `multi-${i}`);
    const collectors = new Map<string, Collector>();
    for (const threadId of threads.slice(0, 6)) collectors.set(threadId, (await follow(log, 'alice', threadId)).collector);
    await agent.run({ steps: 1 }, { userId: 'alice', threadId: 'multi-0' });
    await until(() => collectors.get('multi-0')!.events.length === StepAgent.eventCount(1), 'first thread');

    // Now the tail is blocked; threads subscribed from here on must be read without waiting for the block to end.
    for (const threadId of threads.slice(6)) collectors.set(threadId, (await follow(log, 'alice', threadId)).collector);
    await Promise.all(threads.map((threadId) => agent.run({ steps: 3 }, { userId: 'alice', threadId })));
    const perThread = (threadId: string) => StepAgent.eventCount(3) + (threadId === 'multi-0' ? StepAgent.eventCount(1) : 0);
    await until(() => threads.every((threadId) => collectors.get(threadId)!.events.length === perThread(threadId)), 'every thread', 15_000);
    for (const threadId of threads) {
      const events = collectors.get(threadId)!.events;
      expectComplete(events, threadId === 'multi-0' ? 2 : 1);
      expect(events.every((event) => event.threadId === threadId)).toBe(true);
    }

    const redis = await rawClient();
    const clients = String(await redis.sendCommand(['CLIENT', 'LIST']));
    redis.destroy();
    const tails = clients.split('\n').filter((line) => line.includes(`name=agentwire-tail-${log.gatewayId}`));
    expect(tails).toHaveLength(1);
    expect(log.stats()).toMatchObject({ threads: 12, subscribers: 12, isolationDrops: 0, invalidEntries: 0 });
  });

  it('hands each of many concurrent subscribers exactly the stream after its cursor while runs are writing', async () => {
    const { agent, transport } = worker();
    const log = gateway({ readCount: 7 });
    const threadId = 'busy-1';
    const watcher = await follow(log, 'alice', threadId);
    const runs = Array.from({ length: 12 }, (_, i) => agent.run({ steps: 15 + i }, { userId: 'alice', threadId }));

    // Subscribers join at different moments, from different cursors, on this gateway and a second one.
    const other = gateway({ readCount: 5 });
    const late: Array<{ collector: Collector; from: number }> = [];
    for (let i = 0; i < 10; i++) {
      await until(() => watcher.collector.entries.length >= i * 12, 'progress');
      const from = Math.floor(watcher.collector.entries.length / 2);
      const cursor = from === 0 ? undefined : watcher.collector.entries[from - 1]!.cursor;
      late.push({ collector: (await follow(i % 2 ? other : log, 'alice', threadId, cursor)).collector, from });
    }
    await Promise.all(runs);
    const total = runs.length * 2 + Array.from({ length: 12 }, (_, i) => StepAgent.eventCount(15 + i) - 2).reduce((a, b) => a + b, 0);
    await until(() => watcher.collector.events.length === total && late.every(({ collector, from }) => collector.events.length === total - from), 'all subscribers complete');

    expectComplete(watcher.collector.events, 12);
    const order = watcher.collector.events.map((event) => event.id);
    for (const { collector, from } of late) expect(collector.events.map((event) => event.id)).toEqual(order.slice(from));
    // Concurrent runs' sends were coalesced into batched script calls.
    const { appended, batches } = transport.stats();
    expect(appended).toBe(total);
    expect(batches).toBeLessThan(appended);
  });

  it('completes a replay that the live tail overtook before the subscriber was registered', async () => {
    const { agent } = worker();
    const log = gateway();
    const threadId = 'overtaken-1';
    await agent.run({ steps: 5 }, { userId: 'alice', threadId });
    const watcher = await follow(log, 'alice', threadId);
    const first = watcher.collector.entries.length;

    // Hold back the answer of the next replay until the tail has read a whole further run.
    const original = READ_PAGE_SCRIPT.run;
    let intercepted = false;
    READ_PAGE_SCRIPT.run = async function <T>(this: typeof READ_PAGE_SCRIPT, ...args: Parameters<typeof original>): Promise<T> {
      const reply = await original.apply(this, args);
      if (!intercepted) {
        intercepted = true;
        await agent.run({ steps: 5 }, { userId: 'alice', threadId });
        await until(() => watcher.collector.entries.length === 2 * first, 'the tail to read the second run');
      }
      return reply as T;
    };
    let late: Collector;
    try {
      late = (await follow(log, 'alice', threadId, watcher.collector.entries[2]!.cursor)).collector;
    } finally {
      READ_PAGE_SCRIPT.run = original;
    }
    await agent.run({ steps: 5 }, { userId: 'alice', threadId });
    await until(() => watcher.collector.entries.length === 3 * first, 'the third run');
    await until(() => late.entries.length >= 3 * first - 3 - 2 * first, 'the late subscriber to get the third run');
    await until(() => late.entries.at(-1)?.event.type === 'agent_completed' && late.entries.at(-1)?.event.runId === watcher.collector.entries.at(-1)!.event.runId, 'the last event');
    expect(late.events.map((event) => event.id)).toEqual(watcher.collector.events.slice(3).map((event) => event.id));
    expectComplete(watcher.collector.events, 3);
    expect(log.stats().catchUps).toBe(1);
  });

  it('send rejects with a retryable error while Redis is unreachable, and health says so', async () => {
    const transport = new RedisStreamsTransport({ url: 'redis://127.0.0.1:1', keyPrefix: prefix, connectTimeoutMs: 200, reconnectMaxDelayMs: 100 });
    closers.push(() => transport.close());
    expect(await transport.health()).toMatchObject({ ok: false });
    const event = { v: 1, id: 'e1', type: 'agent_thinking', runId: 'thread_t_run_1_a', threadId: 't', userId: 'u', agent: 'a', seq: 1, ts: 1, data: { text: 'x' } } as const;
    await expect(transport.send(event)).rejects.toMatchObject({ name: 'TransportError', code: 'REDIS_UNAVAILABLE', retryable: true });
    await transport.close();
    await expect(transport.send(event)).rejects.toMatchObject({ code: 'TRANSPORT_CLOSED', retryable: false });
    expect(await transport.health()).toEqual({ ok: false, detail: 'closed' });
  });

  it('close() ends subscriptions and leaves nothing running', async () => {
    const { transport, agent } = worker();
    await agent.run({ steps: 1 }, { userId: 'alice', threadId: 'close-1' });
    // The transport is an EventLog too (what WebSocketGateway's `transport` option takes).
    const collector = new Collector();
    const result: SubscribeResult = await transport.subscribe({ userId: 'alice', threadId: 'close-1' }, collector);
    expect(result.status).toBe('subscribed');
    expect((await transport.health()).ok).toBe(true);
    await transport.close();
    expect(collector.closed).toEqual({ reason: undefined });
    await expect(transport.subscribe({ userId: 'alice', threadId: 'close-1' }, new Collector())).rejects.toMatchObject({ code: 'TRANSPORT_CLOSED' });
  });

  // Found from outside: two processes' runs with one run id both went on, the loser's events
  // interleaved into the winner's run (duplicate seqs) and its run() still said "succeeded".
  it('two workers run one run id at once: exactly one run proceeds, the other rejects RUN_ID_CONFLICT and stores nothing', async () => {
    for (let round = 0; round < 5; round++) {
      const a = worker();
      const b = worker();
      const runId = `race-${round}`;
      const options = { userId: 'alice', threadId: `race-t-${round}`, runId };
      const seenA: AgentEvent[] = [];
      const seenB: AgentEvent[] = [];
      a.agent.on('event', (event) => seenA.push(event));
      b.agent.on('event', (event) => seenB.push(event));
      const outcomes = await Promise.allSettled([a.agent.run({ steps: 6 }, options), b.agent.run({ steps: 6 }, options)]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(won).toHaveLength(1);
      expect((won[0] as PromiseFulfilledResult<{ status: string; deliveryErrors: unknown[] }>).value).toMatchObject({ status: 'succeeded', deliveryErrors: [] });
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toMatchObject({ name: 'ValidationError', code: 'RUN_ID_CONFLICT' });
      // What a reader of the log gets: one valid run, each seq once.
      const { collector } = await follow(gateway(), 'alice', options.threadId);
      const events = collector.events.filter((e) => e.runId === runId);
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: StepAgent.eventCount(6) }, (_, i) => i + 1));
      expect(validateLifecycle(events)).toMatchObject({ ok: true });
      // Local listeners: the winner's saw the run the log holds, the loser's nothing (no agent_started without its end).
      const [winnerSeen, loserSeen] = outcomes[0]!.status === 'fulfilled' ? [seenA, seenB] : [seenB, seenA];
      expect(winnerSeen.map((e) => e.id)).toEqual(events.map((e) => e.id));
      expect(loserSeen).toEqual([]);
      // The loser's bridge holds nothing of the run.
      expect(a.bridge.metrics().activeRuns + b.bridge.metrics().activeRuns).toBe(0);
    }
  });

  it("a worker that never saw the thread runs into another user's thread: run() rejects THREAD_FORBIDDEN, nothing stored", async () => {
    const a = worker();
    await a.agent.run({ steps: 1 }, { userId: 'alice', threadId: 'owned-t' });
    const b = worker();
    const seen: AgentEvent[] = [];
    b.agent.on('event', (event) => seen.push(event));
    await expect(b.agent.run({ steps: 3 }, { userId: 'mallory', threadId: 'owned-t' })).rejects.toMatchObject({ name: 'AuthError', code: 'THREAD_FORBIDDEN' });
    expect(seen).toEqual([]);
    const { collector } = await follow(gateway(), 'alice', 'owned-t');
    expect(collector.events.filter((e) => e.userId !== 'alice')).toEqual([]);
    expect(b.bridge.metrics().activeRuns).toBe(0);
  });
});
