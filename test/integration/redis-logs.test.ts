import fc from 'fast-check';
import { beforeAll, expect, it } from 'vitest';
import {
  AgentBridge,
  DeliveryError,
  generateRunId,
  validateLifecycle,
  type AgentEvent,
  type BridgeState,
  type SubscribeResult,
} from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { eventJson } from '../../src/events/json.js';
import { threadTag } from '../../src/transport/memory/log-common.js';
import type { RedisEventLog } from '../../src/transport/redis/index.js';
import { runLimit } from '../../src/transport/redis/appender.js';
import { Collector, StepAgent, describeWithRedis, probeRedis, rawClient, testPrefix, useRedisLogs } from '../helpers/redis-env.js';
import { until } from '../helpers/wait.js';

/**
 * The Redis log (RedisStreamsTransport + RedisEventLog) against a real Redis: serialization that
 * costs one event, cursors that name their thread and stream, and run ids fenced in the append
 * script. Every assertion is on what Redis holds or what a subscriber received.
 */

const availability = await probeRedis();
const fastRetry = { minTimeoutMs: 5, maxTimeoutMs: 50, randomize: false };

/** A raw event: full control over run id, event id, type and thread. */
function raw(type: AgentEvent['type'], runId: string, threadId: string, extra: { id?: string; userId?: string; data?: unknown; seq?: number } = {}): AgentEvent {
  const data =
    extra.data ??
    (type === 'agent_started'
      ? { metadata: {} }
      : type === 'agent_completed'
        ? { status: 'succeeded', result: null, durationMs: 1 }
        : type === 'tool_executing'
          ? { toolCallId: 'c1', tool: 'echo', args: {} }
          : { text: `${type} of ${runId}` });
  return {
    v: 1,
    id: extra.id ?? `${type}-${Math.random().toString(36).slice(2, 12)}`,
    type,
    runId,
    threadId,
    userId: extra.userId ?? 'alice',
    agent: 'a',
    seq: extra.seq ?? 1,
    ts: Date.now(),
    data,
  } as AgentEvent;
}

describeWithRedis('Redis log: serialization, cursors and run fencing (real Redis)', availability, () => {
  let prefix: string;
  beforeAll(() => {
    prefix = testPrefix('logs');
  });
  const { closers, transport, gateway } = useRedisLogs(() => prefix);

  async function replay(log: RedisEventLog, threadId: string, after?: string, userId = 'alice') {
    const result = await log.subscribe({ userId, threadId, after }, new Collector());
    if (result.status === 'subscribed') result.subscription.close();
    return result;
  }

  async function entriesOf(log: RedisEventLog, threadId: string, userId = 'alice') {
    const result = await replay(log, threadId, undefined, userId);
    if (result.status !== 'subscribed') throw new Error(`expected subscribed, got ${JSON.stringify(result)}`);
    return result.replay;
  }

  async function redis<T>(command: string[]): Promise<T> {
    const client = await rawClient();
    try {
      return (await client.sendCommand(command)) as T;
    } finally {
      client.destroy();
    }
  }

  // ---------------------------------------------------------------- serialization

  it('refuses an event that is not JSON alone (TRANSPORT_REFUSED) and stores the rest of the same batch', async () => {
    const t = transport();
    const log = gateway();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const good = [raw('agent_started', 'run-s1', 'ser-1'), raw('agent_thinking', 'run-s1', 'ser-1', { seq: 2 })];
    const poisons = [
      raw('tool_executing', 'run-s1', 'ser-1', { data: { toolCallId: 'c', tool: 'x', args: { n: 10n } } }),
      raw('tool_executing', 'run-s1', 'ser-1', { data: { toolCallId: 'c', tool: 'x', args: cyclic } }),
    ];
    const last = raw('agent_completed', 'run-s1', 'ser-1', { seq: 3 });
    const before = t.stats().batches;
    // One tick: what is JSON joins one batch, each poisoned event is refused on its own.
    const outcomes = await Promise.allSettled([t.send(good[0]!), t.send(poisons[0]!), t.send(good[1]!), t.send(poisons[1]!), t.send(last)]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    for (const outcome of [outcomes[1]!, outcomes[3]!]) {
      const reason = (outcome as PromiseRejectedResult).reason as DeliveryError;
      expect(reason).toMatchObject({ name: 'TransportError', code: 'TRANSPORT_REFUSED', retryable: false, cause: { code: 'EVENT_NOT_SERIALIZABLE' } });
    }
    expect(t.stats().batches - before).toBe(1);
    const stored = await entriesOf(log, 'ser-1');
    expect(stored.map((entry) => entry.event.id)).toEqual([good[0]!.id, good[1]!.id, last.id]);
    // Each entry carries the exact JSON eventJson made when it was sent.
    expect(stored.map((entry) => entry.json)).toEqual([good[0]!, good[1]!, last].map((event) => eventJson(event)));
  });

  it('behind an AgentBridge: stays active, the bystander’s run arrives whole, the poisoned event alone gets a DeliveryError', async () => {
    const t = transport();
    const bridge = new AgentBridge({ transport: t, retry: fastRetry, recoveryIntervalMs: 10 });
    closers.push(() => bridge.close());
    const states: BridgeState[] = [];
    bridge.on('state', (state) => states.push(state));
    const errors: Array<{ error: DeliveryError; event: AgentEvent }> = [];
    bridge.on('delivery_error', (error, event) => errors.push({ error, event }));
    const log = gateway();
    const bob = new Collector();
    const subscribed = await log.subscribe({ userId: 'bob', threadId: 'bystander-1' }, bob);
    expect(subscribed.status).toBe('subscribed');
    const eve = new Collector();
    await log.subscribe({ userId: 'eve', threadId: 'poisoned-1' }, eve);

    const agent = new StepAgent({ bridge });
    const poisonedRun = new RunEmitter({ runId: generateRunId('poisoned-1'), threadId: 'poisoned-1', userId: 'eve', agent: 'a' });
    const start = poisonedRun.emit('agent_started', { metadata: {} }).event;
    const executing = poisonedRun.emit('tool_executing', { toolCallId: 'c1', tool: 'x', args: {} }).event;
    const poisoned = { ...executing, data: { ...executing.data, args: { n: 1n } } } as AgentEvent;
    const after = poisonedRun.emit('agent_thinking', { text: 'still here' }).event;

    const bystander = agent.run({ steps: 20 }, { userId: 'bob', threadId: 'bystander-1' });
    const outcomes = await Promise.allSettled([bridge.send(start), bridge.send(poisoned), bridge.send(after)]);
    expect((await bystander).status).toBe('succeeded');
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);

    const total = StepAgent.eventCount(20);
    await until(() => bob.events.length >= total && eve.events.length >= 2, 'the bystander’s run and eve’s good events');
    expect(validateLifecycle(bob.events)).toEqual({ ok: true, runs: 1 });
    expect(bob.events.map((event) => event.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(eve.events.map((event) => event.id)).toEqual([start.id, after.id]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.event.id).toBe(poisoned.id);
    expect(errors[0]!.error).toBeInstanceOf(DeliveryError);
    // The bridge serializes integrators' events itself and refuses this one before the transport sees it.
    expect(errors[0]!.error.causeCode).toBe('EVENT_NOT_SERIALIZABLE');
    expect(states).not.toContain('degraded');
    expect(bridge.state).toBe('active');
    expect(bridge.metrics().retried).toBe(0);
  });

  it('an error reply for one event (a key of the wrong type) costs that event only, not its batch', async () => {
    const t = transport();
    const log = gateway();
    await redis(['SET', t.keys.stream('wrongtype-1'), 'not a stream']);
    const outcomes = await Promise.allSettled([
      t.send(raw('agent_started', 'run-w0', 'fine-1')),
      t.send(raw('agent_started', 'run-w1', 'wrongtype-1')),
      t.send(raw('agent_thinking', 'run-w0', 'fine-1', { seq: 2 })),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'REDIS_ERROR', retryable: false, message: /WRONGTYPE/ });
    expect(await entriesOf(log, 'fine-1')).toHaveLength(2);
  });

  // ---------------------------------------------------------------- cursors

  it('a valid cursor of thread A gives history_gap on thread C of the same user, and the epoch is per stream', async () => {
    const t = transport();
    const log = gateway();
    // Both threads are created by one script call (one batch): their epochs still differ.
    await Promise.all([
      ...Array.from({ length: 5 }, (_, i) => t.send(raw(i ? 'agent_thinking' : 'agent_started', 'run-a', 'cross-A', { seq: i + 1 }))),
      ...Array.from({ length: 9 }, (_, i) => t.send(raw(i ? 'agent_thinking' : 'agent_started', 'run-c', 'cross-C', { seq: i + 1 }))),
    ]);
    const a = await entriesOf(log, 'cross-A');
    const c = await entriesOf(log, 'cross-C');
    expect(a[0]!.cursor.split(':')[0]).not.toBe(c[0]!.cursor.split(':')[0]);
    const epochA = (a[0] as unknown as { epoch: string }).epoch;
    const epochC = (c[0] as unknown as { epoch: string }).epoch;
    expect(epochA).not.toBe(epochC);

    const crossed = await replay(log, 'cross-C', a[1]!.cursor);
    expect(crossed).toMatchObject({ status: 'history_gap', gap: { threadId: 'cross-C', requested: a[1]!.cursor, reason: 'unknown_cursor' } });
    // Even with C's tag, A's epoch is not C's: never C's entries after A's id.
    const id = a[1]!.cursor.split(':')[1]!;
    const forged = `${epochA}.${threadTag('cross-C')}:${id}`;
    expect(await replay(log, 'cross-C', forged)).toMatchObject({ status: 'history_gap', gap: { reason: 'epoch_changed' } });
    // And C's own cursor replays exactly C's suffix.
    const own = await replay(log, 'cross-C', c[3]!.cursor);
    expect(own.status === 'subscribed' && own.replay.map((entry) => entry.event.id)).toEqual(c.slice(4).map((entry) => entry.event.id));
  });

  it('answers history_gap with the right reason for recreated, trimmed, forged and garbage cursors', async () => {
    const t = transport({ maxLenPerThread: 10 });
    const log = gateway();
    for (let r = 0; r < 4; r++) {
      for (let i = 0; i < 60; i++) await t.send(raw(i ? 'agent_thinking' : 'agent_started', `run-g${r}`, 'gaps-1', { seq: i + 1 }));
    }
    const retained = await entriesOf(log, 'gaps-1');
    expect(retained.length).toBeLessThan(240);
    const [head, firstId] = retained[0]!.cursor.split(':') as [string, string];
    const [ms, seq] = firstId.split('-').map(Number) as [number, number];
    const cases: Array<[string, string]> = [
      [`${head}:${ms - 1}-0`, 'trimmed'],
      [`${head}:${ms}-${seq + 100_000}`, 'unknown_cursor'], // inside the retained range, but no such entry
      [`${head}:99999999999999-0`, 'unknown_cursor'], // past the end
      [`${head}:18446744073709551615-18446744073709551615`, 'unknown_cursor'], // the largest id Redis has (no successor)
      [`${head}:${ms}-18446744073709551615`, 'unknown_cursor'],
      [`${head}:99999999999999999999-0`, 'unknown_cursor'], // not a 64-bit number
      [`${head}:0-0`, 'trimmed'],
      [`${head.slice(0, head.lastIndexOf('.'))}:${firstId}`, 'unknown_cursor'], // the format before thread tags
      ['garbage', 'unknown_cursor'],
      [`${retained[3]!.cursor} `, 'unknown_cursor'],
      [retained[3]!.cursor.toUpperCase(), 'unknown_cursor'],
    ];
    for (const [after, reason] of cases) {
      expect(await replay(log, 'gaps-1', after), after).toMatchObject({ status: 'history_gap', gap: { reason, requested: after } });
    }
    // An entry removed with XDEL: its cursor is a gap, not a replay from the next one.
    const victim = retained[5]!;
    await redis(['XDEL', t.keys.stream('gaps-1'), victim.cursor.split(':')[1]!]);
    expect(await replay(log, 'gaps-1', victim.cursor)).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
    // The stream deleted and recreated: every old cursor is epoch_changed.
    await redis(['DEL', t.keys.stream('gaps-1'), t.keys.meta('gaps-1')]);
    for (let i = 0; i < 20; i++) await t.send(raw(i ? 'agent_thinking' : 'agent_started', 'run-g9', 'gaps-1', { seq: i + 1 }));
    expect(await replay(log, 'gaps-1', retained[8]!.cursor)).toMatchObject({ status: 'history_gap', gap: { reason: 'epoch_changed' } });
  });

  it('property: any cursor string, or a (thread, offset) mutation of a real one, replays exactly an issued suffix or gets history_gap', async () => {
    const t = transport({ maxLenPerThread: 10 });
    const log = gateway();
    const threads = ['prop-A', 'prop-B', 'prop-A.1'];
    for (const [threadId, count] of [['prop-A', 250], ['prop-B', 12], ['prop-A.1', 3]] as const) {
      for (let i = 0; i < count; i += 50) {
        await Promise.all(
          Array.from({ length: Math.min(50, count - i) }, (_, j) =>
            t.send(raw(i + j ? 'agent_thinking' : 'agent_started', `run-${threadId}`, threadId, { seq: i + j + 1 })),
          ),
        );
      }
    }
    const retained = new Map<string, Array<{ cursor: string; id: string }>>();
    for (const threadId of threads) retained.set(threadId, (await entriesOf(log, threadId)).map((entry) => ({ cursor: entry.cursor, id: entry.event.id })));
    expect(retained.get('prop-A')!.length).toBeLessThan(250);
    const cursors = [...retained.values()].flat().map((entry) => entry.cursor);

    const check = async (threadId: string, after: string): Promise<SubscribeResult> => {
      const result = await replay(log, threadId, after);
      const own = retained.get(threadId)!;
      const at = own.findIndex((entry) => entry.cursor === after);
      if (at < 0) {
        expect(result.status, `${threadId} after ${JSON.stringify(after)}`).toBe('history_gap');
      } else {
        expect(result.status, `${threadId} after ${JSON.stringify(after)}`).toBe('subscribed');
        if (result.status === 'subscribed') expect(result.replay.map((entry) => entry.event.id)).toEqual(own.slice(at + 1).map((entry) => entry.id));
      }
      return result;
    };

    const structured = fc
      .tuple(fc.constantFrom(...cursors), fc.nat({ max: 60 }), fc.string({ maxLength: 3 }), fc.nat({ max: 3 }))
      .map(([cursor, at, insert, cut]) => cursor.slice(0, Math.min(at, cursor.length)) + insert + cursor.slice(Math.min(at, cursor.length) + cut));
    await fc.assert(
      fc.asyncProperty(fc.oneof(structured, fc.string({ maxLength: 60 }), fc.constantFrom(...cursors)), fc.constantFrom(...threads), async (after, threadId) => {
        await check(threadId, after);
      }),
      { numRuns: 300 },
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...cursors), fc.constantFrom(...threads), fc.integer({ min: -3, max: 3 }), fc.integer({ min: -3, max: 3 }), async (cursor, threadId, dms, dseq) => {
        const [head, id] = cursor.split(':') as [string, string];
        const [ms, seq] = id.split('-').map(Number) as [number, number];
        const mutated = `${head}:${Math.max(0, ms + dms)}-${Math.max(0, seq + dseq)}`;
        const result = await check(threadId, mutated);
        const source = threads.find((candidate) => retained.get(candidate)!.some((entry) => entry.cursor === cursor))!;
        if (result.status === 'history_gap' && source !== threadId) expect(result.gap.reason).toBe('unknown_cursor');
      }),
      { numRuns: 300 },
    );
  });
  // ---------------------------------------------------------------- run ids once, fencing

  it('refuses agent_started of a run id with retained events and anything after its agent_completed; repeats are stored once', async () => {
    const t = transport();
    const log = gateway();
    const runId = generateRunId('fence-1');
    expect(await t.hasRun(runId)).toBe(false);
    const start = raw('agent_started', runId, 'fence-1');
    await t.send(start);
    expect(await t.hasRun(runId)).toBe(true);
    const conflict = t.send(raw('agent_started', runId, 'fence-1'));
    await expect(conflict).rejects.toMatchObject({ name: 'ValidationError', code: 'RUN_ID_CONFLICT', retryable: false });
    // The same agent_started again (a retry after a lost reply): accepted, not stored twice.
    await t.send(start);
    await t.send(raw('agent_thinking', runId, 'fence-1', { seq: 2 }));
    const end = raw('agent_completed', runId, 'fence-1', { seq: 3 });
    await t.send(end);
    await t.send(end);
    expect(t.stats().repeats).toBe(2);
    for (const late of [
      raw('agent_thinking', runId, 'fence-1', { seq: 4 }),
      raw('tool_executing', runId, 'fence-1', { seq: 4 }),
      raw('agent_completed', runId, 'fence-1', { seq: 4 }),
    ]) {
      await expect(t.send(late)).rejects.toMatchObject({ name: 'StateError', code: 'RUN_CLOSED', retryable: false });
    }
    await expect(t.send(raw('agent_started', runId, 'fence-1'))).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
    expect((await entriesOf(log, 'fence-1')).map((entry) => entry.event.type)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
    expect(await t.hasRun(runId)).toBe(true);
    expect(await t.hasRun(generateRunId('fence-1'))).toBe(false);
  });

  it('fences each event of one batch atomically, in order', async () => {
    const t = transport();
    const log = gateway();
    const runId = generateRunId('fence-2');
    const batches = t.stats().batches;
    const outcomes = await Promise.allSettled([
      t.send(raw('agent_started', runId, 'fence-2')),
      t.send(raw('agent_started', runId, 'fence-2')),
      t.send(raw('agent_thinking', runId, 'fence-2', { seq: 2 })),
      t.send(raw('agent_completed', runId, 'fence-2', { seq: 3 })),
      t.send(raw('agent_thinking', runId, 'fence-2', { seq: 4 })),
      t.send(raw('agent_started', generateRunId('fence-2'), 'fence-2')),
    ]);
    expect(t.stats().batches - batches).toBe(1);
    expect(outcomes.map((outcome) => (outcome.status === 'fulfilled' ? 'ok' : (outcome.reason as { code: string }).code))).toEqual([
      'ok',
      'RUN_ID_CONFLICT',
      'ok',
      'ok',
      'RUN_CLOSED',
      'ok',
    ]);
    expect((await entriesOf(log, 'fence-2')).map((entry) => entry.event.type)).toEqual(['agent_started', 'agent_thinking', 'agent_completed', 'agent_started']);
  });

  it('a presumed-dead worker can append nothing after the terminal event another process wrote for its run', async () => {
    const workerTransport = transport();
    const bridge = new AgentBridge({ transport: workerTransport, retry: fastRetry, recoveryIntervalMs: 10 });
    closers.push(() => bridge.close());
    const errors: DeliveryError[] = [];
    bridge.on('delivery_error', (error) => errors.push(error));
    const agent = new StepAgent({ bridge });
    const log = gateway();
    const watcher = new Collector();
    await log.subscribe({ userId: 'alice', threadId: 'zombie-1' }, watcher);

    const runId = generateRunId('zombie-1');
    let wake!: () => void;
    const asleep = new Promise<void>((resolve) => (wake = resolve));
    const run = agent.run({ steps: 12, pause: { at: 6, until: asleep } }, { userId: 'alice', threadId: 'zombie-1', runId });
    await until(() => watcher.events.length >= 7, 'the worker’s first events');
    // Another process (the queue's stall detection) ends the run: failed, WORKER_LOST.
    const queue = transport();
    const lost = raw('agent_completed', runId, 'zombie-1', {
      seq: watcher.events.length + 1,
      data: { status: 'failed', error: { name: 'WorkerLost', message: 'the worker stopped answering', code: 'WORKER_LOST' }, durationMs: 1 },
    });
    await queue.send(lost);
    await until(() => watcher.events.some((event) => event.type === 'agent_completed'), 'the terminal event');
    // The worker was only slow: everything it still sends is fenced off and reported to it.
    wake();
    await run;
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((error) => error.causeCode === 'RUN_CLOSED')).toBe(true);
    expect(bridge.state).toBe('active');
    const stored = await entriesOf(log, 'zombie-1');
    expect(stored.at(-1)!.event.id).toBe(lost.id);
    expect(stored.filter((entry) => entry.event.type === 'agent_completed')).toHaveLength(1);
    expect(watcher.events.at(-1)!.id).toBe(lost.id);
    expect(watcher.events.map((event) => event.id)).toEqual(stored.map((entry) => entry.event.id));
  });

  it('forgets a run once its events are trimmed, keeps an open run whose start was trimmed, and bounds run states per thread', async () => {
    const t = transport({ maxLenPerThread: 10 });
    const closed = generateRunId('forget-1');
    const open = generateRunId('forget-1');
    await t.send(raw('agent_started', closed, 'forget-1'));
    await t.send(raw('agent_completed', closed, 'forget-1', { seq: 2 }));
    await t.send(raw('agent_started', open, 'forget-1'));
    expect(await t.hasRun(closed)).toBe(true);
    // Many short runs: approximate MAXLEN trims whole nodes, the two runs' entries go.
    const runs = runLimit(10) + 200;
    for (let r = 0; r < runs; r += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, runs - r) }, (_, j) => {
          const runId = generateRunId('forget-1');
          return Promise.all([t.send(raw('agent_started', runId, 'forget-1')), t.send(raw('agent_completed', runId, 'forget-1', { seq: 2 }))]);
        }),
      );
    }
    const first = await redis<Array<[string, string[]]>>(['XRANGE', t.keys.stream('forget-1'), '-', '+', 'COUNT', '1']);
    expect(JSON.parse(first[0]![1][1]!).runId).not.toBe(closed);
    expect(await t.hasRun(closed)).toBe(false);
    // The id is free again.
    await t.send(raw('agent_started', closed, 'forget-1'));
    expect(await t.hasRun(closed)).toBe(true);
    // A run still open, whose start was trimmed, is not forgotten within the TTL: it may still be writing.
    expect(await t.hasRun(open)).toBe(true);
    await expect(t.send(raw('agent_started', open, 'forget-1'))).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
    await t.send(raw('agent_thinking', open, 'forget-1', { seq: 2 }));
    // Run states are pruned: the meta hash holds owner, epoch, n and at most runLimit run fields.
    const fields = await redis<number>(['HLEN', t.keys.meta('forget-1')]);
    expect(fields).toBeLessThanOrEqual(runLimit(10) + 3);
    expect(await redis<number>(['TTL', t.keys.meta('forget-1')])).toBeGreaterThan(0);
  });

  it('a recreated stream starts with no run states: ids whose events went with the old stream are free', async () => {
    const t = transport();
    const a = generateRunId('recreate-1');
    const b = generateRunId('recreate-1');
    await t.send(raw('agent_started', a, 'recreate-1'));
    await t.send(raw('agent_started', b, 'recreate-1'));
    // The stream goes (evicted, deleted by hand); its meta hash stays behind.
    await redis(['DEL', t.keys.stream('recreate-1')]);
    expect(await t.hasRun(b)).toBe(false);
    await t.send(raw('agent_thinking', a, 'recreate-1', { seq: 2 }));
    await t.send(raw('agent_started', b, 'recreate-1'));
    expect(await t.hasRun(b)).toBe(true);
    // a is known again from its first event in the new stream.
    expect(await t.hasRun(a)).toBe(true);
    await expect(t.send(raw('agent_started', a, 'recreate-1'))).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
  });

  it('finds runs with custom ids (and ids naming another thread) through a run → thread key with a TTL', async () => {
    const t = transport({ threadTtlSeconds: 600 });
    await t.send(raw('agent_started', 'my-custom-run-1', 'custom-1'));
    const elsewhere = generateRunId('named-thread');
    await t.send(raw('agent_started', elsewhere, 'custom-1'));
    await until(() => t.stats().pending === 0, 'appends');
    // The index is written right after the append's reply: wait until Redis has it.
    for (const runId of ['my-custom-run-1', elsewhere]) {
      const key = t.keys.runThread(runId);
      let ttl = -2;
      for (let i = 0; i < 100 && ttl < 0; i++) ttl = await redis<number>(['TTL', key]);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(600);
      expect(await t.hasRun(runId)).toBe(true);
    }
    expect(await t.hasRun('my-custom-run-2')).toBe(false);
    // A standard run id naming its own thread needs no index.
    const plain = generateRunId('custom-1');
    await t.send(raw('agent_started', plain, 'custom-1'));
    expect(await redis<number>(['EXISTS', t.keys.runThread(plain)])).toBe(0);
    expect(await t.hasRun(plain)).toBe(true);
  });

  it('keeps every key the append script touches for a thread in that thread’s hash slot', async () => {
    const t = transport();
    await t.send(raw('agent_started', generateRunId('slot-1'), 'slot-1'));
    const keys = (await redis<string[]>(['KEYS', `${prefix}thread:{slot-1}*`])).sort();
    expect(keys).toEqual([t.keys.stream('slot-1'), t.keys.meta('slot-1')].sort());
    expect(new Set(keys.map(hashSlot)).size).toBe(1);
    expect(hashSlot(t.keys.stream('slot-1'))).toBe(hashSlot('{slot-1}'));
  });
});

/** The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag, mod 16384. */
function hashSlot(key: string): number {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  const tagged = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(tagged)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
