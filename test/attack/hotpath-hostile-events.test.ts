/**
 * Hostile events through the documented write APIs (`gateway.send()`, `AgentBridge.send()`, agent
 * runs over a gateway): values JSON cannot represent, deep nesting, oversized (in UTF-8 bytes),
 * bad thread ids, forged user ids, thread ids that are `Object.prototype` names. Each must be
 * refused alone with the documented typed error, and every other user's events, sent in the same
 * tick, must still reach real clients complete and in order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { z } from 'zod';
import {
  AgentBridge,
  AgentwireError,
  BaseAgent,
  DeliveryError,
  MemoryTransport,
  TransportError,
  ValidationError,
  defineTool,
  validateLifecycle,
  type AgentEvent,
} from '../../src/index.js';
import { WebSocketGateway, type WebSocketGatewayOptions } from '../../src/gateway/websocket/index.js';
import { NASTY, Peer, RunBuilder, authenticate, rejection, openPeer } from './hotpath-peer.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startGateway(options: Partial<WebSocketGatewayOptions> = {}) {
  const errors: unknown[] = [];
  const gateway = new WebSocketGateway({ authenticate, onError: (error) => errors.push(error), ...options });
  const { url } = await gateway.listen(0);
  cleanups.push(() => gateway.close());
  return { gateway, url, errors };
}

const peer = (url: string, userId: string, options?: WebSocket.ClientOptions): Promise<Peer> => openPeer(cleanups, url, userId, options);

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

const SECRET = 'sk-live-do-not-leak-42';

/** Hostile `data` values, each with the documented code of its refusal. */
function hostileData(): Array<{ name: string; data: () => unknown; code: string }> {
  return [
    { name: 'BigInt', data: () => ({ text: 'x', n: 10n }), code: 'EVENT_NOT_SERIALIZABLE' },
    { name: 'BigInt in an array', data: () => ({ text: 'x', list: [1, 2, 3n] }), code: 'EVENT_NOT_SERIALIZABLE' },
    {
      name: 'cycle',
      data: () => {
        const o: Record<string, unknown> = { text: 'x' };
        o.self = o;
        return o;
      },
      code: 'EVENT_NOT_SERIALIZABLE',
    },
    {
      name: 'toJSON that throws',
      data: () => ({ text: 'x', v: { toJSON: () => { throw new Error(SECRET); } } }),
      code: 'EVENT_NOT_SERIALIZABLE',
    },
    {
      name: 'getter that throws',
      data: () => ({ text: 'x', get v(): never { throw new Error(SECRET); } }),
      code: 'EVENT_NOT_SERIALIZABLE',
    },
    {
      name: 'Proxy whose ownKeys throws',
      data: () => ({ text: 'x', v: new Proxy({}, { ownKeys: () => { throw new Error(SECRET); } }) }),
      code: 'EVENT_NOT_SERIALIZABLE',
    },
    {
      name: 'Proxy whose get throws',
      data: () => ({ text: 'x', v: new Proxy({ a: 1 }, { get: () => { throw new Error(SECRET); } }) }),
      code: 'EVENT_NOT_SERIALIZABLE',
    },
    { name: 'nesting 5,000 deep', data: () => ({ text: 'x', v: nested(5_000) }), code: 'EVENT_NOT_SERIALIZABLE' },
    { name: 'nesting 65 levels (data is level 1)', data: () => nested(65), code: 'EVENT_NOT_SERIALIZABLE' },
    { name: '2 MB of ASCII', data: () => ({ text: 'x'.repeat(2_000_000) }), code: 'EVENT_TOO_LARGE' },
    // Fewer than 1 Mi UTF-16 units, more than 1 MiB of UTF-8: the limit is in bytes.
    { name: '1.08 MB of 3-byte UTF-8 in 360k characters', data: () => ({ text: '界'.repeat(360_000) }), code: 'EVENT_TOO_LARGE' },
    { name: '1.2 MB of 4-byte UTF-8 in 600k UTF-16 units', data: () => ({ text: '😀'.repeat(300_000) }), code: 'EVENT_TOO_LARGE' },
  ];
}

describe('attack: hostile events on the write path', () => {
  it('gateway.send() refuses each hostile value alone with a typed ValidationError of the documented code; the other users’ events of the same ticks all arrive, in order', async () => {
    const { gateway, url } = await startGateway();
    const alice = await peer(url, 'alice');
    const bob = await peer(url, 'bob');
    const a = new RunBuilder('alice', 'ha');
    const b = new RunBuilder('bob', 'hb');
    const sentA = [a.started()];
    const sentB = [b.started()];
    await gateway.send(sentA[0]!);
    await gateway.send(sentB[0]!);
    await alice.subscribe('ha');
    await bob.subscribe('hb');
    const cases = hostileData();
    const hostileIds = new Set<string>();
    const outcomes: Array<{ name: string; code: string; error: unknown }> = [];
    for (const c of cases) {
      // Same tick: a good alice event, the hostile one (in alice's thread), a good bob event.
      const good = a.thinking(`before ${c.name} ${NASTY[outcomes.length % NASTY.length]}`);
      sentA.push(good);
      void gateway.send(good);
      // Its own run (seq 1), so alice's run keeps a gapless seq whatever is refused.
      const hostile = new RunBuilder('alice', 'ha').raw('agent_thinking', c.data());
      hostileIds.add(hostile.id);
      const refused = rejection(gateway.send(hostile));
      const other = b.thinking(`during ${c.name}`);
      sentB.push(other);
      void gateway.send(other);
      outcomes.push({ name: c.name, code: c.code, error: await refused });
    }
    const endA = a.completed();
    const endB = b.completed();
    sentA.push(endA);
    sentB.push(endB);
    await gateway.send(endA);
    await gateway.send(endB);
    await alice.until(() => alice.events().length >= sentA.length, 15_000, 'alice');
    await bob.until(() => bob.events().length >= sentB.length, 15_000, 'bob');
    const report = outcomes.map(({ name, code, error }) => ({
      name,
      expected: code,
      got: error instanceof AgentwireError ? `${error.name}:${error.code}` : String(error),
      leaks: error instanceof Error && (error.message.includes(SECRET) || JSON.stringify(error).includes(SECRET)),
    }));
    expect(report).toEqual(outcomes.map(({ name, code }) => ({ name, expected: code, got: `ValidationError:${code}`, leaks: false })));
    expect(alice.events().map((f) => f.event!.id)).toEqual(sentA.map((e) => e.id));
    expect(bob.events().map((f) => f.event!.id)).toEqual(sentB.map((e) => e.id));
    expect(alice.frames.some((f) => f.event && hostileIds.has(f.event.id))).toBe(false);
    expect(validateLifecycle(alice.events().map((f) => f.event!))).toMatchObject({ ok: true });
    expect(gateway.stats().poisonedEvents).toBe(cases.length);
  });

  it('nesting exactly at the limit (64 levels, data is level 1) and an event just under 1 MiB of UTF-8 are accepted and delivered byte-exact', async () => {
    const { gateway, url } = await startGateway();
    const alice = await peer(url, 'alice', { maxPayload: 4 * 1024 * 1024 });
    const a = new RunBuilder('alice', 'edge');
    const sent: AgentEvent[] = [a.started()];
    await gateway.send(sent[0]!);
    await alice.subscribe('edge');
    const deep = a.raw('agent_thinking', { text: 'deep', v: nested(62) });
    const big = a.thinking('界'.repeat(349_000)); // ~1,047,000 bytes of UTF-8 with the envelope
    expect(Buffer.byteLength(JSON.stringify(big))).toBeLessThan(1_048_576);
    expect(Buffer.byteLength(JSON.stringify(big))).toBeGreaterThan(1_040_000);
    await gateway.send(deep);
    await gateway.send(big);
    sent.push(deep, big);
    await alice.until(() => alice.events().length >= sent.length);
    const got = alice.events();
    expect(got.map((f) => JSON.stringify(f.event))).toEqual(sent.map((e) => JSON.stringify(e)));
  });

  it('bad thread ids are refused by gateway.send() (ValidationError INVALID_EVENT, per docs/performance.md) and reach no one', async () => {
    const { gateway, url } = await startGateway();
    const alice = await peer(url, 'alice');
    const a = new RunBuilder('alice', 'good');
    const sent = [a.started()];
    await gateway.send(sent[0]!);
    await alice.subscribe('good');
    const bad: unknown[] = ['', 'has space', 'x'.repeat(129), '../etc/passwd', 'ü', 'a\u0000b', 'a\nb', '😀', 42, null, undefined, { toString: () => 'good' }];
    const results: string[] = [];
    for (const threadId of bad) {
      const event = { ...a.raw('agent_thinking', { text: 'bad' }), threadId } as unknown as AgentEvent;
      const error = await rejection(gateway.send(event));
      results.push(error instanceof ValidationError ? error.code : `not refused: ${String(error)}`);
      const ok = a.thinking('still fine');
      sent.push(ok);
      void gateway.send(ok);
    }
    expect(results).toEqual(bad.map(() => 'INVALID_EVENT'));
    const end = a.completed();
    sent.push(end);
    await gateway.send(end);
    await alice.until(() => alice.events().length >= sent.length);
    expect(alice.events().map((f) => f.event!.id)).toEqual(sent.map((e) => e.id));
  });

  it('a forged user id (bob writing into alice’s thread) is refused with THREAD_OWNER_MISMATCH and shown to neither user; both streams stay complete', async () => {
    const { gateway, url } = await startGateway();
    const alice = await peer(url, 'alice');
    const bob = await peer(url, 'bob');
    const a = new RunBuilder('alice', 'owned');
    const b = new RunBuilder('bob', 'bobs');
    const sentA = [a.started()];
    const sentB = [b.started()];
    await gateway.send(sentA[0]!);
    await gateway.send(sentB[0]!);
    await alice.subscribe('owned');
    await bob.subscribe('bobs');
    const forged = new RunBuilder('bob', 'owned');
    const forgedStart = forged.started();
    const forgedThought = forged.thinking('bob says hi in alice’s thread');
    const e1 = await rejection(gateway.send(forgedStart));
    const e2 = await rejection(gateway.send(forgedThought));
    // Bob also tries to subscribe to alice's thread.
    const answer = await bob.subscribe('owned');
    for (let i = 0; i < 20; i++) {
      sentA.push(a.thinking(`a${i}`));
      sentB.push(b.thinking(`b${i}`));
    }
    for (const event of [...sentA.slice(1), ...sentB.slice(1)]) void gateway.send(event);
    await alice.until(() => alice.events().length >= sentA.length);
    await bob.until(() => bob.events().length >= sentB.length);
    for (const error of [e1, e2]) {
      expect(error).toBeInstanceOf(TransportError);
      expect((error as TransportError).code).toBe('THREAD_OWNER_MISMATCH');
    }
    expect(answer).toMatchObject({ type: 'error', code: 'THREAD_FORBIDDEN' });
    expect(alice.events().map((f) => f.event!.id)).toEqual(sentA.map((e) => e.id));
    expect(bob.events().map((f) => f.event!.id)).toEqual(sentB.map((e) => e.id));
    expect(alice.events().every((f) => f.event!.userId === 'alice')).toBe(true);
    expect(bob.events().every((f) => f.event!.threadId === 'bobs')).toBe(true);
    expect(gateway.stats().isolationDrops).toBe(0);
  });

  it('thread and user ids named like Object.prototype members (__proto__, constructor, toString, hasOwnProperty) are ordinary ids', async () => {
    const { gateway, url } = await startGateway();
    const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
    const peers = await Promise.all(names.map((name) => peer(url, name)));
    const runs = names.map((name) => new RunBuilder(name, name));
    const sent = runs.map((run) => [run.started()]);
    for (const list of sent) await gateway.send(list[0]!);
    await Promise.all(peers.map((p, i) => p.subscribe(names[i]!)));
    for (let k = 0; k < 30; k++) {
      for (let i = 0; i < names.length; i++) {
        const event = runs[i]!.thinking(`${names[i]} ${k}`);
        sent[i]!.push(event);
        void gateway.send(event);
      }
    }
    await Promise.all(peers.map((p, i) => p.until(() => p.events().length >= sent[i]!.length, 10_000, names[i])));
    for (let i = 0; i < names.length; i++) {
      expect(peers[i]!.frames.find((f) => f.type === 'hello')!.userId).toBe(names[i]);
      expect(peers[i]!.events().map((f) => f.event!.id)).toEqual(sent[i]!.map((e) => e.id));
    }
    // And a second connection of "__proto__" resuming from the middle gets exactly the rest.
    const again = await peer(url, '__proto__');
    const cursor = peers[0]!.events()[10]!.cursor!;
    await again.subscribe('__proto__', cursor);
    await again.until(() => again.events().length >= sent[0]!.length - 11);
    expect(again.events().map((f) => f.event!.id)).toEqual(sent[0]!.slice(11).map((e) => e.id));
  });

  it('AgentBridge.send() over the gateway: each hostile event is a DeliveryError DELIVERY_FAILED with the documented causeCode, counted in failed; other runs over the same bridge are delivered complete', async () => {
    const { gateway, url } = await startGateway();
    const bridge = new AgentBridge({ transport: gateway });
    await bridge.initialize();
    cleanups.push(() => bridge.close());
    const alice = await peer(url, 'alice');
    const a = new RunBuilder('alice', 'br');
    const sent = [a.started()];
    await bridge.send(sent[0]!);
    await alice.subscribe('br');
    const cases = [...hostileData(), { name: 'not an event (missing data.text)', data: () => ({ nope: 1 }), code: 'INVALID_EVENT' }];
    const got: string[] = [];
    let deliveryErrorEvents = 0;
    bridge.on?.('delivery_error', () => deliveryErrorEvents++);
    for (const c of cases) {
      const hostileRun = new RunBuilder('alice', 'br');
      // The hostile value sits in agent_started.data.input (any JSON is allowed there), so the schema passes and the JSON check judges.
      const data = c.code === 'INVALID_EVENT' ? c.data() : { input: c.data(), metadata: {} };
      const error = await rejection(bridge.send(hostileRun.raw('agent_started', data)));
      got.push(error instanceof DeliveryError ? `${error.code}/${String((error as DeliveryError & { causeCode?: string }).causeCode)}` : `not a DeliveryError: ${String(error)}`);
      const ok = a.thinking(`after ${c.name}`);
      sent.push(ok);
      void bridge.send(ok);
    }
    const end = a.completed();
    sent.push(end);
    await bridge.send(end);
    await alice.until(() => alice.events().length >= sent.length);
    expect(got).toEqual(cases.map((c) => `DELIVERY_FAILED/${c.code}`));
    expect(alice.events().map((f) => f.event!.id)).toEqual(sent.map((e) => e.id));
    expect(bridge.metrics().failed).toBeGreaterThanOrEqual(cases.length);
  });

  it('30 concurrent agent runs over one gateway, a third of them hostile (BigInt args, cyclic result, huge think, throwing toJSON output): every user sees a complete valid lifecycle, the good runs exactly', async () => {
    const { gateway, url } = await startGateway();
    const bridge = new AgentBridge({ transport: gateway });
    await bridge.initialize();
    cleanups.push(() => bridge.close());
    type Mode = 'good' | 'bigint-args' | 'cycle-result' | 'huge-think' | 'bad-output';
    const echo = defineTool({ name: 'echo', description: 'echo', parameters: z.object({ v: z.any() }), execute: ({ v }: { v: unknown }) => (v === 'cycle' ? (() => { const o: Record<string, unknown> = {}; o.o = o; return o; })() : v) });
    class Mixed extends BaseAgent<Mode, unknown> {
      constructor() {
        super({ name: 'mixed', bridge, tools: [echo] });
      }
      protected async execute(mode: Mode): Promise<unknown> {
        for (let i = 0; i < 5; i++) await this.think(`${mode} step ${i} ${NASTY[i]}`);
        if (mode === 'huge-think') await this.think('x'.repeat(2_000_000)).catch(() => undefined);
        if (mode === 'bigint-args') await this.callTool('echo', { v: 7n }).catch(() => undefined);
        if (mode === 'cycle-result') await this.callTool('echo', { v: 'cycle' }).catch(() => undefined);
        else await this.callTool('echo', { v: 'fine' });
        if (mode === 'bad-output') return { toJSON: () => { throw new Error(SECRET); } };
        return `${mode} done`;
      }
    }
    const modes: Mode[] = Array.from({ length: 30 }, (_, i) => (['good', 'good', 'good', 'bigint-args', 'good', 'cycle-result', 'good', 'huge-think', 'good', 'bad-output'] as const)[i % 10]!);
    const peers = await Promise.all(modes.map((_, i) => peer(url, `agent-user-${i}`)));
    // Subscribe before the run: the first event creates the thread for its owner; a subscription before it is allowed.
    await Promise.all(peers.map((p, i) => p.subscribe(`agent-thread-${i}`)));
    const agent = new Mixed();
    const results = await Promise.all(modes.map((mode, i) => agent.run(mode, { userId: `agent-user-${i}`, threadId: `agent-thread-${i}` })));
    await Promise.all(peers.map((p, i) => p.until(() => p.events().some((f) => f.event!.type === 'agent_completed'), 10_000, `run ${i}`)));
    for (let i = 0; i < modes.length; i++) {
      const events = peers[i]!.events().map((f) => f.event!);
      expect(validateLifecycle(events)).toMatchObject({ ok: true });
      expect(events.map((e) => e.seq)).toEqual(events.map((_, k) => k + 1));
      expect(events.every((e) => e.userId === `agent-user-${i}` && e.runId === results[i]!.runId)).toBe(true);
      expect(JSON.stringify(events)).not.toContain(SECRET);
      expect(results[i]!.deliveryErrors).toEqual([]);
      if (modes[i] === 'good') expect(results[i]!.status).toBe('succeeded');
      if (modes[i] === 'bad-output') expect(events.at(-1)).toMatchObject({ data: { status: 'failed', error: { code: 'OUTPUT_NOT_SERIALIZABLE' } } });
    }
    expect(gateway.stats().isolationDrops).toBe(0);
  });
});
