/**
 * Faults inside the agent's process (tools that hang or throw, runs aborted mid-tool, local
 * listeners that throw), through the whole stack: agent → AgentBridge → WebSocketGateway → real
 * clients over loopback. Judged by what each client received.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BaseAgent, defineTool, type AgentEvent, type EventOfType, type RunContext } from '../../src/index.js';
import type { Step } from '../helpers/agents.js';
import { EmissionLog, checkStream, figures, pause, perfect, startStack, type Stack } from '../helpers/reliability-harness.js';
import { follow, until } from '../helpers/ws-harness.js';
import { useCleanup } from '../helpers/cleanup.js';

const cleanup = useCleanup();

async function stack(): Promise<Stack> {
  const started = await startStack();
  cleanup.push(() => started.stop());
  return started;
}

async function followers(s: Stack, users: string[]) {
  const list = users.map((userId) => follow(s.url, userId, `thread-${userId}`));
  cleanup.push(() => list.forEach((f) => f.client.close()));
  await until(() => list.every((f) => f.client.status === 'open'), 'all clients subscribed');
  return list;
}

const ofType = <T extends AgentEvent['type']>(events: AgentEvent[], type: T) =>
  events.filter((event): event is EventOfType<T> => event.type === type);

describe('tools that hang and tools that throw', () => {
  it('each becomes a failed tool_completed at the client; caught ones let the run go on, uncaught ones fail it', async () => {
    const s = await stack();
    const users = Array.from({ length: 12 }, (_, i) => `u${i}`);
    const clients = await followers(s, users);
    // Half the users end with an uncaught hang (timeout → run failed), half with an uncaught throw.
    const scriptOf = (i: number): Step[] => [
      { think: 'start' },
      { tool: 'hang', args: {}, catchError: true },
      { tool: 'echo', args: { text: 'between' } },
      { tool: 'boom', args: {}, catchError: true },
      { think: 'recovered' },
      i % 2 === 0 ? { tool: 'hang', args: {} } : { tool: 'boom', args: {} },
      { think: 'never reached' },
    ];
    const results = await Promise.all(
      clients.map((f, i) => s.scripted.run(scriptOf(i), { userId: f.userId, threadId: f.threadId })),
    );
    expect(results.map((r) => r.status)).toEqual(users.map(() => 'failed'));
    await until(() => clients.every((f, i) => f.events.length === results[i]!.events), 'every event');
    await pause(20);

    for (const [i, f] of clients.entries()) {
      const report = checkStream(f, s.emitted.expected(f.userId, f.threadId));
      expect(report).toEqual(perfect(report, 1));
      const tools = ofType(f.events, 'tool_completed').map((e) => [e.data.tool, e.data.status, e.data.status === 'failed' ? e.data.error.name : null]);
      expect(tools).toEqual([
        ['hang', 'failed', 'ToolTimeoutError'],
        ['echo', 'succeeded', null],
        ['boom', 'failed', 'RangeError'],
        i % 2 === 0 ? ['hang', 'failed', 'ToolTimeoutError'] : ['boom', 'failed', 'RangeError'],
      ]);
      const [completed] = ofType(f.events, 'agent_completed');
      expect(completed!.data).toMatchObject({
        status: 'failed',
        error: i % 2 === 0 ? { name: 'ToolTimeoutError', code: 'TOOL_TIMEOUT' } : { name: 'ToolError', code: 'TOOL_FAILED' },
      });
      expect(ofType(f.events, 'agent_thinking').map((e) => e.data.text)).toEqual(['start', 'recovered']);
    }
  });
});

/** Calls two slow tools at once (both open when the user presses stop). */
class ParallelSlow extends BaseAgent<void, string> {
  constructor(bridge: Stack['bridge']) {
    super({ name: 'parallel-slow', bridge });
    const slow = (name: string) =>
      defineTool({
        name,
        description: 'waits until aborted',
        parameters: z.object({}),
        execute: (_args, ctx) =>
          new Promise<string>((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
      });
    this.addTool(slow('search'));
    this.addTool(slow('fetch'));
  }

  protected async execute(_input: void, _ctx: RunContext): Promise<string> {
    await this.think('looking in two places at once');
    await Promise.all([this.callTool('search', {}), this.callTool('fetch', {})]);
    return 'unreachable';
  }
}

describe('runs aborted mid-tool', () => {
  it('the user presses stop when their client shows the tool running: every open tool is closed, then the run is cancelled', async () => {
    const s = await stack();
    const parallel = new ParallelSlow(s.bridge);
    const emitted = new EmissionLog([parallel]);
    const users = Array.from({ length: 10 }, (_, i) => `u${i}`);
    const clients = await followers(s, users);
    const controllers = users.map(() => new AbortController());
    // "Stop" is pressed by the receiving side, on what it has received.
    clients.forEach((f, i) => {
      let open = 0;
      f.client.on('tool_executing', () => {
        const want = i % 2 === 0 ? 1 : 2;
        if (++open === want) controllers[i]!.abort(new Error('user pressed stop'));
      });
    });
    const results = await Promise.all(
      clients.map((f, i) =>
        i % 2 === 0
          ? s.scripted.run([{ think: 'x' }, { tool: 'slow', args: {} }, { think: 'never' }], { userId: f.userId, threadId: f.threadId, signal: controllers[i]!.signal })
          : parallel.run(undefined, { userId: f.userId, threadId: f.threadId, signal: controllers[i]!.signal }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(users.map(() => 'cancelled'));
    await until(() => clients.every((f, i) => f.events.length === results[i]!.events), 'every event');
    await pause(20);

    for (const [i, f] of clients.entries()) {
      const expected = i % 2 === 0 ? s.emitted.expected(f.userId, f.threadId) : emitted.expected(f.userId, f.threadId);
      const report = checkStream(f, expected);
      expect(report).toEqual(perfect(report, 1)); // includes: no orphaned tool_executing
      const closed = ofType(f.events, 'tool_completed');
      expect(closed).toHaveLength(i % 2 === 0 ? 1 : 2);
      expect(closed.every((e) => e.data.status === 'failed' && e.data.error.name === 'AbortError')).toBe(true);
      const last = f.events.at(-1)!;
      expect(last.type).toBe('agent_completed');
      expect(last.type === 'agent_completed' && last.data).toMatchObject({ status: 'cancelled', error: { name: 'AbortError' } });
      expect(last.type === 'agent_completed' && last.data.status === 'cancelled' && last.data.error.message).toContain('user pressed stop');
    }
  });
});

describe('listeners that throw', () => {
  it("throwing listeners in the agent's process (agent, bridge) and in the client never break a run or a stream", async () => {
    const s = await stack();
    const users = Array.from({ length: 10 }, (_, i) => `u${i}`);
    const clients = await followers(s, users);
    const bug = (where: string) => () => {
      throw new Error(`listener bug in ${where}`);
    };
    for (const type of ['event', 'agent_started', 'agent_thinking', 'tool_executing', 'tool_completed', 'agent_completed', 'listener_error'] as const) {
      s.load.on(type, bug(`agent ${type}`));
    }
    s.bridge.on('state', bug('bridge state'));
    s.bridge.on('delivery_error', bug('bridge delivery_error'));
    // The application's own listener on the client throws too (after the recording one).
    for (const f of clients) f.client.on('event', bug('client event'));

    const run = { thoughts: 30, tools: 8, parallel: true, failEvery: 3, toolDelayMs: 1 };
    // Make the bridge change state (its throwing 'state' listener fires on each change) mid-run: the
    // transport goes down at the agent's 50th event (of 480), so the events after it fail and the
    // bridge degrades (waiting for a client to see some events raced the runs' end on a busy machine).
    let emittedSoFar = 0;
    s.load.on('event', () => {
      if (++emittedSoFar === 50) s.faults.down();
    });
    const runs = clients.map((f) => s.load.run(run, { userId: f.userId, threadId: f.threadId }));
    await until(() => s.bridge.state === 'degraded', 'degraded');
    s.faults.up();
    const results = await Promise.all(runs);
    expect(results.every((r) => r.status === 'succeeded' && r.deliveryErrors.length === 0)).toBe(true);
    await until(() => s.bridge.state === 'active' && clients.every((f, i) => f.events.length === results[i]!.events), 'every event');
    await pause(20);

    for (const f of clients) {
      const report = checkStream(f, s.emitted.expected(f.userId, f.threadId));
      expect(report).toEqual(perfect(report, 1));
      expect(f.client.stats.listenerErrors).toBe(f.events.length); // counted, once per event …
      expect(f.errors.every((e) => e.code === 'LISTENER_FAILED')).toBe(true); // … and reported
      expect(f.client.status).toBe('open');
    }
    // Agent: each event hits two throwing listeners ('event' + its type); each throw is reported once as
    // listener_error, whose own throwing listener is counted but not reported again.
    const emittedByLoad = results.reduce((sum, r) => sum + r.events, 0);
    expect(s.load.listenerErrors).toBe(emittedByLoad * 4);
    expect(s.states).toEqual(['initializing', 'active', 'degraded', 'active']);
    figures('throwing listeners', { events: emittedByLoad, agentListenerErrors: s.load.listenerErrors });
  });
});
