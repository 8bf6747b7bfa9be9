/**
 * A run id is used once, across processes (attack finding f6): a run id that does not name its
 * thread (a client-given one) is claimed for its thread (`<prefix>run:{<runId>}:thread`) before
 * its `agent_started` is appended. Two transports (two processes) racing one such run id into two
 * threads store exactly one `agent_started`; the other gets RUN_ID_CONFLICT. Every assertion is on
 * what Redis holds or what a subscriber / HTTP client received.
 */
import { nanoid } from 'nanoid';
import { expect, it } from 'vitest';
import { AgentBridge, generateRunId, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { createAguiHandler } from '../../src/agui/index.js';
import { closeRunInLog } from '../../src/runs/bullmq/close-run.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisConnection } from '../../src/transport/redis/connection.js';
import type { RedisEventLog } from '../../src/transport/redis/index.js';
import { Collector, REDIS_URL, StepAgent, describeWithRedis, probeRedis, rawClient, useRedisLogs } from '../helpers/redis-env.js';
import { untilAsync } from '../helpers/wait.js';

const availability = await probeRedis();
const TRIES = 40;

function raw(type: AgentEvent['type'], runId: string, threadId: string, userId: string, seq = 1): AgentEvent {
  const data =
    type === 'agent_started'
      ? { metadata: {} }
      : type === 'agent_completed'
        ? { status: 'succeeded', result: null, durationMs: 1 }
        : { text: `${type} of ${runId}` };
  return { v: 1, id: `${type}-${nanoid(10)}`, type, runId, threadId, userId, agent: 'a', seq, ts: Date.now(), data } as AgentEvent;
}

describeWithRedis('a client-given run id is claimed once across processes (real Redis)', availability, () => {
  const prefix = `aw-runid-${nanoid(8)}:`;
  const { closers, transport, gateway } = useRedisLogs(() => prefix);

  /** What a subscriber of the thread gets (replay). */
  async function received(log: RedisEventLog, userId: string, threadId: string): Promise<AgentEvent[]> {
    const collector = new Collector();
    const result = await log.subscribe({ userId, threadId }, collector);
    if (result.status !== 'subscribed') throw new Error(`expected subscribed, got ${result.status}`);
    result.subscription.close();
    return result.replay.map((entry) => entry.event);
  }

  async function redis<T>(command: string[]): Promise<T> {
    const client = await rawClient();
    try {
      return (await client.sendCommand(command)) as T;
    } finally {
      await client.quit();
    }
  }

  it(`two transports race one custom run id into two threads of two users, ${TRIES} tries: one agent_started in total, the other gets RUN_ID_CONFLICT`, async () => {
    const a = transport();
    const b = transport();
    const log = gateway();
    for (let i = 0; i < TRIES; i++) {
      const runId = `client-run-${nanoid(6)}-${i}`;
      const starts = [raw('agent_started', runId, `alice-t${i}`, 'alice'), raw('agent_started', runId, `bob-t${i}`, 'bob')];
      const outcomes = await Promise.allSettled([a.send(starts[0]!), b.send(starts[1]!)]);
      const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
      const lost = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toMatchObject({ name: 'ValidationError', code: 'RUN_ID_CONFLICT', retryable: false, field: 'runId' });
      // The refusal does not name the other (possibly another user's) thread.
      const winner = outcomes[0]!.status === 'fulfilled' ? 0 : 1;
      expect((lost[0]!.reason as Error).message).not.toContain(starts[winner]!.threadId);
      const seen = [...(await received(log, 'alice', `alice-t${i}`)), ...(await received(log, 'bob', `bob-t${i}`))];
      expect(seen.filter((event) => event.runId === runId && event.type === 'agent_started').map((event) => event.id)).toEqual([starts[winner]!.id]);
    }
    expect(a.stats().claims + b.stats().claims).toBe(2 * TRIES);
  });

  it("the winner's retried agent_started (a lost reply) is accepted once, from any process; the loser stays refused; the claim is refreshed by agent_completed", async () => {
    const a = transport({ threadTtlSeconds: 600 });
    const b = transport({ threadTtlSeconds: 600 });
    const log = gateway();
    const runId = `client-run-${nanoid(8)}`;
    const start = raw('agent_started', runId, 'retry-a', 'alice');
    await a.send(start);
    // The same append again, from this process and from another (e.g. after a lost reply): stored once.
    await a.send(start);
    await b.send(start);
    expect(a.stats().repeats + b.stats().repeats).toBe(2);
    await expect(b.send(raw('agent_started', runId, 'retry-b', 'alice'))).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
    await a.send(raw('agent_thinking', runId, 'retry-a', 'alice', 2));
    // The claim's TTL runs from the start; agent_completed refreshes it (off the send's path).
    const key = a.keys.runThread(runId);
    await redis(['EXPIRE', key, '5']);
    await a.send(raw('agent_completed', runId, 'retry-a', 'alice', 3));
    await untilAsync(async () => (await redis<number>(['TTL', key])) > 5, 'the claim refreshed by agent_completed');
    expect(await redis<number>(['TTL', key])).toBeLessThanOrEqual(600);
    expect(await redis<string>(['GET', key])).toBe('retry-a');
    await expect(b.send(raw('agent_started', runId, 'retry-b', 'alice'))).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
    const events = await received(log, 'alice', 'retry-a');
    expect(events.map((event) => event.type)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
    expect(await received(log, 'alice', 'retry-b')).toEqual([]);
    expect(await a.hasRun(runId)).toBe(true);
  });

  it('a claim whose append never happened (the process died between them) lets its own thread start the run and refuses every other', async () => {
    const a = transport();
    const log = gateway();
    const runId = `client-run-${nanoid(8)}`;
    await redis(['SET', a.keys.runThread(runId), 'died-a', 'EX', '60']);
    await expect(a.send(raw('agent_started', runId, 'died-b', 'alice'))).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
    const start = raw('agent_started', runId, 'died-a', 'alice');
    await a.send(start);
    expect((await received(log, 'alice', 'died-a')).map((event) => event.id)).toEqual([start.id]);
    expect(await received(log, 'alice', 'died-b')).toEqual([]);
  });

  it('a thread keeps call order behind a start whose claim is out; a refused start does not hold the others back', async () => {
    const a = transport();
    const log = gateway();
    const taken = `client-run-${nanoid(8)}`;
    await a.send(raw('agent_started', taken, 'order-x', 'alice'));
    const runId = `client-run-${nanoid(8)}`;
    const other = generateRunId('order-a');
    const sent = [
      raw('agent_started', runId, 'order-a', 'alice'),
      raw('agent_started', other, 'order-a', 'alice'),
      raw('agent_thinking', runId, 'order-a', 'alice', 2),
      raw('agent_started', taken, 'order-a', 'alice'),
      raw('agent_thinking', other, 'order-a', 'alice', 2),
    ];
    const outcomes = await Promise.allSettled(sent.map((event) => a.send(event)));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[3] as PromiseRejectedResult).reason).toMatchObject({ code: 'RUN_ID_CONFLICT' });
    expect((await received(log, 'alice', 'order-a')).map((event) => event.id)).toEqual([sent[0], sent[1], sent[2], sent[4]].map((event) => event!.id));
  });

  it('standard run ids naming their thread take no claim: a race in their thread is fenced by the append script alone', async () => {
    const a = transport();
    const b = transport();
    const log = gateway();
    for (let i = 0; i < 10; i++) {
      const runId = generateRunId(`std-${i}`);
      const outcomes = await Promise.allSettled([a.send(raw('agent_started', runId, `std-${i}`, 'alice')), b.send(raw('agent_started', runId, `std-${i}`, 'alice'))]);
      expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
      expect(outcomes.find((outcome) => outcome.status === 'rejected')).toMatchObject({ reason: { code: 'RUN_ID_CONFLICT' } });
      expect((await received(log, 'alice', `std-${i}`)).filter((event) => event.type === 'agent_started')).toHaveLength(1);
      expect(await redis<number>(['EXISTS', a.keys.runThread(runId)])).toBe(0);
    }
    expect(a.stats().claims + b.stats().claims).toBe(0);
  });

  it('two AG-UI handlers (two gateways) get concurrent POSTs with one client run id into two users\' threads: one 200, one 409 RUN_ID_CONFLICT, one run in the log', async () => {
    const logs = [transport(), transport()];
    const handlers = logs.map((log) =>
      createAguiHandler({
        agent: new StepAgent({ bridge: new AgentBridge({ transport: log }) }),
        log,
        authenticate: (req) => ({ userId: (req.headers.get('authorization') ?? '').slice(7) }),
        heartbeatIntervalMs: 0,
        toInput: () => ({ steps: 1 }),
      }),
    );
    for (const handler of handlers) closers.push(() => handler.close());
    const ports: number[] = [];
    for (const handler of handlers) ports.push((await handler.listen(0)).port);
    const reader = gateway();
    const post = async (port: number, user: string, threadId: string, runId: string) => {
      const response = await fetch(`http://127.0.0.1:${port}/agui`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user}`, 'content-type': 'application/json' },
        body: JSON.stringify({ threadId, runId, state: {}, messages: [], tools: [], context: [], forwardedProps: {} }),
      });
      return { status: response.status, body: await response.text() };
    };
    for (let i = 0; i < 8; i++) {
      const runId = `3f0c9a1e-client-run-${nanoid(6)}-${i}`;
      const replies = await Promise.all([post(ports[0]!, 'alice', `agui-alice-${i}`, runId), post(ports[1]!, 'bob', `agui-bob-${i}`, runId)]);
      expect(replies.map((reply) => reply.status).sort()).toEqual([200, 409]);
      expect(replies.find((reply) => reply.status === 409)!.body).toContain('RUN_ID_CONFLICT');
      const winner = replies[0]!.status === 200 ? ['alice', `agui-alice-${i}`] : ['bob', `agui-bob-${i}`];
      const loser = replies[0]!.status === 200 ? ['bob', `agui-bob-${i}`] : ['alice', `agui-alice-${i}`];
      await untilAsync(async () => (await received(reader, winner[0]!, winner[1]!)).some((event) => event.type === 'agent_completed'), 'the winning run to end');
      const won = await received(reader, winner[0]!, winner[1]!);
      expect(validateLifecycle(won)).toEqual({ ok: true, runs: 1 });
      expect((await received(reader, loser[0]!, loser[1]!)).filter((event) => event.runId === runId)).toEqual([]);
    }
  });

  it('a run that goes on past threadTtlSeconds keeps its claim: its events renew it, so another thread still cannot start the id', async () => {
    const a = transport({ threadTtlSeconds: 1 });
    const b = transport({ threadTtlSeconds: 1 });
    const runId = `client-run-${nanoid(8)}`;
    await a.send(raw('agent_started', runId, 'long-a', 'ivy'));
    // 2.5 TTLs of a run emitting every 150 ms: without renewal the claim expires after 1 s.
    const until = Date.now() + 2_500;
    for (let seq = 2; Date.now() < until; seq++) {
      await a.send(raw('agent_thinking', runId, 'long-a', 'ivy', seq));
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    expect(await redis<number>(['PTTL', a.keys.runThread(runId)])).toBeGreaterThan(0);
    await expect(b.send(raw('agent_started', runId, 'long-b', 'mallory'))).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
  });

  it("BullMQ: submit refuses a client run id another thread claimed; closing a run in the log never starts a run id another thread holds", async () => {
    const a = transport({ threadTtlSeconds: 600 });
    const log = gateway();
    const queue = new BullMQRunQueue({ url: REDIS_URL, keyPrefix: prefix, queueName: 'runid-claim', reap: false });
    closers.push(() => queue.close({ timeoutMs: 100 }));
    const runId = `client-run-${nanoid(8)}`;
    // Claimed and started in thread q-a, the run still open.
    await a.send(raw('agent_started', runId, 'q-a', 'ivy'));
    await expect(queue.submit('steps', { steps: 1 }, { userId: 'ivy', threadId: 'q-b', runId })).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
    expect(await queue.status(runId)).toBeUndefined();
    // A claim with no events yet (its start in flight, or its process died): submit into another thread is refused too.
    const inFlight = `client-run-${nanoid(8)}`;
    await redis(['SET', a.keys.runThread(inFlight), 'q-a', 'EX', '60']);
    await expect(queue.submit('steps', { steps: 1 }, { userId: 'ivy', threadId: 'q-b', runId: inFlight })).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
    // What a reaper / a refused worker does for a run that never reached its thread: nothing, when another thread holds the id.
    const connection = new RedisConnection(a.options, 'runid-test');
    closers.push(() => connection.close());
    expect(await connection.waitReady(5_000)).toBe(true);
    const limits = { maxLenPerThread: 1000, threadTtlSeconds: 600 };
    const request = { runId, userId: 'ivy', agent: 'steps', status: 'failed' as const, error: { name: 'Error', message: 'lost' }, metadata: {} };
    expect(await closeRunInLog(connection, a.keys, limits, { ...request, threadId: 'q-b' })).toEqual({ kind: 'conflict' });
    expect(await received(log, 'ivy', 'q-b')).toEqual([]);
    // In the thread that holds it, the run is closed as before.
    expect(await closeRunInLog(connection, a.keys, limits, { ...request, threadId: 'q-a' })).toMatchObject({ kind: 'ended' });
    const events = await received(log, 'ivy', 'q-a');
    expect(events.map((event) => event.type)).toEqual(['agent_started', 'agent_completed']);
    // A custom run id no thread holds: closing it claims it for its thread, then another thread's start is refused.
    const fresh = `client-run-${nanoid(8)}`;
    expect(await closeRunInLog(connection, a.keys, limits, { ...request, runId: fresh, threadId: 'q-c' })).toMatchObject({ kind: 'ended' });
    await expect(a.send(raw('agent_started', fresh, 'q-d', 'ivy'))).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
  });
});
