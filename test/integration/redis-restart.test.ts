import { until } from '../helpers/wait.js';
import { afterEach, expect, it } from 'vitest';
import { AgentBridge, HistoryGapError, validateLifecycle, type AgentEvent, type BridgeState } from '../../src/index.js';
import { RedisEventLog, RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { Collector, OwnedRedisServer, StepAgent, dedupeById, describeWithRedis, redisServerBinary } from '../helpers/redis-env.js';

const availability = redisServerBinary();
const fastRetry = { minTimeoutMs: 5, maxTimeoutMs: 50, randomize: false };
const reconnect = { reconnectMinDelayMs: 10, reconnectMaxDelayMs: 100, connectTimeoutMs: 1_000 };

describeWithRedis('Redis restarts during a run (redis-server owned by the test)', availability, () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  async function setup(persistent: boolean) {
    const server = await OwnedRedisServer.start({ persistent });
    cleanups.push(() => server.dispose());
    const options = { url: server.url, keyPrefix: 'restart:', ...reconnect };
    const transport = new RedisStreamsTransport(options);
    const bridge = new AgentBridge({ transport, retry: fastRetry, recoveryIntervalMs: 20, failAfterMs: 60_000 });
    const states: BridgeState[] = [];
    bridge.on('state', (state) => states.push(state));
    cleanups.push(() => bridge.close());
    const agent = new StepAgent({ bridge });
    const openLog = (extra: ConstructorParameters<typeof RedisEventLog>[0] = {}) => {
      const log = new RedisEventLog({ ...options, ...extra });
      cleanups.push(() => log.close());
      return log;
    };
    const follow = async (log: RedisEventLog, threadId: string, after?: string) => {
      const collector = new Collector();
      const result = await log.subscribe({ userId: 'alice', threadId, after }, collector);
      if (result.status !== 'subscribed') throw new Error(`expected subscribed, got ${JSON.stringify(result)}`);
      collector.takeReplay(result.replay);
      return collector;
    };
    return { server, transport, bridge, states, agent, openLog, follow };
  }

  function expectExactlyOnceInOrder(events: AgentEvent[], total: number) {
    expect(events).toHaveLength(total);
    expect(new Set(events.map((event) => event.id)).size).toBe(total);
    expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
    expect(events.map((event) => event.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  }

  it('without persistence: events sent while Redis is down are buffered, flushed, and reach the live subscriber exactly once', async () => {
    const { server, transport, bridge, states, agent, openLog, follow } = await setup(false);
    const log = openLog();
    const strict = openLog({ onStreamRecreated: 'close' });
    const live = await follow(log, 't1');
    const closing = await follow(strict, 't1');

    let resume!: () => void;
    const paused = new Promise<void>((resolve) => (resume = resolve));
    const steps = 30;
    const run = agent.run({ steps, pause: { at: 10, until: paused } }, { userId: 'alice', threadId: 't1' });
    const beforePause = 1 + 10 + 2 * 2;
    await until(() => live.events.length === beforePause && closing.events.length === beforePause, 'the events before the pause');
    const oldCursor = live.lastCursor!;

    // Redis goes away (its data with it) while the run continues.
    await server.stop('SIGTERM');
    const down = await transport.health();
    expect(down.ok).toBe(false);
    resume();
    const result = await run;
    expect(result.status).toBe('succeeded');
    expect(bridge.state).toBe('degraded');
    expect(live.events).toHaveLength(beforePause);

    await server.start();
    const total = StepAgent.eventCount(steps);
    await until(() => live.events.length >= total, 'the rest after the restart', 20_000);
    expectExactlyOnceInOrder(live.events, total);
    expect(states).toEqual(['initializing', 'active', 'degraded', 'active']);
    expect(bridge.metrics().failed).toBe(0);
    expect(log.stats()).toMatchObject({ epochChanges: 1, isolationDrops: 0 });

    // The stream was recreated: its cursors have a new epoch, the old one cannot be resumed from.
    expect(live.lastCursor!.split(':')[0]).not.toBe(oldCursor.split(':')[0]);
    const fresh = openLog();
    const resumed = await fresh.subscribe({ userId: 'alice', threadId: 't1', after: oldCursor }, new Collector());
    expect(resumed).toMatchObject({ status: 'history_gap', gap: { reason: 'epoch_changed' } });
    // A cursor of the new incarnation resumes normally.
    const newer = live.entries[beforePause + 2]!.cursor;
    const again = await follow(fresh, 't1', newer);
    expect(again.events.map((event) => event.id)).toEqual(live.events.slice(beforePause + 3).map((event) => event.id));

    // With onStreamRecreated: 'close', the subscriber is told instead (its client then gets history_gap).
    await until(() => closing.closed !== undefined, 'the strict subscription to end');
    expect(closing.closed!.reason).toBeInstanceOf(HistoryGapError);
    expect(closing.events.map((event) => event.id)).toEqual(live.events.slice(0, closing.events.length).map((event) => event.id));
  });

  it('with an fsync-always AOF: a Redis crash mid-run loses nothing accepted, and cursors stay valid', async () => {
    const { server, bridge, agent, openLog, follow } = await setup(true);
    const log = openLog();
    const live = await follow(log, 't2');
    const steps = 150;
    const total = StepAgent.eventCount(steps);
    const run = agent.run({ steps }, { userId: 'alice', threadId: 't2' });

    await until(() => live.events.length >= 40, 'events before the crash');
    const cursorBeforeCrash = live.entries[20]!.cursor;
    await server.stop('SIGKILL');
    const receivedBeforeRestart = live.events.length;
    await until(() => bridge.state === 'degraded', 'the bridge to notice the outage');
    await server.start();
    expect((await run).status).toBe('succeeded');

    // At least once through the crash (a reply lost after the write means a retry): the client's dedupe by id makes it exactly once.
    await until(() => dedupeById(live.events).length >= total, 'every event after the crash', 20_000);
    const shown = dedupeById(live.events);
    expectExactlyOnceInOrder(shown, total);
    expect(receivedBeforeRestart).toBeLessThan(total);
    expect(log.stats().epochChanges).toBe(0);

    // The stream survived, so a cursor from before the crash still resumes on another gateway.
    const other = openLog();
    const resumed = await follow(other, 't2', cursorBeforeCrash);
    expect(dedupeById(resumed.events).map((event) => event.id)).toEqual(shown.slice(21).map((event) => event.id));
  });
});
