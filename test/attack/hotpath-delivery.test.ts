/**
 * Delivery correctness on the WebSocket hot path, judged by what real `ws` clients received over
 * loopback: counts, order, ids, owners, and the exact text of every event (byte-exact against the
 * JSON that was sent), for bursts in one tick across many connections, batches past the 256 Ki
 * character cap, multi-byte UTF-8, heartbeats during bursts, connections that vanish mid-flush and
 * a resume racing live events.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { MemoryTransport, type AgentEvent } from '../../src/index.js';
import { WebSocketGateway, type WebSocketGatewayOptions } from '../../src/gateway/websocket/index.js';
import { NASTY, Peer, RunBuilder, authenticate, openPeer } from './hotpath-peer.js';

const BATCH_CAP = 262_144;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startGateway(options: Partial<WebSocketGatewayOptions> = {}) {
  const errors: unknown[] = [];
  const gateway = new WebSocketGateway({ authenticate, log: new MemoryTransport({ maxEventsPerThread: 50_000, maxTotalEvents: 500_000, maxBytesPerThread: 64 * 1024 * 1024, maxTotalBytes: 256 * 1024 * 1024 }), onError: (error) => errors.push(error), ...options });
  const { url } = await gateway.listen(0);
  cleanups.push(() => gateway.close());
  return { gateway, url, errors };
}

const peer = (url: string, userId: string, options?: WebSocket.ClientOptions): Promise<Peer> => openPeer(cleanups, url, userId, options);

/** Every event frame's event, re-serialized, must equal what was sent; and the raw text must hold the sent JSON verbatim. */
function expectExact(p: Peer, threadId: string, sent: AgentEvent[]): void {
  const got = p.events(threadId);
  expect(got.map((f) => f.event!.id)).toEqual(sent.map((e) => e.id));
  expect(got.map((f) => f.event!.userId)).toEqual(sent.map((e) => e.userId));
  for (let i = 0; i < sent.length; i++) expect(JSON.stringify(got[i]!.event)).toBe(JSON.stringify(sent[i]));
  // Verbatim on the wire: each event's JSON appears in its own message's text, in frame order.
  const jsonById = new Map(sent.map((e) => [e.id, JSON.stringify(e)]));
  let verbatim = 0;
  for (const message of p.messages) {
    let from = 0;
    for (const frame of message.frames) {
      const json = frame.type === 'event' && frame.threadId === threadId ? jsonById.get(frame.event!.id) : undefined;
      if (json === undefined) continue;
      const at = message.text.indexOf(json, from);
      if (at >= 0) {
        verbatim++;
        from = at + json.length;
      }
    }
  }
  expect(verbatim).toBe(sent.length);
  expect(p.decodeErrors).toEqual([]);
  expect(p.binaryMessages).toEqual([]);
  // Cursors strictly distinct, in arrival order (a resume point after each event).
  expect(new Set(got.map((f) => f.cursor)).size).toBe(got.length);
}

describe('attack: hot-path delivery over real sockets', () => {
  it('40 users × 2 connections, 200 events each in one tick: every connection gets exactly its owner’s events, in order, byte-exact; nobody sees another user', async () => {
    const { gateway, url, errors } = await startGateway();
    const users = Array.from({ length: 40 }, (_, i) => `user${i}`);
    const peers = new Map<string, Peer[]>();
    await Promise.all(
      users.map(async (user) => {
        const pair = await Promise.all([peer(url, user), peer(url, user)]);
        peers.set(user, pair);
      }),
    );
    // First event creates the thread (owner = user); then subscribe everyone.
    const runs = new Map(users.map((user) => [user, new RunBuilder(user, `t-${user}`)]));
    const sent = new Map<string, AgentEvent[]>(users.map((user) => [user, [runs.get(user)!.started()]]));
    for (const user of users) await gateway.send(sent.get(user)![0]!);
    await Promise.all(users.flatMap((user) => peers.get(user)!.map((p) => p.subscribe(`t-${user}`))));
    const all = [...peers.values()].flat();
    const baseStats = gateway.stats();
    const baseMessages = all.reduce((n, p) => n + p.messages.length, 0);
    const baseFrames = all.reduce((n, p) => n + p.frames.length, 0);
    // One tick: 200 events per user, interleaved across users, with nasty strings.
    for (let i = 0; i < 200; i++) {
      for (const user of users) {
        const event = runs.get(user)!.thinking(`${user} #${i} ${NASTY[i % NASTY.length]}`);
        sent.get(user)!.push(event);
        void gateway.send(event);
      }
    }
    await Promise.all(users.flatMap((user) => peers.get(user)!.map((p) => p.until(() => p.events().length >= 201, 20_000, `${user} events`))));
    for (const user of users) {
      for (const p of peers.get(user)!) {
        expectExact(p, `t-${user}`, sent.get(user)!);
        expect(p.frames.every((f) => f.type !== 'event' || f.event!.userId === user)).toBe(true);
      }
    }
    expect(gateway.stats().isolationDrops).toBe(0);
    expect(errors).toEqual([]);
    // stats() counts what the sockets carried.
    const stats = gateway.stats();
    expect(stats.messagesSent - baseStats.messagesSent).toBe(all.reduce((n, p) => n + p.messages.length, 0) - baseMessages);
    expect(stats.framesSent - baseStats.framesSent).toBe(all.reduce((n, p) => n + p.frames.length, 0) - baseFrames);
  });

  it('a 1.2 MiB burst in one tick arrives in messages of at most 256 Ki characters of frames, in order, complete; a small burst is one message', async () => {
    const { gateway, url } = await startGateway();
    const p = await peer(url, 'alice');
    const run = new RunBuilder('alice', 'big');
    const sent: AgentEvent[] = [run.started()];
    await gateway.send(sent[0]!);
    await p.subscribe('big');
    const baseMessages = p.messages.length;
    // Small burst: 10 events in one tick → exactly one message (batching on by default).
    const small: AgentEvent[] = [];
    for (let i = 0; i < 10; i++) small.push(run.thinking(`small ${i}`));
    for (const event of small) void gateway.send(event);
    sent.push(...small);
    await p.until(() => p.events().length >= 11);
    expect(p.messages.length - baseMessages).toBe(1);
    // Large burst: 600 events × ~2 KiB, with multi-byte text, in one tick.
    const before = p.messages.length;
    const big: AgentEvent[] = [];
    for (let i = 0; i < 600; i++) big.push(run.thinking(`${i} ${'界😀'.repeat(300)} ${'x'.repeat(1000)}`));
    for (const event of big) void gateway.send(event);
    sent.push(...big);
    await p.until(() => p.events().length >= sent.length, 20_000, 'big burst');
    const messages = p.messages.slice(before);
    const totalChars = big.reduce((n, e) => n + JSON.stringify(e).length, 0);
    expect(totalChars).toBeGreaterThan(4 * BATCH_CAP);
    expect(messages.length).toBeGreaterThanOrEqual(Math.ceil(totalChars / BATCH_CAP));
    for (const message of messages) {
      const frameChars = message.frames.reduce((n, f) => n + JSON.stringify(f).length, 0);
      if (message.frames.length > 1) expect(frameChars).toBeLessThanOrEqual(BATCH_CAP);
      // The text of the message is the frames joined in a JSON array: nothing else.
      expect(message.text.length).toBeLessThanOrEqual(frameChars + message.frames.length + 1);
      // Bytes on the wire are the UTF-8 of the text (a frame length counted in characters would cut or pad it).
      expect(message.bytes).toBe(Buffer.byteLength(message.text, 'utf8'));
    }
    // Batching packs: not one message per event.
    expect(messages.length).toBeLessThan(big.length / 10);
    expectExact(p, 'big', sent);
  });

  it('a replay of 10,000 retained events is packed: messages ≤ ceil(total / (cap − largest frame)), each ≤ the cap, ids exact', async () => {
    const { gateway, url } = await startGateway();
    const run = new RunBuilder('rhea', 'pack');
    const sent: AgentEvent[] = [run.started()];
    for (let i = 0; i < 9_999; i++) sent.push(run.thinking(`${i} ${'p'.repeat(i % 50)} ${NASTY[i % NASTY.length]}`));
    for (const event of sent) await gateway.send(event);
    const p = await peer(url, 'rhea');
    const before = p.messages.length;
    const answer = await p.subscribe('pack');
    expect(answer.replayed).toBe(10_000);
    await p.until(() => p.events().length >= 10_000, 20_000, 'replay');
    const messages = p.messages.slice(before).filter((m) => m.frames.some((f) => f.type === 'event'));
    const frames = messages.flatMap((m) => m.frames.filter((f) => f.type === 'event'));
    const total = frames.reduce((n, f) => n + JSON.stringify(f).length, 0);
    const largest = Math.max(...frames.map((f) => JSON.stringify(f).length));
    expect(messages.length).toBeLessThanOrEqual(Math.ceil(total / (BATCH_CAP - largest)) + 1);
    for (const message of messages) expect(message.frames.reduce((n, f) => n + JSON.stringify(f).length, 0)).toBeLessThanOrEqual(BATCH_CAP);
    expectExact(p, 'pack', sent);
  });

  it('messages whose wire length sits on the WebSocket 16/64-bit length edge (65535/65536/65537 bytes) arrive intact, ASCII and multi-byte; small frames (< 126 bytes) too', async () => {
    const { gateway, url } = await startGateway();
    const p = await peer(url, 'edgar');
    const run = new RunBuilder('edgar', 'edges');
    const sent: AgentEvent[] = [run.started()];
    await gateway.send(sent[0]!);
    await p.subscribe('edges');
    // seq 10..99 and cursor offsets 10..99 keep the envelope's length fixed while the text varies.
    for (let i = 0; i < 9; i++) sent.push(run.thinking('pad'));
    for (const event of sent.slice(1)) void gateway.send(event);
    await p.until(() => p.events().length >= 10);
    const one = async (text: string) => {
      const event = run.thinking(text);
      sent.push(event);
      const before = p.messages.length;
      await gateway.send(event);
      await p.until(() => p.messages.length > before && p.events().some((f) => f.event!.id === event.id));
      return { message: p.messages.at(-1)!, event };
    };
    const probe = await one('');
    const base = probe.message.bytes; // bytes of a message whose text is empty
    expect(base).toBeGreaterThan(126);
    // The hello frame is a 7-bit-length message.
    expect(p.messages[0]!.bytes).toBeLessThan(126);
    for (const target of [base + 1, base + 2, 65_535, 65_536, 65_537, 131_072]) {
      for (const kind of ['ascii', 'multi'] as const) {
        const extra = target - base;
        // multi: 4-byte emoji as far as they go (each is 2 UTF-16 units), ASCII for the remainder.
        const text = kind === 'ascii' ? 'a'.repeat(extra) : '😀'.repeat(Math.floor(extra / 4)) + 'b'.repeat(extra % 4);
        const { message, event } = await one(text);
        expect({ target, kind, bytes: message.bytes }).toEqual({ target, kind, bytes: target });
        expect(message.text.includes(JSON.stringify(event))).toBe(true);
      }
    }
    expectExact(p, 'edges', sent);
  });

  it('a single frame larger than the batch cap goes alone, byte-exact, between batched neighbours, in order', async () => {
    const { gateway, url } = await startGateway();
    const p = await peer(url, 'alice');
    const run = new RunBuilder('alice', 'huge');
    const sent: AgentEvent[] = [run.started()];
    await gateway.send(sent[0]!);
    await p.subscribe('huge');
    const before = p.messages.length;
    const burst = [
      run.thinking('before'),
      run.thinking('😀'.repeat(140_000)), // 280k UTF-16 units, 560 KB of UTF-8: past the cap in characters and bytes
      run.thinking('after'),
      run.thinking(`${'\u2028'.repeat(1000)}${'\ud83d'.repeat(1000)}`),
    ];
    for (const event of burst) void gateway.send(event);
    sent.push(...burst);
    await p.until(() => p.events().length >= sent.length, 20_000, 'huge frame');
    const messages = p.messages.slice(before);
    const alone = messages.find((m) => m.frames.some((f) => f.event?.id === burst[1]!.id))!;
    expect(alone.frames).toHaveLength(1);
    expect(alone.bytes).toBe(Buffer.byteLength(alone.text, 'utf8'));
    expectExact(p, 'huge', sent);
  });

  it('events near the 1 MiB event limit, all multi-byte, arrive byte-exact (wire bytes are the UTF-8 of the text)', async () => {
    const { gateway, url } = await startGateway({ maxPayload: 64 * 1024 });
    const p = await peer(url, 'alice', { maxPayload: 8 * 1024 * 1024 });
    const run = new RunBuilder('alice', 'nearlimit');
    const sent: AgentEvent[] = [run.started()];
    await gateway.send(sent[0]!);
    await p.subscribe('nearlimit');
    // 4-byte characters: ~1,040,000 bytes of UTF-8 in 520,000 UTF-16 units.
    const four = run.thinking('😀'.repeat(260_000));
    // 3-byte characters: ~1,040,000 bytes in 346,666 units.
    const three = run.thinking('界'.repeat(346_000));
    expect(Buffer.byteLength(JSON.stringify(four))).toBeLessThan(1_048_576);
    expect(Buffer.byteLength(JSON.stringify(three))).toBeLessThan(1_048_576);
    await gateway.send(four);
    await gateway.send(three);
    sent.push(four, three);
    await p.until(() => p.events().length >= 3, 20_000, 'near-limit events');
    expectExact(p, 'nearlimit', sent);
  });

  it('pings interleaved with large batched writes over 30 connections: every peer sees ≥ 3 pings, no 4000, nothing lost, order kept', async () => {
    const { gateway, url } = await startGateway({ heartbeatIntervalMs: 80 });
    const peers = await Promise.all(Array.from({ length: 30 }, (_, i) => peer(url, `hb${i}`)));
    const runs = peers.map((_, i) => new RunBuilder(`hb${i}`, `hb-${i}`));
    const sent = runs.map((run) => [run.started()]);
    for (let i = 0; i < runs.length; i++) await gateway.send(sent[i]![0]!);
    await Promise.all(peers.map((p, i) => p.subscribe(`hb-${i}`)));
    const start = peers.map((p) => p.pings);
    // Produce tick after tick until every peer has seen three pings: pings interleave with data frames.
    let ticks = 0;
    while (peers.some((p, i) => p.pings < start[i]! + 3) && ticks < 5_000) {
      ticks++;
      for (let i = 0; i < runs.length; i++) {
        for (let k = 0; k < 3; k++) {
          const event = runs[i]!.thinking(`tick ${ticks} ${k} ${NASTY[k]} ${'p'.repeat(3_000)}`);
          sent[i]!.push(event);
          void gateway.send(event);
        }
      }
      await new Promise((resolve) => setImmediate(resolve));
      // Every 5 ticks the peers catch up first: a ping is queued behind the data before it, and a
      // backlog that outgrows the readers (a loaded machine) would only delay the pings it waits for.
      if (ticks % 5 === 0) await Promise.all(peers.map((p, i) => p.until(() => p.events().length >= sent[i]!.length || p.close !== undefined, 20_000, `hb${i}`)));
    }
    // A mass 4000 (a loop too busy to read pongs) would show here, before the ping count it stops.
    expect(gateway.stats().disconnects).toEqual({});
    expect(peers.every((p, i) => p.pings >= start[i]! + 3)).toBe(true);
    await Promise.all(peers.map((p, i) => p.until(() => p.events().length >= sent[i]!.length || p.close !== undefined, 20_000, `hb${i}`)));
    for (let i = 0; i < peers.length; i++) {
      expect(peers[i]!.close).toBeUndefined();
      expectExact(peers[i]!, `hb-${i}`, sent[i]!);
    }
    expect(gateway.stats().disconnects.heartbeat ?? 0).toBe(0);
  });

  it('a peer that stops answering pings is closed with 4000; the others keep receiving', async () => {
    const { gateway, url } = await startGateway({ heartbeatIntervalMs: 25 });
    const mute = await peer(url, 'mute', { autoPong: false } as never);
    const live = await peer(url, 'live');
    const run = new RunBuilder('live', 'live-t');
    const sent = [run.started()];
    await gateway.send(sent[0]!);
    await live.subscribe('live-t');
    const closed = await mute.closed(5_000);
    expect(closed.code).toBe(4000);
    for (let i = 0; i < 50; i++) sent.push(run.thinking(`after ${i}`));
    for (const event of sent.slice(1)) void gateway.send(event);
    await live.until(() => live.events().length >= sent.length);
    expectExact(live, 'live-t', sent);
    expect(live.close).toBeUndefined();
    expect(gateway.stats().disconnects.heartbeat).toBe(1);
  });

  it('connections that close or vanish in the tick of a burst (before the flush) harm no one: the rest get everything, no onError, no crash', async () => {
    const { gateway, url, errors } = await startGateway();
    const peers = await Promise.all(Array.from({ length: 30 }, (_, i) => peer(url, `mid${i}`)));
    const runs = peers.map((_, i) => new RunBuilder(`mid${i}`, `mid-${i}`));
    const sent = runs.map((run) => [run.started()]);
    for (let i = 0; i < runs.length; i++) await gateway.send(sent[i]![0]!);
    await Promise.all(peers.map((p, i) => p.subscribe(`mid-${i}`)));
    const leaving = new Set([1, 4, 7, 10, 13, 16, 19, 22, 25, 28]);
    for (let i = 0; i < runs.length; i++) {
      for (let k = 0; k < 300; k++) {
        const event = runs[i]!.thinking(`${i}/${k} ${'m'.repeat(300)}`);
        sent[i]!.push(event);
        void gateway.send(event);
      }
      // In the same tick: half of the leavers reset the TCP connection, half close politely.
      if (leaving.has(i)) {
        if (i % 2) peers[i]!.ws.terminate();
        else peers[i]!.ws.close(1000);
      }
    }
    const stayers = peers.map((p, i) => ({ p, i })).filter(({ i }) => !leaving.has(i));
    await Promise.all(stayers.map(({ p, i }) => p.until(() => p.events().length >= sent[i]!.length, 20_000, `stayer ${i}`)));
    for (const { p, i } of stayers) expectExact(p, `mid-${i}`, sent[i]!);
    // A second burst after the leavers are gone still reaches everyone left.
    for (const { i } of stayers) {
      const event = runs[i]!.thinking('second');
      sent[i]!.push(event);
      void gateway.send(event);
    }
    await Promise.all(stayers.map(({ p, i }) => p.until(() => p.events().length >= sent[i]!.length)));
    expect(errors).toEqual([]);
    expect(gateway.stats().internalErrors).toBe(0);
  });

  it('resume while live events keep arriving every tick: exactly the events after the cursor, no gap, no duplicate, in order (replay past the batch cap, paced)', async () => {
    const { gateway, url } = await startGateway({ maxBufferedBytes: 64 * 1024 });
    const first = await peer(url, 'rita');
    const run = new RunBuilder('rita', 'resume');
    const sent: AgentEvent[] = [run.started()];
    await gateway.send(sent[0]!);
    await first.subscribe('resume');
    for (let i = 0; i < 3_000; i++) sent.push(run.thinking(`retained ${i} ${NASTY[i % NASTY.length]} ${'r'.repeat(200)}`));
    for (const event of sent.slice(1)) void gateway.send(event);
    await first.until(() => first.events().length >= sent.length, 20_000, 'first peer');
    const cut = 1_000;
    const cursor = first.events()[cut - 1]!.cursor!;
    // Live producer: 20 events per tick for 60 ticks, started in the same tick as the resume.
    const second = await peer(url, 'rita');
    const producing = (async () => {
      for (let tick = 0; tick < 60; tick++) {
        for (let k = 0; k < 20; k++) {
          const event = run.thinking(`live ${tick}.${k}`);
          sent.push(event);
          void gateway.send(event);
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    second.send({ type: 'subscribe', threadId: 'resume', after: cursor });
    await producing;
    const total = sent.length;
    await second.until(() => second.events().length >= total - cut, 20_000, 'resumed peer');
    await first.until(() => first.events().length >= total, 20_000, 'first peer live');
    const expected = sent.slice(cut);
    const got = second.events('resume').map((f) => f.event!.id);
    expect(got.length).toBe(expected.length);
    expect(got).toEqual(expected.map((e) => e.id));
    expectExact(second, 'resume', expected);
    expectExact(first, 'resume', sent);
    const subscribed = second.frames.find((f) => f.type === 'subscribed')!;
    expect(subscribed.replayed).toBeGreaterThanOrEqual(sent.length - cut - 60 * 20);
  });
});
