import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { MemoryTransport, tokenFrom, type Authenticate, type MemoryTransportOptions } from '../../src/index.js';
import { WebSocketGateway, type WebSocketGatewayOptions } from '../../src/transport/websocket/index.js';

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
