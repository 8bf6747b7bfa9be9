/**
 * Limits under hostile load, with a real gateway and real sockets: a connection flood from one
 * user (polite sockets and sockets that never answer a close), a flood across many users against
 * the total limit, the per-connection rate limit and the invalid-frame limit with their defaults.
 * Well-behaved clients on the same gateway must get every event of their runs throughout.
 */
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { checkStream, figures, loadEvents, pause, perfect, startStack, type LoadInput, type Stack, type StackOptions } from '../helpers/reliability-harness.js';
import { RawClient, follow, refusedStatus, tokenOf, until } from '../helpers/ws-harness.js';
import { useCleanup } from '../helpers/cleanup.js';

const cleanup = useCleanup();

async function stack(options: StackOptions = {}): Promise<Stack> {
  const started = await startStack(options);
  cleanup.push(() => started.stop());
  return started;
}

const RUN: LoadInput = { thoughts: 20, tools: 5, parallel: true, toolDelayMs: 1 };

/** Well-behaved users following their threads and running agents until `stop()`; then checks them. */
async function bystanders(s: Stack, count: number) {
  const clients = Array.from({ length: count }, (_, i) => follow(s.url, `calm${i}`, `calm-thread-${i}`));
  cleanup.push(() => clients.forEach((f) => f.client.close()));
  await until(() => clients.every((f) => f.client.status === 'open'), 'bystanders subscribed');
  let stopped = false;
  const loop = (async () => {
    let runs = 0;
    for (let round = 0; round < 10_000 && !stopped; round++) {
      await Promise.all(clients.map((f) => s.load.run(RUN, { userId: f.userId, threadId: f.threadId })));
      runs++;
      await pause(2);
    }
    return runs;
  })();
  return {
    clients,
    /** Stops the runs and asserts every bystander received every event once, in order, without reconnecting. */
    async verify(): Promise<number> {
      stopped = true;
      const runs = await loop;
      await until(() => clients.every((f) => f.events.length === runs * loadEvents(RUN)), 'bystanders complete', 4_000);
      await pause(10);
      for (const f of clients) {
        const report = checkStream(f, s.emitted.expected(f.userId, f.threadId));
        expect(report).toEqual(perfect(report, runs));
        expect(f.client.stats.reconnects).toBe(0);
        expect(f.errors).toEqual([]);
      }
      return runs;
    },
  };
}

/** A socket that completes the WebSocket handshake and then ignores everything, close frames included. */
function deafSocket(port: number, userId: string): Promise<{ socket: Socket; status: number; closedByServer: () => boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1');
    let closed = false;
    socket.on('error', () => undefined);
    socket.on('close', () => (closed = true));
    socket.once('connect', () => {
      socket.write(
        `GET /ws?token=${tokenOf(userId)} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.once('data', (chunk: Buffer) => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(chunk.toString('latin1'))?.[1] ?? 0);
      socket.on('data', () => undefined); // read (so a server-side close is noticed), never answer
      resolve({ socket, status, closedByServer: () => closed });
    });
    socket.once('close', () => reject(new Error('closed before any answer')));
  });
}

describe('connection flood from one user', () => {
  it('200 connections opened at once by one token: never more than maxConnectionsPerUser served, bystanders unaffected', async () => {
    const s = await stack();
    const calm = await bystanders(s, 10);
    const closes: number[] = [];
    let peak = 0;
    const sample = (): void => void (peak = Math.max(peak, s.gateway.stats().connections - calm.clients.length));
    const opened: WebSocket[] = [];
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 20 }, () => {
          const ws = new WebSocket(`${s.url}?token=${tokenOf('flooder')}`);
          opened.push(ws);
          ws.on('error', () => undefined);
          ws.on('close', (code) => closes.push(code));
          return new Promise<void>((resolve) => {
            ws.once('open', () => {
              sample();
              resolve();
            });
            ws.once('close', () => resolve());
          });
        }),
      );
      sample();
    }
    cleanup.push(() => opened.forEach((ws) => ws.terminate()));
    await until(() => closes.length >= 197, 'the replaced connections closed');
    sample();
    const runs = await calm.verify();
    const stats = s.gateway.stats();
    expect(peak).toBeLessThanOrEqual(3);
    expect(stats.connections).toBe(calm.clients.length + 3);
    expect(stats.closedReplaced).toBe(197);
    expect(closes.filter((code) => code === 4029)).toHaveLength(197);
    figures('one-user flood', { opened: 200, servedPeak: peak, replaced: stats.closedReplaced, bystanderRuns: runs * calm.clients.length });
  });

  it('sockets that never answer a close frame cannot pile up: at most maxConnectionsPerUser served plus as many closing', async () => {
    const s = await stack({ gateway: { maxConnections: 20 } });
    const calm = await bystanders(s, 5);
    const deaf: Array<Awaited<ReturnType<typeof deafSocket>>> = [];
    for (let i = 0; i < 60; i++) deaf.push(await deafSocket(s.port, 'mute'));
    cleanup.push(() => deaf.forEach((d) => d.socket.destroy()));
    expect(deaf.every((d) => d.status === 101)).toBe(true); // each one was let in (closing the oldest)
    await until(() => deaf.filter((d) => !d.closedByServer()).length <= 6, 'the oldest closing sockets cut');
    await pause(50);
    const held = deaf.filter((d) => !d.closedByServer()).length;
    expect(held).toBe(6); // 3 served + 3 waiting for a close answer, not 60 for ws's 30 s close timeout
    // The total limit counts sockets, and one token cannot use it up: others still get in.
    const other = await RawClient.open(s.url, 'newcomer');
    cleanup.push(() => other.ws.terminate());
    expect(other.frames[0]).toMatchObject({ type: 'hello', userId: 'newcomer' });
    const runs = await calm.verify();
    figures('deaf-socket flood', { opened: 60, heldByServer: held, bystanderRuns: runs * calm.clients.length });
  });
});

describe('connection flood across users', () => {
  it('the total limit holds (HTTP 503 past it), bystanders keep their streams, and the gateway takes new connections afterwards', async () => {
    const maxConnections = 40;
    const s = await stack({ gateway: { maxConnections } });
    const calm = await bystanders(s, 10);
    let peak = 0;
    const sample = (): void => {
      const stats = s.gateway.stats();
      peak = Math.max(peak, stats.connections + stats.pendingHandshakes);
    };
    const timer = setInterval(sample, 1);
    const outcomes = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        new Promise<{ status: number; ws: WebSocket }>((resolve) => {
          const ws = new WebSocket(`${s.url}?token=${tokenOf(`crowd${i}`)}`);
          ws.on('error', () => undefined);
          ws.once('open', () => resolve({ status: 101, ws }));
          ws.once('unexpected-response', (_request, response) => {
            response.resume();
            resolve({ status: response.statusCode ?? 0, ws });
          });
        }),
      ),
    );
    clearInterval(timer);
    sample();
    const accepted = outcomes.filter((o) => o.status === 101);
    const refused = outcomes.filter((o) => o.status === 503);
    expect(accepted.length + refused.length).toBe(150);
    expect(accepted).toHaveLength(maxConnections - calm.clients.length);
    expect(peak).toBeLessThanOrEqual(maxConnections);
    expect(await refusedStatus(`${s.url}?token=${tokenOf('late')}`)).toBe(503);
    const runs = await calm.verify();
    // The crowd leaves; the gateway serves newcomers again.
    outcomes.forEach((o) => o.ws.terminate());
    await until(() => s.gateway.stats().connections === calm.clients.length, 'crowd gone');
    const newcomer = await RawClient.open(s.url, 'late');
    cleanup.push(() => newcomer.ws.terminate());
    expect(s.gateway.stats().rejectedUnavailable).toBe(refused.length + 1);
    figures('many-user flood', { attempted: 150, accepted: accepted.length, refused503: refused.length, peak, maxConnections, bystanderRuns: runs * calm.clients.length });
  });
});

describe('per-connection limits with their defaults', () => {
  it('rate limit (20/s, burst 40): a flood is cut with 4008, a paced client is not, and the same user\'s other connection keeps its stream', async () => {
    const s = await stack();
    const calm = await bystanders(s, 5);
    // The flooder's own well-behaved connection (a second tab) follows its thread.
    const tab = follow(s.url, 'flooder', 'flooder-thread');
    cleanup.push(() => tab.client.close());
    await until(() => tab.client.status === 'open', 'tab open');

    const flood = await RawClient.open(s.url, 'flooder');
    cleanup.push(() => flood.ws.terminate());
    for (let i = 0; i < 200; i++) flood.send(i % 2 === 0 ? { type: 'subscribe', threadId: `f${i % 7}` } : { type: 'unsubscribe', threadId: `f${(i - 1) % 7}` });
    expect(await flood.waitForClose()).toMatchObject({ code: 4008 });
    const answered = flood.frames.filter((f) => f.type !== 'hello').length;
    // The burst (plus what refilled meanwhile) is read and every frame of it answered, then the cut.
    expect(answered).toBeGreaterThanOrEqual(40);
    expect(answered).toBeLessThanOrEqual(41);

    const paced = await RawClient.open(s.url, 'patient');
    cleanup.push(() => paced.ws.terminate());
    paced.subscribe('p'); // acks count for followed threads
    for (let i = 0; i < 60; i++) {
      paced.send({ type: 'ack', threadId: 'p', cursor: `c:${i}` });
      await pause(25); // ≈ 40 frames/s for 1.5 s: within burst 40 + 20/s refill
    }
    await pause(20);
    expect(paced.closed).toBeUndefined();

    const result = await s.load.run(RUN, { userId: 'flooder', threadId: 'flooder-thread' });
    await until(() => tab.events.length === result.events, "the flooder's tab got its run");
    const report = checkStream(tab, s.emitted.expected('flooder', 'flooder-thread'));
    expect(report).toEqual(perfect(report, 1));
    const runs = await calm.verify();
    expect(s.gateway.stats()).toMatchObject({ closedRateLimited: 1, acks: 60 });
    figures('rate limit', { flooded: 200, answeredBeforeCut: answered, pacedFrames: 60, bystanderRuns: runs * calm.clients.length });
  });

  it('invalid frames (default 10 tolerated) end with 1008 and frames over maxPayload (64 KiB) with 1009', async () => {
    const s = await stack();
    const calm = await bystanders(s, 3);
    const noisy = await RawClient.open(s.url, 'noisy');
    cleanup.push(() => noisy.ws.terminate());
    for (let i = 0; i < 11; i++) noisy.send(i % 2 === 0 ? '{not json' : { type: 'nope' });
    expect(await noisy.waitForClose()).toMatchObject({ code: 1008 });
    expect(noisy.ofType('error')).toHaveLength(10);

    const big = await RawClient.open(s.url, 'big');
    cleanup.push(() => big.ws.terminate());
    big.send({ type: 'subscribe', threadId: 't', after: 'x'.repeat(64 * 1024) });
    expect(await big.waitForClose()).toMatchObject({ code: 1009 });
    expect(big.frames.filter((f) => f.type !== 'hello')).toEqual([]);

    // The real client treats both as terminal (it does not reconnect into the same refusal).
    const client = follow(s.url, 'noisy', 't2');
    cleanup.push(() => client.client.close());
    await until(() => client.client.status === 'open', 'open');
    (client.client as unknown as { socket: WebSocket }).socket.send('x'.repeat(64 * 1024 + 1));
    await until(() => client.client.status === 'closed', 'closed');
    expect(client.errors.map((e) => e.code)).toEqual(['MESSAGE_TOO_BIG']);
    expect(client.client.stats.reconnects).toBe(0);
    await calm.verify();
    expect(s.gateway.stats()).toMatchObject({ closedInvalidFrames: 1, oversizedFrames: 2 });
  });
});
