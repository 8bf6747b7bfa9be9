import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentBridge, validateLifecycle, type AgentEvent, type Transport } from '../../src/index.js';
import { RedisEventLog, RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { Collector, REDIS_URL, StepAgent, deletePrefix, describeWithRedis, probeRedis, testPrefix } from '../helpers/redis-env.js';
import { until } from '../helpers/wait.js';

const availability = await probeRedis();
const fastRetry = { minTimeoutMs: 5, maxTimeoutMs: 50, randomize: false };
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Attack F2: two workers (each an AgentBridge with its own ThreadRegistry) share one Redis log.
 * Alice owns a thread (her run reached the log through worker 1). On worker 2, which never saw
 * the thread, mallory keeps many starts of new runs on it in flight at once; each is refused by the
 * log. Meanwhile alice starts runs on it through worker 2: they must not be refused by worker 2's
 * registry because of mallory's undelivered starts. The log decides, and it refuses mallory.
 */
describeWithRedis('Redis log, two workers: an intruder flooding starts on a thread does not lock its owner out (attack F2)', availability, () => {
  let prefix: string;
  const closers: Array<() => Promise<unknown>> = [];

  beforeAll(() => {
    prefix = testPrefix('owner-flood');
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  });
  afterAll(async () => {
    await deletePrefix(prefix);
  });

  function worker() {
    const transport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix: prefix });
    const bridge = new AgentBridge({ transport, retry: fastRetry, recoveryIntervalMs: 10 });
    const agent = new StepAgent({ bridge });
    closers.push(() => bridge.close());
    return { transport, bridge, agent };
  }

  it("alice's runs started on worker 2 during mallory's flood of starts there are all delivered; every start of mallory's is refused THREAD_FORBIDDEN", async () => {
    const threadId = 'flooded';
    const steps = 2;
    const one = worker();
    const first = await one.agent.run({ steps }, { userId: 'alice', threadId });
    expect(first.status).toBe('succeeded');

    // What a receiving client gets: alice's subscription on a gateway's log of its own.
    const log = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix });
    closers.push(() => log.close());
    const collector = new Collector();
    const subscribed = await log.subscribe({ userId: 'alice', threadId }, collector);
    if (subscribed.status !== 'subscribed') throw new Error(`expected subscribed, got ${JSON.stringify(subscribed)}`);
    collector.takeReplay(subscribed.replay);

    const two = worker();
    await two.bridge.initialize();
    const concurrency = 64;
    const floodMs = 1_500;
    let flooding = true;
    const mallory = { started: 0, forbidden: 0, other: [] as unknown[] };
    const floodOne = async (): Promise<void> => {
      while (flooding) {
        mallory.started++;
        try {
          await two.agent.run({ steps: 1 }, { userId: 'mallory', threadId });
          mallory.other.push('succeeded');
        } catch (error) {
          if ((error as { code?: string }).code === 'THREAD_FORBIDDEN') mallory.forbidden++;
          else mallory.other.push(error);
        }
        await nextTurn();
      }
    };
    const flood = Promise.all(Array.from({ length: concurrency }, floodOne));

    // Alice's runs on worker 2 while the flood lasts (a few at a time, as users do).
    const alice = { attempts: 0, refused: 0, runIds: [] as string[], errors: [] as unknown[] };
    const aliceOne = async (): Promise<void> => {
      while (flooding) {
        alice.attempts++;
        try {
          const result = await two.agent.run({ steps }, { userId: 'alice', threadId });
          expect(result).toMatchObject({ status: 'succeeded', deliveryErrors: [] });
          alice.runIds.push(result.runId);
        } catch (error) {
          if ((error as { code?: string }).code === 'THREAD_FORBIDDEN') alice.refused++;
          else alice.errors.push(error);
        }
        // A refusal can come without I/O (the bridge's registry): let timers run between attempts.
        await nextTurn();
      }
    };
    const aliceRuns = Promise.all(Array.from({ length: 4 }, aliceOne));
    await new Promise((resolve) => setTimeout(resolve, floodMs));
    flooding = false;
    await Promise.all([flood, aliceRuns]);
    console.info(
      `[attack F2] alice: ${alice.attempts} attempts, ${alice.refused} refused THREAD_FORBIDDEN; mallory: ${mallory.started} starts, ${mallory.forbidden} refused THREAD_FORBIDDEN`,
    );

    expect(alice.errors).toEqual([]);
    expect(mallory.other).toEqual([]);
    expect(mallory.started).toBeGreaterThan(concurrency);
    expect(mallory.forbidden).toBe(mallory.started);
    expect(alice.attempts).toBeGreaterThan(0);
    expect(alice.refused).toBe(0);
    expect(alice.runIds).toHaveLength(alice.attempts);

    // Alice's subscriber got her first run and every run started on worker 2, and nothing of mallory's.
    const expected = (1 + alice.runIds.length) * StepAgent.eventCount(steps);
    await until(() => collector.events.length >= expected, "alice's events", 10_000);
    const events = collector.events;
    expect(events).toHaveLength(expected);
    expect(events.every((event) => event.userId === 'alice')).toBe(true);
    expect(new Set(events.map((event) => event.runId))).toEqual(new Set([first.runId, ...alice.runIds]));
    expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 + alice.runIds.length });
    expect(collector.closed).toBeUndefined();
    // Worker 2 now knows alice's thread from her delivered runs, and refuses mallory without the log.
    expect(two.bridge.registry.ownerOf(threadId)).toBe('alice');
    await expect(two.agent.run({ steps: 1 }, { userId: 'mallory', threadId })).rejects.toMatchObject({ name: 'AuthError', code: 'THREAD_FORBIDDEN' });
    expect(two.bridge.metrics().activeRuns).toBe(0);
  }, 30_000);
});

/**
 * The other side of the F2 fix: a transport of your own that checks no owners (no `ownerOf`)
 * cannot refuse another user's events, so for it the bridge's registry keeps the stricter rule
 * (claimOnRegister): a run registered on a new thread claims it until it delivers or is forgotten.
 */
describe("a transport that does not check owners: two users' first runs on a new thread at once", () => {
  it('exactly one user gets the thread; the other is refused THREAD_FORBIDDEN and none of its events is stored', async () => {
    const stored: AgentEvent[] = [];
    const transport: Transport = {
      async send(event) {
        await new Promise<void>((resolve) => setTimeout(resolve, 2));
        stored.push(event);
      },
      async close() {},
    };
    const bridge = new AgentBridge({ transport });
    const agent = new StepAgent({ bridge });
    try {
      for (let round = 0; round < 5; round++) {
        const threadId = `race-${round}`;
        const outcomes = await Promise.allSettled([
          agent.run({ steps: 2 }, { userId: 'alice', threadId }),
          agent.run({ steps: 2 }, { userId: 'mallory', threadId }),
        ]);
        const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
        const refused = outcomes.filter((outcome) => outcome.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(refused).toHaveLength(1);
        expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({ name: 'AuthError', code: 'THREAD_FORBIDDEN' });
        const users = new Set(stored.filter((event) => event.threadId === threadId).map((event) => event.userId));
        expect(users.size).toBe(1);
        expect(bridge.registry.ownerOf(threadId)).toBe([...users][0]);
      }
    } finally {
      await bridge.close();
    }
  });
});
