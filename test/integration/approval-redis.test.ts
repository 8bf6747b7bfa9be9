import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connect, type AgentEvent, type AgentwireClient } from '../../src/client/index.js';
import { validateLifecycle } from '../../src/index.js';
import { RedisEventLog } from '../../src/transport/redis/index.js';
import { demoToken } from '../../examples/scale-out/auth.js';
import { ExampleProcess } from '../../examples/scale-out/processes.js';
import { pendingOf } from '../helpers/interactive.js';
import { REDIS_URL, deletePrefix, describeWithRedis, probeRedis, testPrefix } from '../helpers/redis-env.js';
import { until } from '../helpers/wait.js';

const availability = await probeRedis();

describeWithRedis('approval across processes (Redis): the run waits on worker W, the answer arrives at gateway B', availability, () => {
  let prefix: string;
  const processes: ExampleProcess[] = [];
  const clients: AgentwireClient[] = [];
  const logs: RedisEventLog[] = [];

  beforeAll(() => {
    prefix = testPrefix('approval');
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const log of logs.splice(0)) await log.close();
    await Promise.all(processes.splice(0).map((child) => child.stop('SIGKILL')));
  });
  afterAll(async () => {
    await deletePrefix(prefix);
  });

  const spawn = (name: string, script: string, extra: Record<string, string>) => {
    const child = new ExampleProcess(name, script, { REDIS_URL, AGENTWIRE_KEY_PREFIX: prefix, ...extra });
    processes.push(child);
    return child;
  };
  const follow = (url: string, userId: string, threadId: string) => {
    const client = connect(url, { threadId, token: demoToken(userId), WebSocket });
    clients.push(client);
    const shown: AgentEvent[] = [];
    client.on('event', (event) => shown.push(event));
    return { client, shown };
  };

  it('alice answers through gateway B while the run waits on the worker; bob is refused there; a second answer at gateway A is refused', async () => {
    const threadId = 'approval-x1';
    const gatewayA = spawn('gateway-a', 'gateway.ts', { GATEWAY_NAME: 'a' });
    const gatewayB = spawn('gateway-b', 'gateway.ts', { GATEWAY_NAME: 'b' });
    const urlA = String((await gatewayA.message('listening')).url);
    const urlB = String((await gatewayB.message('listening')).url);
    const watcher = follow(urlA, 'alice', threadId);
    await until(() => watcher.client.status === 'open', 'watcher on A open');
    const worker = spawn('worker', '../../test/fixtures/interactive-worker.ts', { THREAD_ID: threadId, USER_ID: 'alice', AMOUNT: '800' });
    await worker.message('run_started');
    await until(() => pendingOf(watcher.shown) !== undefined, 'the request seen through gateway A');
    const pending = pendingOf(watcher.shown)!;

    // Bob, on gateway B, names alice's thread and request in a raw frame: the log refuses him.
    const bob = new WebSocket(`${urlB}?token=${demoToken('bob')}`);
    const bobFrames: Array<{ type: string; code?: string; requestId?: string }> = [];
    bob.on('message', (data) => bobFrames.push(...[JSON.parse(String(data))].flat()));
    await new Promise((resolve) => bob.once('open', resolve));
    bob.send(JSON.stringify({ type: 'answer', threadId, runId: pending.runId, requestId: pending.requestId, approved: true }));
    await until(() => bobFrames.some((frame) => frame.type === 'error'), "bob's refusal");
    expect(bobFrames.find((frame) => frame.type === 'error')).toMatchObject({ code: 'ANSWER_FORBIDDEN', requestId: pending.requestId });
    bob.close();

    const answerer = follow(urlB, 'alice', threadId);
    await until(() => answerer.client.status === 'open', 'alice on B open');
    // Answers race through both gateway processes (several connections each): the log takes exactly one.
    const extra = [follow(urlA, 'alice', threadId), follow(urlB, 'alice', threadId), follow(urlA, 'alice', threadId)];
    await until(() => extra.every((c) => c.client.status === 'open'), 'racing clients open');
    const racers = [answerer, watcher, ...extra];
    const outcomes = await Promise.allSettled(racers.map((c, i) => c.client.answer({ runId: pending.runId, requestId: pending.requestId, approved: i === 0 || i % 2 === 0 })));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason).toMatchObject({ code: 'ANSWER_ALREADY_GIVEN' });
    const winner = outcomes.findIndex((o) => o.status === 'fulfilled');
    if (winner % 2 === 1) return; // a denial won the race: nothing more to check about the transfer here

    const finished = await worker.message('run_finished');
    expect(finished).toMatchObject({ status: 'succeeded', output: { sent: 800 }, executed: [800] });
    await until(() => watcher.shown.some((e) => e.type === 'agent_completed'), 'the run end through A');
    expect(watcher.shown.map((e) => e.type)).toEqual(['agent_started', 'tool_executing', 'user_answered', 'tool_completed', 'agent_completed']);
    expect(validateLifecycle(watcher.shown)).toEqual({ ok: true, runs: 1 });
  });

  it('denied across processes: the worker fails the call with TOOL_DENIED; a timeout on the worker beats no answer', async () => {
    const gateway = spawn('gateway', 'gateway.ts', {});
    const url = String((await gateway.message('listening')).url);
    const denied = follow(url, 'alice', 'approval-x2');
    await until(() => denied.client.status === 'open', 'open');
    const worker = spawn('worker-deny', '../../test/fixtures/interactive-worker.ts', { THREAD_ID: 'approval-x2', USER_ID: 'alice' });
    await until(() => pendingOf(denied.shown) !== undefined, 'the request');
    const pending = pendingOf(denied.shown)!;
    await denied.client.answer({ runId: pending.runId, requestId: pending.requestId, approved: false, reason: 'no' });
    expect(await worker.message('run_finished')).toMatchObject({ status: 'succeeded', output: { failed: 'TOOL_DENIED' }, executed: [] });

    const timedOut = spawn('worker-timeout', '../../test/fixtures/interactive-worker.ts', { THREAD_ID: 'approval-x3', USER_ID: 'alice', APPROVAL_TIMEOUT_MS: '300' });
    expect(await timedOut.message('run_finished')).toMatchObject({ output: { failed: 'APPROVAL_TIMEOUT' }, executed: [] });
    // The log, read from this process: the request is closed, a late answer is refused.
    const log = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix });
    logs.push(log);
    const seen: AgentEvent[] = [];
    const result = await log.subscribe({ userId: 'alice', threadId: 'approval-x3' }, { onEntries: () => undefined });
    if (result.status === 'subscribed') {
      seen.push(...result.replay.map((entry) => entry.event));
      result.subscription.close();
    }
    const late = pendingOf(seen)!;
    await expect(log.answerRequest({ runId: late.runId, threadId: 'approval-x3', requestId: late.requestId, userId: 'alice', approved: true })).rejects.toMatchObject({
      code: 'REQUEST_CLOSED',
    });
  });
});
