/**
 * A run's status shows the error its `agent_completed` carries, never the raw thrown one (attack
 * 5, f07): `GET /runs/:id` (RunsHandler over loopback HTTP) and `queue.status()` returned
 * `{ name: 'Error', message: 'postgres://admin:hunter2@db/prod' }` for an agent that threw it while
 * the thread's agent_completed said `Agent "x" failed`; on BullMQ the raw message also sat in
 * Redis for statusTtlSeconds. Same for a redact.error hook's choice, a failing tool, and a run
 * refused before any event (a throwing redact.input hook).
 */
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { nanoid } from 'nanoid';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AgentBridge, BaseAgent, MemoryTransport, StateError, defineTool, validateLifecycle, type AgentEvent, type ErrorInfo, type EventLog, type RunContext } from '../../src/index.js';
import { tokenFrom, type AuthRequest } from '../../src/gateway/index.js';
import { RunsHandler } from '../../src/gateway/runs/index.js';
import { MemoryRunQueue, type RunQueue } from '../../src/runs/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { REDIS_URL, deletePrefix, describeWithRedis, probeRedis, rawClient } from '../helpers/redis-env.js';
import { until, untilAsync } from '../helpers/wait.js';

const SECRET = 'postgres://admin:hunter2@db/prod';
const availability = await probeRedis();
const authenticate = (request: AuthRequest) => {
  const token = tokenFrom(request);
  return token ? { userId: token } : null;
};

type Mode = 'throw' | 'tool';

/** Throws the secret from execute(), or from a tool whose failure it lets through. */
function leakyAgents(bridge: AgentBridge) {
  const tool = defineTool({
    name: 'db',
    description: 'fails naming its URL',
    parameters: z.object({}),
    execute: () => {
      throw new Error(SECRET);
    },
  });
  class Leaky extends BaseAgent<{ mode: Mode }, string> {
    protected async execute({ mode }: { mode: Mode }, _ctx: RunContext): Promise<string> {
      if (mode === 'tool') await this.callTool('db', {});
      throw new Error(SECRET);
    }
  }
  return [
    new Leaky({ name: 'leaky', bridge, tools: [tool] }),
    new Leaky({ name: 'hooked', bridge, tools: [tool], redact: { error: () => ({ name: 'DbError', message: 'the database failed', code: 'DB_DOWN' }) } }),
    new Leaky({
      name: 'input-hook',
      bridge,
      redact: {
        input: () => {
          throw new Error(SECRET);
        },
      },
    }),
  ];
}

interface Harness {
  base: string;
  queue: RunQueue;
  read(threadId: string): Promise<AgentEvent[]>;
}

function serve(handler: RunsHandler, stops: Array<() => Promise<unknown>>): Promise<string> {
  const server: Server = createServer((req, res) => {
    void handler.handle(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  stops.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/runs`)));
}

async function submit(base: string, agent: string, threadId: string, input: unknown): Promise<string> {
  const response = await fetch(base, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer alice' },
    body: JSON.stringify({ agent, threadId, input }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { runId: string }).runId;
}

/** GET /runs/:id once the run finished: the raw body and the parsed status. */
async function finishedStatus(base: string, runId: string): Promise<{ text: string; status: { state: string; outcome?: string; error?: ErrorInfo } }> {
  let text = '';
  await untilAsync(
    async () => {
      const response = await fetch(`${base}/${encodeURIComponent(runId)}`, { headers: { Authorization: 'Bearer alice' } });
      text = await response.text();
      return response.status === 200 && (JSON.parse(text) as { state: string }).state === 'finished';
    },
    `run ${runId} finished`,
    10_000,
  );
  return { text, status: JSON.parse(text) };
}

async function readLog(log: EventLog, threadId: string): Promise<AgentEvent[]> {
  const subscribed = await log.subscribe({ userId: 'alice', threadId }, { onEntries() {}, onClose() {} });
  if (subscribed.status !== 'subscribed') return [];
  subscribed.subscription.close();
  return subscribed.replay.map((entry) => entry.event);
}

function contract(name: string, setup: () => Promise<Harness>, afterEachRun?: () => Promise<void>) {
  describe(name, () => {
    it('execute() throws an error naming a database URL: the status error is the agent_completed error (redacted), the body holds no secret', async () => {
      const { base, queue, read } = await setup();
      const runId = await submit(base, 'leaky', 't-throw', { mode: 'throw' });
      const { text, status } = await finishedStatus(base, runId);
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('hunter2');
      const events = await read('t-throw');
      expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
      const terminal = events.at(-1)!;
      expect(terminal.data).toMatchObject({ status: 'failed', error: { name: 'Error', message: 'Agent "leaky" failed' } });
      expect(status).toMatchObject({ state: 'finished', outcome: 'failed', error: (terminal.data as { error: ErrorInfo }).error });
      expect((await queue.status(runId))?.error).toEqual({ name: 'Error', message: 'Agent "leaky" failed' });
      await afterEachRun?.();
    });

    it("a redact.error hook's choice is what the status shows, as the event does", async () => {
      const { base, queue, read } = await setup();
      const runId = await submit(base, 'hooked', 't-hook', { mode: 'throw' });
      const { text, status } = await finishedStatus(base, runId);
      expect(text).not.toContain(SECRET);
      const shown = { name: 'DbError', message: 'the database failed', code: 'DB_DOWN' };
      expect((await read('t-hook')).at(-1)?.data).toMatchObject({ status: 'failed', error: shown });
      expect(status.error).toEqual(shown);
      expect((await queue.status(runId))?.error).toEqual(shown);
      await afterEachRun?.();
    });

    it("a tool's failure let through: the status shows the ToolError TOOL_FAILED the event carries, not the tool's message", async () => {
      const { base, read } = await setup();
      const runId = await submit(base, 'leaky', 't-tool', { mode: 'tool' });
      const { text, status } = await finishedStatus(base, runId);
      expect(text).not.toContain(SECRET);
      const events = await read('t-tool');
      expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
      expect(JSON.stringify(events)).not.toContain(SECRET);
      expect(status.error).toEqual({ name: 'ToolError', message: 'Tool "db" failed', code: 'TOOL_FAILED' });
      expect(status.error).toEqual((events.at(-1)!.data as { error: ErrorInfo }).error);
      await afterEachRun?.();
    });

    it('a run refused before any event (its redact.input hook throws the secret): the status has the generic error', async () => {
      const { base, queue } = await setup();
      const runId = await submit(base, 'input-hook', 't-input', { mode: 'throw' });
      const { text, status } = await finishedStatus(base, runId);
      expect(text).not.toContain(SECRET);
      expect(status).toMatchObject({ outcome: 'failed', error: { name: 'Error', message: 'Agent "input-hook" failed' } });
      expect(JSON.stringify(await queue.status(runId))).not.toContain(SECRET);
      await afterEachRun?.();
    });
  });
}

const stops: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
});

contract('run status redaction (MemoryRunQueue, RunsHandler over HTTP)', async () => {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  const queue = new MemoryRunQueue();
  queue.serve({ agents: leakyAgents(bridge) }, { concurrency: 2 });
  stops.push(
    () => bridge.close(),
    () => queue.close({ timeoutMs: 100 }),
  );
  const base = await serve(new RunsHandler({ queue, authenticate }), stops);
  return {
    base,
    queue,
    read: async (threadId) => {
      await until(() => transport.read(threadId, 'alice').some((event) => event.type === 'agent_completed'), 'agent_completed', 5_000);
      return transport.read(threadId, 'alice');
    },
  };
});

describeWithRedis('run status redaction (BullMQRunQueue on Redis)', availability, () => {
  const prefixes: string[] = [];
  let prefix = '';
  afterAll(async () => {
    for (const p of prefixes) await deletePrefix(p);
  });

  /** Every value stored under the test's prefix: no key may hold the raw message. */
  async function assertRedisHoldsNoSecret(): Promise<void> {
    const client = await rawClient();
    try {
      let cursor = '0';
      const dump: string[] = [];
      let keys = 0;
      do {
        const [next, found] = (await client.sendCommand(['SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000'])) as [string, string[]];
        cursor = next;
        for (const key of found) {
          keys++;
          const type = String(await client.sendCommand(['TYPE', key]));
          const command =
            type === 'hash' ? ['HGETALL', key]
            : type === 'stream' ? ['XRANGE', key, '-', '+']
            : type === 'string' ? ['GET', key]
            : type === 'list' ? ['LRANGE', key, '0', '-1']
            : type === 'zset' ? ['ZRANGE', key, '0', '-1']
            : type === 'set' ? ['SMEMBERS', key]
            : undefined;
          if (command) dump.push(key, JSON.stringify(await client.sendCommand(command)));
        }
      } while (cursor !== '0');
      expect(keys).toBeGreaterThan(0);
      const all = dump.join('\n');
      expect(all).not.toContain(SECRET);
      expect(all).not.toContain('hunter2');
    } finally {
      client.destroy();
    }
  }

  contract(
    'BullMQRunQueue, RunsHandler over HTTP, a worker in this process',
    async () => {
      prefix = `aw-runsfix-${nanoid(8)}:`;
      prefixes.push(prefix);
      const queue = new BullMQRunQueue({ url: REDIS_URL, keyPrefix: prefix, leaseMs: 2_000, reapIntervalMs: 200 });
      const transport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix: prefix });
      const bridge = new AgentBridge({ transport });
      queue.serve({ agents: leakyAgents(bridge) }, { concurrency: 2 });
      stops.push(
        () => transport.close(),
        () => bridge.close(),
        () => queue.close({ timeoutMs: 100 }),
      );
      const base = await serve(new RunsHandler({ queue, authenticate }), stops);
      return { base, queue, read: (threadId) => readLog(transport, threadId) };
    },
    assertRedisHoldsNoSecret,
  );

  it('a run refused before any event: the terminal event the worker writes to the log carries the generic error too', async () => {
    prefix = `aw-runsfix-${nanoid(8)}:`;
    prefixes.push(prefix);
    const queue = new BullMQRunQueue({ url: REDIS_URL, keyPrefix: prefix, leaseMs: 2_000, reapIntervalMs: 200 });
    const transport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix: prefix });
    const bridge = new AgentBridge({ transport });
    queue.serve({ agents: leakyAgents(bridge) });
    stops.push(
      () => transport.close(),
      () => bridge.close(),
      () => queue.close({ timeoutMs: 100 }),
    );
    const runId = await queue.submit('input-hook', { mode: 'throw' }, { userId: 'alice', threadId: 't-refused' });
    await untilAsync(async () => (await queue.status(runId))?.state === 'finished', 'finished', 10_000);
    const events = await readLog(transport, 't-refused');
    expect(events.map((event) => event.type)).toEqual(['agent_started', 'agent_completed']);
    expect(events[1]!.data).toMatchObject({ status: 'failed', error: { name: 'Error', message: 'Agent "input-hook" failed' } });
    expect((await queue.status(runId))?.error).toEqual((events[1]!.data as { error: ErrorInfo }).error);
    await assertRedisHoldsNoSecret();
  });
});

describe('run endpoints answer a hostile error from the queue (its fields read guarded)', () => {
  it('a queue whose status() rejects with an AgentwireError whose code getter throws, or a proxy whose every trap throws: 500 INTERNAL_ERROR, reported, no hang', async () => {
    const evil = () => {
      const error = new StateError('RUN_NOT_FOUND', SECRET);
      Object.defineProperty(error, 'code', {
        get() {
          throw new Error('no code');
        },
      });
      return error;
    };
    const trap = () => {
      throw new Error('no trap');
    };
    const proxy = new Proxy(new Error(SECRET), { get: trap, getPrototypeOf: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap });
    const memory = new MemoryRunQueue();
    stops.push(() => memory.close({ timeoutMs: 10 }));
    const queue: RunQueue = {
      submit: (...args) => memory.submit(...args),
      status: (runId) => Promise.reject(runId === 'proxy' ? proxy : evil()),
      cancel: () => Promise.reject(proxy),
      serve: (...args) => memory.serve(...args),
      stats: () => memory.stats(),
      close: (options) => memory.close(options),
    };
    const reported: unknown[] = [];
    const base = await serve(new RunsHandler({ queue, authenticate, onError: (error) => reported.push(error) }), stops);
    for (const url of [`${base}/evil`, `${base}/proxy`]) {
      const response = await fetch(url, { headers: { Authorization: 'Bearer alice' } });
      const text = await response.text();
      expect(response.status).toBe(500);
      expect(JSON.parse(text)).toMatchObject({ error: { code: 'INTERNAL_ERROR' } });
      expect(text).not.toContain(SECRET);
    }
    const cancelled = await fetch(`${base}/any/cancel`, { method: 'POST', headers: { Authorization: 'Bearer alice' } });
    expect(cancelled.status).toBe(500);
    expect(await cancelled.text()).not.toContain(SECRET);
    expect(reported).toHaveLength(3);
  });
});
