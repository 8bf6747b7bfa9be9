/**
 * The run queue through a Redis crash: a redis-server of the test's own (AOF, fsync always) on a
 * spare port, BullMQ workers as child processes, runs in flight when Redis is SIGKILLed and
 * started again on the same port (AOF replayed). What the subscribers received is the evidence.
 */
import { afterEach, expect, it } from 'vitest';
import { validateLifecycle, type AgentEvent } from '../../src/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisEventLog } from '../../src/transport/redis/index.js';
import { ExampleProcess } from '../../examples/scale-out/processes.js';
import { OwnedRedisServer, dedupeById, describeWithRedis, redisServerBinary } from '../helpers/redis-env.js';
import { LogCollector } from '../helpers/runs-agents.js';
import { until } from '../helpers/wait.js';

const availability = redisServerBinary();
const LEASE_MS = 2_000;
const REAP_MS = 100;
const reconnect = { reconnectMinDelayMs: 10, reconnectMaxDelayMs: 100, connectTimeoutMs: 1_000 };

describeWithRedis('run queue through a Redis crash (fsync-always AOF, worker child processes)', availability, () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  });

  it('Redis SIGKILLed and restarted mid-flow: every run ends with exactly one terminal event, nothing accepted lost or shown twice', async () => {
    const server = await OwnedRedisServer.start({ persistent: true });
    cleanups.push(() => server.dispose());
    const keyPrefix = 'aof:';
    const workers = ['w1', 'w2', 'w3'].map((name) => {
      const child = new ExampleProcess(name, '../runs/worker.ts', {
        REDIS_URL: server.url,
        AGENTWIRE_KEY_PREFIX: keyPrefix,
        LEASE_MS: String(LEASE_MS),
        REAP_INTERVAL_MS: String(REAP_MS),
        CONCURRENCY: '4',
      });
      cleanups.push(() => child.stop('SIGKILL'));
      return child;
    });
    await Promise.all(workers.map((worker) => worker.message('ready')));
    const queue = new BullMQRunQueue({ url: server.url, keyPrefix, leaseMs: LEASE_MS, reapIntervalMs: REAP_MS, reap: true, maxRunsPerUser: 10, ...reconnect });
    cleanups.push(() => queue.close());
    const log = new RedisEventLog({ url: server.url, keyPrefix, blockMs: 200, ...reconnect });
    cleanups.push(() => log.close());
    const users = Array.from({ length: 8 }, (_, i) => `user-${i}`);
    const followers = new Map<string, LogCollector>();
    for (const user of users) {
      const collector = new LogCollector();
      const result = await log.subscribe({ userId: user, threadId: `thread-${user}` }, collector);
      if (result.status !== 'subscribed') throw new Error(`not subscribed: ${user}`);
      cleanups.push(() => result.subscription.close());
      followers.set(user, collector.add(result.replay));
    }

    const runs: Array<{ runId: string; user: string }> = [];
    for (let round = 0; round < 4; round++) {
      for (const user of users) runs.push({ runId: await queue.submit('steps', { steps: 6, stepMs: 60 }, { userId: user, threadId: `thread-${user}` }), user });
    }
    // Crash while runs are on workers and others still wait in the queue.
    const startedCount = () => workers.reduce((n, worker) => n + worker.messages.filter((message) => message.type === 'run_started').length, 0);
    await until(() => startedCount() >= 8, 'runs on the workers', 20_000);
    const startedBeforeCrash = startedCount();
    await server.stop('SIGKILL');
    await server.start();

    const shown = (user: string) => dedupeById(followers.get(user)!.events);
    const terminals = (run: { runId: string; user: string }) => shown(run.user).filter((event) => event.runId === run.runId && event.type === 'agent_completed');
    try {
      await until(() => runs.every((run) => terminals(run).length >= 1), 'every run to end', 60_000);
    } catch (error) {
      // Which runs did not end, what the queue says of them, and what their thread showed last.
      const open = runs.filter((run) => terminals(run).length === 0);
      const detail = await Promise.all(
        open.map(async (run) => ({
          runId: run.runId,
          status: await queue.status(run.runId).catch((cause: unknown) => String(cause)),
          shown: shown(run.user)
            .filter((event) => event.runId === run.runId)
            .map((event) => `${event.seq}:${event.type}`),
        })),
      );
      throw new Error(`${String(error)}; ${open.length} of ${runs.length} runs open: ${JSON.stringify(detail)}`);
    }
    // Barrier: one more run per thread, submitted after the others ended, ends after everything they could still write.
    const markers = await Promise.all(users.map(async (user) => ({ user, runId: await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: user, threadId: `thread-${user}` }) })));
    await until(() => markers.every((marker) => terminals(marker).length === 1), 'the marker runs', 30_000);

    const statusOf = (event: AgentEvent) => (event.data as { status?: string; error?: { code?: string } });
    const outcomes: Record<string, number> = {};
    for (const user of users) {
      const received = followers.get(user)!.events;
      // Never anyone else's; the thread's grammar holds on what a client shows (dedupe by id).
      expect(received.every((event) => event.userId === user)).toBe(true);
      expect(validateLifecycle(shown(user)), user).toMatchObject({ ok: true });
    }
    for (const run of [...runs, ...markers]) {
      const raw = followers.get(run.user)!.events.filter((event) => event.runId === run.runId);
      const events = dedupeById(raw);
      // Exactly one terminal event, even counting repeats the log handed out; nothing after it.
      expect(raw.filter((event) => event.type === 'agent_completed'), run.runId).toHaveLength(1);
      expect(events.at(-1)!.type).toBe('agent_completed');
      // None lost: seqs 1..n with no gap; none shown twice (dedupe by id leaves one per seq).
      expect(events.map((event) => event.seq)).toEqual(events.map((_, i) => i + 1));
      const end = statusOf(events.at(-1)!);
      const key = end.error?.code ? `${end.status} ${end.error.code}` : String(end.status);
      outcomes[key] = (outcomes[key] ?? 0) + 1;
      let status = await queue.status(run.runId);
      for (let i = 0; i < 300 && status?.state !== 'finished'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        status = await queue.status(run.runId);
      }
      expect(status).toMatchObject({ state: 'finished', outcome: end.status });
    }
    console.log(`[runs-redis-restart] ${runs.length} runs (+${markers.length} markers), ${startedBeforeCrash} started before the crash; outcomes: ${JSON.stringify(outcomes)}`);
  }, 120_000);
});
