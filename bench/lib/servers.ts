import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as SocketIoServer } from 'socket.io';
import { WebSocketServer, type WebSocket } from 'ws';
import { MemoryTransport, tokenFrom, type Authenticate, type MemoryTransportOptions } from '../../src/index.js';
import { WebSocketGateway, type WebSocketGatewayOptions } from '../../src/gateway/websocket/index.js';

/** Bench tokens are `tok-<userId>`. */
export const tokenOf = (userId: string): string => `tok-${userId}`;
export const authenticate: Authenticate = (request) => {
  const token = tokenFrom(request);
  return token?.startsWith('tok-') ? { userId: token.slice(4) } : null;
};

export interface GatewayFixture {
  gateway: WebSocketGateway;
  transport: MemoryTransport;
  url: string;
  close(): Promise<void>;
}

/** A WebSocketGateway over a MemoryTransport on 127.0.0.1:0 (defaults unless overridden). */
export async function startGateway(options: Partial<WebSocketGatewayOptions> = {}, memory: MemoryTransportOptions = {}): Promise<GatewayFixture> {
  const transport = new MemoryTransport(memory);
  const gateway = new WebSocketGateway({ authenticate, transport, ...options });
  const { url } = await gateway.listen(0, '127.0.0.1');
  return {
    gateway,
    transport,
    url,
    async close() {
      await gateway.close();
      await transport.close();
    },
  };
}

export interface RawFixture {
  wss: WebSocketServer;
  /** Open sockets. */
  sockets: Set<WebSocket>;
  url: string;
  close(): Promise<void>;
}

/** The raw floor: a plain `ws` server (no auth, no protocol) on 127.0.0.1:0. */
export async function startRawServer(onConnection?: (socket: WebSocket) => void): Promise<RawFixture> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, clientTracking: false });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const sockets = new Set<WebSocket>();
  wss.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection?.(socket);
  });
  const { port } = wss.address() as AddressInfo;
  return {
    wss,
    sockets,
    url: `ws://127.0.0.1:${port}/`,
    async close() {
      for (const socket of [...sockets]) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/**
 * The memory suite's second baseline: a bare `ws` server that exchanges what an idle gateway
 * connection does, and nothing else: a hello on connection, and a subscribed answer to the
 * client's first message (both the gateway's frame shapes and sizes), so ws's receiver and
 * sender state per socket is the same as under the gateway.
 */
export function startHandshakeServer(): Promise<RawFixture> {
  let connections = 0;
  return startRawServer((socket) => {
    const id = `c_${String(++connections).padStart(20, '0')}`;
    socket.send(JSON.stringify({ type: 'hello', v: 1, userId: `idle-user-${connections}`, connectionId: id }));
    socket.once('message', (data) => {
      const { threadId } = JSON.parse(String(data)) as { threadId: string };
      socket.send(JSON.stringify({ type: 'subscribed', threadId, cursor: null, replayed: 0 }));
    });
  });
}

export interface SocketIoFixture {
  io: SocketIoServer;
  url: string;
  /** Bytes waiting in user space for every connection (engine.io write buffers and the sockets' `bufferedAmount`). */
  buffered(frameBytes: number): number;
  close(): Promise<void>;
}

/**
 * The peer integrators use today: a Socket.IO 4 server (websocket transport only, no compression)
 * on 127.0.0.1:0. A connection joins the room named by its `room` query parameter (its thread).
 */
export async function startSocketIoServer(): Promise<SocketIoFixture> {
  const http = createServer();
  const io = new SocketIoServer(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, httpCompression: false });
  io.on('connection', (socket) => {
    const room = socket.handshake.query.room;
    if (typeof room === 'string') void socket.join(room);
    socket.emit('joined');
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = http.address() as AddressInfo;
  return {
    io,
    url: `http://127.0.0.1:${port}`,
    buffered(frameBytes) {
      let sum = 0;
      for (const socket of io.sockets.sockets.values()) {
        const conn = socket.conn as unknown as { writeBuffer?: unknown[]; transport?: { socket?: { bufferedAmount?: number } } };
        sum += (conn.writeBuffer?.length ?? 0) * frameBytes + (conn.transport?.socket?.bufferedAmount ?? 0);
      }
      return sum;
    },
    async close() {
      await new Promise<void>((resolve) => void io.close(() => resolve()));
      http.closeAllConnections();
    },
  };
}
