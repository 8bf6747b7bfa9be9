/**
 * Backpressure as the docs state it (docs/performance.md "What tunes throughput", SECURITY.md): a
 * consumer that stops reading is paced by `maxBufferedBytes` and closed with 1013 past
 * `maxQueuedFrames` live frames, others unaffected, and it resumes from its cursor with nothing
 * lost; `gateway.send()` into the memory log never waits; `batching: false` is one message per
 * event; the bridge's `highWaterMark` makes a producer wait. Real `ws` clients over loopback.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { AgentBridge, BaseAgent, MemoryTransport, type AgentEvent, type Transport } from '../../src/index.js';
import { WebSocketGateway, type WebSocketGatewayOptions } from '../../src/gateway/websocket/index.js';
import { connect } from '../../src/client/node.js';
import { Peer, RunBuilder, authenticate, openPeer } from './hotpath-peer.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startGateway(options: Partial<WebSocketGatewayOptions> = {}) {
  const errors: unknown[] = [];
  const gateway = new WebSocketGateway({ authenticate, log: new MemoryTransport({ maxEventsPerThread: 50_000, maxBytesPerThread: 64 * 1024 * 1024, maxTotalBytes: 256 * 1024 * 1024 }), onError: (error) => errors.push(error), ...options });
  const { url } = await gateway.listen(0);
  cleanups.push(() => gateway.close());
  return { gateway, url, errors };
}

const peer = (url: string, userId: string, options?: WebSocket.ClientOptions): Promise<Peer> => openPeer(cleanups, url, userId, options);

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('attack: backpressure on the hot path', () => {
  it('a consumer that stops reading is closed with 1013; its user’s other connection and another user get everything; it resumes from its cursor with no gap and no duplicate', async () => {
    const { gateway, url, errors } = await startGateway({ maxQueuedFrames: 200, maxBufferedBytes: 64 * 1024 });
    const slow = await peer(url, 'alice');
    const twin = await peer(url, 'alice');
    const bob = await peer(url, 'bob');
    const a = new RunBuilder('alice', 'bp-a');
    const b = new RunBuilder('bob', 'bp-b');
    const sentA = [a.started()];
    const sentB = [b.started()];
    await gateway.send(sentA[0]!);
    await gateway.send(sentB[0]!);
    await Promise.all([slow.subscribe('bp-a'), twin.subscribe('bp-a'), bob.subscribe('bp-b')]);
    slow.ws.pause();
    // ~16 MB per thread over 400 ticks: more than loopback's socket buffers can absorb.
    for (let tick = 0; tick < 400; tick++) {
      for (let k = 0; k < 10; k++) {
        const ea = a.thinking(`a ${tick}.${k} ${'s'.repeat(4_000)}`);
        const eb = b.thinking(`b ${tick}.${k} ${'s'.repeat(4_000)}`);
        sentA.push(ea);
        sentB.push(eb);
        void gateway.send(ea);
        void gateway.send(eb);
      }
      await turn();
    }
    await twin.until(() => twin.events().length >= sentA.length, 20_000, 'twin');
    await bob.until(() => bob.events().length >= sentB.length, 20_000, 'bob');
    expect(twin.events().map((f) => f.event!.id)).toEqual(sentA.map((e) => e.id));
    expect(bob.events().map((f) => f.event!.id)).toEqual(sentB.map((e) => e.id));
    expect(twin.close).toBeUndefined();
    expect(bob.close).toBeUndefined();
    expect(gateway.stats().disconnects.slow_consumer).toBe(1);
    // The slow peer reads again: what it gets is a prefix of the thread, then close 1013.
    slow.ws.resume();
    const closed = await slow.closed(15_000);
    expect(closed.code).toBe(1013);
    const got = slow.events().map((f) => f.event!.id);
    expect(got).toEqual(sentA.slice(0, got.length).map((e) => e.id));
    expect(got.length).toBeLessThan(sentA.length);
    // Resume from the last cursor it saw: the rest, exactly.
    const again = await peer(url, 'alice');
    const last = slow.events().at(-1)!.cursor!;
    const answer = await again.subscribe('bp-a', last);
    expect(answer.type).toBe('subscribed');
    await again.until(() => again.events().length >= sentA.length - got.length, 20_000, 'resumed');
    expect(again.events().map((f) => f.event!.id)).toEqual(sentA.slice(got.length).map((e) => e.id));
    expect(errors).toEqual([]);
  });

  it('agentwire/client through repeated 1013 closes (tiny maxBufferedBytes and maxQueuedFrames): it resumes every time and shows each of 1,000 events exactly once, in order', async () => {
    const { gateway, url, errors } = await startGateway({ maxBufferedBytes: 1, maxQueuedFrames: 5 });
    const run = new RunBuilder('fiona', 'loop');
    const sent: AgentEvent[] = [run.started()];
    await gateway.send(sent[0]!);
    const client = connect(url, { token: 'u-fiona', threadId: 'loop', reconnect: { initialDelayMs: 5, maxDelayMs: 20, jitter: false } });
    cleanups.push(() => client.close());
    const got: AgentEvent[] = [];
    const clientErrors: string[] = [];
    let target = 1;
    let reached: () => void = () => undefined;
    const reach = (n: number) => new Promise<void>((resolve) => {
      target = n;
      reached = resolve;
      if (got.length >= n) resolve();
    });
    client.on('error', (error) => clientErrors.push(error.code));
    const take = (event: AgentEvent) => {
      got.push(event);
      if (got.length >= target) reached();
    };
    client.on('agent_started', (event) => take(event));
    client.on('agent_thinking', (event) => take(event));
    client.on('agent_completed', (event) => take(event));
    await reach(1);
    for (let tick = 0; tick < 50; tick++) {
      for (let k = 0; k < 20; k++) {
        const event = run.thinking(`${tick}.${k} ${'h'.repeat(2_000)}`);
        sent.push(event);
        void gateway.send(event);
      }
      await turn();
    }
    const end = run.completed();
    sent.push(end);
    void gateway.send(end);
    await reach(sent.length);
    expect(got.map((e) => e.id)).toEqual(sent.map((e) => e.id));
    expect(gateway.stats().disconnects.slow_consumer).toBeGreaterThan(0);
    expect(client.stats.reconnects).toBeGreaterThan(0);
    expect(clientErrors).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('maxBufferedBytes bounds what is written ahead to a stuck socket (at most one message past it); the rest waits in the queue and all arrives after', async () => {
    const max = 64 * 1024;
    const { gateway, url } = await startGateway({ maxBufferedBytes: max, maxQueuedFrames: 1_000_000, maxQueuedBytes: 2 ** 30 });
    const p = await peer(url, 'gus');
    const run = new RunBuilder('gus', 'bb');
    const sent: AgentEvent[] = [run.started()];
    await gateway.send(sent[0]!);
    await p.subscribe('bb');
    p.ws.pause();
    let peakBuffered = 0;
    let peakQueued = 0;
    for (let tick = 0; tick < 300; tick++) {
      for (let k = 0; k < 20; k++) {
        const event = run.thinking(`${'😀'.repeat(1_000)} ${tick}.${k}`);
        sent.push(event);
        void gateway.send(event);
      }
      await turn();
      const stats = gateway.stats();
      peakBuffered = Math.max(peakBuffered, stats.bufferedBytes);
      peakQueued = Math.max(peakQueued, stats.queuedFrames);
    }
    expect(peakQueued).toBeGreaterThan(0);
    expect(peakBuffered).toBeGreaterThan(0);
    expect(peakBuffered).toBeLessThanOrEqual(max + 3 * 262_144);
    p.ws.resume();
    await p.until(() => p.events().length >= sent.length, 20_000, 'drained');
    expect(p.events().map((f) => f.event!.id)).toEqual(sent.map((e) => e.id));
    expect(gateway.stats().queuedFrames).toBe(0);
  });

  it('gateway.send() into the memory log never waits, even while a consumer is stuck and its queue grows', async () => {
    const { gateway, url } = await startGateway({ maxQueuedFrames: 100_000, maxQueuedBytes: 2 ** 30, maxBufferedBytes: 16 * 1024 });
    const stuck = await peer(url, 'carol');
    const run = new RunBuilder('carol', 'nw');
    await gateway.send(run.started());
    await stuck.subscribe('nw');
    stuck.ws.pause();
    let pendingAfterMicrotasks = 0;
    for (let tick = 0; tick < 50; tick++) {
      const sends = Array.from({ length: 50 }, () => {
        let settled = false;
        void gateway.send(run.thinking('w'.repeat(2_000))).then(() => (settled = true));
        return () => settled;
      });
      // Resolved within the microtasks of this tick: no I/O is awaited.
      await Promise.resolve();
      await Promise.resolve();
      await Promise.resolve();
      pendingAfterMicrotasks += sends.filter((settled) => !settled()).length;
      await turn();
    }
    expect(pendingAfterMicrotasks).toBe(0);
    expect(gateway.stats().queuedFrames).toBeGreaterThan(0);
  });

  it('batching: false sends one message per event; batching on (default) one message per tick', async () => {
    for (const batching of [false, true]) {
      const { gateway, url } = await startGateway({ batching });
      const p = await peer(url, 'dora');
      const run = new RunBuilder('dora', `batch-${batching}`);
      const sent: AgentEvent[] = [run.started()];
      await gateway.send(sent[0]!);
      await p.subscribe(`batch-${batching}`);
      const before = p.messages.length;
      for (let i = 0; i < 25; i++) sent.push(run.thinking(`e${i}`));
      for (const event of sent.slice(1)) void gateway.send(event);
      await p.until(() => p.events().length >= sent.length);
      const messages = p.messages.slice(before);
      expect(messages.length).toBe(batching ? 1 : 25);
      expect(p.events().map((f) => f.event!.id)).toEqual(sent.map((e) => e.id));
    }
  });

  it('AgentBridge highWaterMark: with a transport that does not answer, think() stops resolving after about highWaterMark queued events, then everything is delivered in order', async () => {
    const held: Array<() => void> = [];
    const delivered: AgentEvent[] = [];
    const transport: Transport = {
      send: (event) =>
        new Promise<void>((resolve) => {
          held.push(() => {
            delivered.push(event);
            resolve();
          });
        }),
      close: async () => {},
    };
    const bridge = new AgentBridge({ transport, highWaterMark: 4 });
    await bridge.initialize();
    let thought = 0;
    class Chatty extends BaseAgent<void, string> {
      protected async execute(): Promise<string> {
        for (let i = 0; i < 30; i++) {
          await this.think(`step ${i}`);
          thought++;
        }
        return 'done';
      }
    }
    const running = new Chatty({ bridge }).run(undefined, { userId: 'erin', threadId: 'hwm' });
    // agent_started is awaited before execute() (run() rejects only before the first event): deliver it alone.
    for (let i = 0; i < 200 && held.length === 0; i++) await turn();
    held.shift()!();
    // Then let the run go as far as it can without any further delivery.
    for (let i = 0; i < 200; i++) await turn();
    expect(thought).toBeGreaterThan(0);
    expect(thought).toBeLessThanOrEqual(4 + 2);
    // Release deliveries one by one until the run ends.
    let guard = 0;
    while (guard++ < 10_000) {
      const next = held.shift();
      if (next) next();
      else if (delivered.at(-1)?.type === 'agent_completed') break;
      await turn();
    }
    const result = await running;
    expect(result.status).toBe('succeeded');
    expect(thought).toBe(30);
    expect(delivered.map((e) => e.seq)).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
    await bridge.close();
  });
});
