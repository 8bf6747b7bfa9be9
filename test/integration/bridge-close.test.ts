/**
 * `AgentBridge.close()` with a real MemoryTransport behind a fault injector, judged by what the log
 * received: close drains (also while degraded: the recovery probes go on) for up to
 * `drainTimeoutMs`, reports the rest undelivered in every place a delivery error is reported, and
 * never leaves a started run without its `agent_completed` in the log.
 */
import { describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport, validateLifecycle, type AgentEvent, type DeliveryError } from '../../src/index.js';
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
