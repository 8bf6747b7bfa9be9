import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AgentEvent } from '../../src/index.js';
import { connect } from '../../src/client/node.js';
import { AgentBridge, MemoryTransport, StateError, validateLifecycle } from '../../src/index.js';
import { WebSocketGateway } from '../../src/gateway/websocket/index.js';
import { MemoryRunQueue } from '../../src/runs/index.js';
import { StepAgent } from '../helpers/runs-agents.js';
import { RawClient, authenticate, tokenOf, until } from '../helpers/ws-harness.js';

/**
 * Stop from the browser over the WebSocket protocol: a `cancel {runId}` frame reaches the run
 * through the gateway's `cancelRun` hook (here the embedded run queue), as the connection's own
 * user. What is asserted is what the receiving client got: the acceptance, then the run's events
 * up to its `agent_completed` cancelled.
 */

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

async function start(withHook = true) {
  const transport = new MemoryTransport();
  const queue = new MemoryRunQueue();
  const gateway = new WebSocketGateway({
    authenticate,
    log: transport,
    ...(withHook && { cancelRun: ({ runId, userId }: { runId: string; userId: string }) => queue.cancel(runId, { userId }) }),
  });
  const { url } = await gateway.listen(0, '127.0.0.1');
  const bridge = new AgentBridge({ transport: gateway });
  await bridge.initialize();
  queue.serve({ agents: [new StepAgent({ bridge })] }, { concurrency: 4 });
  stops.push(async () => {
    await queue.close();
    await bridge.close();
    await gateway.close();
    await transport.close();
  });
  return { url, queue };
}

async function following(url: string, userId: string, threadId: string) {
  const client = await RawClient.open(url, userId);
  stops.push(async () => void client.ws.close());
  client.subscribe(threadId);
  await client.waitFor(() => client.ofType('subscribed').length === 1, 'subscribed');
  return client;
}

describe('cancel frame over the WebSocket protocol', () => {
  it("the run's user cancels it: cancel_accepted, open tool closed, agent_completed cancelled; another user and an unknown run are refused", async () => {
    const { url, queue } = await start();
    const alice = await following(url, 'alice', 'c-1');
    const runId = await queue.submit('steps', { steps: 100, stepMs: 200 }, { userId: 'alice', threadId: 'c-1' });
    await alice.waitFor(() => alice.events().some((event) => event.type === 'tool_executing'), 'the run in a tool');

    // Mallory, on her own connection, names alice's run: refused, and alice's run goes on.
    const mallory = await following(url, 'mallory', 'm-1');
    mallory.send({ type: 'cancel', runId });
    mallory.send({ type: 'cancel', runId: 'thread_x_run_1_nope' });
    await mallory.waitFor(() => mallory.ofType('error').length === 2, 'two refusals');
    expect(mallory.ofType('error')).toEqual([
      { type: 'error', code: 'THREAD_FORBIDDEN', message: expect.any(String), runId },
      { type: 'error', code: 'RUN_NOT_FOUND', message: expect.any(String), runId: 'thread_x_run_1_nope' },
    ]);
    expect(mallory.events()).toEqual([]);

    alice.send({ type: 'cancel', runId });
    await alice.waitFor(() => alice.events().some((event) => event.type === 'agent_completed'), 'the cancelled end');
    expect(alice.ofType('cancel_accepted')).toEqual([{ type: 'cancel_accepted', runId, outcome: 'requested' }]);
    const events = alice.events().filter((event) => event.runId === runId);
    expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
    expect(events.at(-1)).toMatchObject({ type: 'agent_completed', data: { status: 'cancelled' } });
    expect(events.filter((event) => event.type === 'tool_completed').at(-1)).toMatchObject({ data: { status: 'failed' } });
    expect((await queue.status(runId))?.state).toBe('finished');
  });

  it('a gateway without a cancelRun hook answers UNAVAILABLE and the connection serves on', async () => {
    const { url } = await start(false);
    const bob = await following(url, 'bob', 'c-2');
    bob.send({ type: 'cancel', runId: 'thread_c-2_run_1_abc' });
    await bob.waitFor(() => bob.ofType('error').length === 1, 'the refusal');
    expect(bob.ofType('error')[0]).toMatchObject({ code: 'UNAVAILABLE', runId: 'thread_c-2_run_1_abc' });
    bob.subscribe('c-3');
    await bob.waitFor(() => bob.ofType('subscribed').length === 2, 'still serving');
  });

  it("a cancelRun hook that throws (or answers no CancelResult): the client gets UNAVAILABLE without the error's text, onError gets the error with stage 'cancel' and the run (attack F6)", async () => {
    const transport = new MemoryTransport();
    const reported: Array<{ error: unknown; context: unknown }> = [];
    let answer: 'throw' | 'nonsense' | 'refuse' = 'throw';
    const gateway = new WebSocketGateway({
      authenticate,
      log: transport,
      onError: (error, context) => reported.push({ error, context }),
      cancelRun: async ({ runId }) => {
        if (answer === 'nonsense') return 'maybe' as never;
        if (answer === 'refuse') throw new StateError('RUN_NOT_FOUND', `No run ${runId}`);
        throw new Error('cancel backend down: postgres://admin:secret@db');
      },
    });
    const { url } = await gateway.listen(0, '127.0.0.1');
    stops.push(async () => {
      await gateway.close();
      await transport.close();
    });
    const bob = await following(url, 'bob', 'c-f6');
    const runId = 'thread_c-f6_run_1_abc';
    bob.send({ type: 'cancel', runId });
    await bob.waitFor(() => bob.ofType('error').length === 1, 'the refusal');
    expect(bob.ofType('error')[0]).toEqual({ type: 'error', code: 'UNAVAILABLE', message: 'the run could not be cancelled; try again', runId });
    expect(reported).toHaveLength(1);
    expect(reported[0]!.error).toMatchObject({ message: 'cancel backend down: postgres://admin:secret@db' });
    expect(reported[0]!.context).toMatchObject({ surface: 'websocket', stage: 'cancel', userId: 'bob', runId, connectionId: expect.any(String) });
    answer = 'nonsense';
    bob.send({ type: 'cancel', runId });
    await bob.waitFor(() => bob.ofType('error').length === 2, 'the second refusal');
    expect(bob.ofType('error')[1]).toMatchObject({ code: 'UNAVAILABLE', runId });
    expect(reported).toHaveLength(2);
    expect(reported[1]!.error).toMatchObject({ name: 'TypeError', message: expect.stringContaining('"maybe"') });
    // A refusal the hook means (unknown run, another user's) is an answer, not a contained error.
    answer = 'refuse';
    bob.send({ type: 'cancel', runId });
    await bob.waitFor(() => bob.ofType('error').length === 3, 'the third refusal');
    expect(bob.ofType('error')[2]).toMatchObject({ code: 'RUN_NOT_FOUND', runId });
    expect(reported).toHaveLength(2);
    bob.subscribe('c-f6-2');
    await bob.waitFor(() => bob.ofType('subscribed').length === 2, 'still serving');
  });

  it('client.cancel(runId): resolves with the outcome, the client receives the cancelled end; a foreign run rejects with its code', async () => {
    const { url, queue } = await start();
    const client = connect(url, { token: tokenOf('carol'), threadId: 'c-4', WebSocket });
    stops.push(async () => client.close());
    const received: AgentEvent[] = [];
    client.on('event', (event) => received.push(event));
    await until(() => client.status === 'open', 'the client open');
    const runId = await queue.submit('steps', { steps: 100, stepMs: 200 }, { userId: 'carol', threadId: 'c-4' });
    const other = await queue.submit('steps', { steps: 100, stepMs: 200 }, { userId: 'dave', threadId: 'd-4' });
    await until(() => received.some((event) => event.type === 'tool_executing'), 'the run in a tool');
    await expect(client.cancel(other)).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
    await expect(client.cancel(runId)).resolves.toBe('requested');
    await until(() => received.some((event) => event.type === 'agent_completed'), 'the cancelled end');
    expect(received.at(-1)).toMatchObject({ type: 'agent_completed', runId, data: { status: 'cancelled' } });
    expect(validateLifecycle(received)).toEqual({ ok: true, runs: 1 });
    await expect(queue.cancel(other, { userId: 'dave' })).resolves.toBe('requested');
  });
});
