import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { AgentBridge, AuthError, DeliveryError, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { RedisEventLog, RedisStreamsTransport, type RedisEventLogOptions, type RedisStreamsTransportOptions } from '../../src/transport/redis/index.js';
import { keySlot } from '../../src/transport/redis/cluster.js';
import { OwnedRedisCluster, redisClusterBinaries } from '../helpers/redis-cluster.js';
import { Collector, StepAgent, describeWithRedis, testPrefix } from '../helpers/redis-env.js';
import { until, untilAsync } from '../helpers/wait.js';

const fastRetry = { minTimeoutMs: 5, maxTimeoutMs: 50, randomize: false };

describeWithRedis('the event log on a real 3-master Redis Cluster', redisClusterBinaries(), () => {
  let cluster: OwnedRedisCluster;
  let prefix: string;
  const closers: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    cluster = await OwnedRedisCluster.start(3);
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  });
  afterAll(async () => {
    await cluster?.dispose();
  });

  function options() {
    prefix ??= testPrefix('cluster');
    return { cluster: { rootNodes: cluster.rootNodes }, keyPrefix: prefix };
  }

  function worker(extra: RedisStreamsTransportOptions = {}) {
    const transport = new RedisStreamsTransport({ ...options(), ...extra });
    const bridge = new AgentBridge({ transport, retry: fastRetry, recoveryIntervalMs: 10 });
    const agent = new StepAgent({ bridge });
    closers.push(() => bridge.close());
    return { transport, bridge, agent };
  }

  function gateway(extra: RedisEventLogOptions = {}) {
    const log = new RedisEventLog({ ...options(), ...extra });
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

  function expectComplete(events: AgentEvent[], runs: number) {
    expect(validateLifecycle(events)).toEqual({ ok: true, runs });
    expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
  }

  /** Port of the master serving a key, from the cluster's own slot table. */
  function masterPort(key: string): number {
    return cluster.masterOf(keySlot(key)).port;
  }

  /** Blocking tail connections of a gateway, per node (CLIENT LIST on every master). */
  async function tailConnections(log: RedisEventLog): Promise<number[]> {
    return Promise.all(
      cluster.masters.map(async (master) => {
        const list = await cluster.command<string>(master.port, ['CLIENT', 'LIST']);
        return list.split('\n').filter((line) => line.includes(`name=agentwire-tail-${log.gatewayId}-`) && line.includes('cmd=xread')).length;
      }),
    );
  }

  it('computes slots as Redis does', async () => {
    for (const key of ['aw0', 'aw15', 'thread:{aw3}:x:events', 'plain', '{}x', 'a{b}c{d}']) {
      expect(keySlot(key)).toBe(await cluster.command<number>(cluster.ports[0]!, ['CLUSTER', 'KEYSLOT', key]));
    }
  });

  it('threads on all three masters: two gateways deliver every thread exactly once, in order, over one blocking read per slot group', async () => {
    const { agent, transport } = worker();
    // A blocking read that would otherwise wait a minute: only the wake-up streams cut it short.
    const gatewayA = gateway({ blockMs: 60_000 });
    const gatewayB = gateway({ blockMs: 60_000 });
    const threads = Array.from({ length: 24 }, (_, i) => ({ threadId: `spread-${i}`, userId: i % 2 === 0 ? 'alice' : 'bob' }));
    const onA = new Map<string, Collector>();
    const onB = new Map<string, Collector>();
    for (const { threadId, userId } of threads.slice(0, 12)) onA.set(threadId, (await follow(gatewayA, userId, threadId)).collector);
    for (const { threadId, userId } of threads) onB.set(threadId, (await follow(gatewayB, userId, threadId)).collector);

    // Every thread's runs at once: the append batches of one tick span threads of many slot groups.
    await Promise.all(threads.map(({ threadId, userId }) => agent.run({ steps: 12 }, { userId, threadId })));
    const total = StepAgent.eventCount(12);
    await until(() => [...onA.values(), ...onB.values()].every((c) => c.events.length >= total), 'every thread on both gateways', 20_000);

    for (const { threadId, userId } of threads) {
      for (const collectors of threadId.endsWith('-0') || onA.has(threadId) ? [onA, onB] : [onB]) {
        const events = collectors.get(threadId)!.events;
        expect(events).toHaveLength(total);
        expectComplete(events, 1);
        expect(events.map((event) => event.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
        expect(events.every((event) => event.threadId === threadId && event.userId === userId)).toBe(true);
      }
    }
    expect(gatewayB.stats()).toMatchObject({ threads: 24, subscribers: 24, isolationDrops: 0, invalidEntries: 0 });
    expect(transport.stats()).toMatchObject({ appended: 24 * total, refused: 0 });

    // The keys really are spread: each master holds thread streams, each stream where its slot says.
    const byMaster = await cluster.keysByMaster(prefix);
    const streams = [...byMaster.values()].map((keys) => keys.filter((key) => key.endsWith(':events')));
    expect(streams.every((keys) => keys.length > 0)).toBe(true);
    expect(streams.flat()).toHaveLength(24);
    for (const [port, keys] of byMaster) for (const key of keys) expect(masterPort(key)).toBe(port);

    // One blocking XREAD per slot group in use, on the master of that group, none elsewhere.
    const groups = new Set(threads.map(({ threadId }) => gatewayB.keys.group(threadId)));
    await untilAsync(async () => (await tailConnections(gatewayB)).reduce((a, b) => a + b, 0) === groups.size, 'the tails blocked again');
    const perMaster = await tailConnections(gatewayB);
    expect(perMaster.every((n) => n > 0)).toBe(true);
    const expected = cluster.masters.map((master) => [...groups].filter((g) => masterPort(gatewayB.keys.stream(threads.find((t) => gatewayB.keys.group(t.threadId) === g)!.threadId)) === master.port).length);
    expect(perMaster).toEqual(expected);
  });

  it('a new thread is picked up at once while the tails are blocked, in a slot group already followed and in a new one', async () => {
    const { agent } = worker();
    const log = gateway({ blockMs: 60_000 });
    const first = await follow(log, 'alice', 'wake-0');
    await agent.run({ steps: 1 }, { userId: 'alice', threadId: 'wake-0' });
    await until(() => first.collector.events.length === StepAgent.eventCount(1), 'first thread');
    const group = log.keys.group('wake-0');
    // Find one thread in the same group and one in another.
    const ids = Array.from({ length: 200 }, (_, i) => `wake-${i + 1}`);
    const same = ids.find((id) => log.keys.group(id) === group)!;
    const other = ids.find((id) => log.keys.group(id) !== group)!;
    const a = await follow(log, 'alice', same);
    const b = await follow(log, 'alice', other);
    await Promise.all([agent.run({ steps: 3 }, { userId: 'alice', threadId: same }), agent.run({ steps: 3 }, { userId: 'alice', threadId: other })]);
    await until(() => a.collector.events.length === StepAgent.eventCount(3) && b.collector.events.length === StepAgent.eventCount(3), 'both new threads');
    expectComplete(a.collector.events, 1);
    expectComplete(b.collector.events, 1);
  });

  it('resumes from a cursor on another gateway mid-run: no gap, no duplicate', async () => {
    const { agent } = worker();
    const logA = gateway();
    const a = await follow(logA, 'alice', 'resume-1');
    let release!: () => void;
    const paused = new Promise<void>((resolve) => (release = resolve));
    const run = agent.run({ steps: 20, pause: { at: 10, until: paused } }, { userId: 'alice', threadId: 'resume-1' });
    await until(() => a.collector.events.length >= 8, 'first events on gateway A');
    const seenOnA = a.collector.entries.slice(0, 8);
    await logA.close();

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

  it('answers history_gap for trimmed history, a recreated stream, another thread’s cursor and cursors it never issued', async () => {
    const { agent } = worker({ maxLenPerThread: 10 });
    const log = gateway();
    for (let i = 0; i < 5; i++) await agent.run({ steps: 60 }, { userId: 'alice', threadId: 'gap-1' });
    const { collector } = await follow(log, 'alice', 'gap-1');
    const retained = collector.entries;
    expect(retained.length).toBeLessThan(5 * StepAgent.eventCount(60));
    const colon = retained[0]!.cursor.lastIndexOf(':');
    const head = retained[0]!.cursor.slice(0, colon);
    const [ms] = retained[0]!.cursor.slice(colon + 1).split('-');

    const before = `${head}:${Number(ms) - 1}-0`;
    const trimmed = await log.subscribe({ userId: 'alice', threadId: 'gap-1', after: before }, new Collector());
    expect(trimmed).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed', threadId: 'gap-1', requested: before } });

    const middle = retained[Math.floor(retained.length / 2)]!;
    const resumed = await follow(log, 'alice', 'gap-1', middle.cursor);
    expect(resumed.collector.events.map((event) => event.id)).toEqual(retained.slice(Math.floor(retained.length / 2) + 1).map((entry) => entry.event.id));

    for (const after of ['garbage', `${head}:99999999999999-0`]) {
      const result = await log.subscribe({ userId: 'alice', threadId: 'gap-1', after }, new Collector());
      expect(result).toMatchObject({ status: 'history_gap', gap: { reason: 'unknown_cursor' } });
    }
    // A real cursor of another thread (most likely in another slot group, on another master).
    await agent.run({ steps: 1 }, { userId: 'alice', threadId: 'gap-2' });
    const otherThread = (await follow(log, 'alice', 'gap-2')).collector.lastCursor!;
    expect(await log.subscribe({ userId: 'alice', threadId: 'gap-1', after: otherThread }, new Collector())).toMatchObject({
      status: 'history_gap',
      gap: { reason: 'unknown_cursor' },
    });

    // The stream and its meta hash go (TTL, FLUSH) on their master, and a new run recreates them.
    const stream = log.keys.stream('gap-1');
    await cluster.command(masterPort(stream), ['DEL', stream, log.keys.meta('gap-1')]);
    await agent.run({ steps: 1 }, { userId: 'alice', threadId: 'gap-1' });
    const recreated = await log.subscribe({ userId: 'alice', threadId: 'gap-1', after: middle.cursor }, new Collector());
    expect(recreated).toMatchObject({ status: 'history_gap', gap: { reason: 'epoch_changed' } });
  });

  it('keeps threads private across processes: ownership lives in the cluster', async () => {
    const { agent } = worker();
    await agent.run({ steps: 2 }, { userId: 'alice', threadId: 'owned-1' });
    const fresh = gateway();
    expect(await fresh.ownerOf('owned-1')).toBe('alice');
    const refusal = fresh.subscribe({ userId: 'mallory', threadId: 'owned-1' }, new Collector());
    await expect(refusal).rejects.toBeInstanceOf(AuthError);
    await expect(refusal).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });

    const other = worker();
    const errors: DeliveryError[] = [];
    other.bridge.on('delivery_error', (error) => errors.push(error));
    await expect(other.agent.run({ steps: 1 }, { userId: 'mallory', threadId: 'owned-1' })).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
    expect(errors.map((error) => error.causeCode)).toEqual(['THREAD_OWNER_MISMATCH']);

    const { collector } = await follow(fresh, 'alice', 'owned-1');
    expect(collector.events).toHaveLength(StepAgent.eventCount(2));
    expect(collector.events.every((event) => event.userId === 'alice')).toBe(true);
  });

  it('refuses a second run with a retained run id and anything after a run’s agent_completed', async () => {
    const { agent, transport } = worker();
    const runId = 'fenced-run-1';
    await agent.run({ steps: 1 }, { userId: 'alice', threadId: 'fence-1', runId });
    await expect(agent.run({ steps: 1 }, { userId: 'alice', threadId: 'fence-1', runId })).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
    expect(await transport.hasRun(runId)).toBe(true);
    const log = gateway();
    const { collector } = await follow(log, 'alice', 'fence-1');
    expectComplete(collector.events, 1);
  });

  it('two processes race one custom run id into two threads on two masters: one run starts, the other is refused RUN_ID_CONFLICT', async () => {
    const a = worker();
    const b = worker();
    const log = gateway();
    // Two threads whose streams live on two different masters (the run id's claim key on its own slot).
    const threads: string[] = [];
    for (let i = 0; threads.length < 2; i++) {
      const threadId = `claim-${i}`;
      if (threads.length === 0 || masterPort(a.transport.keys.stream(threadId)) !== masterPort(a.transport.keys.stream(threads[0]!))) threads.push(threadId);
    }
    for (let i = 0; i < 15; i++) {
      const runId = `cluster-client-run-${i}-${prefix.slice(-9, -1)}`;
      const outcomes = await Promise.allSettled([
        a.agent.run({ steps: 1 }, { userId: 'alice', threadId: threads[0]!, runId }),
        b.agent.run({ steps: 1 }, { userId: 'bob', threadId: threads[1]!, runId }),
      ]);
      expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
      expect(outcomes.find((outcome) => outcome.status === 'rejected')).toMatchObject({ reason: { code: 'RUN_ID_CONFLICT' } });
      let starts = 0;
      for (const [userId, threadId] of [['alice', threads[0]!], ['bob', threads[1]!]] as const) {
        const { collector } = await follow(log, userId, threadId);
        starts += collector.events.filter((event) => event.runId === runId && event.type === 'agent_started').length;
      }
      expect(starts).toBe(1);
    }
  });

  it('answers a waiting run’s request once, only by its user, from another process, into the thread’s stream', async () => {
    const { agent, transport } = worker();
    const log = gateway();
    const threadId = 'answer-1';
    const followed = await follow(log, 'alice', threadId);
    let release!: () => void;
    const paused = new Promise<void>((resolve) => (release = resolve));
    const runId = 'answer-run-1';
    const run = agent.run({ steps: 3, pause: { at: 1, until: paused } }, { userId: 'alice', threadId, runId });
    await until(() => followed.collector.events.length >= 2, 'the run to start');
    const request = { requestId: 'q1', runId, threadId, userId: 'alice', agent: 'stepper', toolCallId: 'call-1', seq: 2, kind: 'approval' as const };
    await transport.openRequest(request);

    await expect(log.answerRequest({ runId, threadId, requestId: 'q1', userId: 'bob', approved: true })).rejects.toMatchObject({ code: 'ANSWER_FORBIDDEN' });
    const receipt = await log.answerRequest({ runId, threadId, requestId: 'q1', userId: 'alice', approved: true });
    await expect(log.answerRequest({ runId, threadId, requestId: 'q1', userId: 'alice', approved: false })).rejects.toMatchObject({ code: 'ANSWER_ALREADY_GIVEN' });
    expect((await transport.closeRequest(request))?.id).toBe(receipt.event.id);
    await until(() => followed.collector.events.some((event) => event.type === 'user_answered'), 'the answer at the subscriber');
    release();
    await run;
    await until(() => followed.collector.events.some((event) => event.type === 'agent_completed'), 'the end of the run');
    const answers = followed.collector.events.filter((event) => event.type === 'user_answered');
    expect(answers).toHaveLength(1);
    expect(answers[0]).toMatchObject({ id: receipt.event.id, userId: 'alice', data: { requestId: 'q1', approved: true } });
    expect(followed.collector.entries.find((entry) => entry.event.type === 'user_answered')!.cursor).toBe(receipt.cursor);
  });

  it('a tail connection killed on its master reconnects and resumes from the last id it read: nothing lost, nothing twice', async () => {
    const { agent } = worker();
    const log = gateway({ blockMs: 60_000 });
    const threadId = 'killed-tail-1';
    const { collector } = await follow(log, 'alice', threadId);
    let release!: () => void;
    const paused = new Promise<void>((resolve) => (release = resolve));
    const run = agent.run({ steps: 30, pause: { at: 10, until: paused } }, { userId: 'alice', threadId });
    await until(() => collector.events.length >= 10, 'events before the kill');
    const port = masterPort(log.keys.stream(threadId));
    const tail = (await cluster.command<string>(port, ['CLIENT', 'LIST'])).split('\n').find((line) => line.includes(`name=agentwire-tail-${log.gatewayId}-`) && line.includes('cmd=xread'));
    const id = /\bid=(\d+)/.exec(tail ?? '')?.[1];
    expect(id).toBeDefined();
    expect(await cluster.command<number>(port, ['CLIENT', 'KILL', 'ID', id!])).toBe(1);
    release();
    await run;
    const total = StepAgent.eventCount(30);
    await until(() => collector.events.length >= total, 'the rest after the reconnect', 15_000);
    expect(collector.events).toHaveLength(total);
    expectComplete(collector.events, 1);
    expect(collector.events.map((event) => event.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(log.stats().readFailures).toBeGreaterThanOrEqual(1);
  });
});
