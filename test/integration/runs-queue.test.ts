import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport, generateRunId, validateLifecycle } from '../../src/index.js';
import { MemoryRunQueue, type RunQueue } from '../../src/runs/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisStreamsTransport, RedisEventLog } from '../../src/transport/redis/index.js';
import { REDIS_URL, deletePrefix, describeWithRedis, probeRedis, testPrefix } from '../helpers/redis-env.js';
import { LogCollector, StepAgent } from '../helpers/runs-agents.js';
import { until } from '../helpers/wait.js';

const availability = await probeRedis();

/** The contract, for both queues: `make` gives a queue, a worker's agent, and the log to read. */
interface Setup {
  queue: RunQueue;
  other: RunQueue;
  agent: StepAgent;
  follow: (userId: string, threadId: string) => Promise<LogCollector>;
  close: () => Promise<void>;
}

function contract(name: string, make: () => Promise<Setup>) {
  describe(name, () => {
    let setup: Setup;
    afterEach(async () => {
      await setup?.close();
    });

    it('submit returns a run id at once; a worker runs it; status goes queued → finished', async () => {
      setup = await make();
      const { queue, agent } = setup;
      const log = await setup.follow('alice', 't-submit');
      const runId = await queue.submit('steps', { steps: 2, stepMs: 5 }, { userId: 'alice', threadId: 't-submit', metadata: { via: 'test' } });
      expect(runId).toMatch(/^thread_t-submit_run_/);
      expect((await queue.status(runId))?.state).toMatch(/queued|running/);
      queue.serve({ agents: [agent] }, { concurrency: 2 });
      await until(() => log.terminal(runId).length === 1, 'the run to end', 10_000);
      // The terminal event is in the log before the queue records the end: wait for the status.
      for (let i = 0; i < 200 && (await queue.status(runId))?.state !== 'finished'; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      const status = await queue.status(runId);
      expect(status).toMatchObject({ state: 'finished', outcome: 'succeeded', userId: 'alice', agent: 'steps' });
      expect(status!.waitMs).toBeGreaterThanOrEqual(0);
      expect(validateLifecycle(log.events)).toEqual({ ok: true, runs: 1 });
      expect(log.events[0]).toMatchObject({ type: 'agent_started', data: { metadata: { via: 'test' } } });
      expect((await queue.stats()).waitMs.count).toBeGreaterThanOrEqual(1);
      // Another user's submit into the thread is refused and leaves nothing: no status, no admission slot taken.
      const refused = generateRunId('t-submit');
      await expect(queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'mallory', threadId: 't-submit', runId: refused })).rejects.toMatchObject({
        code: 'THREAD_FORBIDDEN',
      });
      expect(await queue.status(refused)).toBeUndefined();
      expect((await queue.stats()).queued).toBe(0);
      const own = await setup.follow('mallory', 't-mallory');
      const mine = await Promise.all([0, 1].map(() => queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'mallory', threadId: 't-mallory' })));
      await until(() => mine.every((runId) => own.terminal(runId).length === 1), "mallory's own runs (maxRunsPerUser 2) to end", 10_000);
    });

    it('cancel from another queue handle: owner only; the running run closes its tool, then ends cancelled', async () => {
      setup = await make();
      const { queue, other, agent } = setup;
      const log = await setup.follow('bob', 't-cancel');
      queue.serve({ agents: [agent] }, { concurrency: 1 });
      const runId = await queue.submit('steps', { steps: 100, stepMs: 200 }, { userId: 'bob', threadId: 't-cancel' });
      await until(() => log.events.some((event) => event.type === 'tool_executing'), 'the run to be in a tool', 10_000);
      await expect(other.cancel(runId, { userId: 'mallory' })).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
      await expect(other.cancel('thread_t-cancel_run_1_nope', { userId: 'bob' })).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
      const asked = Date.now();
      expect(await other.cancel(runId, { userId: 'bob' })).toBe('requested');
      await until(() => log.terminal(runId).length === 1, 'the cancelled terminal event', 5_000);
      const tookMs = Date.now() - asked;
      expect(tookMs).toBeLessThan(2_000);
      const events = log.events.filter((event) => event.runId === runId);
      expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
      expect(events.at(-2)).toMatchObject({ type: 'tool_completed', data: { status: 'failed' } });
      expect(events.at(-1)).toMatchObject({ type: 'agent_completed', data: { status: 'cancelled' } });
      // The terminal event is in the log before the queue records the end: wait for the status.
      for (let i = 0; i < 200 && (await queue.status(runId))?.state !== 'finished'; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await queue.status(runId)).toMatchObject({ state: 'finished', outcome: 'cancelled', cancelRequested: true });
      expect(await other.cancel(runId, { userId: 'bob' })).toBe('already_finished');
    });

    it('a queued run cancelled before any worker took it ends at once: agent_started, agent_completed cancelled', async () => {
      setup = await make();
      const { queue, other, agent } = setup;
      const log = await setup.follow('carol', 't-queued');
      const runId = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'carol', threadId: 't-queued' });
      const result = await other.cancel(runId, { userId: 'carol' });
      expect(['cancelled', 'requested']).toContain(result);
      queue.serve({ agents: [agent] }); // the memory queue needs a worker's bridge to write the events
      await until(() => log.terminal(runId).length === 1, 'the cancelled terminal event', 5_000);
      expect(log.events.map((event) => event.type)).toEqual(['agent_started', 'agent_completed']);
      expect(log.events[1]).toMatchObject({ data: { status: 'cancelled' } });
      expect(await queue.status(runId)).toMatchObject({ state: 'finished', outcome: 'cancelled', cancelRequested: true });
    });

    it('a run id already used in the log by a run outside the queue is refused at submit: nothing queued, no second start, one terminal', async () => {
      setup = await make();
      const { queue, agent } = setup;
      const log = await setup.follow('ivy', 't-reuse');
      const runId = generateRunId('t-reuse');
      expect((await agent.run({ steps: 1, stepMs: 1 }, { userId: 'ivy', threadId: 't-reuse', runId })).status).toBe('succeeded');
      await until(() => log.terminal(runId).length === 1, 'the direct run to end', 10_000);
      queue.serve({ agents: [agent] }, { concurrency: 1 });
      // Both queues ask the log (BullMQ: the Redis log's hasRun; memory: its workers' bridges) before queueing a client-given id: refused at submit, nothing queued.
      await expect(queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'ivy', threadId: 't-reuse', runId })).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
      expect(await queue.status(runId)).toBeUndefined();
      // Barrier: a later run of the thread ends after anything the refused start could have written.
      const marker = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'ivy', threadId: 't-reuse' });
      await until(() => log.terminal(marker).length === 1, 'the marker run', 10_000);
      const events = log.events.filter((event) => event.runId === runId);
      expect(events.filter((event) => event.type === 'agent_started')).toHaveLength(1);
      expect(log.terminal(runId)).toHaveLength(1);
      expect(log.terminal(runId)[0]).toMatchObject({ data: { status: 'succeeded' } });
      expect(validateLifecycle(log.events)).toEqual({ ok: true, runs: 2 });
    });

    it('admission: runs per user and queue length are refused with 429 and a reason', async () => {
      setup = await make();
      const { queue } = setup;
      const limited = setup.queue;
      for (let i = 0; i < 2; i++) await limited.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'dave', threadId: `t-adm-${i}` });
      await expect(limited.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'dave', threadId: 't-adm-9' })).rejects.toMatchObject({
        code: 'TOO_MANY_RUNS',
        status: 429,
        details: { reason: 'runs_per_user' },
      });
      await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'erin', threadId: 't-adm-e1' });
      await expect(queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'frank', threadId: 't-adm-f1' })).rejects.toMatchObject({
        code: 'QUEUE_FULL',
        status: 429,
        details: { reason: 'queue_length' },
      });
      await expect(queue.submit('steps', { big: 1n }, { userId: 'erin', threadId: 't-adm-x' })).rejects.toMatchObject({ code: 'INPUT_NOT_SERIALIZABLE' });
      expect((await queue.stats()).queued).toBe(3);
    });
  });
}

contract('MemoryRunQueue', async () => {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  const queue = new MemoryRunQueue({ maxRunsPerUser: 2, maxQueued: 3 });
  return {
    queue,
    other: queue,
    agent: new StepAgent({ bridge }),
    follow: async (userId, threadId) => {
      const collector = new LogCollector();
      const result = await transport.subscribe({ userId, threadId }, collector);
      if (result.status !== 'subscribed') throw new Error('not subscribed');
      return collector.add(result.replay);
    },
    close: async () => {
      await queue.close({ timeoutMs: 100 });
      await bridge.close();
    },
  };
});

describeWithRedis('BullMQRunQueue (in one process)', availability, () => {
  const prefixes: string[] = [];
  afterAll(async () => {
    for (const prefix of prefixes) await deletePrefix(prefix);
  });
  contract('contract', async () => {
    const keyPrefix = testPrefix('runs-queue');
    prefixes.push(keyPrefix);
    const transport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix });
    const bridge = new AgentBridge({ transport });
    const options = { url: REDIS_URL, keyPrefix, maxRunsPerUser: 2, maxQueued: 3, leaseMs: 1_000, reapIntervalMs: 100 };
    const queue = new BullMQRunQueue(options);
    const other = new BullMQRunQueue(options);
    const log = new RedisEventLog({ url: REDIS_URL, keyPrefix, blockMs: 200 });
    const subscriptions: Array<{ close(): void }> = [];
    return {
      queue,
      other,
      agent: new StepAgent({ bridge }),
      follow: async (userId, threadId) => {
        const collector = new LogCollector();
        const result = await log.subscribe({ userId, threadId }, collector);
        if (result.status !== 'subscribed') throw new Error('not subscribed');
        subscriptions.push(result.subscription);
        return collector.add(result.replay);
      },
      close: async () => {
        for (const subscription of subscriptions) subscription.close();
        await queue.close({ timeoutMs: 100 });
        await other.close();
        await bridge.close();
        await transport.close();
        await log.close();
      },
    };
  });
});


describe('MemoryRunQueue thread ownership (an index, not a scan)', () => {
  it("refuses another user's thread while a run of it is retained, and forgets the owner with the thread's last retained run", async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const queue = new MemoryRunQueue({ maxFinished: 1, maxRunsPerUser: 100 });
    try {
      const collector = new LogCollector();
      const sub = await transport.subscribe({ userId: 'alice', threadId: 'owned' }, collector);
      if (sub.status !== 'subscribed') throw new Error('not subscribed');
      const first = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'owned' });
      await expect(queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'mallory', threadId: 'owned' })).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
      queue.serve({ agents: [new StepAgent({ bridge })] }, { concurrency: 1 });
      await until(() => collector.terminal(first).length === 1, 'the first run to end', 10_000);
      // Another thread's run ends: with maxFinished 1 the first run's status is forgotten, and with it the thread's queue-side owner.
      const other = new LogCollector();
      const otherSub = await transport.subscribe({ userId: 'bob', threadId: 'elsewhere' }, other);
      if (otherSub.status !== 'subscribed') throw new Error('not subscribed');
      const second = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'bob', threadId: 'elsewhere' });
      await until(() => other.terminal(second).length === 1, 'the second run to end', 10_000);
      for (let i = 0; i < 100 && (await queue.status(first)) !== undefined; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(await queue.status(first)).toBeUndefined();
      // The queue no longer knows the thread: the log's own owner check refuses the run when it starts.
      const third = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'owned' });
      await until(() => collector.terminal(third).length === 1, 'the owner to run again', 10_000);
    } finally {
      await queue.close({ timeoutMs: 100 });
      await bridge.close();
    }
  });
});

describe("MemoryRunQueue and threads its queue never saw (attack F1)", () => {
  it("refuses another user's submit into a thread the workers' log gives to its owner (a run started by agent.run), so the owner keeps submitting and following it", async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const queue = new MemoryRunQueue({ maxRunsPerUser: 100 });
    try {
      const agent = new StepAgent({ bridge });
      queue.serve({ agents: [agent] }, { concurrency: 2 });
      const alice = new LogCollector();
      const sub = await transport.subscribe({ userId: 'alice', threadId: 'direct' }, alice);
      if (sub.status !== 'subscribed') throw new Error('not subscribed');
      // Alice's first run reaches the log without the queue (agent.run directly, as AG-UI and useChat do).
      const direct = await agent.run({ steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'direct' });
      expect(direct.status).toBe('succeeded');
      expect(await transport.ownerOf('direct')).toBe('alice');
      // Mallory's submit is refused before anything is queued, with a new run id and with alice's own.
      await expect(queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'mallory', threadId: 'direct' })).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
      await expect(queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'mallory', threadId: 'direct', runId: direct.runId })).rejects.toMatchObject({
        code: 'THREAD_FORBIDDEN',
      });
      expect((await queue.stats()).queued).toBe(0);
      expect(await queue.status(direct.runId)).toBeUndefined();
      // Alice is not locked out: her submit runs, and what her subscription received is her runs only.
      const queued = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'direct' });
      await until(() => alice.terminal(queued).length === 1, "alice's queued run to end", 10_000);
      expect(alice.events.every((event) => event.userId === 'alice')).toBe(true);
      expect(new Set(alice.events.map((event) => event.runId))).toEqual(new Set([direct.runId, queued]));
      expect(validateLifecycle(alice.events)).toEqual({ ok: true, runs: 2 });
    } finally {
      await queue.close({ timeoutMs: 100 });
      await bridge.close();
    }
  });

  it("a run queued before the thread's owner appeared in the log fails THREAD_FORBIDDEN on the worker and leaves the thread to its owner's submits", async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const queue = new MemoryRunQueue({ maxRunsPerUser: 100 });
    try {
      const agent = new StepAgent({ bridge });
      const alice = new LogCollector();
      const sub = await transport.subscribe({ userId: 'alice', threadId: 'raced' }, alice);
      if (sub.status !== 'subscribed') throw new Error('not subscribed');
      // No worker yet: mallory's submit is admitted on what the queue knows (nothing of the thread).
      const early = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'mallory', threadId: 'raced' });
      // Then alice's own run reaches the log first (agent.run directly).
      expect((await agent.run({ steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'raced' })).status).toBe('succeeded');
      queue.serve({ agents: [agent] }, { concurrency: 1 });
      for (let i = 0; i < 500 && (await queue.status(early))?.state !== 'finished'; i++) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(await queue.status(early)).toMatchObject({ state: 'finished', outcome: 'failed', error: { code: 'THREAD_FORBIDDEN' } });
      // Alice is not locked out by mallory's finished run, and her subscription got only her own events.
      const mine = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'raced' });
      await until(() => alice.terminal(mine).length === 1, "alice's queued run to end", 10_000);
      expect(alice.events.every((event) => event.userId === 'alice')).toBe(true);
      expect(alice.events.some((event) => event.runId === early)).toBe(false);
      await expect(queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'mallory', threadId: 'raced' })).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
    } finally {
      await queue.close({ timeoutMs: 100 });
      await bridge.close();
    }
  });
});
