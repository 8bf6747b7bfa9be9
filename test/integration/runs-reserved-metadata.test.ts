/**
 * Attack 9 finding 06: `metadata.retryOf` / `metadata.attempt` are the queue's (a retry of a lost
 * run, `retryLostRuns`). A submitter's metadata carrying them is refused on every submit path
 * (`BullMQRunQueue.submit`, `POST /runs`, `MemoryRunQueue.submit`) before anything is queued, so
 * no run announces itself to the thread as a retry it never was; a genuine retry (a worker child
 * process SIGKILLed mid-run) still links both ways. The evidence is what a real follower of the
 * thread's Redis log received.
 */
import { nanoid } from 'nanoid';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport, ValidationError, generateRunId, type AgentEvent } from '../../src/index.js';
import { tokenFrom, type AuthRequest } from '../../src/gateway/index.js';
import { RunsHandler } from '../../src/gateway/runs/index.js';
import { MemoryRunQueue } from '../../src/runs/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisEventLog, RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { ExampleProcess } from '../../examples/scale-out/processes.js';
import { REDIS_URL, deletePrefix, describeWithRedis, probeRedis } from '../helpers/redis-env.js';
import { StepAgent, followThread } from '../helpers/runs-agents.js';
import { spawnRunsWorker } from '../helpers/runs-worker.js';
import { listenHttp } from '../helpers/http-listen.js';
import { until, untilAsync } from '../helpers/wait.js';

const availability = await probeRedis();
const LEASE_MS = 1_000;
const REAP_MS = 100;
const FORGED_OF = 'thread_victim_run_1700000000000_victimVictim1';

/** The forged metadata of the finding, and variants: each key alone, any value, one through toJSON(). */
const forgeries: Array<[string, Record<string, unknown>, string]> = [
  ['both keys', { retryOf: FORGED_OF, attempt: 7 }, 'metadata.retryOf'],
  ['retryOf alone', { note: 'x', retryOf: FORGED_OF }, 'metadata.retryOf'],
  ['attempt alone', { attempt: 2 }, 'metadata.attempt'],
  ['retryOf null', { retryOf: null }, 'metadata.retryOf'],
  ['through toJSON()', { toJSON: () => ({ retryOf: FORGED_OF, attempt: 7 }) }, 'metadata.retryOf'],
];

const metadataOf = (event: AgentEvent | undefined) => (event?.data as { metadata?: Record<string, unknown> } | undefined)?.metadata;

describe('MemoryRunQueue.submit refuses the reserved metadata keys (retryOf, attempt)', () => {
  it('INVALID_RUN_OPTIONS naming the key, nothing queued; other metadata reaches agent_started unchanged', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const queue = new MemoryRunQueue();
    const agent = new StepAgent({ bridge });
    const started: AgentEvent[] = [];
    agent.on('agent_started', (event) => started.push(event as AgentEvent));
    queue.serve({ agents: [agent] });
    try {
      for (const [, metadata, field] of forgeries) {
        const runId = generateRunId('mem-t');
        const refusal = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'mallory', threadId: 'mem-t', runId, metadata }).catch((error: unknown) => error);
        expect(refusal).toBeInstanceOf(ValidationError);
        expect(refusal).toMatchObject({ code: 'INVALID_RUN_OPTIONS', field, status: 400 });
        expect(await queue.status(runId)).toBeUndefined();
      }
      expect(await queue.stats()).toMatchObject({ submitted: 0, queued: 0 });
      const runId = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'mallory', threadId: 'mem-t', metadata: { via: 'ok', retries: 3 } });
      await untilAsync(async () => (await queue.status(runId))?.state === 'finished', 'the run', 5_000);
      expect(started.map((event) => event.runId)).toEqual([runId]);
      expect(metadataOf(started[0])).toEqual({ via: 'ok', retries: 3 });
    } finally {
      await queue.close({ timeoutMs: 100 });
      await bridge.close();
    }
  });
});

describeWithRedis('BullMQRunQueue and POST /runs refuse the reserved metadata keys; a genuine retry still links both ways', availability, () => {
  const prefixes: string[] = [];
  const closers: Array<() => Promise<unknown> | unknown> = [];
  const processes: ExampleProcess[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await Promise.resolve(close()).catch(() => undefined);
    await Promise.all(processes.splice(0).map((child) => child.stop('SIGKILL')));
  });
  afterAll(async () => {
    for (const prefix of prefixes) await deletePrefix(prefix);
  });

  const newPrefix = () => {
    const prefix = `aw-qm-reserved-meta:${nanoid(8)}:`;
    prefixes.push(prefix);
    return prefix;
  };
  const openQueue = (keyPrefix: string, extra: Partial<ConstructorParameters<typeof BullMQRunQueue>[0]> = {}) => {
    const queue = new BullMQRunQueue({ url: REDIS_URL, keyPrefix, leaseMs: LEASE_MS, reapIntervalMs: REAP_MS, reap: true, ...extra });
    closers.push(() => queue.close({ timeoutMs: 500 }));
    return queue;
  };
  /** A worker in this process, on the Redis log of `keyPrefix`. */
  const serveHere = (queue: BullMQRunQueue, keyPrefix: string) => {
    const transport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix });
    const bridge = new AgentBridge({ transport });
    closers.push(
      () => transport.close(),
      () => bridge.close(),
    );
    queue.serve({ agents: [new StepAgent({ bridge })] });
  };
  const follow = (keyPrefix: string, userId: string, threadId: string) => {
    const log = new RedisEventLog({ url: REDIS_URL, keyPrefix, blockMs: 200 });
    closers.push(() => log.close());
    return followThread(log, userId, threadId, closers);
  };
  const startedOf = (events: AgentEvent[]) => events.filter((event) => event.type === 'agent_started');

  it('BullMQRunQueue.submit: INVALID_RUN_OPTIONS naming the key, nothing queued or logged; the thread then shows only the honest run', async () => {
    const keyPrefix = newPrefix();
    const queue = openQueue(keyPrefix);
    serveHere(queue, keyPrefix);
    const log = await follow(keyPrefix, 'mallory', 'chat-1');
    for (const [name, metadata, field] of forgeries) {
      const runId = generateRunId('chat-1');
      const refusal = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'mallory', threadId: 'chat-1', runId, metadata }).catch((error: unknown) => error);
      expect(refusal, name).toBeInstanceOf(ValidationError);
      expect(refusal, name).toMatchObject({ code: 'INVALID_RUN_OPTIONS', field, status: 400 });
      expect(await queue.status(runId), name).toBeUndefined();
    }
    expect(await queue.stats()).toMatchObject({ submitted: 0, queued: 0, running: 0 });

    const honest = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'mallory', threadId: 'chat-1', metadata: { via: 'ok' } });
    await until(() => log.terminal(honest).length === 1, 'the honest run', 20_000);
    // What the follower received: one run, whose agent_started carries the submitter's metadata and no link.
    expect(startedOf(log.events).map((event) => event.runId)).toEqual([honest]);
    expect(metadataOf(startedOf(log.events)[0])).toEqual({ via: 'ok' });
    const status = await queue.status(honest);
    expect(status).not.toHaveProperty('retryOf');
    expect(status).not.toHaveProperty('attempt');
  }, 40_000);

  it('POST /runs (RunsHandler on a BullMQRunQueue): 400 INVALID_RUN_OPTIONS with the field, nothing queued; an honest body is 202 and its agent_started has no link', async () => {
    const keyPrefix = newPrefix();
    const queue = openQueue(keyPrefix);
    serveHere(queue, keyPrefix);
    const authenticate = (request: AuthRequest) => {
      const token = tokenFrom(request);
      return token ? { userId: token } : null;
    };
    const handler = new RunsHandler({ queue, authenticate, agents: ['steps'] });
    closers.push(() => handler.close());
    const base = `${await listenHttp((req, res) => {
      void handler.handle(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    }, closers)}/runs`;
    const post = (body: unknown) =>
      fetch(base, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json', Authorization: 'Bearer mallory' } });
    const log = await follow(keyPrefix, 'mallory', 'chat-2');

    for (const [metadata, field] of [
      [{ retryOf: FORGED_OF, attempt: 7 }, 'metadata.retryOf'],
      [{ attempt: 7 }, 'metadata.attempt'],
    ] as const) {
      const answer = await post({ agent: 'steps', input: { steps: 1, stepMs: 1 }, threadId: 'chat-2', metadata });
      expect(answer.status).toBe(400);
      const body = (await answer.json()) as { error: { code: string; field?: string; message: string } };
      expect(body.error).toMatchObject({ code: 'INVALID_RUN_OPTIONS', field });
      expect(body.error.message).toContain(field);
    }
    expect(await queue.stats()).toMatchObject({ submitted: 0, queued: 0 });

    const accepted = await post({ agent: 'steps', input: { steps: 1, stepMs: 1 }, threadId: 'chat-2', metadata: { via: 'http' } });
    expect(accepted.status).toBe(202);
    const { runId } = (await accepted.json()) as { runId: string };
    await until(() => log.terminal(runId).length === 1, 'the accepted run', 20_000);
    expect(startedOf(log.events).map((event) => event.runId)).toEqual([runId]);
    expect(metadataOf(startedOf(log.events)[0])).toEqual({ via: 'http' });
  }, 40_000);

  it('a genuine retry (worker child SIGKILLed mid-run, retryLostRuns) still carries retryOf/attempt in its agent_started, linked both ways', async () => {
    const keyPrefix = newPrefix();
    const spawnWorker = (name: string) => spawnRunsWorker(processes, name, keyPrefix, { leaseMs: LEASE_MS, reapMs: REAP_MS });
    const started = (worker: ExampleProcess, runId: string) => worker.messages.some((message) => message.type === 'run_started' && message.runId === runId);
    const w1 = await spawnWorker('w1');
    const queue = openQueue(keyPrefix, { retryLostRuns: { attempts: 1 } });
    const log = await follow(keyPrefix, 'rita', 'chat-3');
    const lostId = await queue.submit('steps', { steps: 3, stepMs: 300 }, { userId: 'rita', threadId: 'chat-3', metadata: { via: 'retry-test' } });
    await until(() => started(w1, lostId), 'w1 to start the run', 20_000);
    await w1.stop('SIGKILL');
    await spawnWorker('w2');

    await until(() => startedOf(log.events).length === 2, 'the retry to start', 20_000);
    const [lost, retry] = startedOf(log.events);
    expect(lost!.runId).toBe(lostId);
    // The lost run's own agent_started: the submitter's metadata only; the retry's: the queue's link.
    expect(metadataOf(lost)).toEqual({ via: 'retry-test' });
    expect(retry!.runId).not.toBe(lostId);
    expect(metadataOf(retry)).toEqual({ via: 'retry-test', retryOf: lostId, attempt: 2 });
    await until(() => log.terminal(retry!.runId).length === 1, 'the retry to end', 20_000);
    expect(log.terminal(lostId)[0]).toMatchObject({ data: { status: 'failed', error: { code: 'WORKER_LOST' } } });
    expect(log.terminal(retry!.runId)[0]).toMatchObject({ data: { status: 'succeeded' } });
    await untilAsync(async () => (await queue.status(retry!.runId))?.state === 'finished' && (await queue.status(lostId))?.state === 'finished', 'both statuses finished', 10_000);
    expect(await queue.status(lostId)).toMatchObject({ outcome: 'failed', retriedAs: retry!.runId });
    expect(await queue.status(retry!.runId)).toMatchObject({ outcome: 'succeeded', retryOf: lostId, attempt: 2 });
  }, 60_000);
});
