/**
 * Transport faults between the bridge and a real WebSocketGateway, judged by what real clients
 * (`agentwire/client/node`) received over loopback: every event exactly once, in order, to its
 * own user, or a loud DeliveryError for exactly the events that could not be kept.
 */
import { describe, expect, it } from 'vitest';
import { AgentBridge, DeliveryError, generateRunId, type AgentEvent } from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import {
  IntermittentTransport,
  checkStream,
  figures,
  loadEvents,
  pause,
  perfect,
  startStack,
  type LoadInput,
  type Stack,
  type StackOptions,
} from '../helpers/reliability-harness.js';
import { follow, until } from '../helpers/ws-harness.js';
import { useCleanup } from '../helpers/cleanup.js';

const cleanup = useCleanup();

async function stack(options: StackOptions = {}): Promise<Stack> {
  const started = await startStack(options);
  cleanup.push(() => started.stop());
  return started;
}

/** `count` users, each with a real client following its own thread (subscribed before anything runs). */
async function followers(s: Stack, count: number, prefix = 'u') {
  const list = Array.from({ length: count }, (_, i) => follow(s.url, `${prefix}${i}`, `thread-${prefix}${i}`));
  cleanup.push(() => list.forEach((f) => f.client.close()));
  await until(() => list.every((f) => f.client.status === 'open'), 'all clients subscribed');
  return list;
}

const received = (list: Array<{ events: AgentEvent[] }>): number => list.reduce((sum, f) => sum + f.events.length, 0);

const RUN: LoadInput = { thoughts: 40, tools: 12, parallel: true, failEvery: 5 };
const PER_RUN = loadEvents(RUN);

describe('transport send failing intermittently', () => {
  it('retries get every event through: each client receives every event once, in order, and the bridge never degrades', async () => {
    const s = await stack({ faultRate: 0.15 });
    const clients = await followers(s, 25);
    s.faults.intermittent = true;
    const results = await Promise.all(
      clients.flatMap((f) => [0, 1].map(() => s.load.run(RUN, { userId: f.userId, threadId: f.threadId }))),
    );
    expect(results.every((r) => r.status === 'succeeded' && r.deliveryErrors.length === 0)).toBe(true);
    await until(() => received(clients) === clients.length * 2 * PER_RUN, 'every event at every client');
    await pause(20); // room for a stray repeat to show up

    for (const f of clients) {
      const report = checkStream(f, s.emitted.expected(f.userId, f.threadId));
      expect(report).toEqual(perfect(report, 2));
      expect(report.expected).toBe(2 * PER_RUN);
    }
    const metrics = s.bridge.metrics();
    expect(s.faults.failures).toBeGreaterThan(100); // the faults really happened …
    expect(metrics.retried).toBe(s.faults.failures); // … each one was retried …
    expect(metrics).toMatchObject({ failed: 0, emitted: s.emitted.emitted, delivered: s.emitted.emitted, activeRuns: 0 });
    expect(s.states).not.toContain('degraded'); // … and the retries were enough
    figures('intermittent send failures', { users: clients.length, events: metrics.delivered, injectedFailures: s.faults.failures, retried: metrics.retried, failed: metrics.failed });
  });
});

describe('transport down longer than the retry window', () => {
  it('degrades, buffers, lets the runs finish, and flushes in order on recovery: clients get everything once', async () => {
    const s = await stack();
    const clients = await followers(s, 20);
    const runs = clients.map((f) => s.load.run({ ...RUN, toolDelayMs: 1 }, { userId: f.userId, threadId: f.threadId }));
    await until(() => received(clients) >= (clients.length * PER_RUN) / 4, 'a quarter of the events');
    s.faults.down();
    await until(() => s.bridge.state === 'degraded', 'degraded');
    // Agents are not blocked by the outage: every run finishes while the transport is down.
    const results = await Promise.all(runs);
    expect(results.every((r) => r.status === 'succeeded' && r.deliveryErrors.length === 0)).toBe(true);
    const duringOutage = received(clients);
    await pause(50);
    expect(received(clients)).toBe(duringOutage); // nothing gets past a down transport …
    const held = s.bridge.metrics().buffered;
    expect(held).toBeGreaterThan(0);
    expect(duringOutage + held).toBe(clients.length * PER_RUN); // … it is all held

    s.faults.up();
    await until(() => received(clients) === clients.length * PER_RUN, 'the flush after recovery');
    await pause(20);
    for (const f of clients) {
      const report = checkStream(f, s.emitted.expected(f.userId, f.threadId));
      expect(report).toEqual(perfect(report, 1));
    }
    expect(s.bridge.state).toBe('active');
    expect(s.bridge.metrics()).toMatchObject({ failed: 0, buffered: 0, bufferedPeak: held, delivered: s.emitted.emitted, activeRuns: 0 });
    expect(s.states.slice(-2)).toEqual(['degraded', 'active']);
    figures('transport down, then up', { users: clients.length, events: s.emitted.emitted, receivedBeforeOutage: duringOutage, heldDuringOutage: held });
  });
});

describe('bridge closed while an event is being retried', () => {
  it('reports the event undelivered once and never sends it afterwards: the client never sees it', async () => {
    const s = await stack();
    const [alice] = await followers(s, 1, 'alice');
    // A second bridge in front of the same gateway whose close() leaves the gateway serving.
    const gate = new IntermittentTransport({ send: (event) => s.gateway.send(event), close: async () => undefined });
    const bridge = new AgentBridge({ transport: gate, retry: { retries: 3, minTimeoutMs: 30, randomize: false }, drainTimeoutMs: 10 });
    await bridge.initialize();
    const errors: DeliveryError[] = [];
    bridge.on('delivery_error', (error) => errors.push(error));
    const emitter = new RunEmitter({ runId: generateRunId(alice!.threadId), threadId: alice!.threadId, userId: alice!.userId, agent: 'a' }, { bridge });
    gate.failNext(2); // the first attempt and the first retry fail; the second retry would succeed
    const delivery = emitter.emit('agent_started', { metadata: {} }).delivery.catch((error: unknown) => error);
    await until(() => gate.failures === 1, 'first attempt failed');
    await bridge.close(); // gives up after its drain timeout, while the retry is pending
    expect(await delivery).toMatchObject({ code: 'UNDELIVERED' });
    await pause(150); // past every retry delay
    expect(gate.attempts).toBeLessThanOrEqual(2); // no attempt after the event was reported undelivered
    expect(alice!.events).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(bridge.metrics()).toMatchObject({ failed: 1, delivered: 0, buffered: 0 });
  });
});

describe('transport down past the buffer bound', () => {
  it('refuses what does not fit with a DeliveryError to the agent, counts it, and loses nothing else', async () => {
    const s = await stack({ bridge: { maxBufferedPerRun: 40, maxBufferedTotal: 500 } });
    const clients = await followers(s, 20);
    s.faults.down();
    const results = await Promise.all(clients.map((f) => s.load.run(RUN, { userId: f.userId, threadId: f.threadId })));
    const refused = results.flatMap((r) => r.deliveryErrors);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((e) => e instanceof DeliveryError && e.code === 'BUFFER_FULL')).toBe(true);
    expect(s.emitted.refused.size).toBe(refused.length); // reported to the agent's listeners too
    expect(s.bridge.metrics()).toMatchObject({ failed: refused.length, buffered: s.emitted.emitted - refused.length });
    // The bound holds (plus, per run, the event in flight and the terminal event, which always fit).
    expect(s.bridge.metrics().bufferedPeak).toBeLessThanOrEqual(500 + 2 * clients.length);

    s.faults.up();
    const expectedTotal = s.emitted.emitted - refused.length;
    await until(() => received(clients) === expectedTotal, 'everything that was held');
    await pause(20);
    for (const [i, f] of clients.entries()) {
      const report = checkStream(f, s.emitted.expected(f.userId, f.threadId));
      // Exactly the refused events are missing: nothing else lost, nothing repeated, nothing foreign.
      expect({ ...report, violation: undefined }).toEqual({ ...perfect(report, 0), runs: 0 });
      const refusedHere = results[i]!.deliveryErrors.length;
      expect(report.expected).toBe(PER_RUN - refusedHere);
      // Every run's terminal event fits, so each client learns how its run ended …
      expect(f.events.at(-1)).toMatchObject({ type: 'agent_completed', data: { status: 'succeeded' } });
      // … and a run with refused events shows its gap loudly instead of hiding it.
      if (refusedHere > 0) {
        expect(report.violation).toMatch(/^seq_gap/);
        expect(f.errors.map((e) => e.code)).toContain('LIFECYCLE_VIOLATION');
      } else {
        expect(report.violation).toBeUndefined();
      }
    }
    expect(s.bridge.metrics()).toMatchObject({ buffered: 0, delivered: expectedTotal, failed: refused.length });

    // Recovered for good: the next runs arrive complete.
    const before = clients.map((f) => f.events.length);
    await Promise.all(clients.map((f) => s.load.run(RUN, { userId: f.userId, threadId: f.threadId })));
    await until(() => clients.every((f, i) => f.events.length === before[i]! + PER_RUN), 'the runs after recovery');
    expect(s.bridge.metrics().failed).toBe(refused.length);
    figures('down past the buffer bound', { users: clients.length, emitted: s.emitted.emitted - clients.length * PER_RUN, refused: refused.length, delivered: expectedTotal, bufferedPeak: s.bridge.metrics().bufferedPeak });
  });
});
