import { until } from '../helpers/wait.js';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connect, type AgentEvent, type AgentwireClient } from '../../src/client/index.js';
import { validateLifecycle } from '../../src/index.js';
import { RedisEventLog } from '../../src/transport/redis/index.js';
import { demoToken } from '../../examples/scale-out/auth.js';
import { ExampleProcess } from '../../examples/scale-out/processes.js';
import { runScaleOutScenario } from '../../examples/scale-out/scenario.js';
import { Collector, REDIS_URL, deletePrefix, describeWithRedis, probeRedis, testPrefix } from '../helpers/redis-env.js';

const availability = await probeRedis();

/** Complete runs, in order, gapless seq, nothing twice. */
function expectExactlyOnceInOrder(events: AgentEvent[], runs: number) {
  expect(validateLifecycle(events)).toEqual({ ok: true, runs });
  expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
}

describeWithRedis('scale-out: worker and gateways in separate processes (examples/scale-out)', availability, () => {
  let prefix: string;
  const processes: ExampleProcess[] = [];
  const clients: AgentwireClient[] = [];

  beforeAll(() => {
    prefix = testPrefix('multiprocess');
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await Promise.all(processes.splice(0).map((child) => child.stop('SIGKILL')));
  });
  afterAll(async () => {
    await deletePrefix(prefix);
  });

  it('gateway A is killed mid-run; the client resumes on gateway B with its cursor: every event exactly once, in order', async () => {
    const result = await runScaleOutScenario({ redisUrl: REDIS_URL, keyPrefix: prefix, steps: 40, stepDelayMs: 20, killAfter: 12 });

    expect(result.fromA.length).toBeGreaterThanOrEqual(12);
    expect(result.fromB.length).toBeGreaterThan(0);
    const all = [...result.fromA, ...result.fromB];
    expectExactlyOnceInOrder(all, 1);
    expect(all.map((event) => event.seq)).toEqual(all.map((_, i) => i + 1));
    expect(all.every((event) => event.userId === result.userId && event.threadId === result.threadId)).toBe(true);
    expect(all.at(-1)).toMatchObject({ type: 'agent_completed', data: { status: 'succeeded' } });
    // B started right after A's last event: the cursor is the resume point, not a replay from the start.
    expect(result.fromB[0]!.seq).toBe(result.fromA.length + 1);
    expect(result.worker).toMatchObject({ status: 'succeeded', delivered: all.length, failed: 0 });
  });

  it('a restarted gateway and a killed worker lose nothing Redis accepted; another user is refused in every process', async () => {
    const threadId = 'restarts-1';
    const env = { REDIS_URL, AGENTWIRE_KEY_PREFIX: prefix };
    const spawnChild = (name: string, script: string, extra: Record<string, string> = {}) => {
      const child = new ExampleProcess(name, script, { ...env, ...extra });
      processes.push(child);
      return child;
    };

    const gateway = spawnChild('gateway', 'gateway.ts');
    const url = String((await gateway.message('listening')).url);
    const port = new URL(url).port;
    // This client reconnects by itself (default backoff) and resumes from its last cursor.
    const client = connect(url, { threadId, token: demoToken('alice'), WebSocket, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
    clients.push(client);
    const shown: AgentEvent[] = [];
    client.on('event', (event) => shown.push(event));

    const firstWorker = spawnChild('worker-1', 'worker.ts', { THREAD_ID: threadId, USER_ID: 'alice', STEPS: '400', STEP_DELAY_MS: '10' });
    await firstWorker.message('run_started');
    await until(() => shown.length >= 10, 'events before the gateway restart', 20_000);

    // The gateway process dies and a new one takes its port.
    await gateway.stop('SIGKILL');
    const restarted = spawnChild('gateway-restarted', 'gateway.ts', { PORT: port });
    await restarted.message('listening');
    const before = shown.length;
    await until(() => shown.length >= before + 15 && client.stats.reconnects >= 1, 'events after the gateway restart', 20_000);

    // The worker process is killed mid-run (its run never completes); a new worker runs the next one.
    await firstWorker.stop('SIGKILL');
    const secondWorker = spawnChild('worker-2', 'worker.ts', { THREAD_ID: threadId, USER_ID: 'alice', STEPS: '8', STEP_DELAY_MS: '1' });
    expect(await secondWorker.message('run_finished')).toMatchObject({ status: 'succeeded', failed: 0 });
    const secondRunId = String(secondWorker.messages.find((message) => message.type === 'run_finished')!.runId);
    await until(() => shown.some((event) => event.runId === secondRunId && event.type === 'agent_completed'), 'the second run', 20_000);

    // What Redis accepted, read independently: the client showed exactly that, once, in order.
    const log = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix });
    try {
      const stored = new Collector();
      const result = await log.subscribe({ userId: 'alice', threadId }, stored);
      if (result.status !== 'subscribed') throw new Error('expected subscribed');
      expect(shown.map((event) => event.id)).toEqual(result.replay.map((entry) => entry.event.id));

      // Another user is refused by a gateway process that never saw the run, and by the log.
      const mallory = connect(url, { threadId, token: demoToken('mallory'), WebSocket, reconnect: false });
      clients.push(mallory);
      const refusals: string[] = [];
      mallory.on('error', (error) => refusals.push(error.code));
      await until(() => refusals.length > 0 || mallory.status === 'closed', 'mallory to be refused');
      expect(refusals).toContain('THREAD_FORBIDDEN');
      expect(mallory.stats.received).toBe(0);
      await expect(log.subscribe({ userId: 'mallory', threadId }, new Collector())).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
    } finally {
      await log.close();
    }

    expect(new Set(shown.map((event) => event.id)).size).toBe(shown.length);
    expect(shown.every((event) => event.userId === 'alice')).toBe(true);
    const [firstRun, secondRun] = [shown.filter((event) => event.runId !== secondRunId), shown.filter((event) => event.runId === secondRunId)];
    // The killed worker's run is cut short but well-formed up to where Redis accepted it.
    expect(validateLifecycle(firstRun, { requireComplete: false })).toMatchObject({ ok: true });
    expect(firstRun.map((event) => event.seq)).toEqual(firstRun.map((_, i) => i + 1));
    expect(firstRun.some((event) => event.type === 'agent_completed')).toBe(false);
    expectExactlyOnceInOrder(secondRun, 1);
  });
});
