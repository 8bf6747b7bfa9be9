import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { connect } from '../../src/client/node.js';
import type { AgentwireClient, AgentwireError } from '../../src/client/index.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A TCP server that accepts connections and never answers the WebSocket upgrade (a black-holed load balancer). */
async function silentTcp(): Promise<string> {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close(() => resolve());
  }));
  const address = server.address() as { port: number };
  return `ws://127.0.0.1:${address.port}/ws`;
}

/** A WebSocket server that greets (hello) and never answers subscribe; counts connections. */
async function mute(): Promise<{ url: string; connections: () => number }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  let connections = 0;
  wss.on('connection', (ws) => {
    connections++;
    ws.on('error', () => {});
    ws.send(JSON.stringify({ type: 'hello', v: 1, userId: 'alice', connectionId: `c${connections}` }));
  });
  await new Promise<void>((resolve) => wss.on('listening', () => resolve()));
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const client of wss.clients) client.terminate();
    wss.close(() => resolve());
  }));
  return { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/ws`, connections: () => connections };
}

function follow(client: AgentwireClient): { errors: AgentwireError[]; closed: Promise<void> } {
  cleanups.push(() => client.close());
  const errors: AgentwireError[] = [];
  client.on('error', (error) => errors.push(error));
  const closed = new Promise<void>((resolve) => client.on('status', (status) => status === 'closed' && resolve()));
  return { errors, closed };
}

describe('agentwire/client connectTimeoutMs over real sockets', () => {
  it('a handshake that never completes: CONNECT_FAILED with reconnect: false, RECONNECT_FAILED once maxAttempts are used up', async () => {
    const url = await silentTcp();
    const started = Date.now();
    const once = follow(connect(url, { threadId: 't1', token: 'tok-secret', reconnect: false, connectTimeoutMs: 300 }));
    const retried = follow(connect(url, { threadId: 't1', token: 'tok-secret', connectTimeoutMs: 300, reconnect: { initialDelayMs: 10, maxAttempts: 1 } }));
    await once.closed;
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2_000);
    expect(once.errors.map((e) => e.code)).toEqual(['CONNECT_FAILED']);
    expect(once.errors[0]!.message).toMatch(/no open connection within 300 ms/);
    await retried.closed;
    expect(retried.errors.map((e) => e.code)).toEqual(['RECONNECT_FAILED']);
    expect(JSON.stringify([...once.errors, ...retried.errors].map((e) => [e.message, e.stack, e.details]))).not.toContain('tok-secret');
  });

  it('a subscribe never answered: the attempt fails and the client reconnects with backoff, then gives up', async () => {
    const server = await mute();
    const { errors, closed } = follow(connect(server.url, { threadId: 't1', token: 'tok', connectTimeoutMs: 200, reconnect: { initialDelayMs: 20, maxAttempts: 2 } }));
    await closed;
    expect(server.connections()).toBe(3);
    expect(errors.map((e) => e.code)).toEqual(['RECONNECT_FAILED']);
    expect(errors[0]!.message).toMatch(/no subscription within 200 ms/);
    const noRetry = follow(connect(server.url, { threadId: 't1', token: 'tok', connectTimeoutMs: 200, reconnect: false }));
    await noRetry.closed;
    expect(noRetry.errors.map((e) => e.code)).toEqual(['CONNECT_FAILED']);
  });
});
