/**
 * `run()` rejects only before the first event: when the log refuses a run's `agent_started`
 * (another user's thread that this bridge has not seen, a run id another process started first),
 * the run emits nothing at all, to the log or to the agent's local listeners. Local listeners get
 * `agent_started` once the log accepted it, so every run they see ends with its `agent_completed`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, BaseAgent, MemoryTransport, generateRunId, validateLifecycle, type AgentEvent, type Transport } from '../../src/index.js';
import { connect } from '../../src/client/node.js';
import { WebSocketGateway } from '../../src/transport/websocket/index.js';
import { authenticate, tokenOf, until } from '../helpers/ws-harness.js';

class Thinker extends BaseAgent<number, string> {
  protected async execute(steps: number): Promise<string> {
    for (let i = 0; i < steps; i++) await this.think(`step ${i}`);
    return 'ok';
  }
}

/** What the agent's local listeners received: every event (`'event'`), and per type. */
function listen(agent: BaseAgent<number, string>) {
  const all: AgentEvent[] = [];
  const typed: string[] = [];
  const errors: unknown[] = [];
  agent.on('event', (event) => all.push(event));
  agent.on('agent_started', (event) => typed.push(`${event.type}(${event.userId})`));
  agent.on('agent_completed', (event) => typed.push(`${event.type}(${event.userId})`));
  agent.on('delivery_error', (error) => errors.push(error));
  return { all, typed, errors };
}

const types = (events: readonly AgentEvent[]) => events.map((event) => event.type);

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

describe('a run whose start the log refuses emits nothing locally', () => {
  it("another user's thread on a second bridge of the same log: THREAD_FORBIDDEN, no local event, nothing in the log", async () => {
    const log = new MemoryTransport();
    const first = new Thinker({ name: 'a', bridge: new AgentBridge({ transport: log }) });
    await first.run(1, { userId: 'alice', threadId: 'X' });
    const before = log.read('X', 'alice');
    // Another worker on the same log, whose bridge has never seen thread X.
    const worker2 = new Thinker({ name: 'a', bridge: new AgentBridge({ transport: log }) });
    const seen = listen(worker2);
    await expect(worker2.run(1, { userId: 'mallory', threadId: 'X' })).rejects.toMatchObject({ name: 'AuthError', code: 'THREAD_FORBIDDEN' });
    expect(seen.all).toEqual([]);
    expect(seen.typed).toEqual([]);
    expect(seen.errors).toEqual([]);
    expect(log.read('X', 'alice')).toEqual(before);
    // The agent goes on: mallory's run in her own thread is seen whole, from start to end.
    const own = await worker2.run(1, { userId: 'mallory', threadId: 'M' });
    expect(own.status).toBe('succeeded');
    expect(types(seen.all)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
    expect(seen.all).toEqual(log.read('M', 'mallory'));
    expect(seen.typed).toEqual(['agent_started(mallory)', 'agent_completed(mallory)']);
  });

  it('behind a real WebSocket gateway: the refused run reaches neither local listeners nor the thread owner', async () => {
    const gateway = new WebSocketGateway({ authenticate });
    const { url } = await gateway.listen(0, '127.0.0.1');
    const aliceBridge = new AgentBridge({ transport: gateway });
    const otherBridge = new AgentBridge({ transport: gateway });
    stops.push(async () => {
      await aliceBridge.close();
      await otherBridge.close();
      await gateway.close();
    });
    const first = new Thinker({ name: 'a', bridge: aliceBridge });
    const worker2 = new Thinker({ name: 'a', bridge: otherBridge });
    const seen = listen(worker2);
    const alice = connect(url, { token: tokenOf('alice'), threadId: 'X' });
    stops.push(async () => alice.close());
    const received: AgentEvent[] = [];
    alice.on('event', (event) => received.push(event));
    await until(() => alice.status === 'open', "alice's client open");
    await first.run(1, { userId: 'alice', threadId: 'X' });
    await expect(worker2.run(2, { userId: 'mallory', threadId: 'X' })).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
    // The barrier: alice's next run arrives after anything of mallory's could have.
    const second = await first.run(1, { userId: 'alice', threadId: 'X' });
    await until(() => received.some((event) => event.type === 'agent_completed' && event.runId === second.runId), "alice's second run at her client");
    expect(received.every((event) => event.userId === 'alice')).toBe(true);
    expect(types(received)).toEqual(['agent_started', 'agent_thinking', 'agent_completed', 'agent_started', 'agent_thinking', 'agent_completed']);
    expect(validateLifecycle(received)).toEqual({ ok: true, runs: 2 });
    expect(seen.all).toEqual([]);
  });

  it('two bridges start one run id at once: the loser rejects RUN_ID_CONFLICT and its listeners saw nothing', async () => {
    const log = new MemoryTransport();
    const one = new Thinker({ name: 'a', bridge: new AgentBridge({ transport: log }) });
    const two = new Thinker({ name: 'a', bridge: new AgentBridge({ transport: log }) });
    const seenOne = listen(one);
    const seenTwo = listen(two);
    const runId = generateRunId('R');
    const outcomes = await Promise.allSettled([one.run(2, { userId: 'alice', threadId: 'R', runId }), two.run(2, { userId: 'alice', threadId: 'R', runId })]);
    const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const lost = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toMatchObject({ name: 'ValidationError', code: 'RUN_ID_CONFLICT' });
    const stored = log.read('R', 'alice');
    expect(types(stored)).toEqual(['agent_started', 'agent_thinking', 'agent_thinking', 'agent_completed']);
    expect(validateLifecycle(stored)).toEqual({ ok: true, runs: 1 });
    // The winner's listeners saw exactly what the log stored; the loser's saw nothing.
    const [winner, loser] = outcomes[0]!.status === 'fulfilled' ? [seenOne, seenTwo] : [seenTwo, seenOne];
    expect(winner.all).toEqual(stored);
    expect(loser.all).toEqual([]);
  });
});

/** A transport that accepts each event a few milliseconds later (a remote log). */
class SlowTransport implements Transport {
  constructor(readonly inner: MemoryTransport) {}
  async send(event: AgentEvent): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 3));
    await this.inner.send(event);
  }
  async close(): Promise<void> {
    await this.inner.close();
  }
}

describe('a run whose start the log accepts is observed whole', () => {
  it('over an asynchronous transport, agent_started reaches local listeners once the log holds it, first and in order', async () => {
    const log = new MemoryTransport();
    const agent = new Thinker({ name: 'a', bridge: new AgentBridge({ transport: new SlowTransport(log) }) });
    const atStart: number[] = [];
    agent.on('agent_started', (event) => atStart.push(log.read(event.threadId, event.userId).length));
    const seen = listen(agent);
    const result = await agent.run(3, { userId: 'alice', threadId: 'S' });
    expect(result.status).toBe('succeeded');
    expect(atStart).toEqual([1]);
    expect(types(seen.all)).toEqual(['agent_started', 'agent_thinking', 'agent_thinking', 'agent_thinking', 'agent_completed']);
    expect(seen.all).toEqual(log.read('S', 'alice'));
  });

  it('a start that fails for another reason (a closed bridge) is still observed, before its delivery_error, and the run ends', async () => {
    const bridge = new AgentBridge({ transport: new MemoryTransport() });
    await bridge.close();
    const agent = new Thinker({ name: 'a', bridge });
    const order: string[] = [];
    agent.on('event', (event) => order.push(event.type));
    agent.on('delivery_error', (_error, event) => order.push(`delivery_error(${event.type})`));
    const result = await agent.run(1, { userId: 'alice', threadId: 'C' });
    expect(order.slice(0, 2)).toEqual(['agent_started', 'delivery_error(agent_started)']);
    // A run started on a closed bridge ends cancelled at once, without execute() (see bridge-close.test.ts).
    expect(order.filter((entry) => !entry.startsWith('delivery_error'))).toEqual(['agent_started', 'agent_completed']);
    expect(result.status).toBe('cancelled');
    expect(result.deliveryErrors.length).toBeGreaterThan(0);
  });
});
