import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpAgent } from '@ag-ui/client';
import { DefaultChatTransport, type UIMessage } from 'ai';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { createAguiHandler, type AguiHandler } from '../../src/agui/index.js';
import { createChatHandler, type ChatHandler } from '../../src/ai-sdk/index.js';
import { tokenFrom, validateLifecycle, type Authenticate } from '../../src/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisEventLog } from '../../src/transport/redis/index.js';
import { ExampleProcess } from '../../examples/scale-out/processes.js';
import { NodeChat } from '../helpers/ai-chat.js';
import { REDIS_URL, deletePrefix, describeWithRedis, probeRedis, testPrefix } from '../helpers/redis-env.js';
import { followThread } from '../helpers/runs-agents.js';
import { until, untilAsync } from '../helpers/wait.js';

/** The worker finishes a run's status just after the run's agent_completed is in the log. */
function untilFinished(queue: BullMQRunQueue, runId: string): Promise<void> {
  return untilAsync(async () => (await queue.status(runId))?.state === 'finished', "the run's status to be finished");
}

const availability = await probeRedis();
const LEASE_MS = 2_000;

/** `Bearer user-<name>` authenticates as `<name>`. */
const authenticate: Authenticate = (req) => {
  const token = tokenFrom(req);
  return token?.startsWith('user-') ? { userId: token.slice(5) } : null;
};

/** A long run: three tool calls of a minute each (abortable), so only a cancel ends it in the test's time. */
const LONG_RUN = { steps: 3, stepMs: 60_000 };

describeWithRedis('AG-UI abort and useChat stop reach a run on a BullMQ worker process (queue.cancel)', availability, () => {
  let prefix: string;
  let worker: ExampleProcess;
  const closers: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    prefix = testPrefix('runs-surfaces-cancel');
    worker = new ExampleProcess('worker', '../runs/worker.ts', { REDIS_URL, AGENTWIRE_KEY_PREFIX: prefix, LEASE_MS: String(LEASE_MS), CONCURRENCY: '4' });
    await worker.message('ready');
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  afterAll(async () => {
    await worker.stop('SIGKILL');
    await deletePrefix(prefix);
  });

  /** This process is the gateway: a queue client (submit / cancel) and a Redis log the streams are read from. */
  const gateway = async (make: (queue: BullMQRunQueue, log: RedisEventLog) => AguiHandler | ChatHandler) => {
    const queue = new BullMQRunQueue({ url: REDIS_URL, keyPrefix: prefix, leaseMs: LEASE_MS });
    const log = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix, blockMs: 200 });
    const handler = make(queue, log);
    const server: Server = createServer((req, res) => {
      if (!handler.handle(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => log.close());
    closers.push(() => queue.close());
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    closers.push(() => server.closeAllConnections());
    closers.push(() => handler.close());
    // A subscriber of its own (another connection): what a user's other tab would receive.
    const watcher = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix, blockMs: 200 });
    closers.push(() => watcher.close());
    return { queue, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, watcher };
  };

  const follow = (log: RedisEventLog, userId: string, threadId: string) => followThread(log, userId, threadId, closers);

  it("useChat stop() cancels the run on the worker process: the subscriber receives agent_completed cancelled", async () => {
    const g = await gateway((queue, log) =>
      createChatHandler({ agent: 'steps', queue, log, authenticate, abortOnDisconnect: true, heartbeatIntervalMs: 0, input: () => LONG_RUN }),
    );
    const seen = await follow(g.watcher, 'alice', 'chat-stop');
    const chat = new NodeChat({ id: 'chat-stop', transport: new DefaultChatTransport<UIMessage>({ api: `${g.base}/api/chat`, headers: { authorization: 'Bearer user-alice' } }) });
    const sending = chat.sendMessage({ text: 'go' });
    await until(() => seen.events.some((event) => event.type === 'tool_executing'), 'the worker to start the tool call', 20_000);
    // The chat client got the run's events from this gateway while it runs on the worker.
    await until(() => chat.messages[1]?.parts.some((part) => part.type === 'tool-wait') === true, 'the tool call in the chat', 20_000);
    const runId = seen.events[0]!.runId;
    expect(worker.messages.some((message) => message.type === 'run_started' && message.runId === runId)).toBe(true);
    const stoppedAt = Date.now();
    await chat.stop();
    await sending;
    await until(() => seen.terminal(runId).length === 1, 'agent_completed from the worker', 20_000);
    console.log(`[runs-surfaces-cancel] useChat stop → agent_completed cancelled received: ${Date.now() - stoppedAt} ms`);
    expect(seen.terminal(runId)[0]).toMatchObject({ data: { status: 'cancelled' } });
    const run = seen.events.filter((event) => event.runId === runId);
    expect(run.filter((event) => event.type === 'tool_completed')).toMatchObject([{ data: { status: 'failed' } }]);
    expect(validateLifecycle(run)).toEqual({ ok: true, runs: 1 });
    await untilFinished(g.queue, runId);
    expect(await g.queue.status(runId)).toMatchObject({ state: 'finished', outcome: 'cancelled', cancelRequested: true });
  }, 60_000);

  it('AG-UI abortRun() cancels the run on the worker process: the subscriber receives agent_completed cancelled', async () => {
    const g = await gateway((queue, log) => createAguiHandler({ agent: 'steps', queue, log, authenticate, heartbeatIntervalMs: 0, toInput: () => LONG_RUN }));
    const seen = await follow(g.watcher, 'bob', 'agui-stop');
    const agent = new HttpAgent({ url: `${g.base}/agui`, headers: { Authorization: 'Bearer user-bob' }, threadId: 'agui-stop', initialMessages: [{ id: 'u1', role: 'user', content: 'go' }] });
    let toolStarted = false;
    const running = agent.runAgent({}, { onToolCallStartEvent: () => void (toolStarted = true) }).catch((error: unknown) => error);
    await until(() => toolStarted, 'the tool call to reach the AG-UI client', 20_000);
    const runId = seen.events[0]!.runId;
    const stoppedAt = Date.now();
    agent.abortRun();
    await running;
    await until(() => seen.terminal(runId).length === 1, 'agent_completed from the worker', 20_000);
    console.log(`[runs-surfaces-cancel] AG-UI abortRun → agent_completed cancelled received: ${Date.now() - stoppedAt} ms`);
    expect(seen.terminal(runId)[0]).toMatchObject({ data: { status: 'cancelled' } });
    expect(validateLifecycle(seen.events.filter((event) => event.runId === runId))).toEqual({ ok: true, runs: 1 });
    await untilFinished(g.queue, runId);
    expect(await g.queue.status(runId)).toMatchObject({ state: 'finished', outcome: 'cancelled' });
  }, 60_000);

  it("queue admission applies to the surface: another user's thread is refused before anything is queued", async () => {
    const g = await gateway((queue, log) => createAguiHandler({ agent: 'steps', queue, log, authenticate, heartbeatIntervalMs: 0, toInput: () => ({ steps: 1, stepMs: 1 }) }));
    const seen = await follow(g.watcher, 'carol', 'agui-owned');
    const own = new HttpAgent({ url: `${g.base}/agui`, headers: { Authorization: 'Bearer user-carol' }, threadId: 'agui-owned' });
    await own.runAgent({});
    await until(() => seen.events.some((event) => event.type === 'agent_completed'), 'carol\'s run');
    vi.spyOn(console, 'error').mockImplementation(() => undefined); // HttpAgent reports the refused run
    const intruder = new HttpAgent({ url: `${g.base}/agui`, headers: { Authorization: 'Bearer user-dave' }, threadId: 'agui-owned' });
    await expect(intruder.runAgent({})).rejects.toMatchObject({ status: 403 });
    expect(new Set(seen.events.map((event) => event.userId))).toEqual(new Set(['carol']));
    vi.restoreAllMocks();
  }, 60_000);
});
