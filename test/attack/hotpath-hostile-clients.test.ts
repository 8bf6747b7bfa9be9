/**
 * Hostile clients against the WebSocket gateway, with a bystander whose stream must stay complete:
 * malformed, binary and oversized frames, subscribe/unsubscribe floods (past the rate limit and,
 * with a generous one, thousands of toggles that must leave exactly one live delivery), half-open
 * sockets, connection storms past the per-user limit, auth failures. Close codes and error codes
 * as documented in docs/gateways.md and SECURITY.md.
 */
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AuthError, MemoryTransport, tokenFrom, type AgentEvent } from '../../src/index.js';
import { WebSocketGateway, type WebSocketGatewayOptions } from '../../src/gateway/websocket/index.js';
import { Peer, RunBuilder, authenticate } from './hotpath-peer.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startGateway(options: Partial<WebSocketGatewayOptions> = {}) {
  const errors: unknown[] = [];
  const gateway = new WebSocketGateway({ authenticate, log: new MemoryTransport(), onError: (error) => errors.push(error), closeTimeoutMs: 500, ...options });
  const { url, port } = await gateway.listen(0);
  cleanups.push(() => gateway.close());
  return { gateway, url, port, errors };
}

async function peer(url: string, userId: string, options?: WebSocket.ClientOptions): Promise<Peer> {
  const p = await Peer.open(url, userId, options);
  cleanups.push(() => {
    p.ws.terminate();
  });
  return p;
}

/** A bystander following its own thread; `pump(n)` sends n events and waits until it got them all. */
async function bystander(gateway: WebSocketGateway, url: string) {
  const p = await peer(url, 'bystander');
  const run = new RunBuilder('bystander', 'calm');
  const sent: AgentEvent[] = [run.started()];
  await gateway.send(sent[0]!);
  await p.subscribe('calm');
  return {
    peer: p,
    async pump(n: number) {
      for (let i = 0; i < n; i++) {
        const event = run.thinking(`calm ${sent.length}`);
        sent.push(event);
        void gateway.send(event);
      }
      await p.until(() => p.events().length >= sent.length, 10_000, 'bystander');
      expect(p.events().map((f) => f.event!.id)).toEqual(sent.map((e) => e.id));
      expect(p.close).toBeUndefined();
    },
  };
}

/** Polls a server-side condition once per event-loop turn (no fixed sleep), failing after `ms`. */
async function eventually(condition: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Opens a raw TCP socket and completes a WebSocket upgrade by hand; returns the socket after the 101. */
function rawUpgrade(port: number, userId: string): Promise<{ socket: Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1');
    cleanups.push(() => {
      socket.destroy();
    });
    socket.once('error', reject);
    socket.on('connect', () => {
      socket.write(
        [
          'GET /ws HTTP/1.1',
          `Host: 127.0.0.1:${port}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
          'Sec-WebSocket-Version: 13',
          `Authorization: Bearer u-${userId}`,
          '',
          '',
        ].join('\r\n'),
      );
    });
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve({ socket, head });
      }
    };
    socket.on('data', onData);
  });
}

function refusal(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('upgrade was accepted'));
    });
    ws.once('error', () => undefined);
  });
}

describe('attack: hostile clients on the WebSocket gateway', () => {
  it('malformed frames are answered with error frames of the documented codes, then close 1008 past maxInvalidFrames; the bystander is untouched', async () => {
    const { gateway, url } = await startGateway({ rateLimit: { framesPerSecond: 10_000, burst: 10_000 } });
    const calm = await bystander(gateway, url);
    const bad = await peer(url, 'mallory');
    const frames = [
      '{not json',
      '',
      'null',
      '"a string"',
      '[]',
      '{}',
      JSON.stringify({ type: 'x'.repeat(1_000) }),
      JSON.stringify({ type: 'subscribe' }),
      JSON.stringify({ type: 'subscribe', threadId: 'has space' }),
      JSON.stringify({ type: 'subscribe', threadId: 'ok', after: 'c'.repeat(129) }),
      JSON.stringify({ type: 'subscribe', threadId: 'ok', after: '\u0001' }),
      '{"type":"subscribe","threadId":"\ud800"}',
    ];
    for (const frame of frames) bad.send(frame);
    const closed = await bad.closed();
    await calm.pump(50);
    expect(closed.code).toBe(1008);
    const errors = bad.errors();
    expect(errors.length).toBeGreaterThanOrEqual(10);
    expect(errors[0]!.code).toBe('INVALID_JSON');
    expect(errors.every((e) => ['INVALID_JSON', 'INVALID_FRAME', 'INVALID_CURSOR', 'UNKNOWN_FRAME_TYPE'].includes(e.code!))).toBe(true);
    // A malformed cursor (129 characters: the tenth frame, the last answered) names its thread, not its value.
    expect(errors.filter((e) => e.code === 'INVALID_CURSOR')).toEqual([
      { type: 'error', code: 'INVALID_CURSOR', message: 'invalid subscribe frame: after: expected 1-128 printable ASCII characters', threadId: 'ok' },
    ]);
    const unknown = errors.find((e) => e.code === 'UNKNOWN_FRAME_TYPE');
    expect(unknown).toBeDefined();
    // "at most 40 characters of an unknown frame type" are echoed (SECURITY.md)
    expect(JSON.stringify(unknown).includes('x'.repeat(41))).toBe(false);
    expect(gateway.stats().disconnects.invalid_frames).toBe(1);
  });

  it('a binary frame gets BINARY_NOT_SUPPORTED; a frame one byte past maxPayload (counted in bytes, multi-byte text) closes 1009, one at exactly maxPayload does not', async () => {
    const { gateway, url } = await startGateway({ maxPayload: 1024 });
    const calm = await bystander(gateway, url);
    const bin = await peer(url, 'binary');
    bin.ws.send(Buffer.from([0, 1, 2, 3, 0xff]), { binary: true });
    await bin.until(() => bin.errors().length > 0 || bin.close !== undefined);
    expect(bin.errors()[0]?.code ?? `closed ${bin.close?.code}`).toBe('BINARY_NOT_SUPPORTED');
    // Exactly 1024 bytes of UTF-8 (not JSON): answered, not closed.
    const exact = await peer(url, 'exact');
    const exactFrame = '😀'.repeat(256); // 1024 bytes, 512 UTF-16 units
    expect(Buffer.byteLength(exactFrame)).toBe(1024);
    exact.send(exactFrame);
    await exact.until(() => exact.errors().length > 0 || exact.close !== undefined);
    expect(exact.errors()[0]?.code).toBe('INVALID_JSON');
    // 1025 bytes in 513 UTF-16 units: past the limit in bytes.
    const over = await peer(url, 'over');
    over.send(`${exactFrame}x`);
    expect((await over.closed()).code).toBe(1009);
    await calm.pump(20);
    expect(exact.close).toBeUndefined();
    expect(gateway.stats().disconnects.oversized_frame).toBe(1);
  });

  it('a subscribe split into fragments with a ping between them is reassembled and answered; a fragmented frame past maxPayload in total closes 1009', async () => {
    const { gateway, url } = await startGateway({ maxPayload: 1024 });
    const calm = await bystander(gateway, url);
    const run = new RunBuilder('frag', 'frag-t');
    await gateway.send(run.started());
    const p = await peer(url, 'frag');
    const frame = JSON.stringify({ type: 'subscribe', threadId: 'frag-t' });
    let pongs = 0;
    p.ws.on('pong', () => pongs++);
    p.ws.send(frame.slice(0, 5), { fin: false });
    p.ws.send(frame.slice(5, 20), { fin: false });
    p.ws.ping();
    p.ws.send(frame.slice(20), { fin: true });
    await p.until(() => p.events().length >= 1 && pongs >= 1);
    expect(p.frames.find((f) => f.type === 'subscribed')).toMatchObject({ threadId: 'frag-t', replayed: 1 });
    const big = await peer(url, 'frag2');
    for (let i = 0; i < 5; i++) big.ws.send('x'.repeat(300), { fin: false });
    big.ws.send('x', { fin: true });
    expect((await big.closed()).code).toBe(1009);
    await calm.pump(10);
  });

  it('a subscribe/unsubscribe flood past the rate limit: frames read before the cut are answered, then close 4008; the bystander is untouched', async () => {
    const { gateway, url } = await startGateway();
    const calm = await bystander(gateway, url);
    const flooder = await peer(url, 'flood');
    for (let i = 0; i < 300; i++) flooder.send(i % 2 ? { type: 'unsubscribe', threadId: 'f' } : { type: 'subscribe', threadId: 'f' });
    const closed = await flooder.closed();
    await calm.pump(50);
    expect(closed.code).toBe(4008);
    const answered = flooder.frames.filter((f) => f.type === 'subscribed' || f.type === 'unsubscribed').length;
    expect(answered).toBeGreaterThanOrEqual(40);
    expect(answered).toBeLessThan(300);
    expect(gateway.stats().disconnects.rate_limited).toBe(1);
  });

  it('4,000 subscribe/unsubscribe toggles with live events in between (generous rate limit): each answered in order, and afterwards one subscription delivers each live event exactly once', async () => {
    const { gateway, url } = await startGateway({ rateLimit: { framesPerSecond: 1_000_000, burst: 1_000_000 } });
    const p = await peer(url, 'toggler');
    const run = new RunBuilder('toggler', 'tog');
    const sent: AgentEvent[] = [run.started()];
    await gateway.send(sent[0]!);
    for (let i = 0; i < 2_000; i++) {
      p.send({ type: 'subscribe', threadId: 'tog' });
      p.send({ type: 'unsubscribe', threadId: 'tog' });
      if (i % 100 === 0) {
        const event = run.thinking(`during ${i}`);
        sent.push(event);
        void gateway.send(event);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    p.send({ type: 'subscribe', threadId: 'tog' });
    await p.until(() => p.frames.filter((f) => f.type === 'subscribed').length >= 2_001, 20_000, 'all answered');
    const answers = p.frames.filter((f) => f.type === 'subscribed' || f.type === 'unsubscribed' || f.type === 'error').map((f) => f.type);
    expect(answers.filter((t) => t === 'error')).toEqual([]);
    expect(answers).toEqual([...Array.from({ length: 2_000 }, () => ['subscribed', 'unsubscribed']).flat(), 'subscribed']);
    // After the last subscribe: its replay (which may still be arriving: a replay can span flushes),
    // then each live event exactly once.
    let answered = 0;
    const mark = p.frames.findIndex((f) => f.type === 'subscribed' && ++answered === 2_001) + 1;
    const live: AgentEvent[] = [];
    for (let i = 0; i < 50; i++) live.push(run.thinking(`after ${i}`));
    for (const event of live) void gateway.send(event);
    const last = live.at(-1)!.id;
    await p.until(() => p.frames.slice(mark).some((f) => f.event?.id === last), 10_000, 'live after toggles');
    // Drain: a marker event after which nothing else may be pending.
    const marker = run.thinking('marker');
    await gateway.send(marker);
    await p.until(() => p.frames.some((f) => f.event?.id === marker.id));
    const afterMark = p.frames.slice(mark).filter((f) => f.type === 'event').map((f) => f.event!.id);
    expect(afterMark).toEqual([...sent.map((e) => e.id), ...live.map((e) => e.id), marker.id]);
    expect(gateway.stats().subscriptions).toBe(1);
  });

  it('a half-open socket (upgraded, then never reads, never pongs, half a frame sent) is cut by the heartbeat; everyone else keeps streaming', async () => {
    const { gateway, url, port } = await startGateway({ heartbeatIntervalMs: 30 });
    const calm = await bystander(gateway, url);
    const { socket, head } = await rawUpgrade(port, 'halfopen');
    expect(head.startsWith('HTTP/1.1 101')).toBe(true);
    // Half a masked text frame header: FIN+text, mask bit, length 100, and no mask key / payload.
    socket.write(Buffer.from([0x81, 0x80 | 100]));
    socket.pause();
    const before = gateway.stats().disconnects.heartbeat ?? 0;
    await eventually(() => (gateway.stats().disconnects.heartbeat ?? 0) > before, 5_000, 'heartbeat cut');
    await calm.pump(100);
    await eventually(() => gateway.stats().connections.open === 1, 5_000, 'only the bystander left');
  });

  it('a storm of 30 connections for one user: the limit holds (3 open), every other one closed with 4029; another user is untouched', async () => {
    const { gateway, url } = await startGateway();
    const calm = await bystander(gateway, url);
    const settled = await Promise.allSettled(Array.from({ length: 30 }, () => peer(url, 'stormy')));
    const peers = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    await eventually(() => peers.filter((p) => p.close === undefined).length <= 3, 5_000, 'at most 3 open');
    await calm.pump(30);
    const open = peers.filter((p) => p.close === undefined);
    expect(open.length).toBe(3);
    const closes = peers.filter((p) => p.close !== undefined).map((p) => p.close!.code);
    expect(new Set(closes)).toEqual(new Set([4029]));
    expect(closes.length + (30 - peers.length)).toBe(27);
    // The survivors are real: they stream.
    const run = new RunBuilder('stormy', 'storm');
    const sent = [run.started(), run.thinking('hi')];
    for (const event of sent) void gateway.send(event);
    await Promise.all(open.map((p) => p.subscribe('storm')));
    await Promise.all(open.map((p) => p.until(() => p.events().length >= 2)));
    expect(gateway.stats().users).toBe(2);
  });

  it('sockets that read but never answer a close frame: one token holds at most 2 × maxConnectionsPerUser sockets (SECURITY.md)', async () => {
    const { gateway, url, port } = await startGateway({ closeTimeoutMs: 60_000 });
    const calm = await bystander(gateway, url);
    const alive = new Set<Socket>();
    let peak = 0;
    for (let i = 0; i < 16; i++) {
      const { socket } = await rawUpgrade(port, 'zed');
      alive.add(socket);
      socket.on('close', () => alive.delete(socket));
      socket.on('data', () => undefined); // reads (and so sees the close frame), never answers it
      // Barrier: the server has taken this one (open count includes it), then count what is still connected.
      await eventually(() => gateway.stats().connections.open >= 2, 5_000, 'registered');
      await calm.pump(1);
      peak = Math.max(peak, alive.size);
    }
    await eventually(() => alive.size <= 6, 5_000, 'at most 6 sockets');
    expect(peak).toBeLessThanOrEqual(2 * 3 + 1);
    expect(alive.size).toBeLessThanOrEqual(6);
    expect(gateway.stats().connections.open).toBe(1 + 3);
  });

  it('squatters subscribed to 20 threads before their owners’ first events get none of the owners’ burst (live handover included); owners get all; isolationDrops stays 0', async () => {
    const { gateway, url } = await startGateway();
    const squatter = await peer(url, 'eve');
    const owners = await Promise.all(Array.from({ length: 20 }, (_, i) => peer(url, `owner${i}`)));
    for (let i = 0; i < 16; i++) expect((await squatter.subscribe(`future-${i}`)).type).toBe('subscribed');
    await Promise.all(owners.map((p, i) => p.subscribe(`future-${i}`)));
    const runs = owners.map((_, i) => new RunBuilder(`owner${i}`, `future-${i}`));
    const sent = runs.map((run) => [run.started()]);
    // One tick: every owner's first event and a burst behind it.
    for (let i = 0; i < runs.length; i++) {
      for (let k = 0; k < 30; k++) sent[i]!.push(runs[i]!.thinking(`secret ${i}.${k}`));
      for (const event of sent[i]!) void gateway.send(event);
    }
    await Promise.all(owners.map((p, i) => p.until(() => p.events().length >= sent[i]!.length, 10_000, `owner ${i}`)));
    // Barrier for the squatter: an event of its own thread, sent after everything else.
    const own = new RunBuilder('eve', 'eve-own');
    const mark = own.started();
    squatter.send({ type: 'unsubscribe', threadId: 'future-0' });
    await squatter.until(() => squatter.frames.some((f) => f.type === 'unsubscribed' || (f.type === 'error' && f.threadId === 'future-0')));
    await squatter.subscribe('eve-own');
    await gateway.send(mark);
    await squatter.until(() => squatter.events('eve-own').length >= 1);
    expect(squatter.frames.filter((f) => f.type === 'event' && f.threadId !== 'eve-own')).toEqual([]);
    expect(JSON.stringify(squatter.frames)).not.toContain('secret');
    for (let i = 0; i < owners.length; i++) expect(owners[i]!.events().map((f) => f.event!.id)).toEqual(sent[i]!.map((e) => e.id));
    expect(gateway.stats().isolationDrops).toBe(0);
    // A fresh subscription of the squatter to an owned thread is refused.
    expect(await squatter.subscribe('future-17')).toMatchObject({ type: 'error', code: 'THREAD_FORBIDDEN' });
  });

  it('refuse-newest: the 4th connection is closed with 4029, the first three keep streaming', async () => {
    const { gateway, url } = await startGateway({ userLimitPolicy: 'refuse-newest' });
    const first = await Promise.all([peer(url, 'ruth'), peer(url, 'ruth'), peer(url, 'ruth')]);
    const fourth = await peer(url, 'ruth').catch((error: Error) => error);
    if (fourth instanceof Peer) expect((await fourth.closed()).code).toBe(4029);
    else expect(fourth.message).toMatch(/429|4029/);
    const run = new RunBuilder('ruth', 'rt');
    const sent = [run.started(), run.thinking('a'), run.thinking('b')];
    await gateway.send(sent[0]!);
    await Promise.all(first.map((p) => p.subscribe('rt')));
    for (const event of sent.slice(1)) void gateway.send(event);
    await Promise.all(first.map((p) => p.until(() => p.events().length >= 3)));
    expect(first.every((p) => p.close === undefined)).toBe(true);
  });

  it('auth failures: no token, a bad token, an over-long user id and a hook that throws a secret all get 401 with nothing leaked; a slow hook gets 503; the bystander is untouched', async () => {
    const secret = 'postgres://admin:hunter2@db';
    const { gateway, url, errors } = await startGateway({
      authTimeoutMs: 100,
      authenticate: async (request) => {
        const token = tokenFrom(request);
        if (token === 'throw') throw new Error(secret);
        if (token === 'autherror') throw new AuthError('custom refusal');
        if (token === 'long') return { userId: 'u'.repeat(257) };
        if (token === 'slow') return new Promise(() => undefined);
        return authenticate(request);
      },
    });
    const calm = await bystander(gateway, url);
    const results = await Promise.all([
      refusal(url, {}),
      refusal(url, { authorization: 'Bearer nope' }),
      refusal(url, { authorization: 'Bearer long' }),
      refusal(url, { authorization: 'Bearer throw' }),
      refusal(url, { authorization: 'Bearer slow' }),
    ]);
    expect(results.map((r) => r.status)).toEqual([401, 401, 401, 401, 503]);
    for (const r of results) expect(r.body).not.toContain('hunter2');
    expect(errors.some((e) => String((e as Error).message).includes('hunter2'))).toBe(true);
    await calm.pump(20);
    expect(gateway.stats().connections.open).toBe(1);
  });

  it('idle and greedy connections: no subscription within subscribeTimeoutMs closes 4001; the 17th subscription is TOO_MANY_SUBSCRIPTIONS; past maxConnections the upgrade is 503', async () => {
    const { gateway, url } = await startGateway({ subscribeTimeoutMs: 100, maxConnections: 4 });
    const calm = await bystander(gateway, url);
    const idle = await peer(url, 'idle');
    const greedy = await peer(url, 'greedy');
    for (let i = 0; i < 17; i++) greedy.send({ type: 'subscribe', threadId: `g${i}` });
    await greedy.until(() => greedy.frames.filter((f) => f.type === 'subscribed' || f.type === 'error').length >= 17);
    expect(greedy.frames.filter((f) => f.type === 'subscribed').length).toBe(16);
    expect(greedy.errors().map((e) => e.code)).toEqual(['TOO_MANY_SUBSCRIPTIONS']);
    const filler = await peer(url, 'filler');
    filler.send({ type: 'subscribe', threadId: 'fill' });
    const full = await refusal(url, { authorization: 'Bearer u-late' });
    expect(full.status).toBe(503);
    expect((await idle.closed()).code).toBe(4001);
    await calm.pump(10);
    expect(greedy.close).toBeUndefined();
  });
});
