/**
 * One cancellation contract for a run's `ctx.signal`: `bridge.close()`, a run queue's `cancel()`
 * and the caller's own signal all abort the signal the agent's `execute()` and its tools got, with
 * an `AbortError` that says why, and the run ends with `agent_completed` cancelled. And a bridge
 * that is `failed` refuses a run up front: `execute()` never runs, nothing of it reaches anyone.
 * Judged by what a real WebSocket client (over loopback) received, and what the agent's code saw.
 */
import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  AbortError,
  AgentBridge,
  BaseAgent,
  MemoryTransport,
  StateError,
  defineTool,
  validateLifecycle,
  type AgentEvent,
  type BaseAgentOptions,
  type RunContext,
} from '../../src/index.js';
import { WebSocketGateway } from '../../src/gateway/websocket/index.js';
import { MemoryRunQueue } from '../../src/runs/index.js';
import { FaultyTransport } from '../helpers/faulty-transport.js';
import { isLastFrame, post, startSurface } from '../helpers/run-surfaces.js';
import { RawClient, authenticate } from '../helpers/ws-harness.js';
import { until } from '../helpers/wait.js';

/** Settles only when `signal` aborts (rejecting with its reason), as fetch() or a model SDK call does. */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

interface Seen {
  /** The `ctx.signal` execute() got. */
  run: AbortSignal;
  /** The `ctx.signal` the tool got, once it was called. */
  tool?: AbortSignal;
}

/**
 * `model`: awaits a long "model call" that honours `ctx.signal`; `tool`: awaits a tool (no timeout)
 * that honours its own `ctx.signal`. Records the signals it was given, and every execute() call.
 */
class LongAgent extends BaseAgent<{ mode: 'model' | 'tool' }, string> {
  readonly seen = new Map<string, Seen>();
  executed = 0;
  constructor(options: BaseAgentOptions = {}) {
    super({ name: 'long', ...options });
    this.addTool(
      defineTool({
        name: 'slow',
        description: 'waits until its signal aborts',
        parameters: z.object({}),
        execute: (_args, ctx) => {
          this.seen.get(ctx.runId)!.tool = ctx.signal;
          return untilAborted(ctx.signal);
        },
      }),
    );
  }
  protected async execute(input: { mode: 'model' | 'tool' }, ctx: RunContext): Promise<string> {
    this.executed++;
    this.seen.set(ctx.runId, { run: ctx.signal });
    await this.think('calling the model');
    if (input.mode === 'tool') await this.callTool('slow', {});
    else await untilAborted(ctx.signal);
    return 'done';
  }
}

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** A real gateway on loopback over a MemoryTransport log; the bridge writes to it (through `wrap`, when given). */
async function start(wrap?: (gateway: WebSocketGateway) => FaultyTransport) {
  const log = new MemoryTransport();
  const gateway = new WebSocketGateway({ authenticate, log });
  const { url } = await gateway.listen(0, '127.0.0.1');
  const faulty = wrap?.(gateway);
  const bridge = new AgentBridge({ transport: faulty ?? gateway, ...(faulty && { retry: { retries: 0 } }) });
  const agent = new LongAgent({ bridge });
  stops.push(async () => {
    await bridge.close();
    await gateway.close();
    await log.close();
  });
  return { url, gateway, bridge, agent, faulty };
}

async function following(url: string, userId: string, threadId: string): Promise<RawClient> {
  const client = await RawClient.open(url, userId);
  stops.push(async () => void client.ws.close());
  client.subscribe(threadId);
  await client.waitFor(() => client.ofType('subscribed').length === 1, 'subscribed');
  return client;
}

function ofRun(events: AgentEvent[], runId: string): AgentEvent[] {
  return events.filter((event) => event.runId === runId);
}

/** The error an aborted signal carries when the bridge closing cancelled the run. */
const closedReason = { name: 'AbortError', code: 'ABORTED', cause: { name: 'StateError', code: 'BRIDGE_CLOSED' } };

describe('bridge.close() aborts the ctx.signal of every run under way', () => {
  it('a run awaiting a model call and a run awaiting a tool: both signals abort (AbortError caused by BRIDGE_CLOSED), the client gets each run cancelled, the caller\'s own signal is left alone', async () => {
    const { url, bridge, agent } = await start();
    await bridge.initialize();
    const alice = await following(url, 'alice', 't-close');
    const caller = new AbortController();
    const inModel = agent.run({ mode: 'model' }, { userId: 'alice', threadId: 't-close', signal: caller.signal });
    const inTool = agent.run({ mode: 'tool' }, { userId: 'alice', threadId: 't-close' });
    await alice.waitFor(() => alice.events().filter((event) => event.type === 'tool_executing').length === 1 && alice.events().filter((event) => event.type === 'agent_thinking').length === 2, 'one run in the model call, one in the tool');

    await bridge.close();
    const [model, tool] = await Promise.all([inModel, inTool]);

    // What the agent's code was given is aborted, with a reason that says why.
    const modelSeen = agent.seen.get(model.runId)!;
    const toolSeen = agent.seen.get(tool.runId)!;
    expect(modelSeen.run.aborted).toBe(true);
    expect(modelSeen.run.reason).toBeInstanceOf(AbortError);
    expect(modelSeen.run.reason).toMatchObject(closedReason);
    expect(toolSeen.run.aborted).toBe(true);
    expect(toolSeen.run.reason).toMatchObject(closedReason);
    expect(toolSeen.tool?.aborted).toBe(true);
    expect(toolSeen.tool?.reason).toMatchObject(closedReason);
    // The caller's signal is the caller's: closing the bridge does not abort it, nor leave a listener on it.
    expect(caller.signal.aborted).toBe(false);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);

    expect(model).toMatchObject({ status: 'cancelled', error: closedReason, deliveryErrors: [] });
    expect(tool).toMatchObject({ status: 'cancelled', error: closedReason, deliveryErrors: [] });
    // What the client received: each run closed, ended cancelled.
    const received = alice.events();
    expect(validateLifecycle(received)).toEqual({ ok: true, runs: 2 });
    expect(ofRun(received, model.runId).map((event) => event.type)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
    expect(ofRun(received, tool.runId).map((event) => event.type)).toEqual(['agent_started', 'agent_thinking', 'tool_executing', 'tool_completed', 'agent_completed']);
    expect(ofRun(received, tool.runId)[3]!.data).toMatchObject({ status: 'failed', error: { name: 'AbortError' } });
    for (const runId of [model.runId, tool.runId]) {
      expect(ofRun(received, runId).at(-1)!.data).toMatchObject({ status: 'cancelled', error: { name: 'AbortError' } });
    }
    expect(agent.executed).toBe(2);
  });

  it('a run started after close() began gets an already aborted signal and never runs execute()', async () => {
    const { bridge, agent } = await start();
    await bridge.initialize();
    const closed = bridge.close();
    const result = await agent.run({ mode: 'model' }, { userId: 'alice', threadId: 't-late' });
    await closed;
    expect(result).toMatchObject({ status: 'cancelled', error: closedReason });
    expect(agent.executed).toBe(0);
  });

  it('code that ignores the signal goes on in the background; its later think() and callTool() reject with RUN_CLOSED once agent_completed is out, and emit nothing', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const later: Array<Promise<PromiseSettledResult<unknown>[]>> = [];
    let began!: () => void;
    const executing = new Promise<void>((resolve) => (began = resolve));
    class Stubborn extends BaseAgent<void, string> {
      protected async execute(): Promise<string> {
        began();
        await released; // ignores ctx.signal
        later.push(Promise.allSettled([this.think('after close'), this.callTool('none', {})]));
        return 'done';
      }
    }
    const agent = new Stubborn({ name: 'stubborn', bridge });
    const emitted: string[] = [];
    agent.on('event', (event) => emitted.push(event.type));
    const run = agent.run(undefined, { userId: 'alice', threadId: 't-stubborn' });
    await executing;
    await bridge.close();
    expect(await run).toMatchObject({ status: 'cancelled', error: closedReason });
    release();
    await until(() => later.length === 1);
    const outcomes = await later[0]!;
    expect(outcomes).toHaveLength(2);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ name: 'StateError', code: 'RUN_CLOSED' });
    }
    expect(emitted).toEqual(['agent_started', 'agent_completed']);
  });
});

describe('every way of cancelling a run aborts ctx.signal', () => {
  it("the caller's signal: ctx.signal aborts with the caller's reason; no listener stays on the caller's signal", async () => {
    const { url, bridge, agent } = await start();
    await bridge.initialize();
    const alice = await following(url, 'alice', 't-caller');
    const caller = new AbortController();
    const running = agent.run({ mode: 'tool' }, { userId: 'alice', threadId: 't-caller', signal: caller.signal });
    await alice.waitFor(() => alice.events().some((event) => event.type === 'tool_executing'), 'the run in its tool');
    const reason = new Error('user pressed stop');
    caller.abort(reason);
    const result = await running;

    const seen = agent.seen.get(result.runId)!;
    expect(seen.run.aborted).toBe(true);
    expect(seen.run.reason).toBe(reason);
    expect(seen.tool?.aborted).toBe(true);
    expect(result).toMatchObject({ status: 'cancelled', error: { name: 'AbortError', cause: reason } });
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    await alice.waitFor(() => alice.events().some((event) => event.type === 'agent_completed'), 'the cancelled end');
    expect(validateLifecycle(alice.events())).toEqual({ ok: true, runs: 1 });
    expect(alice.events().at(-1)!.data).toMatchObject({ status: 'cancelled', error: { name: 'AbortError' } });
  });

  it("MemoryRunQueue.cancel(): the running run's ctx.signal aborts (AbortError), the client gets agent_completed cancelled", async () => {
    const { url, bridge, agent } = await start();
    await bridge.initialize();
    const queue = new MemoryRunQueue();
    const worker = queue.serve({ agents: [agent] });
    stops.push(async () => {
      await worker.close({ timeoutMs: 0 });
      await queue.close();
    });
    const alice = await following(url, 'alice', 't-queue');
    const runId = await queue.submit('long', { mode: 'model' }, { userId: 'alice', threadId: 't-queue' });
    await alice.waitFor(() => alice.events().some((event) => event.type === 'agent_thinking'), 'the run in its model call');

    expect(await queue.cancel(runId, { userId: 'alice' })).toBe('requested');
    await alice.waitFor(() => alice.events().some((event) => event.type === 'agent_completed'), 'the cancelled end');

    const seen = agent.seen.get(runId)!;
    expect(seen.run.aborted).toBe(true);
    expect(seen.run.reason).toMatchObject({ name: 'AbortError', code: 'ABORTED' });
    expect(validateLifecycle(alice.events())).toEqual({ ok: true, runs: 1 });
    expect(alice.events().at(-1)).toMatchObject({ runId, data: { status: 'cancelled', error: { name: 'AbortError' } } });
  });
});

describe('a failed bridge refuses a run up front', () => {
  it('run() rejects with StateError BRIDGE_FAILED before any event: execute() never runs, neither the client nor local listeners see anything; after initialize() the same run id runs', async () => {
    const { url, bridge, agent, faulty } = await start((gateway) => new FaultyTransport(gateway));
    faulty!.down();
    await expect(bridge.initialize()).rejects.toMatchObject({ code: 'TRANSPORT_UNHEALTHY' });
    expect(bridge.state).toBe('failed');
    const alice = await following(url, 'alice', 't-failed');
    const local: string[] = [];
    agent.on('event', (event) => local.push(event.type));
    const runId = 'thread_t-failed_run_1_refused';

    const refused = agent.run({ mode: 'model' }, { userId: 'alice', threadId: 't-failed', runId });
    await expect(refused).rejects.toBeInstanceOf(StateError);
    await expect(refused).rejects.toMatchObject({ code: 'BRIDGE_FAILED' });
    expect(agent.executed).toBe(0);
    expect(local).toEqual([]);
    expect(bridge.metrics()).toMatchObject({ delivered: 0, failed: 0, activeRuns: 0 });

    // The transport is back and the bridge starts over: the refused run id was never used.
    faulty!.up();
    await bridge.initialize();
    const caller = new AbortController();
    const running = agent.run({ mode: 'model' }, { userId: 'alice', threadId: 't-failed', runId, signal: caller.signal });
    await alice.waitFor(() => alice.events().some((event) => event.type === 'agent_thinking'), 'the run in its model call');
    caller.abort(new Error('done watching'));
    expect(await running).toMatchObject({ runId, status: 'cancelled' });
    await alice.waitFor(() => alice.events().some((event) => event.type === 'agent_completed'), 'the end of the run');
    // The client got that one run, whole, and nothing of the refused attempt.
    expect(validateLifecycle(alice.events())).toEqual({ ok: true, runs: 1 });
    expect(alice.events().map((event) => `${event.seq}:${event.type}`)).toEqual(['1:agent_started', '2:agent_thinking', '3:agent_completed']);
    expect(agent.executed).toBe(1);
  });

  it('a bridge whose lazy first health check fails refuses the run that started it (BRIDGE_FAILED), without running execute()', async () => {
    const log = new MemoryTransport();
    const faulty = new FaultyTransport(log);
    const bridge = new AgentBridge({ transport: faulty, retry: { retries: 0 } });
    const agent = new LongAgent({ bridge });
    stops.push(() => bridge.close());
    const local: string[] = [];
    agent.on('event', (event) => local.push(event.type));
    const received: AgentEvent[] = [];
    log.subscribeSync({ userId: 'alice', threadId: 't-lazy' }, { onEntries: (entries) => received.push(...entries.map((entry) => entry.event)) });
    faulty.down();

    await expect(agent.run({ mode: 'model' }, { userId: 'alice', threadId: 't-lazy' })).rejects.toMatchObject({ name: 'StateError', code: 'BRIDGE_FAILED' });
    expect(bridge.state).toBe('failed');
    expect(agent.executed).toBe(0);
    expect(local).toEqual([]);
    expect(received).toEqual([]);
  });

  it('an AG-UI POST on a failed bridge is answered 503 BRIDGE_FAILED with no stream and no event; once initialize() succeeds, the next POST streams its run', async () => {
    const fixture = await startSurface('agui', 'node');
    stops.push(() => fixture.close());
    const health = fixture.transport.health.bind(fixture.transport);
    fixture.transport.health = () => ({ ok: false, detail: 'down (injected)' });
    await expect(fixture.bridge.initialize()).rejects.toMatchObject({ code: 'TRANSPORT_UNHEALTHY' });
    expect(fixture.bridge.state).toBe('failed');

    const refused = post(fixture, 'tok-alice', fixture.body('t-agui-failed', [{ think: 'never' }]));
    await refused.ended;
    expect(refused.status).toBe(503);
    expect(refused.frames).toEqual([]);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'BRIDGE_FAILED' } });
    expect(fixture.events).toEqual([]);
    expect(fixture.transport.read('t-agui-failed', 'alice')).toEqual([]);

    fixture.transport.health = health;
    await fixture.bridge.initialize();
    const served = post(fixture, 'tok-alice', fixture.body('t-agui-failed', [{ think: 'now' }]));
    await served.ended;
    expect(served.status).toBe(200);
    expect(isLastFrame('agui', JSON.parse(served.frames.at(-1)!.data) as Record<string, unknown>)).toBe(true);
    expect(fixture.events.map((event) => event.type)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
  });
});
