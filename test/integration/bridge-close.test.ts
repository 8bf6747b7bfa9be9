/**
 * `AgentBridge.close()` with a real MemoryTransport behind a fault injector, judged by what the log
 * received: close drains (also while degraded: the recovery probes go on) for up to
 * `drainTimeoutMs`, reports the rest undelivered in every place a delivery error is reported, and
 * never leaves a started run without its `agent_completed` in the log.
 */
import { describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport, TransportError, validateLifecycle, type AgentEvent, type DeliveryError } from '../../src/index.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { FaultyTransport } from '../helpers/faulty-transport.js';
import { until } from '../helpers/wait.js';

function setup(options: ConstructorParameters<typeof AgentBridge>[0] = {}) {
  const memory = new MemoryTransport();
  const faulty = new FaultyTransport(memory);
  const bridge = new AgentBridge({ transport: faulty, retry: { retries: 0 }, recoveryIntervalMs: 10, ...options });
  const agent = new ScriptedAgent({ bridge });
  const agentErrors: Array<{ code: string; type: string }> = [];
  const bridgeErrors: Array<{ code: string; type: string }> = [];
  agent.on('delivery_error', (error: DeliveryError, event: AgentEvent) => agentErrors.push({ code: error.code, type: event.type }));
  bridge.on('delivery_error', (error, event) => bridgeErrors.push({ code: error.code, type: event.type }));
  // What the thread's log received, in order, seen by a subscriber (closing the transport empties the memory log).
  const received: AgentEvent[] = [];
  memory.subscribeSync({ userId: 'alice', threadId: 't1' }, { onEntries: (entries) => received.push(...entries.map((entry) => entry.event)) });
  const logged = () => received;
  return { memory, faulty, bridge, agent, agentErrors, bridgeErrors, logged };
}

describe('close() on a degraded bridge', () => {
  it('keeps probing while it drains and delivers everything held once the transport is back', async () => {
    const { faulty, bridge, agent, logged } = setup({ drainTimeoutMs: 60_000 });
    await bridge.initialize();
    faulty.down();
    const result = await agent.run([{ think: 'a' }, { think: 'b' }], { userId: 'alice', threadId: 't1' });
    // The run ended while the transport was down: its events are held, the bridge is degraded.
    expect(result).toMatchObject({ status: 'succeeded', deliveryErrors: [] });
    expect(bridge.state).toBe('degraded');
    expect(bridge.metrics().buffered).toBe(4);

    const closed = bridge.close();
    expect(bridge.state).toBe('closed');
    // The drain goes on probing: a probe reaches the transport after close() began …
    const attempts = faulty.attempts;
    await until(() => faulty.attempts > attempts, 'a recovery probe during close()');
    // … and once it is back, the next probe flushes everything held, in order.
    faulty.up();
    await closed;

    const events = logged();
    expect(events.map((event) => event.type)).toEqual(['agent_started', 'agent_thinking', 'agent_thinking', 'agent_completed']);
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3, 4]);
    expect(validateLifecycle(events).ok).toBe(true);
    expect(bridge.metrics()).toMatchObject({ delivered: 4, failed: 0, buffered: 0 });
  });

  it('gives up after drainTimeoutMs: each held event is reported undelivered to the agent, the bridge and the metrics; a resolved run keeps its result', async () => {
    const { faulty, bridge, agent, agentErrors, bridgeErrors, logged } = setup({ drainTimeoutMs: 100 });
    await bridge.initialize();
    faulty.down();
    const result = await agent.run([{ think: 'a' }], { userId: 'alice', threadId: 't1' });
    expect(result).toMatchObject({ status: 'succeeded', deliveryErrors: [] });
    const attempts = faulty.attempts;

    await bridge.close();

    expect(faulty.attempts).toBeGreaterThan(attempts); // it did try during the drain
    expect(logged()).toEqual([]);
    const lost = [
      { code: 'UNDELIVERED', type: 'agent_started' },
      { code: 'UNDELIVERED', type: 'agent_thinking' },
      { code: 'UNDELIVERED', type: 'agent_completed' },
    ];
    expect(bridgeErrors).toEqual(lost);
    expect(agentErrors).toEqual(lost);
    expect(bridge.metrics()).toMatchObject({ delivered: 0, failed: 3, buffered: 0 });
    // The result was final when run() resolved (everything was buffered then): it does not change.
    expect(result.deliveryErrors).toEqual([]);
  });
});

/** Per run, the types the log received, in order. */
function byRun(events: AgentEvent[]): Map<string, string[]> {
  const runs = new Map<string, string[]>();
  for (const event of events) runs.set(event.runId, [...(runs.get(event.runId) ?? []), event.type]);
  return runs;
}

describe('close() with runs under way', () => {
  it("a run whose agent_started is being retried when close() is called ends cancelled in the log, without running execute", async () => {
    const { faulty, bridge, agent, logged } = setup({ retry: { retries: 5, minTimeoutMs: 5, randomize: false }, drainTimeoutMs: 60_000 });
    await bridge.initialize();
    faulty.failNext(2);
    const running = agent.run([{ think: 'never emitted' }], { userId: 'alice', threadId: 't1' });
    await until(() => faulty.failures >= 1, 'the first attempt of agent_started failed');

    await bridge.close();

    const events = logged();
    expect(events.map((event) => event.type)).toEqual(['agent_started', 'agent_completed']);
    expect(events[1]!.data).toMatchObject({ status: 'cancelled', error: { name: 'AbortError' } });
    expect(validateLifecycle(events).ok).toBe(true);
    const result = await running;
    expect(result.status).toBe('cancelled');
    expect(result.error).toMatchObject({ name: 'AbortError', code: 'ABORTED', cause: { code: 'BRIDGE_CLOSED' } });
    expect(result.deliveryErrors).toEqual([]);
    expect(bridge.metrics()).toMatchObject({ delivered: 2, failed: 0 });
  });

  it('a run in the middle of a tool call ends with the tool call closed (failed, AbortError), then agent_completed cancelled', async () => {
    const { bridge, agent, logged } = setup({ drainTimeoutMs: 60_000 });
    const running = agent.run([{ think: 'a' }, { tool: 'slow', args: {} }, { think: 'never emitted' }], { userId: 'alice', threadId: 't1' });
    await until(() => logged().some((event) => event.type === 'tool_executing'), 'the tool call in the log');

    await bridge.close();

    const events = logged();
    expect(events.map((event) => event.type)).toEqual(['agent_started', 'agent_thinking', 'tool_executing', 'tool_completed', 'agent_completed']);
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(events[3]!.data).toMatchObject({ tool: 'slow', status: 'failed', error: { name: 'AbortError' } });
    expect(events[4]!.data).toMatchObject({ status: 'cancelled' });
    expect(validateLifecycle(events).ok).toBe(true);
    const result = await running;
    expect(result).toMatchObject({ status: 'cancelled', events: 5, deliveryErrors: [] });
  });

  it('runs in every stage while the transport is down: once it is back within the drain, each started run has exactly one agent_completed, in order', async () => {
    const { faulty, bridge, agent, logged } = setup({ retry: { retries: 1, minTimeoutMs: 5, randomize: false }, drainTimeoutMs: 60_000 });
    await bridge.initialize();
    const finished = await agent.run([{ think: 'done' }], { userId: 'alice', threadId: 't1' });
    expect(finished.status).toBe('succeeded');
    const inTool = agent.run([{ think: 'a' }, { tool: 'slow', args: {} }], { userId: 'alice', threadId: 't1' });
    await until(() => logged().some((event) => event.type === 'tool_executing'), 'the tool call in the log');
    faulty.down();
    // Ends while the transport is down: everything of it is held.
    const heldRun = agent.run([{ think: 'held' }], { userId: 'alice', threadId: 't1' });
    // Under way while the transport is down: its first events are held, it waits in a tool call.
    const thinking = agent.run([{ think: 'held 1' }, { think: 'held 2' }, { tool: 'slow', args: {} }], { userId: 'alice', threadId: 't1' });
    await until(() => bridge.state === 'degraded' && bridge.metrics().buffered >= 3 + 4, 'degraded, both runs held');

    const closed = bridge.close();
    const attempts = faulty.attempts;
    await until(() => faulty.attempts > attempts, 'a recovery probe during close()');
    faulty.up();
    await closed;

    const results = await Promise.all([inTool, heldRun, thinking]);
    expect(results.map((result) => result.status)).toEqual(['cancelled', 'succeeded', 'cancelled']);
    expect(results.every((result) => result.deliveryErrors.length === 0)).toBe(true);
    const events = logged();
    const runs = byRun(events);
    expect(runs.size).toBe(4);
    for (const [runId, types] of runs) {
      expect(types[0], runId).toBe('agent_started');
      expect(types.filter((type) => type === 'agent_completed'), runId).toEqual(['agent_completed']);
      expect(types.at(-1), runId).toBe('agent_completed');
      const seqs = events.filter((event) => event.runId === runId).map((event) => event.seq);
      expect(seqs, runId).toEqual(seqs.map((_, i) => i + 1));
    }
    expect(runs.get(finished.runId)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
    expect(runs.get(results[0].runId)).toEqual(['agent_started', 'agent_thinking', 'tool_executing', 'tool_completed', 'agent_completed']);
    expect(runs.get(results[1].runId)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
    expect(runs.get(results[2].runId)).toEqual(['agent_started', 'agent_thinking', 'agent_thinking', 'tool_executing', 'tool_completed', 'agent_completed']);
    expect(validateLifecycle(events).ok).toBe(true);
    expect(bridge.metrics()).toMatchObject({ failed: 0, buffered: 0, activeRuns: 0 });
  });

  it('a run whose last events are still being retried when the drain times out resolves with them in deliveryErrors, reported everywhere', async () => {
    const { faulty, bridge, agent, agentErrors, bridgeErrors, logged } = setup({ retry: { retries: 3, minTimeoutMs: 60_000, randomize: false }, drainTimeoutMs: 50 });
    const running = agent.run([{ think: 'a' }, { tool: 'slow', args: {} }], { userId: 'alice', threadId: 't1' });
    await until(() => logged().some((event) => event.type === 'tool_executing'), 'the tool call in the log');
    faulty.down();

    await bridge.close();
    const result = await running;

    expect(logged().map((event) => event.type)).toEqual(['agent_started', 'agent_thinking', 'tool_executing']);
    expect(result.status).toBe('cancelled');
    const lost = [
      { code: 'UNDELIVERED', type: 'tool_completed' },
      { code: 'UNDELIVERED', type: 'agent_completed' },
    ];
    expect(result.deliveryErrors.map((error) => error.code)).toEqual(['UNDELIVERED', 'UNDELIVERED']);
    expect(agentErrors).toEqual(lost);
    expect(bridgeErrors).toEqual(lost);
    expect(bridge.metrics()).toMatchObject({ delivered: 3, failed: 2, buffered: 0 });
  });

  it('a run whose agent_completed is being retried when close() is called is not cancelled: it ends as it was', async () => {
    const { faulty, bridge, agent, logged } = setup({ retry: { retries: 5, minTimeoutMs: 50, randomize: false }, drainTimeoutMs: 60_000 });
    // The first attempt of the run's agent_completed fails; close() comes while its retry waits.
    const send = faulty.send.bind(faulty);
    let failedTerminal = false;
    faulty.send = (event) => {
      if (event.type === 'agent_completed' && !failedTerminal) {
        failedTerminal = true;
        return Promise.reject(new TransportError('injected terminal failure'));
      }
      return send(event);
    };
    const running = agent.run([{ think: 'a' }], { userId: 'alice', threadId: 't1' });
    await until(() => failedTerminal, 'the first attempt of agent_completed failed');

    await bridge.close();

    expect(logged().map((event) => event.type)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
    expect(logged()[2]!.data).toMatchObject({ status: 'succeeded' });
    expect(await running).toMatchObject({ status: 'succeeded', deliveryErrors: [] });
  });

  it('a run started after close() began ends cancelled without running execute; nothing of it reaches the log, every event is reported', async () => {
    const { bridge, agent, agentErrors, logged } = setup();
    const closed = bridge.close();
    const seen: string[] = [];
    agent.on('event', (event) => seen.push(event.type));
    const result = await agent.run([{ think: 'never emitted' }], { userId: 'alice', threadId: 't1' });
    await closed;
    expect(logged()).toEqual([]);
    expect(result).toMatchObject({ status: 'cancelled', events: 2, error: { name: 'AbortError', cause: { code: 'BRIDGE_CLOSED' } } });
    expect(seen).toEqual(['agent_started', 'agent_completed']); // locally too, the run starts and ends
    expect(result.deliveryErrors.map((error) => `${error.code}/${error.causeCode}`)).toEqual(['BRIDGE_UNAVAILABLE/BRIDGE_CLOSED', 'BRIDGE_UNAVAILABLE/BRIDGE_CLOSED']);
    expect(agentErrors).toEqual([
      { code: 'BRIDGE_UNAVAILABLE', type: 'agent_started' },
      { code: 'BRIDGE_UNAVAILABLE', type: 'agent_completed' },
    ]);
  });
});
