import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { nanoid } from 'nanoid';
import { WebSocketServer, type WebSocket } from 'ws';
import { StateError } from '../../errors/index.js';
import type { AgentEvent } from '../../events/schema.js';
import { CloseCode } from '../../protocol/constants.js';
import { MemoryTransport } from '../memory/memory-transport.js';
import type { EventLog, Transport, TransportHealth } from '../types.js';
import { Connection, type ConnectionContext } from './connection.js';
import { ConnectionRegistry } from './connection-registry.js';
import { FlushScheduler } from './flush-scheduler.js';
import { authenticateUpgrade, rejectUpgrade, requestPath } from './handshake.js';
import { resolveGatewayOptions, type ResolvedGatewayOptions, type WebSocketGatewayOptions } from './options.js';
import { GatewayCounters, type GatewayStats } from './stats.js';

/** Where a gateway started by `listen()` accepts connections. */
export interface GatewayAddress {
  host: string;
  port: number;
  /** `ws://host:port/path`, ready for a client. */
  url: string;
}

/**
 * Serves agent events to WebSocket clients. Attach it to an existing `http.Server` (it only
 * takes upgrades on its `path`, so it sits beside express, fastify or hono) or let it `listen()`.
 * Every connection is authenticated at the upgrade, follows threads of its own user only, and
 * resumes from a cursor with no gap and no duplicate. It is also a `Transport`: give it to an
 * `AgentBridge` and `send()` appends to the underlying log.
 */
export class WebSocketGateway implements Transport {
  readonly transport: Transport & EventLog;
  readonly sendSync?: (event: AgentEvent) => void;
  private readonly options: ResolvedGatewayOptions;
  private readonly ownsTransport: boolean;
  private readonly wss: WebSocketServer;
  private readonly registry = new ConnectionRegistry();
  private readonly scheduler = new FlushScheduler();
  private readonly counters = new GatewayCounters();
  private readonly context: ConnectionContext;
  /** Attached servers and the upgrade handler registered on each. */
  private readonly servers = new Map<Server, (request: IncomingMessage, socket: Duplex, head: Buffer) => void>();
  private ownServer: Server | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private pendingHandshakes = 0;
  /** Sockets opened and not yet closed: served ones plus those still closing (see `lingering`). */
  private openSockets = 0;
  /**
   * Sockets the gateway is closing whose peer has not answered the close frame yet, per user,
   * oldest first. A peer that never answers would keep its socket for ws's close timeout (30 s)
   * while no longer counting as a connection: one token could then hold any number of sockets by
   * reconnecting in a loop (each new connection closes the oldest under `close-oldest`).
   */
  private readonly lingering = new Map<string, Set<WebSocket>>();
  private closing: Promise<void> | undefined;
  private onLastSocketClosed: (() => void) | undefined;

  constructor(options: WebSocketGatewayOptions) {
    this.options = resolveGatewayOptions(options);
    this.ownsTransport = options.transport === undefined;
    this.transport = options.transport ?? new MemoryTransport();
    // Inline delivery from the bridge, only when the log accepts events synchronously (the in-memory one does).
    const log = this.transport;
    if (log.sendSync) this.sendSync = (event) => log.sendSync!(event);
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: this.options.maxPayload,
    });
    this.context = {
      options: this.options,
      log: this.transport,
      scheduler: this.scheduler,
      counters: this.counters,
      released: (connection) => {
        this.registry.remove(connection);
        this.linger(connection);
      },
      socketClosed: (connection) => {
        this.unlinger(connection);
        this.openSockets--;
        if (this.openSockets === 0) this.onLastSocketClosed?.();
      },
    };
    if (this.options.heartbeatIntervalMs > 0) {
      this.heartbeatTimer = setInterval(() => this.heartbeat(), this.options.heartbeatIntervalMs);
      this.heartbeatTimer.unref();
    }
    if (options.server) this.attach(options.server);
  }

  /** Handles WebSocket upgrades on `path` of this server. Other paths are left to other handlers. */
  attach(server: Server): this {
    if (this.closing) throw new StateError('GATEWAY_CLOSED', 'WebSocketGateway is closed');
    if (!this.servers.has(server)) {
      const handler = (request: IncomingMessage, socket: Duplex, head: Buffer): void => this.onUpgrade(server, request, socket, head);
      this.servers.set(server, handler);
      server.on('upgrade', handler);
    }
    return this;
  }

  /** Starts an HTTP server of its own (plain requests get 426) and accepts connections on it. */
  async listen(port = 0, host = '127.0.0.1'): Promise<GatewayAddress> {
    if (this.ownServer) throw new StateError('ALREADY_LISTENING', 'WebSocketGateway is already listening');
    const server = createServer((_request, response) => {
      response.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
      response.end(`this endpoint only accepts WebSocket connections on ${this.options.path}`);
    });
    this.ownServer = server;
    this.attach(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    const shownHost = address.address.includes(':') ? `[${address.address}]` : address.address;
    return { host: address.address, port: address.port, url: `ws://${shownHost}:${address.port}${this.options.path}` };
  }

  /** Appends the event to the log; subscribed connections of its user receive it on the next flush. */
  send(event: AgentEvent): Promise<void> {
    return this.transport.send(event);
  }


  async health(): Promise<TransportHealth> {
    if (this.closing) return { ok: false, detail: 'closed' };
    const inner = (await this.transport.health?.()) ?? { ok: true };
    const detail = `${this.registry.size} connections` + (inner.detail ? `; log: ${inner.detail}` : '');
    return { ok: inner.ok, detail };
  }

  /** Gauges (connections, queues, buffers) and counters (drops by reason, refusals). Gauges are O(connections). */
  stats(): GatewayStats {
    let subscriptions = 0;
    let queuedFrames = 0;
    let bufferedBytes = 0;
    let maxBufferedBytes = 0;
    for (const connection of this.registry.all()) {
      subscriptions += connection.subscriptionCount;
      queuedFrames += connection.queuedFrames;
      const buffered = connection.socket.bufferedAmount;
      bufferedBytes += buffered;
      maxBufferedBytes = Math.max(maxBufferedBytes, buffered);
    }
    return {
      ...this.counters,
      connections: this.registry.size,
      users: this.registry.users,
      subscriptions,
      pendingHandshakes: this.pendingHandshakes,
      queuedFrames,
      bufferedBytes,
      maxBufferedBytes,
    };
  }

  /**
   * Stops accepting, writes what is queued, closes every socket with 1001 and waits for them
   * (cutting those that do not answer within `closeTimeoutMs`). Closes the server it started
   * and the transport it created; no timer outlives it.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const [server, handler] of this.servers) server.off('upgrade', handler);
    clearInterval(this.heartbeatTimer);
    this.scheduler.flushAll();
    const sockets = [...this.registry.all()].map((connection) => connection.socket);
    const allClosed = new Promise<void>((resolve) => {
      this.onLastSocketClosed = resolve;
      if (this.openSockets === 0) resolve();
    });
    for (const connection of [...this.registry.all()]) connection.shutdown();
    const cutOff = setTimeout(() => sockets.forEach((socket) => socket.terminate()), this.options.closeTimeoutMs);
    cutOff.unref();
    await allClosed;
    clearTimeout(cutOff);
    this.scheduler.cancel();
    this.wss.close();
    if (this.ownServer) {
      const server = this.ownServer;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
    if (this.ownsTransport) await this.transport.close();
  }

  private onUpgrade(server: Server, request: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (requestPath(request) !== this.options.path) {
      // Not ours. If nobody else handles upgrades on this server, answer rather than leave it hanging.
      if (server.listenerCount('upgrade') === 1) rejectUpgrade(socket, 404, 'no WebSocket endpoint at this path');
      return;
    }
    void this.accept(request, socket, head);
  }

  private async accept(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Errors on the raw socket before the upgrade completes must not crash the process.
    const ignoreError = (): void => undefined;
    socket.on('error', ignoreError);
    if (this.closing) return this.refuse(socket, 503, 'server shutting down');
    // Closing sockets count too: the bound is on sockets (file descriptors), not only on served connections.
    if (this.openSockets + this.pendingHandshakes >= this.options.maxConnections) {
      return this.refuse(socket, 503, 'too many connections; try again later');
    }
    this.pendingHandshakes++;
    const outcome = await authenticateUpgrade(this.options.authenticate, request, this.options.authTimeoutMs);
    this.pendingHandshakes--;
    if (socket.destroyed) return;
    if (!outcome.ok) {
      if (outcome.status === 401) this.counters.rejectedUnauthorized++;
      else this.counters.rejectedUnavailable++;
      rejectUpgrade(socket, outcome.status, outcome.message);
      return;
    }
    if (this.closing) return this.refuse(socket, 503, 'server shutting down');
    const { userId } = outcome.principal;
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      socket.off('error', ignoreError);
      this.open(ws, userId);
    });
  }

  private refuse(socket: Duplex, status: number, message: string): void {
    this.counters.rejectedUnavailable++;
    rejectUpgrade(socket, status, message);
  }

  /**
   * Registers an authenticated socket. Past `maxConnectionsPerUser`, `close-oldest` (default)
   * closes the user's oldest connection with 4029 and serves the new one; `refuse-newest` closes
   * the new one with 4029.
   */
  private open(ws: WebSocket, userId: string): void {
    this.openSockets++;
    const connection = new Connection(nanoid(12), userId, ws, this.context);
    const existing = this.registry.of(userId);
    if (existing.length >= this.options.maxConnectionsPerUser) {
      if (this.options.userLimitPolicy === 'refuse-newest') {
        this.counters.closedRefused++;
        connection.close(CloseCode.TOO_MANY_CONNECTIONS, 'too many connections for this user');
        return;
      }
      const excess = existing.length - this.options.maxConnectionsPerUser + 1;
      for (const oldest of existing.slice(0, excess)) {
        this.counters.closedReplaced++;
        oldest.close(CloseCode.TOO_MANY_CONNECTIONS, 'replaced by a newer connection of the same user');
      }
    }
    this.registry.add(connection);
    connection.start();
  }

  /** Tracks a socket being closed until it is gone; past `maxConnectionsPerUser` of them per user, the oldest are cut. */
  private linger(connection: Connection): void {
    let sockets = this.lingering.get(connection.userId);
    if (!sockets) this.lingering.set(connection.userId, (sockets = new Set()));
    sockets.add(connection.socket);
    for (const socket of sockets) {
      if (sockets.size <= this.options.maxConnectionsPerUser) break;
      sockets.delete(socket);
      socket.terminate(); // its 'close' follows and calls socketClosed
    }
  }

  private unlinger(connection: Connection): void {
    const sockets = this.lingering.get(connection.userId);
    if (!sockets?.delete(connection.socket)) return;
    if (sockets.size === 0) this.lingering.delete(connection.userId);
  }

  private heartbeat(): void {
    for (const connection of [...this.registry.all()]) connection.heartbeat();
  }
}
