import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { AgentBridge, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { BullMQRunQueue, type BullMQRunQueueOptions } from '../../src/runs/bullmq/index.js';
import { keySlot } from '../../src/transport/redis/cluster.js';
import { RedisEventLog, RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { ExampleProcess } from '../../examples/scale-out/processes.js';
import { OwnedRedisCluster, redisClusterBinaries } from '../helpers/redis-cluster.js';
import { describeWithRedis, testPrefix } from '../helpers/redis-env.js';
import { LogCollector, StepAgent, followThread } from '../helpers/runs-agents.js';
import { until, untilAsync } from '../helpers/wait.js';

const LEASE_MS = 1_000;
const REAP_MS = 100;

describeWithRedis('the BullMQ run queue on a real 3-master Redis Cluster', redisClusterBinaries(), () => {
  let cluster: OwnedRedisCluster;
  let prefix: string;
  const processes: ExampleProcess[] = [];
  const closers: Array<() => Promise<unknown> | void> = [];

  beforeAll(async () => {
    cluster = await OwnedRedisCluster.start(3);
    prefix = testPrefix('runs-cluster');
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await Promise.all(processes.splice(0).map((child) => child.stop('SIGKILL')));
  });
  afterAll(async () => {
    await cluster?.dispose();
  });

  const connection = () => ({ cluster: { rootNodes: cluster.rootNodes }, keyPrefix: prefix });
  const openQueue = (extra: BullMQRunQueueOptions = {}) => {
    const queue = new BullMQRunQueue({ ...connection(), leaseMs: LEASE_MS, reapIntervalMs: REAP_MS, maxRunsPerUser: 20, ...extra });
    closers.push(() => queue.close({ timeoutMs: 100 }));
    return queue;
  };
  const openLog = () => {
    const log = new RedisEventLog({ ...connection(), blockMs: 200 });
    closers.push(() => log.close());
    return log;
  };
  const follow = (log: RedisEventLog, userId: string, threadId: string) => followThread(log, userId, threadId, closers);
  const inProcessWorker = (queue: BullMQRunQueue, concurrency = 4) => {
    const transport = new RedisStreamsTransport(connection());
    const bridge = new AgentBridge({ transport });
    closers.push(() => bridge.close());
    return queue.serve({ agents: [new StepAgent({ bridge })] }, { concurrency });
  };
  const runEvents = (events: AgentEvent[], runId: string) => events.filter((event) => event.runId === runId);
  const statusOf = (event: AgentEvent | undefined) => (event?.data as { status?: string } | undefined)?.status;

  /** Thread ids whose keys land on every master (asserted), `perMaster` of each. */
  function threadsOnEveryMaster(log: RedisEventLog, perMaster: number): string[] {
    const picked = new Map<number, string[]>(cluster.masters.map((master) => [master.port, []]));
    for (let i = 0; [...picked.values()].some((ids) => ids.length < perMaster); i++) {
      const threadId = `cl-thread-${i}`;
      const ids = picked.get(cluster.masterOf(keySlot(log.keys.stream(threadId))).port)!;
      if (ids.length < perMaster) ids.push(threadId);
    }
    return [...picked.values()].flat();
  }

  it('submit, serve, status, cancel (owner only, from another handle) and a queued cancel, with every thread on its master', async () => {
    const queue = openQueue();
    const other = openQueue();
    const log = openLog();
    const threads = threadsOnEveryMaster(log, 2);
    const followers = new Map<string, LogCollector>();
    for (const threadId of threads) followers.set(threadId, await follow(log, 'alice', threadId));

    // A queued run cancelled before any worker exists ends at once.
    const queued = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: threads[0]! });
    await expect(other.cancel(queued, { userId: 'mallory' })).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
    expect(await other.cancel(queued, { userId: 'alice' })).toBe('cancelled');

    inProcessWorker(queue);
    const runs = await Promise.all(threads.map((threadId) => queue.submit('steps', { steps: 3, stepMs: 5 }, { userId: 'alice', threadId })));
    const long = await queue.submit('steps', { steps: 100, stepMs: 100 }, { userId: 'alice', threadId: threads[1]! });
    const longLog = followers.get(threads[1]!)!;
    await until(() => longLog.events.some((event) => event.runId === long && event.type === 'tool_executing'), 'the long run to be in a tool', 15_000);
    expect(await other.cancel(long, { userId: 'alice' })).toBe('requested');

    await until(() => [...runs, long].every((runId) => threads.some((t) => followers.get(t)!.terminal(runId).length === 1)), 'every run to end', 15_000);
    for (const threadId of threads) {
      const events = followers.get(threadId)!.events;
      expect(validateLifecycle(events)).toMatchObject({ ok: true });
      expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
    }
    expect(runEvents(followers.get(threads[0]!)!.events, queued).map((event) => event.type)).toEqual(['agent_started', 'agent_completed']);
    expect(statusOf(followers.get(threads[0]!)!.terminal(queued)[0])).toBe('cancelled');
    expect(statusOf(longLog.terminal(long)[0])).toBe('cancelled');
    for (const runId of runs) {
      const threadId = threads.find((t) => followers.get(t)!.terminal(runId).length === 1)!;
      expect(statusOf(followers.get(threadId)!.terminal(runId)[0])).toBe('succeeded');
      await untilAsync(async () => (await queue.status(runId))?.state === 'finished', 'the status');
      expect(await queue.status(runId)).toMatchObject({ state: 'finished', outcome: 'succeeded', userId: 'alice' });
    }
    // The queue's keys are in the slot of its hash tag; the threads' on every master.
    const byMaster = await cluster.keysByMaster(prefix);
    const queueMaster = cluster.masterOf(keySlot(`${prefix}{runs}`)).port;
    for (const [port, keys] of byMaster) {
      const queueKeys = keys.filter((key) => key.includes('{runs}'));
      expect(queueKeys.length > 0).toBe(port === queueMaster);
      expect(keys.some((key) => key.endsWith(':events'))).toBe(true);
    }
  }, 60_000);

  it('a worker child process SIGKILLed mid-run: each of its runs ends exactly once, failed WORKER_LOST, nothing after', async () => {
    const worker = new ExampleProcess('cluster-worker', '../runs/worker.ts', {
      REDIS_CLUSTER_NODES: cluster.rootNodes.join(','),
      AGENTWIRE_KEY_PREFIX: prefix,
      LEASE_MS: String(LEASE_MS),
      REAP_INTERVAL_MS: String(REAP_MS),
      CONCURRENCY: '6',
    });
    processes.push(worker);
    await worker.message('ready');
    const queue = openQueue({ reap: true });
    const log = openLog();
    const threads = threadsOnEveryMaster(log, 2).map((threadId) => `lost-${threadId}`);
    const followers = new Map<string, LogCollector>();
    for (const threadId of threads) followers.set(threadId, await follow(log, 'bob', threadId));
    const runs = await Promise.all(threads.map(async (threadId) => ({ threadId, runId: await queue.submit('steps', { steps: 200, stepMs: 50 }, { userId: 'bob', threadId }) })));
    await until(() => worker.messages.filter((message) => message.type === 'run_started').length === runs.length, 'the worker to start every run', 20_000);
    await until(() => runs.every(({ threadId, runId }) => runEvents(followers.get(threadId)!.events, runId).length >= 3), 'events of every run', 20_000);
    await worker.stop('SIGKILL');

    const terminalOf = ({ threadId, runId }: { threadId: string; runId: string }) => followers.get(threadId)!.terminal(runId);
    await until(() => runs.every((run) => terminalOf(run).length >= 1), 'every lost run to end', 20_000);
    // Barrier: one more run per thread on a live worker, ended after everything else in its thread.
    inProcessWorker(queue);
    const markers = await Promise.all(threads.map(async (threadId) => ({ threadId, runId: await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'bob', threadId }) })));
    await until(() => markers.every((marker) => terminalOf(marker).length === 1), 'the marker runs', 20_000);

    for (const run of runs) {
      const events = runEvents(followers.get(run.threadId)!.events, run.runId);
      expect(events.filter((event) => event.type === 'agent_completed')).toHaveLength(1);
      expect(events.at(-1)).toMatchObject({ type: 'agent_completed', data: { status: 'failed', error: { code: 'WORKER_LOST' } } });
      expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
      expect(events.map((event) => event.seq)).toEqual(events.map((_, i) => i + 1));
      expect(await queue.status(run.runId)).toMatchObject({ state: 'finished', outcome: 'failed' });
    }
    for (const threadId of threads) {
      const events = followers.get(threadId)!.events;
      expect(events.every((event) => event.userId === 'bob' && event.threadId === threadId)).toBe(true);
      expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
      expect(validateLifecycle(events)).toEqual({ ok: true, runs: 2 });
    }
    expect((await queue.stats()).workerLost).toBe(runs.length);
  }, 90_000);
});
