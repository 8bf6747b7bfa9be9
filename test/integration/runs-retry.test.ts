/**
 * Opt-in linked retries of a lost run (`retryLostRuns`), with BullMQ workers as child processes
 * SIGKILLed mid-run: what a real subscriber of the thread's log received is the evidence.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { validateLifecycle, type AgentEvent } from '../../src/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisEventLog } from '../../src/transport/redis/index.js';
import { ExampleProcess } from '../../examples/scale-out/processes.js';
import { REDIS_URL, deletePrefix, describeWithRedis, probeRedis, testPrefix } from '../helpers/redis-env.js';
import { followThread } from '../helpers/runs-agents.js';
import { spawnRunsWorker } from '../helpers/runs-worker.js';
import { until } from '../helpers/wait.js';

const availability = await probeRedis();
const LEASE_MS = 1_000;
const REAP_MS = 100;

describeWithRedis('run queue: opt-in linked retries of a lost run (worker child processes, SIGKILL)', availability, () => {
  let prefix: string;
  const processes: ExampleProcess[] = [];
  const closers: Array<() => Promise<void> | void> = [];

  beforeAll(() => {
    prefix = testPrefix('runs-retry');
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await Promise.all(processes.splice(0).map((child) => child.stop('SIGKILL')));
  });
  afterAll(async () => {
    await deletePrefix(prefix);
  });

  const spawnWorker = (name: string) => spawnRunsWorker(processes, name, prefix, { leaseMs: LEASE_MS, reapMs: REAP_MS });
  const openQueue = (extra: Partial<ConstructorParameters<typeof BullMQRunQueue>[0]> = {}) => {
    const queue = new BullMQRunQueue({ url: REDIS_URL, keyPrefix: prefix, leaseMs: LEASE_MS, reapIntervalMs: REAP_MS, reap: true, ...extra });
    closers.push(() => queue.close());
    return queue;
  };
  const follow = (userId: string, threadId: string) => {
    const log = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix, blockMs: 200 });
    closers.push(() => log.close());
    return followThread(log, userId, threadId, closers);
  };
  const started = (worker: ExampleProcess, runId: string) => worker.messages.some((message) => message.type === 'run_started' && message.runId === runId);
  const runIds = (events: AgentEvent[]) => [...new Set(events.map((event) => event.runId))];
  const retryOf = (events: AgentEvent[], runId: string) =>
    events.find((event) => event.type === 'agent_started' && (event.data as { metadata?: { retryOf?: string } }).metadata?.retryOf === runId);
  const finished = async (queue: BullMQRunQueue, runId: string) => {
    // The terminal event is in the log before the queue records the end.
    for (let i = 0; i < 300 && (await queue.status(runId))?.state !== 'finished'; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    return queue.status(runId);
  };
  /** Each run of the thread: exactly one terminal event, last; seqs gapless; the thread's grammar holds. */
  const expectOneTerminalEach = (events: AgentEvent[]) => {
    expect(validateLifecycle(events)).toMatchObject({ ok: true });
    expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
    for (const runId of runIds(events)) {
      const own = events.filter((event) => event.runId === runId);
      expect(own.filter((event) => event.type === 'agent_completed'), runId).toHaveLength(1);
      expect(own.at(-1)!.type).toBe('agent_completed');
      expect(own.map((event) => event.seq)).toEqual(own.map((_, i) => i + 1));
    }
  };

  /** A worker w1, a queue and a follower of the thread, and a 3-step run w1 has started (to be lost). */
  const startOnW1 = async (userId: string, threadId: string, queueOptions: Partial<ConstructorParameters<typeof BullMQRunQueue>[0]> = {}, metadata?: Record<string, unknown>) => {
    const w1 = await spawnWorker('w1');
    const queue = openQueue(queueOptions);
    const log = await follow(userId, threadId);
    const lostId = await queue.submit('steps', { steps: 3, stepMs: 300 }, { userId, threadId, ...(metadata && { metadata }) });
    await until(() => started(w1, lostId), 'w1 to start the run', 20_000);
    return { w1, queue, log, lostId };
  };

  it('a run lost with its SIGKILLed worker is run again once as a new run id in the same thread, linked both ways, and ends', async () => {
    const { w1, queue, log, lostId } = await startOnW1('rita', 'thread-retry', { retryLostRuns: { attempts: 1 } }, { via: 'retry-test' });
    await w1.stop('SIGKILL');
    const w2 = await spawnWorker('w2');

    await until(() => log.terminal(lostId).length >= 1, 'WORKER_LOST for the lost run', 20_000);
    expect(log.terminal(lostId)[0]).toMatchObject({ data: { status: 'failed', error: { code: 'WORKER_LOST' } } });
    await until(() => retryOf(log.events, lostId) !== undefined, 'the retry to start', 20_000);
    const retry = retryOf(log.events, lostId)!;
    expect(retry.runId).not.toBe(lostId);
    expect(retry).toMatchObject({ threadId: 'thread-retry', userId: 'rita', agent: 'steps', data: { metadata: { via: 'retry-test', retryOf: lostId, attempt: 2 } } });
    await until(() => log.terminal(retry.runId).length >= 1, 'the retry to end', 20_000);
    expect(log.terminal(retry.runId)[0]).toMatchObject({ data: { status: 'succeeded' } });
    expect(started(w2, retry.runId)).toBe(true);

    // Barrier: a later run of the thread ends after anything else the thread could still receive.
    const marker = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'rita', threadId: 'thread-retry' });
    await until(() => log.terminal(marker).length === 1, 'the marker run', 20_000);
    expect(runIds(log.events)).toEqual([lostId, retry.runId, marker]);
    expectOneTerminalEach(log.events);
    expect(await finished(queue, lostId)).toMatchObject({ state: 'finished', outcome: 'failed', retriedAs: retry.runId, error: { code: 'WORKER_LOST' } });
    expect(await finished(queue, retry.runId)).toMatchObject({ state: 'finished', outcome: 'succeeded', retryOf: lostId, attempt: 2 });
    expect((await queue.status(retry.runId))?.retriedAs).toBeUndefined();
  }, 60_000);

  it('attempts are bounded: a retry lost too ends WORKER_LOST and is not run again', async () => {
    const { w1, queue, log, lostId } = await startOnW1('rex', 'thread-exhausted', { retryLostRuns: { attempts: 1 } });
    await w1.stop('SIGKILL');
    const w2 = await spawnWorker('w2');
    await until(() => retryOf(log.events, lostId) !== undefined, 'the retry to start', 20_000);
    const retryId = retryOf(log.events, lostId)!.runId;
    await until(() => started(w2, retryId), 'w2 to start the retry', 20_000);
    await w2.stop('SIGKILL');
    await until(() => log.terminal(retryId).length >= 1, 'WORKER_LOST for the retry', 20_000);
    expect(log.terminal(retryId)[0]).toMatchObject({ data: { status: 'failed', error: { code: 'WORKER_LOST' } } });

    await spawnWorker('w3');
    const marker = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'rex', threadId: 'thread-exhausted' });
    await until(() => log.terminal(marker).length === 1, 'the marker run', 20_000);
    expect(runIds(log.events)).toEqual([lostId, retryId, marker]);
    expectOneTerminalEach(log.events);
    expect(await finished(queue, retryId)).toMatchObject({ state: 'finished', outcome: 'failed', retryOf: lostId, attempt: 2 });
    expect((await queue.status(retryId))?.retriedAs).toBeUndefined();
  }, 60_000);

  it('a lost run whose user had asked to cancel it is not run again: it ends WORKER_LOST, no retry', async () => {
    const { w1, queue, log, lostId } = await startOnW1('cara', 'thread-cancel-lost', { retryLostRuns: { attempts: 2 } });
    // Frozen, the worker cannot act on the cancel; then it dies with the run.
    process.kill(w1.pid!, 'SIGSTOP');
    expect(await queue.cancel(lostId, { userId: 'cara' })).toBe('requested');
    await w1.stop('SIGKILL');
    const w2 = await spawnWorker('w2');
    await until(() => log.terminal(lostId).length >= 1, 'WORKER_LOST for the lost run', 20_000);
    expect(log.terminal(lostId)[0]).toMatchObject({ data: { status: 'failed', error: { code: 'WORKER_LOST' } } });
    const marker = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'cara', threadId: 'thread-cancel-lost' });
    await until(() => log.terminal(marker).length === 1, 'the marker run', 20_000);
    expect(runIds(log.events)).toEqual([lostId, marker]);
    expect(retryOf(log.events, lostId)).toBeUndefined();
    expect(started(w2, marker)).toBe(true);
    expectOneTerminalEach(log.events);
    expect(await finished(queue, lostId)).not.toHaveProperty('retriedAs');
  }, 60_000);

  it('off by default: a lost run is not run again', async () => {
    const { w1, queue, log, lostId } = await startOnW1('ron', 'thread-default');
    await w1.stop('SIGKILL');
    await spawnWorker('w2');
    await until(() => log.terminal(lostId).length >= 1, 'WORKER_LOST for the lost run', 20_000);
    const marker = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'ron', threadId: 'thread-default' });
    await until(() => log.terminal(marker).length === 1, 'the marker run', 20_000);
    expect(runIds(log.events)).toEqual([lostId, marker]);
    expectOneTerminalEach(log.events);
    expect(await finished(queue, lostId)).not.toHaveProperty('retriedAs');
  }, 60_000);
});
