import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpAgent, type BaseEvent } from '@ag-ui/client';
import { DefaultChatTransport, lastAssistantMessageIsCompleteWithApprovalResponses, type UIMessage } from 'ai';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createAguiHandler, type AguiHandler } from '../../src/agui/index.js';
import { createChatHandler, type ChatHandler } from '../../src/ai-sdk/index.js';
import { AgentBridge, tokenFrom, validateLifecycle, type Authenticate } from '../../src/index.js';
import { RedisEventLog, RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { ExampleProcess } from '../../examples/scale-out/processes.js';
import { NodeChat } from '../helpers/ai-chat.js';
import { BankAgent, pendingOf } from '../helpers/interactive.js';
import { REDIS_URL, deletePrefix, describeWithRedis, probeRedis, testPrefix } from '../helpers/redis-env.js';
import { LogCollector } from '../helpers/runs-agents.js';
import { until } from '../helpers/wait.js';

const availability = await probeRedis();

/** `Bearer user-<name>` authenticates as `<name>`. */
const authenticate: Authenticate = (req) => {
  const token = tokenFrom(req);
  return token?.startsWith('user-') ? { userId: token.slice(5) } : null;
};

describeWithRedis('useChat resend and AG-UI resume across processes: the run waits on a worker process, the answer arrives at this gateway', availability, () => {
  let prefix: string;
  const processes: ExampleProcess[] = [];
  const closers: Array<() => Promise<void> | void> = [];

  beforeAll(() => {
    prefix = testPrefix('approval-surfaces');
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await Promise.all(processes.splice(0).map((child) => child.stop('SIGKILL')));
  });
  afterAll(async () => {
    await deletePrefix(prefix);
  });

  /** This process is a gateway on the workers' Redis: a RedisEventLog it reads and answers through. */
  const gateway = async (make: (log: RedisEventLog, agent: BankAgent) => AguiHandler | ChatHandler) => {
    const log = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix, blockMs: 200 });
    // The handler's own agent (for new runs) is not used here: the waiting run is the worker's.
    const transport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix: prefix });
    const bridge = new AgentBridge({ transport });
    const handler = make(log, new BankAgent({ bridge }));
    const server: Server = createServer((req, res) => {
      if (!handler.handle(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => transport.close());
    closers.push(() => bridge.close());
    closers.push(() => log.close());
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    closers.push(() => server.closeAllConnections());
    closers.push(() => handler.close());
    const collector = new LogCollector();
    return { log, collector, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  };
  const worker = async (threadId: string) => {
    const child = new ExampleProcess('worker', '../../test/fixtures/interactive-worker.ts', { REDIS_URL, AGENTWIRE_KEY_PREFIX: prefix, THREAD_ID: threadId, USER_ID: 'alice', AMOUNT: '800' });
    processes.push(child);
    await child.message('run_started');
    return child;
  };
  const watch = async (log: RedisEventLog, threadId: string) => {
    const collector = new LogCollector();
    const result = await log.subscribe({ userId: 'alice', threadId }, collector);
    if (result.status !== 'subscribed') throw new Error('not subscribed');
    closers.push(() => result.subscription.close());
    collector.add(result.replay);
    await until(() => pendingOf(collector.events) !== undefined, 'the request in the log', 20_000);
    return collector;
  };

  it('useChat: resume shows the waiting call, addToolApprovalResponse resends, the worker runs the tool, the rest streams on the resend', async () => {
    const g = await gateway((log, agent) => createChatHandler({ agent, log, authenticate, heartbeatIntervalMs: 0, input: () => ({}) }));
    const child = await worker('chat-x1');
    const seen = await watch(g.log, 'chat-x1');
    const pending = pendingOf(seen.events)!;
    const chat = new NodeChat({
      id: 'chat-x1',
      transport: new DefaultChatTransport<UIMessage>({ api: `${g.base}/api/chat`, headers: { authorization: 'Bearer user-alice' } }),
      sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
    });
    // The page (re)opens: useChat's resume replays the active run, which stops at the approval request.
    await chat.resumeStream();
    const part = () => chat.messages[0]?.parts.find((p) => p.type === 'tool-transfer') as { state: string; output?: unknown } | undefined;
    expect(chat.status).toBe('ready');
    expect(part()).toMatchObject({ state: 'approval-requested', approval: { id: pending.requestId } });
    await chat.addToolApprovalResponse({ id: pending.requestId, approved: true });
    const finished = await child.message('run_finished', 20_000);
    expect(finished).toMatchObject({ status: 'succeeded', executed: [800] });
    await until(() => chat.status === 'ready' && part()?.state === 'output-available', 'the rest of the run in the chat', 20_000);
    expect(part()).toMatchObject({ output: { sent: 800 } });
    expect(chat.messages).toHaveLength(1);
    expect(chat.messages[0]!.id).toBe(pending.runId);
    await until(() => seen.terminal(pending.runId).length === 1, 'the terminal event');
    expect(seen.events.filter((event) => event.type === 'user_answered')).toMatchObject([{ userId: 'alice', data: { approved: true } }]);
    expect(validateLifecycle(seen.events)).toEqual({ ok: true, runs: 1 });
  }, 60_000);

  it("AG-UI: a resume denies the worker's waiting call; the stream carries the same run to its end", async () => {
    const g = await gateway((log, agent) => createAguiHandler({ agent, log, authenticate, heartbeatIntervalMs: 0, toInput: () => ({}) }));
    const child = await worker('agui-x1');
    const seen = await watch(g.log, 'agui-x1');
    const pending = pendingOf(seen.events)!;
    const client = new HttpAgent({ url: `${g.base}/agui`, headers: { Authorization: 'Bearer user-alice' }, threadId: 'agui-x1' });
    const events: BaseEvent[] = [];
    await client.runAgent({ resume: [{ interruptId: pending.requestId, status: 'resolved', payload: { approved: false } }] }, { onEvent: ({ event }) => void events.push(event) });
    expect(events.map((event) => event.type)).toEqual(['RUN_STARTED', 'TOOL_CALL_RESULT', 'RUN_FINISHED']);
    expect(events[0]).toMatchObject({ runId: pending.runId });
    expect(events[2]).toMatchObject({ outcome: { type: 'success' }, result: { failed: 'TOOL_DENIED' } });
    expect(await child.message('run_finished', 20_000)).toMatchObject({ status: 'succeeded', executed: [] });
    expect(validateLifecycle(seen.events)).toEqual({ ok: true, runs: 1 });
  }, 60_000);
});
