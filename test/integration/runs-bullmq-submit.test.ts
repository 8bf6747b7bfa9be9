/**
 * What `BullMQRunQueue.submit` refuses before anything is queued (attack findings F1, F3), and
 * what its operations reject with while Redis is down (F2): a redis-server of the test's own,
 * killed and started again on the same port.
 */
import { afterAll, afterEach, expect, it, vi } from 'vitest';
import { AgentBridge, TransportError, generateRunId } from '../../src/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { OwnedRedisServer, REDIS_URL, deletePrefix, describeWithRedis, probeRedis, rawClient, redisServerBinary, testPrefix } from '../helpers/redis-env.js';
import { StepAgent } from '../helpers/runs-agents.js';

const QUEUE = 'bullq-submit';
const availability = await probeRedis();
const serverBinary = redisServerBinary();

describeWithRedis('BullMQRunQueue.submit refuses before queueing (F1, F3)', availability, () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  const prefixes: string[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  });
  afterAll(async () => {
    for (const prefix of prefixes) await deletePrefix(prefix);
  });

  function setup() {
    const keyPrefix = testPrefix('runs-bullmq-submit');
    prefixes.push(keyPrefix);
    const options = { url: REDIS_URL, keyPrefix, queueName: QUEUE, maxRunsPerUser: 50, leaseMs: 1_000, reapIntervalMs: 100 };
    const queue = new BullMQRunQueue(options);
    // Another process's handle on the same queue.
    const other = new BullMQRunQueue(options);
    const transport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix });
    const bridge = new AgentBridge({ transport });
    cleanups.push(
      () => transport.close(),
      () => bridge.close(),
      () => other.close({ timeoutMs: 100 }),
      () => queue.close({ timeoutMs: 100 }),
    );
    const threadKey = (threadId: string) => `${keyPrefix}{${QUEUE}}:aw:thread:${threadId}`;
    return { queue, other, transport, agent: new StepAgent({ bridge }), threadKey };
  }

  it('after close() every operation refuses with QUEUE_CLOSED (not the closed connection\'s TRANSPORT_CLOSED)', async () => {
    const { queue, other, agent } = setup();
    const runId = await other.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'ivy', threadId: 't-closed' });
    await queue.close({ timeoutMs: 100 });
    const closed = { code: 'QUEUE_CLOSED', name: 'StateError' };
    await expect(queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'ivy', threadId: 't-closed' })).rejects.toMatchObject(closed);
    await expect(queue.cancel(runId, { userId: 'ivy' })).rejects.toMatchObject(closed);
    await expect(queue.status(runId)).rejects.toMatchObject(closed);
    await expect(queue.stats()).rejects.toMatchObject(closed);
    expect(() => queue.serve({ agents: { steps: agent } })).toThrow(expect.objectContaining(closed));
    // Another handle on the same queue still answers.
    expect(await other.status(runId)).toMatchObject({ state: 'queued' });
  });

  it('F1: a client-given run id the log already holds is refused RUN_ID_CONFLICT at submit (standard and custom ids); nothing is queued', async () => {
    const { queue, other, transport, agent } = setup();
    const standard = generateRunId('t-known');
    expect((await agent.run({ steps: 1, stepMs: 1 }, { userId: 'ivy', threadId: 't-known', runId: standard })).status).toBe('succeeded');
    expect(await transport.hasRun(standard)).toBe(true);
    await expect(queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'ivy', threadId: 't-known', runId: standard })).rejects.toMatchObject({
      code: 'RUN_ID_CONFLICT',
      status: 409,
    });
    // A custom run id the log recorded for another thread.
    const custom = `custom-run-${Date.now()}`;
    expect((await agent.run({ steps: 1, stepMs: 1 }, { userId: 'ivy', threadId: 't-custom', runId: custom })).status).toBe('succeeded');
    await expect(other.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'ivy', threadId: 't-elsewhere', runId: custom })).rejects.toMatchObject({
      code: 'RUN_ID_CONFLICT',
    });
    expect(await queue.status(standard)).toBeUndefined();
    expect(await queue.status(custom)).toBeUndefined();
    expect((await queue.stats()).queued).toBe(0);
    // A fresh client-given id is admitted; the refusals left no admission slot or thread claim behind.
    const fresh = generateRunId('t-known');
    expect(await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'ivy', threadId: 't-known', runId: fresh })).toBe(fresh);
    expect(await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'ivy', threadId: 't-elsewhere' })).toMatch(/^thread_t-elsewhere_run_/);
  });

  it("F3: another user's submit into a thread whose owner's run is still queued is refused THREAD_FORBIDDEN, from any process; the claim goes with the thread's last run", async () => {
    const { queue, other, agent, threadKey } = setup();
    const first = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'chat-1' });
    await expect(queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'bob', threadId: 'chat-1' })).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN', status: 403 });
    await expect(other.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'bob', threadId: 'chat-1' })).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
    const second = await other.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'chat-1' });
    expect((await queue.stats()).queued).toBe(2);

    // Two users race for fresh threads through two handles: exactly one of each pair is admitted.
    const races = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const threadId = `race-${i}`;
        const results = await Promise.allSettled([
          queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId }),
          other.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'bob', threadId }),
        ]);
        for (const result of results) if (result.status === 'rejected') expect(result.reason).toMatchObject({ code: 'THREAD_FORBIDDEN' });
        return results.filter((result) => result.status === 'fulfilled').length;
      }),
    );
    expect(races).toEqual(Array.from({ length: 10 }, () => 1));

    // A refusal by the log's owner (a thread alice started outside the queue) leaves no claim of bob's behind.
    expect((await agent.run({ steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'direct' })).status).toBe('succeeded');
    await expect(queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'bob', threadId: 'direct' })).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
    const redis = await rawClient();
    cleanups.push(() => redis.quit());
    expect(await redis.exists(threadKey('direct'))).toBe(0);

    // The claim is one hash per thread with a TTL, and it goes once the thread's runs ended.
    expect(await redis.hGetAll(threadKey('chat-1'))).toEqual({ owner: 'alice', [`r:${first}`]: '1', [`r:${second}`]: '1' });
    expect(await redis.ttl(threadKey('chat-1'))).toBeGreaterThan(0);
    expect(await queue.cancel(first, { userId: 'alice' })).toBe('cancelled');
    expect(Object.keys(await redis.hGetAll(threadKey('chat-1')))).toEqual(['owner', `r:${second}`]);
    queue.serve({ agents: [agent] }, { concurrency: 4 });
    const ended = async () => (await queue.status(second))?.state === 'finished' && (await redis.exists(threadKey('chat-1'))) === 0;
    for (let i = 0; i < 500 && !(await ended()); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await queue.status(second)).toMatchObject({ state: 'finished', outcome: 'succeeded' });
    expect(await redis.exists(threadKey('chat-1'))).toBe(0);
  });
});

describeWithRedis('BullMQRunQueue while its Redis is down (F2)', serverBinary, () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  });

  it('submit, status, cancel and stats reject TransportError REDIS_UNAVAILABLE (retryable, 503); BullMQ errors go to onError, nothing to the console; it works again once Redis is back', async () => {
    const server = await OwnedRedisServer.start();
    cleanups.push(() => server.dispose());
    const errors: Error[] = [];
    const queue = new BullMQRunQueue({
      url: server.url,
      keyPrefix: 'down:',
      queueName: QUEUE,
      reconnectMinDelayMs: 10,
      reconnectMaxDelayMs: 100,
      connectTimeoutMs: 1_000,
      onError: (error) => errors.push(error),
    });
    cleanups.push(() => queue.close({ timeoutMs: 100 }));
    const consoleError = vi.spyOn(console, 'error');
    const stderr = vi.spyOn(process.stderr, 'write');
    const runId = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 't-down' });

    await server.stop('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const unavailable = { name: 'TransportError', code: 'REDIS_UNAVAILABLE', retryable: true, status: 503 };
    const submitted = queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 't-down-2' });
    await expect(submitted).rejects.toBeInstanceOf(TransportError);
    await expect(submitted).rejects.toMatchObject(unavailable);
    await expect(queue.status(runId)).rejects.toMatchObject(unavailable);
    await expect(queue.cancel(runId, { userId: 'alice' })).rejects.toMatchObject(unavailable);
    await expect(queue.stats()).rejects.toMatchObject(unavailable);
    // Reconnect attempts keep failing meanwhile: BullMQ's Queue reports them to onError.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(errors.length).toBeGreaterThan(0);

    await server.start();
    expect(await queue.connect(5_000)).toBe(true);
    let again: string | undefined;
    for (let i = 0; i < 100 && again === undefined; i++) {
      again = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 't-back' }).catch(async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return undefined;
      });
    }
    expect(again).toMatch(/^thread_t-back_run_/);
    expect((await queue.status(again!))?.state).toBe('queued');
    expect(consoleError).not.toHaveBeenCalled();
    expect(stderr).not.toHaveBeenCalled();
  });
});
