import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { validateLifecycle, type AgentEvent } from '../../src/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisEventLog } from '../../src/transport/redis/index.js';
import { ExampleProcess } from '../../examples/scale-out/processes.js';
import { REDIS_URL, deletePrefix, describeWithRedis, probeRedis, testPrefix } from '../helpers/redis-env.js';
import { LogCollector, followThread } from '../helpers/runs-agents.js';
import { until, untilAsync } from '../helpers/wait.js';

const availability = await probeRedis();
const LEASE_MS = 1_000;
const REAP_MS = 100;

describeWithRedis('run queue across processes: BullMQ workers as child processes', availability, () => {
  let prefix: string;
  const processes: ExampleProcess[] = [];
  const closers: Array<() => Promise<void> | void> = [];

  beforeAll(() => {
    prefix = testPrefix('runs-multiprocess');
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await Promise.all(processes.splice(0).map((child) => child.stop('SIGKILL')));
  });
  afterAll(async () => {
    await deletePrefix(prefix);
  });

  const spawnWorker = (name: string, env: Record<string, string> = {}) => {
    const child = new ExampleProcess(name, '../runs/worker.ts', {
      REDIS_URL,
      AGENTWIRE_KEY_PREFIX: prefix,
      LEASE_MS: String(LEASE_MS),
      REAP_INTERVAL_MS: String(REAP_MS),
      ...env,
    });
    processes.push(child);
    return child;
  };
  const openQueue = (extra: Partial<ConstructorParameters<typeof BullMQRunQueue>[0]> = {}) => {
    const queue = new BullMQRunQueue({ url: REDIS_URL, keyPrefix: prefix, leaseMs: LEASE_MS, reapIntervalMs: REAP_MS, maxRunsPerUser: 10, ...extra });
    closers.push(() => queue.close());
    return queue;
  };
  const openLog = () => {
    const log = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix, blockMs: 200 });
    closers.push(() => log.close());
    return log;
  };
  const follow = (log: RedisEventLog, userId: string, threadId: string) => followThread(log, userId, threadId, closers);
  const runEvents = (events: AgentEvent[], runId: string) => events.filter((event) => event.runId === runId);

  it('200 runs from 50 users over 3 workers, one SIGKILLed mid-run: every run ends exactly once, its lost runs with WORKER_LOST', async () => {
    const workers = [spawnWorker('w1', { CONCURRENCY: '4' }), spawnWorker('w2', { CONCURRENCY: '4' }), spawnWorker('w3', { CONCURRENCY: '4' })];
    await Promise.all(workers.map((worker) => worker.message('ready')));
    const queue = openQueue({ reap: true });
    const log = openLog();
    const users = Array.from({ length: 50 }, (_, i) => `user-${i}`);
    const followers = new Map<string, LogCollector>();
    for (const user of users) followers.set(user, await follow(log, user, `thread-${user}`));

    const submitted = Date.now();
    const runs: Array<{ runId: string; user: string }> = [];
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        users.map(async (user) => {
          const runId = await queue.submit('steps', { steps: 4, stepMs: 40 }, { userId: user, threadId: `thread-${user}` });
          runs.push({ runId, user });
        }),
      );
    }
    const submitMs = Date.now() - submitted;
    // Kill the first worker while it holds runs mid-flight (it reported starting some).
    const victim = workers[0]!;
    await until(() => victim.messages.filter((message) => message.type === 'run_started').length >= 6, 'w1 to start runs', 20_000);
    await victim.stop('SIGKILL');
    const killedAt = Date.now();

    const terminalOf = (run: { runId: string; user: string }) => followers.get(run.user)!.terminal(run.runId);
    await until(() => runs.every((run) => terminalOf(run).length >= 1), 'every run to end', 60_000).catch(async (error: Error) => {
      // Name the runs that did not end: what their followers got, what the queue says, which worker started them.
      const open = runs.filter((run) => terminalOf(run).length === 0);
      const detail = await Promise.all(
        open.slice(0, 5).map(async (run) => ({
          ...run,
          got: runEvents(followers.get(run.user)!.events, run.runId).map((event) => `${event.seq}:${event.type}`),
          status: await queue.status(run.runId),
          startedOn: workers.filter((worker) => worker.messages.some((message) => message.type === 'run_started' && message.runId === run.runId)).map((worker) => worker.name),
        })),
      );
      throw new Error(`${error.message}: ${open.length} of ${runs.length} open, e.g. ${JSON.stringify(detail)}`);
    });
    const allDoneMs = Date.now() - submitted;

    const statusOf = (event: AgentEvent) => (event.data as { status?: string }).status;
    const lost = runs.filter((run) => statusOf(terminalOf(run)[0]!) === 'failed');
    // A lost run was the victim's: no surviving worker ever started it (it may have been claimed
    // by the victim before its agent_started reached the log: then the reaper wrote both events).
    const survivorRuns = new Set(
      workers.slice(1).flatMap((worker) => worker.messages.filter((message) => message.type === 'run_started').map((message) => String(message.runId))),
    );
    const lostAt = lost.map((run) => terminalOf(run)[0]!.ts);
    expect(lost.length).toBeGreaterThan(0);
    for (const run of lost) {
      expect(survivorRuns.has(run.runId)).toBe(false);
      expect(terminalOf(run)[0]).toMatchObject({ data: { status: 'failed', error: { code: 'WORKER_LOST' } } });
    }
    // Barrier: one more run per thread of a lost run, ended after everything else in its thread.
    const markers = await Promise.all(
      [...new Set(lost.map((run) => run.user))].map(async (user) => ({ user, runId: await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: user, threadId: `thread-${user}` }) })),
    );
    await until(() => markers.every((marker) => terminalOf(marker).length === 1), 'the marker runs', 20_000);

    for (const user of users) {
      const events = followers.get(user)!.events;
      expect(events.every((event) => event.userId === user && event.threadId === `thread-${user}`)).toBe(true);
      expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
      const check = validateLifecycle(events);
      expect(check, user).toMatchObject({ ok: true });
    }
    for (const run of runs) {
      const events = runEvents(followers.get(run.user)!.events, run.runId);
      expect(events.filter((event) => event.type === 'agent_completed')).toHaveLength(1);
      expect(events.at(-1)!.type).toBe('agent_completed');
      expect(events.map((event) => event.seq)).toEqual(events.map((_, i) => i + 1));
      const status = await queue.status(run.runId);
      expect(status).toMatchObject({ state: 'finished', outcome: statusOf(events.at(-1)!) });
    }
    const detectMs = Math.max(...lostAt) - killedAt;
    expect(detectMs).toBeLessThan(LEASE_MS + REAP_MS + 1_500);
    console.log(
      `[runs-multiprocess] 200 runs: submit ${submitMs} ms (${Math.round(200_000 / submitMs)} submits/s), all ended ${allDoneMs} ms ` +
        `(${Math.round(200_000 / allDoneMs)} runs/s incl. the kill), ${lost.length} WORKER_LOST, SIGKILL → last WORKER_LOST ${detectMs} ms (lease ${LEASE_MS} ms)`,
    );
  }, 120_000);

  it('a worker killed after BullMQ handed it a job but before it claimed the run: another worker runs the run (it never started)', async () => {
    const taker = new ExampleProcess('taker', '../../test/helpers/bullmq-job-taker.ts', { REDIS_URL, AGENTWIRE_KEY_PREFIX: prefix, LEASE_MS: String(LEASE_MS) });
    processes.push(taker);
    await taker.message('ready');
    const queue = openQueue({ reap: true });
    const log = openLog();
    const followed = await follow(log, 'tess', 'thread-taken');
    const runId = await queue.submit('steps', { steps: 2, stepMs: 1 }, { userId: 'tess', threadId: 'thread-taken' });
    expect((await taker.message('took')).runId).toBe(runId);
    await taker.stop('SIGKILL');

    const survivor = spawnWorker('w-after-taker');
    await survivor.message('ready');
    await until(() => followed.terminal(runId).length === 1, 'the taken run to end', 20_000);
    const events = runEvents(followed.events, runId);
    const step = ['agent_thinking', 'tool_executing', 'tool_completed'];
    expect(events.map((event) => event.type)).toEqual(['agent_started', ...step, ...step, 'agent_completed']);
    expect(events.at(-1)).toMatchObject({ data: { status: 'succeeded' } });
    expect(survivor.messages.filter((message) => message.type === 'run_started').map((message) => message.runId)).toEqual([runId]);
    // The worker records the end in the queue after its terminal event reached the log.
    await untilAsync(async () => (await queue.status(runId))?.state === 'finished', 'the queue to record the end');
    expect(await queue.status(runId)).toMatchObject({ state: 'finished', outcome: 'succeeded' });
  });

  it('a slow, not dead, worker is fenced: one terminal (WORKER_LOST), nothing of it after, and it reports RUN_FENCED', async () => {
    const worker = spawnWorker('slow', { CONCURRENCY: '1' });
    await worker.message('ready');
    const queue = openQueue({ reap: true });
    const log = openLog();
    const events = await follow(log, 'sam', 'thread-slow');
    // Step 1 blocks the worker's event loop for 3 leases: no renewal, so another process ends the run.
    const runId = await queue.submit('steps', { steps: 4, stepMs: 20, blockAt: 1, blockMs: 3 * LEASE_MS }, { userId: 'sam', threadId: 'thread-slow' });
    await until(() => events.terminal(runId).length === 1, 'WORKER_LOST from the reaper', 20_000);
    expect(events.terminal(runId)[0]).toMatchObject({ data: { status: 'failed', error: { code: 'WORKER_LOST' } } });
    // Barrier: the worker woke up, went on writing (refused by the log), and reported it.
    const fenced = await worker.message('fenced', 20_000);
    expect(fenced).toMatchObject({ runId, code: 'RUN_FENCED' });
    expect(Number(fenced.refused)).toBeGreaterThan(0);
    const marker = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'sam', threadId: 'thread-slow' });
    await until(() => events.terminal(marker).length === 1, 'the marker run', 20_000);
    const run = runEvents(events.events, runId);
    expect(run.filter((event) => event.type === 'agent_completed')).toHaveLength(1);
    expect(run.at(-1)!.type).toBe('agent_completed');
    expect(validateLifecycle(run)).toEqual({ ok: true, runs: 1 });
    // The open tool call (the blocked one) was closed before the terminal event.
    expect(run.at(-2)).toMatchObject({ type: 'tool_completed', data: { status: 'failed', error: { code: 'WORKER_LOST' } } });
    expect(await queue.status(runId)).toMatchObject({ state: 'finished', outcome: 'failed', error: { code: 'WORKER_LOST' } });
  }, 60_000);

  it('cancel from another process: the run on a worker process closes its tool and ends cancelled, bounded', async () => {
    const worker = spawnWorker('cancel-worker', { CONCURRENCY: '2' });
    await worker.message('ready');
    const submitter = openQueue();
    const canceller = openQueue();
    const log = openLog();
    const events = await follow(log, 'cara', 'thread-cancel');
    const runId = await submitter.submit('steps', { steps: 200, stepMs: 100 }, { userId: 'cara', threadId: 'thread-cancel' });
    await until(() => events.events.some((event) => event.runId === runId && event.type === 'tool_executing'), 'the run to be in a tool', 20_000);
    await expect(canceller.cancel(runId, { userId: 'mallory' })).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
    const asked = Date.now();
    expect(await canceller.cancel(runId, { userId: 'cara' })).toBe('requested');
    await until(() => events.terminal(runId).length === 1, 'the cancelled terminal', 10_000);
    const cancelMs = Date.now() - asked;
    const run = runEvents(events.events, runId);
    expect(run.at(-2)).toMatchObject({ type: 'tool_completed', data: { status: 'failed' } });
    expect(run.at(-1)).toMatchObject({ type: 'agent_completed', data: { status: 'cancelled' } });
    expect(validateLifecycle(run)).toEqual({ ok: true, runs: 1 });
    expect(cancelMs).toBeLessThan(LEASE_MS);
    console.log(`[runs-multiprocess] cancel from another process → agent_completed cancelled received: ${cancelMs} ms`);
  }, 60_000);

  it('graceful shutdown: takes no new run, lets a short run finish, cancels a long one after the timeout, exits', async () => {
    const worker = spawnWorker('graceful', { CONCURRENCY: '2', CLOSE_TIMEOUT_MS: '800' });
    await worker.message('ready');
    const queue = openQueue();
    const log = openLog();
    const events = await follow(log, 'gina', 'thread-graceful');
    const short = await queue.submit('steps', { steps: 5, stepMs: 60 }, { userId: 'gina', threadId: 'thread-graceful' });
    const long = await queue.submit('steps', { steps: 500, stepMs: 50 }, { userId: 'gina', threadId: 'thread-graceful' });
    await until(() => worker.messages.filter((message) => message.type === 'run_started').length === 2, 'both runs started', 20_000);
    await worker.stop('SIGTERM').catch(() => undefined);
    expect(worker.messages.some((message) => message.type === 'closed')).toBe(true);
    expect(await worker.exited).toBe(0);
    const late = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'gina', threadId: 'thread-graceful' });
    await until(() => events.terminal(short).length === 1 && events.terminal(long).length === 1, 'both terminals', 10_000);
    expect(events.terminal(short)[0]).toMatchObject({ data: { status: 'succeeded' } });
    expect(events.terminal(long)[0]).toMatchObject({ data: { status: 'cancelled', error: { message: expect.stringContaining('shutting down') } } });
    expect(validateLifecycle(events.events)).toEqual({ ok: true, runs: 2 });
    // The worker is gone (exited): the run submitted after SIGTERM was never taken.
    expect(await queue.status(late)).toMatchObject({ state: 'queued' });
    await queue.cancel(late, { userId: 'gina' });
  }, 60_000);
});
