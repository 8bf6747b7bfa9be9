/**
 * `revoke(userId)` while a request's `queue.submit` is in flight (sixth attack round, f1): on
 * AG-UI and useChat with a `queue`, and on `POST /runs`, the revocation watch covers the submit.
 * The queue here takes the run at once (a `MemoryRunQueue` whose worker starts it) but its answer
 * is held until the test revokes the user, as a BullMQ submit's reply is on its way back over
 * Redis. The client must get 401 `REVOKED`, and the run must end `cancelled` in the log and in the
 * queue (its agent had begun; it never completes). A user not revoked meanwhile is served.
 * Real servers on loopback, in process and on BullMQ with a Redis log; assertions on what the
 * client received and what the log and the queue hold.
 *
 * Token expiry is held to the same rule: credentials whose `expiresAt` passes while the submit is
 * in flight get 401 `TOKEN_EXPIRED` and the just-queued run cancelled. The principal of the user
 * `expiring` expires EXPIRY_MS after its hook answered; the held submit is released once the
 * clock has passed that instant.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAguiHandler } from '../../src/agui/index.js';
import { createChatHandler } from '../../src/ai-sdk/index.js';
import { AgentBridge, MemoryTransport, tokenFrom, type AgentEvent, type Authenticate, type EventLog } from '../../src/index.js';
import { RunsHandler } from '../../src/gateway/runs/index.js';
import { MemoryRunQueue, type RunQueue } from '../../src/runs/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisEventLog, RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { REDIS_URL, deletePrefix, describeWithRedis, probeRedis, testPrefix } from '../helpers/redis-env.js';
import { listenHttp } from '../helpers/http-listen.js';
import { StepAgent } from '../helpers/runs-agents.js';
import { until, untilAsync } from '../helpers/wait.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** How long the credentials of the user `expiring` last: ample for the request to reach its submit on a loaded machine. */
const EXPIRY_MS = 400;
/** When the last principal of the user `expiring` expires (epoch ms). */
let expiringAt = 0;

const authenticate: Authenticate = (req) => {
  const token = tokenFrom(req);
  if (!token?.startsWith('tok-')) return null;
  const userId = token.slice(4);
  if (userId !== 'expiring') return { userId };
  expiringAt = Date.now() + EXPIRY_MS;
  return { userId, expiresAt: expiringAt };
};

/** One step waiting 1 s: long enough that only a cancel ends it before the test looks, short enough that a run nobody cancels succeeds. */
const RUN_INPUT = { steps: 1, stepMs: 1_000 };

/**
 * A `MemoryRunQueue` whose `submit` holds its answer for one user: the run is queued (and its
 * worker starts it), then the answer waits until `release()`. `submitted` resolves with the run id
 * once the inner queue took it.
 */
class HeldSubmitQueue implements Pick<RunQueue, 'submit' | 'cancel' | 'status' | 'stats'> {
  readonly cancels: Array<{ runId: string; userId: string }> = [];
  readonly submitted: Promise<string>;
  private took!: (runId: string) => void;
  private gate: Promise<void>;
  release!: () => void;

  constructor(
    readonly inner: RunQueue,
    private readonly heldUser: string,
  ) {
    this.submitted = new Promise<string>((resolve) => (this.took = resolve));
    this.gate = new Promise<void>((resolve) => (this.release = resolve));
  }

  submit: RunQueue['submit'] = async (agent, input, options) => {
    const runId = await this.inner.submit(agent, input, options);
    if (options.userId === this.heldUser) {
      this.took(runId);
      await this.gate;
    }
    return runId;
  };

  cancel: RunQueue['cancel'] = (runId, options) => {
    this.cancels.push({ runId, userId: options.userId });
    return this.inner.cancel(runId, options);
  };

  status: RunQueue['status'] = (runId) => this.inner.status(runId);
  stats: RunQueue['stats'] = () => this.inner.stats();
}

type Kind = 'agui' | 'chat' | 'runs (node)' | 'runs (web)';

interface Fixture {
  /** What the run's events are read back from. */
  events(threadId: string, userId: string): Promise<AgentEvent[]>;
  queue: HeldSubmitQueue;
  revoke(userId: string): number;
  /** POSTs a run for `user` in `threadId`; resolves with the status and the text of the answer. */
  post(user: string, threadId: string): Promise<{ status: number; text: string }>;
}

/** The run queue and the log of a fixture: in process (memory), or BullMQ and Redis. */
interface Backend {
  queue: RunQueue;
  log: EventLog;
  events(threadId: string, userId: string): Promise<AgentEvent[]>;
}

function memoryBackend(): Backend {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  const queue = new MemoryRunQueue();
  queue.serve({ agents: [new StepAgent({ bridge })] }, { concurrency: 4 });
  cleanups.push(async () => {
    await queue.close({ timeoutMs: 50 });
    await bridge.close();
    await transport.close();
  });
  return { queue, log: transport, events: async (threadId, userId) => transport.read(threadId, userId) };
}

async function replayOf(log: EventLog, threadId: string, userId: string): Promise<AgentEvent[]> {
  const result = await log.subscribe({ userId, threadId }, { onEntries: () => undefined });
  if (result.status !== 'subscribed') throw new Error(`not subscribed: ${result.status}`);
  result.subscription.close();
  return result.replay.map((entry) => entry.event);
}

async function start(kind: Kind, heldUser: string, backend: Backend = memoryBackend()): Promise<Fixture> {
  const queue = new HeldSubmitQueue(backend.queue, heldUser);
  const asQueue = queue as unknown as RunQueue;
  if (kind === 'agui' || kind === 'chat') {
    const handler =
      kind === 'agui'
        ? createAguiHandler({ agent: 'steps', queue: asQueue, log: backend.log, authenticate, heartbeatIntervalMs: 0, toInput: () => RUN_INPUT })
        : createChatHandler({ agent: 'steps', queue: asQueue, log: backend.log, authenticate, heartbeatIntervalMs: 0, input: () => RUN_INPUT });
    const base = await listenHttp((req, res) => {
      if (!handler.handle(req, res)) res.writeHead(404).end();
    }, cleanups);
    cleanups.push(() => handler.close());
    const body = (threadId: string) =>
      kind === 'agui'
        ? { threadId, messages: [{ id: 'm1', role: 'user', content: 'go' }] }
        : { id: threadId, messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'go' }] }], trigger: 'submit-message' };
    return {
      events: backend.events,
      queue,
      revoke: (userId) => handler.revoke(userId),
      post: async (user, threadId) => {
        const controller = new AbortController();
        cleanups.push(() => controller.abort());
        const res = await fetch(`${base}${handler.path}`, {
          method: 'POST',
          headers: { Authorization: `Bearer tok-${user}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(body(threadId)),
          signal: controller.signal,
        });
        // A stream (the user not revoked) is read only up to its headers: its run goes on.
        return { status: res.status, text: res.status === 200 ? '' : await res.text() };
      },
    };
  }
  const handler = new RunsHandler({ queue: asQueue, authenticate, agents: ['steps'] });
  const request = (user: string, threadId: string, base: string) =>
    new Request(`${base}/runs`, {
      method: 'POST',
      headers: { Authorization: `Bearer tok-${user}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent: 'steps', input: RUN_INPUT, threadId }),
    });
  if (kind === 'runs (web)') {
    return {
      events: backend.events,
      queue,
      revoke: (userId) => handler.revoke(userId),
      post: async (user, threadId) => {
        const res = await handler.fetch(request(user, threadId, 'http://runs.test'));
        return { status: res.status, text: await res.text() };
      },
    };
  }
  const base = await listenHttp((req, res) => {
    void handler.handle(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  }, cleanups);
  return {
    events: backend.events,
    queue,
    revoke: (userId) => handler.revoke(userId),
    post: async (user, threadId) => {
      const res = await fetch(request(user, threadId, base));
      return { status: res.status, text: await res.text() };
    },
  };
}

const codeOf = (text: string): string => (JSON.parse(text) as { error: { code: string } }).error.code;

/** Mallory's POST; revoke('mallory') once her run is queued and before the submit answers; what she and the log and queue got. */
async function revokedDuringSubmit(f: Fixture): Promise<void> {
  const reply = f.post('mallory', 'mallory-t');
  const runId = await f.queue.submitted;
  // The queue holds the run and its worker may already run it; the submit has not answered yet.
  expect((await f.queue.inner.status(runId))?.userId).toBe('mallory');
  f.revoke('mallory');
  f.queue.release();
  const answer = await reply;
  expect([answer.status, codeOf(answer.text)]).toEqual([401, 'REVOKED']);
  // The cancel was asked for, as the run's user, before the client got its answer.
  expect(f.queue.cancels).toEqual([{ runId, userId: 'mallory' }]);

  await untilAsync(async () => (await f.queue.inner.status(runId))?.state === 'finished', 'the run to finish');
  expect(await f.queue.inner.status(runId)).toMatchObject({ state: 'finished', outcome: 'cancelled', cancelRequested: true });
  const events = await f.events('mallory-t', 'mallory');
  const terminals = events.filter((event) => event.type === 'agent_completed');
  expect(terminals.map((event) => (event.data as { status: string }).status)).toEqual(['cancelled']);
  expect(events.at(-1)?.type).toBe('agent_completed');
}

/**
 * The user `expiring` POSTs a run; once it is queued and before the submit answers, the credentials'
 * `expiresAt` passes; what the client, the log and the queue got.
 */
async function expiredDuringSubmit(f: Fixture): Promise<void> {
  const reply = f.post('expiring', 'expiring-t');
  const first = await Promise.race([f.queue.submitted, reply]);
  // The request must reach its submit before the credentials expire (else EXPIRY_MS is too short for this machine).
  if (typeof first !== 'string') throw new Error(`answered ${first.status} ${first.text} before its submit: raise EXPIRY_MS`);
  const runId = first;
  expect((await f.queue.inner.status(runId))?.userId).toBe('expiring');
  // The barrier is the clock itself: the credentials are expired once it passed expiresAt.
  await until(() => Date.now() > expiringAt, 'the credentials to expire', EXPIRY_MS + 5_000);
  f.queue.release();
  const answer = await reply;
  expect([answer.status, codeOf(answer.text)]).toEqual([401, 'TOKEN_EXPIRED']);
  // The cancel was asked for, as the run's user, before the client got its answer.
  expect(f.queue.cancels).toEqual([{ runId, userId: 'expiring' }]);

  await untilAsync(async () => (await f.queue.inner.status(runId))?.state === 'finished', 'the run to finish');
  expect(await f.queue.inner.status(runId)).toMatchObject({ state: 'finished', outcome: 'cancelled', cancelRequested: true });
  const events = await f.events('expiring-t', 'expiring');
  const terminals = events.filter((event) => event.type === 'agent_completed');
  expect(terminals.map((event) => (event.data as { status: string }).status)).toEqual(['cancelled']);
  expect(events.at(-1)?.type).toBe('agent_completed');
}

describe.each(['agui', 'chat', 'runs (node)', 'runs (web)'] as Kind[])('%s with a queue: the credentials expire while queue.submit is in flight', (kind) => {
  it('answers 401 TOKEN_EXPIRED and the just-queued run is cancelled at once: it ends cancelled, never succeeds', async () => {
    await expiredDuringSubmit(await start(kind, 'expiring'));
  });

  it('credentials still valid when the submit answers: served, the run goes on', async () => {
    const f = await start(kind, 'expiring');
    const reply = f.post('expiring', 'expiring-t');
    await f.queue.submitted;
    f.queue.release();
    const answer = await reply;
    expect(answer.status).toBe(kind.startsWith('runs') ? 202 : 200);
    expect(f.queue.cancels).toEqual([]);
  });
});

describe.each(['agui', 'chat', 'runs (node)', 'runs (web)'] as Kind[])('%s with a queue: revoke() while queue.submit is in flight', (kind) => {
  it('answers 401 REVOKED and the just-queued run is cancelled at once: it ends cancelled, never succeeds', async () => {
    await revokedDuringSubmit(await start(kind, 'mallory'));
  });

  it('a user not revoked while the submit was in flight is served and their run goes on', async () => {
    const f = await start(kind, 'mallory');
    const reply = f.post('mallory', 'mallory-t');
    await f.queue.submitted;
    f.revoke('someone-else');
    f.queue.release();
    const answer = await reply;
    expect(answer.status).toBe(kind.startsWith('runs') ? 202 : 200);
    expect(f.queue.cancels).toEqual([]);
  });
});

const availability = await probeRedis();

describeWithRedis('BullMQ queue and Redis log: revoke() or expiry while queue.submit is in flight', availability, () => {
  let prefix: string;
  beforeAll(() => {
    prefix = testPrefix('revoke-during-submit');
  });
  afterAll(async () => {
    await deletePrefix(prefix);
  });

  /** A worker and a gateway queue client on one Redis (the worker could be any process). */
  function redisBackend(queueName: string): Backend {
    // Its own keys (threads, queue) under the file's prefix: each test's thread starts empty.
    const keyPrefix = `${prefix}${queueName}:`;
    const transport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix });
    const bridge = new AgentBridge({ transport });
    const worker = new BullMQRunQueue({ url: REDIS_URL, keyPrefix, queueName });
    worker.serve({ agents: [new StepAgent({ bridge })] }, { concurrency: 2 });
    const queue = new BullMQRunQueue({ url: REDIS_URL, keyPrefix, queueName });
    const log = new RedisEventLog({ url: REDIS_URL, keyPrefix, blockMs: 200 });
    cleanups.push(async () => {
      await queue.close();
      await worker.close({ timeoutMs: 500 });
      await bridge.close();
      await transport.close();
      await log.close();
    });
    return { queue, log, events: (threadId, userId) => replayOf(log, threadId, userId) };
  }

  it.each(['agui', 'runs (node)'] as Kind[])('%s: 401 REVOKED, the run queued on Redis ends cancelled', async (kind) => {
    await revokedDuringSubmit(await start(kind, 'mallory', redisBackend(`rds-${kind === 'agui' ? 'agui' : 'runs'}`)));
  });

  it.each(['agui', 'runs (node)'] as Kind[])('%s: 401 TOKEN_EXPIRED for credentials that expired during the submit, the run queued on Redis ends cancelled', async (kind) => {
    await expiredDuringSubmit(await start(kind, 'expiring', redisBackend(`rds-exp-${kind === 'agui' ? 'agui' : 'runs'}`)));
  });
});
