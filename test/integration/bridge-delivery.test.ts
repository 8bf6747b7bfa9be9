import { describe, expect, it } from 'vitest';
import {
  AgentBridge,
  DeliveryError,
  MemoryTransport,
  ThreadResolutionError,
  TransportError,
  generateRunId,
  validateLifecycle,
  type AgentEvent,
  type BridgeState,
} from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { FaultyTransport } from '../helpers/faulty-transport.js';
import { until } from '../helpers/wait.js';

const fastRetry = { minTimeoutMs: 2, maxTimeoutMs: 10, randomize: false };

function setup(options: ConstructorParameters<typeof AgentBridge>[0] = {}) {
  const memory = new MemoryTransport();
  const faulty = new FaultyTransport(memory);
  const bridge = new AgentBridge({ transport: faulty, retry: fastRetry, recoveryIntervalMs: 5, ...options });
  const states: BridgeState[] = [];
  bridge.on('state', (next) => states.push(next));
  const received = (userId = 'alice', threadId = 't1') => memory.read(threadId, userId);
  return { memory, faulty, bridge, states, received };
}

/** A run's events built by a real emitter, delivered through the bridge. */
function run(bridge: AgentBridge, thoughts: number, userId = 'alice', threadId = 't1') {
  const emitter = new RunEmitter({ runId: generateRunId(threadId), threadId, userId, agent: 'a' }, { bridge });
  const deliveries = [emitter.emit('agent_started', { metadata: {} }).delivery];
  for (let i = 0; i < thoughts; i++) deliveries.push(emitter.emit('agent_thinking', { text: `t${i}` }).delivery);
  deliveries.push(emitter.emit('agent_completed', { status: 'succeeded', result: null, durationMs: 1 }).delivery);
  return deliveries.map((d) => d.then((receipt) => receipt, (error: unknown) => error as DeliveryError));
}

describe('AgentBridge delivery', () => {
  it('initialize() is idempotent and observable', async () => {
    const { bridge, states } = setup();
    await Promise.all([bridge.initialize(), bridge.initialize()]);
    await bridge.initialize();
    expect(states).toEqual(['initializing', 'active']);
    expect((await bridge.health()).state).toBe('active');
    await bridge.close();
  });

  it('initialize() fails into `failed` when the transport is unhealthy, and can be retried', async () => {
    const { bridge, faulty, states } = setup();
    faulty.down();
    await expect(bridge.initialize()).rejects.toMatchObject({ code: 'TRANSPORT_UNHEALTHY' });
    expect(bridge.state).toBe('failed');
    faulty.up();
    await bridge.initialize();
    expect(states).toEqual(['initializing', 'failed', 'initializing', 'active']);
    await bridge.close();
  });

  it('retries intermittent failures and keeps order: later events never overtake', async () => {
    const { bridge, faulty, received, states } = setup();
    await bridge.initialize();
    faulty.failNext(2);
    const receipts = await Promise.all(run(bridge, 20));
    expect(receipts.every((r) => r === 'delivered')).toBe(true);
    const events = received();
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
    expect(validateLifecycle(events).ok).toBe(true);
    expect(bridge.metrics()).toMatchObject({ delivered: 22, retried: 2, failed: 0 });
    expect(states).not.toContain('degraded');
    await bridge.close();
  });

  it('transport down past the retries: degraded, buffered, flushed in order on recovery, nothing lost', async () => {
    const { bridge, faulty, received, states } = setup();
    await bridge.initialize();
    faulty.down();
    const runs = [run(bridge, 30, 'alice', 'ta'), run(bridge, 30, 'bob', 'tb')];
    await until(() => bridge.state === 'degraded', 'degraded');
    const receipts = await Promise.all(runs.flat());
    expect(receipts.every((r) => r === 'buffered' || r === 'delivered')).toBe(true);
    expect(bridge.metrics().buffered).toBeGreaterThan(0);
    faulty.up();
    await until(() => bridge.state === 'active' && bridge.metrics().buffered === 0, 'recovery');
    for (const [userId, threadId] of [['alice', 'ta'], ['bob', 'tb']] as const) {
      const events = received(userId, threadId);
      expect(events).toHaveLength(32);
      expect(validateLifecycle(events).ok).toBe(true);
    }
    expect(states).toEqual(['initializing', 'active', 'degraded', 'active']);
    expect(bridge.metrics()).toMatchObject({ delivered: 64, failed: 0 });
    await bridge.close();
  });

  it('down past the buffer bound: DeliveryError to the emitter, counted, the terminal event still fits, nothing else lost', async () => {
    const { bridge, faulty, received } = setup({ maxBufferedPerRun: 10 });
    await bridge.initialize();
    const errors: DeliveryError[] = [];
    bridge.on('delivery_error', (error) => errors.push(error));
    faulty.down();
    const outcomes = await Promise.all(run(bridge, 30));
    const failed = outcomes.filter((o) => o instanceof DeliveryError);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((e) => (e as DeliveryError).code === 'BUFFER_FULL')).toBe(true);
    expect(bridge.metrics().failed).toBe(failed.length);
    expect(errors).toHaveLength(failed.length);
    faulty.up();
    await until(() => bridge.metrics().buffered === 0 && bridge.state === 'active', 'flush');
    const events = received();
    // Everything accepted arrived, in order; the refused events are the only ones missing.
    expect(events).toHaveLength(32 - failed.length);
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(events.at(-1)!.type).toBe('agent_completed');
    await bridge.close();
  });

  it('an agent whose transport is down finishes its run; undelivered events are reported on the result', async () => {
    const { bridge, faulty } = setup({ maxBufferedPerRun: 2 });
    await bridge.initialize();
    faulty.down();
    const agent = new ScriptedAgent({ bridge });
    const reported: unknown[] = [];
    agent.on('delivery_error', (error) => reported.push(error));
    const result = await agent.run([{ think: '1' }, { think: '2' }, { think: '3' }, { think: '4' }], { userId: 'u', threadId: 't' });
    expect(result.status).toBe('succeeded');
    expect(result.deliveryErrors.length).toBeGreaterThan(0);
    expect(result.deliveryErrors.every((e) => e instanceof DeliveryError)).toBe(true);
    expect(reported).toHaveLength(result.deliveryErrors.length);
    faulty.up();
    await bridge.close();
  });

  it('staying down past failAfterMs: failed, buffered events reported undelivered, new sends rejected', async () => {
    const { bridge, faulty, states } = setup({ failAfterMs: 30 });
    await bridge.initialize();
    faulty.down();
    const outcomes = run(bridge, 3);
    await until(() => bridge.state === 'failed', 'failed');
    await Promise.all(outcomes);
    expect(states).toEqual(['initializing', 'active', 'degraded', 'failed']);
    expect(bridge.metrics().failed).toBe(5);
    expect(bridge.metrics().buffered).toBe(0);
    await expect(run(bridge, 0)[0]).resolves.toBeInstanceOf(DeliveryError);
    await bridge.close();
  });

  it('refuses events whose run resolves to another thread, and unresolvable run ids', async () => {
    const { bridge } = setup();
    const runId = generateRunId('t1');
    const emitter = new RunEmitter({ runId, threadId: 't1', userId: 'alice', agent: 'a' }, { bridge });
    await emitter.emit('agent_started', { metadata: {} }).delivery;
    const forged = new RunEmitter({ runId, threadId: 't2', userId: 'alice', agent: 'a' }, { bridge });
    await expect(forged.emit('agent_started', { metadata: {} }).delivery).rejects.toMatchObject({ code: 'DELIVERY_FAILED', causeCode: 'THREAD_UNRESOLVED' });
    await expect(forged.emit('agent_thinking', { text: 'x' }).delivery).rejects.toMatchObject({ code: 'DELIVERY_FAILED', causeCode: 'THREAD_UNRESOLVED' });
    const unknown = new RunEmitter({ runId: 'unknown-run', threadId: 't9', userId: 'alice', agent: 'a' }, { bridge });
    const failure = await unknown.emit('agent_thinking', { text: 'x' }).delivery.catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(DeliveryError);
    expect((failure as DeliveryError).cause).toBeInstanceOf(ThreadResolutionError);
    expect(bridge.metrics().threadResolutionFailures).toBe(3); // forged start, forged thought, unknown run id
    await bridge.close();
  });

  it('validates events given to send() and names the bad field', async () => {
    const { bridge } = setup();
    const bad = { v: 1, type: 'agent_thinking', id: 'x', runId: generateRunId('t'), threadId: 't', userId: 'u', agent: 'a', seq: 1, ts: 1, data: { text: 7 } };
    await expect(bridge.send(bad as unknown as AgentEvent)).rejects.toThrow(/data\.text/);
    expect(bridge.metrics().failed).toBe(1);
    await bridge.close();
  });

  it('send() of something that is not an event object (null, undefined, a number, a string, an array) is a DeliveryError INVALID_EVENT, validation on or off; the bridge goes on', async () => {
    for (const validate of [true, false]) {
      const { bridge, received } = setup({ validate });
      const values: unknown[] = [null, undefined, 42, 'agent_started', [], true];
      for (const value of values) {
        await expect(bridge.send(value as AgentEvent)).rejects.toMatchObject({ name: 'DeliveryError', code: 'DELIVERY_FAILED', causeCode: 'INVALID_EVENT' });
      }
      expect(bridge.metrics().failed).toBe(values.length);
      const outcomes = await Promise.all(run(bridge, 1));
      expect(outcomes.every((outcome) => !(outcome instanceof Error))).toBe(true);
      expect(received().map((event) => event.type)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
      await bridge.close();
    }
  });

  it('close() drains queued events before closing the transport', async () => {
    const { bridge, memory } = setup();
    const got: AgentEvent[] = [];
    memory.subscribeSync({ userId: 'alice', threadId: 't1' }, { onEntries: (entries) => got.push(...entries.map((e) => e.event)) });
    const pending = run(bridge, 50);
    await bridge.close();
    expect((await Promise.all(pending)).every((r) => r === 'delivered')).toBe(true);
    expect(got).toHaveLength(52);
    expect(validateLifecycle(got).ok).toBe(true);
    expect(bridge.state).toBe('closed');
  });
});

describe('inline delivery to synchronous transports', () => {
  /** A real MemoryTransport whose synchronous path fails on chosen calls. */
  class FlakySyncMemory extends MemoryTransport {
    syncCalls = 0;
    constructor(private readonly failOn: Set<number>, private readonly error: () => Error) {
      super();
    }
    override sendSync(event: AgentEvent): void {
      if (this.failOn.has(++this.syncCalls)) throw this.error();
      super.sendSync(event);
    }
  }

  it('delivers inline when nothing of the run is queued, and falls back to the retried queue on a retryable failure', async () => {
    const transport = new FlakySyncMemory(new Set([3, 4]), () => new TransportError('blip'));
    const bridge = new AgentBridge({ transport, retry: fastRetry });
    await bridge.initialize();
    const got: AgentEvent[] = [];
    transport.subscribeSync({ userId: 'alice', threadId: 't1' }, { onEntries: (entries) => got.push(...entries.map((e) => e.event)) });
    const receipts = await Promise.all(run(bridge, 20));
    expect(receipts.every((r) => r === 'delivered')).toBe(true);
    expect(transport.syncCalls).toBeGreaterThan(0);
    expect(got.map((e) => e.seq)).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
    expect(validateLifecycle(got).ok).toBe(true);
    expect(bridge.metrics()).toMatchObject({ delivered: 22, failed: 0, activeRuns: 0 });
    await bridge.close();
  });

  it('a non-retryable synchronous refusal becomes a DeliveryError, counted, and the run goes on', async () => {
    const transport = new FlakySyncMemory(new Set([2]), () => new TransportError('refused', { retryable: false, code: 'TRANSPORT_REFUSED' }));
    // The queued path's first attempt uses send(): make it refuse the same event.
    const send = transport.send.bind(transport);
    let refusedOnce = false;
    transport.send = (event) => {
      if (!refusedOnce && event.seq === 2) {
        refusedOnce = true;
        return Promise.reject(new TransportError('refused', { retryable: false, code: 'TRANSPORT_REFUSED' }));
      }
      return send(event);
    };
    const bridge = new AgentBridge({ transport, retry: fastRetry });
    await bridge.initialize();
    const outcomes = await Promise.all(run(bridge, 3));
    expect(outcomes[1]).toBeInstanceOf(DeliveryError);
    expect(outcomes[1]).toMatchObject({ code: 'DELIVERY_FAILED', causeCode: 'TRANSPORT_REFUSED' });
    expect(outcomes.filter((o) => o === 'delivered')).toHaveLength(4);
    expect(bridge.metrics()).toMatchObject({ delivered: 4, failed: 1 });
    await bridge.close();
  });
});
