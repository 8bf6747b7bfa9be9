import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { nanoid } from 'nanoid';
import { WebSocketServer, type WebSocket } from 'ws';
import { StateError } from '../../errors/index.js';
import { eventJson } from '../../events/json.js';
import type { AgentEvent } from '../../events/schema.js';
import { CloseCode } from '../../protocol/constants.js';
import { MemoryTransport } from '../memory/memory-transport.js';
import type { EventLog, Transport, TransportHealth } from '../types.js';
import { Connection, closeReason, type ConnectionContext } from './connection.js';
import { ConnectionRegistry } from './connection-registry.js';
import { ExpiryQueue } from './expiry-queue.js';
import { FlushScheduler } from './flush-scheduler.js';
import { authenticateUpgrade, rejectUpgrade, requestPath } from './handshake.js';
import {
  resolveGatewayOptions,
  type ReportedContext,
  type ResolvedGatewayOptions,
  type WebSocketGatewayOptions,
  type WebSocketPrincipal,
} from './options.js';
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
  private readonly counters = new GatewayCounters();
  private readonly scheduler = new FlushScheduler({
    onUnserializable: (entry, error) => {
      this.counters.unserializableEvents++;
      this.report(error, { stage: 'serialize', ...eventContext(entry.event) });
    },
    onFlushError: (item, error) => {
      // Connection.flush contains its own failures; this is the last line of defence.
      const connection = item as Connection;
      this.report(error, { stage: 'flush', userId: connection.userId, connectionId: connection.id });
      connection.socket.terminate();
    },
  });
  /** Connections whose principal has an `expiresAt`, behind one timer. */
  private readonly expiries = new ExpiryQueue<Connection>(
    (connection) => {
      this.counters.closedExpired++;
      connection.close(CloseCode.TOKEN_EXPIRED, 'token expired');
    },
    (error, connection) => this.report(error, { stage: 'timer', userId: connection.userId, connectionId: connection.id }),
  );
  /**
   * Users revoked while handshakes were waiting for `authenticate`: user → the revocation's
   * sequence number and time. A handshake that started before the revocation is refused when its
   * hook answers. Entries older than `authTimeoutMs` cannot matter (every handshake pending then
   * has timed out) and are dropped; the map is emptied whenever no handshake is pending.
   */
  private readonly revocations = new Map<string, { seq: number; at: number }>();
  private revocationSeq = 0;
  /** Events `send()` refused as not JSON (by identity), so each is counted once. */
  private readonly refused = new WeakSet<object>();
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
    if (log.sendSync) {
      this.sendSync = (event) => {
        this.checkJson(event);
        log.sendSync!(event);
      };
    }
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
        this.expiries.remove(connection);
        this.linger(connection);
      },
      socketClosed: (connection) => {
        this.unlinger(connection);
        this.openSockets--;
        if (this.openSockets === 0) this.onLastSocketClosed?.();
      },
      report: (error, context) => this.report(error, context),
    };
    if (this.options.heartbeatIntervalMs > 0) {
      this.heartbeatTimer = setInterval(() => {
        try {
          this.heartbeat();
        } catch (error) {
          this.report(error, { stage: 'timer' });
        }
      }, this.options.heartbeatIntervalMs);
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

  /**
   * Appends the event to the log; subscribed connections of its user receive it on the next
   * flush. An event that is not JSON is refused here (a `ValidationError`, not retryable: the
   * bridge reports it as a `DeliveryError`) and counted in `unserializableEvents`; one that
   * reaches the log some other way is skipped when written (see `onError`).
   */
  send(event: AgentEvent): Promise<void> {
    try {
      this.checkJson(event);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.transport.send(event);
  }

  /**
   * Closes every open connection of `userId` with `CloseCode.REVOKED` (4403), without writing
   * what is queued for them; the client stops (4403 is terminal). Handshakes of that user still
   * waiting for `authenticate` are refused with 401 when it answers. New connections are up to
   * your `authenticate` hook: refuse the revoked credential there. Returns the number of
   * connections closed.
   */
  revoke(userId: string, reason = 'access revoked'): number {
    if (this.pendingHandshakes > 0) this.noteRevocation(userId);
    const connections = [...this.registry.of(userId)];
    for (const connection of connections) {
      this.counters.closedRevoked++;
      connection.close(CloseCode.REVOKED, closeReason(String(reason)));
    }
    return connections.length;
  }

  private noteRevocation(userId: string): void {
    const now = Date.now();
    for (const [user, revocation] of this.revocations) {
      if (revocation.at >= now - this.options.authTimeoutMs - 1_000) break;
      this.revocations.delete(user);
    }
    // Re-inserted at the end: the map stays in order of time.
    this.revocations.delete(userId);
    this.revocations.set(userId, { seq: ++this.revocationSeq, at: now });
  }

  /** Throws the `ValidationError` of an event that is not JSON (and counts it, once per event: the bridge may offer it twice). */
  private checkJson(event: AgentEvent): void {
    try {
      eventJson(event);
    } catch (error) {
      if (typeof event !== 'object' || event === null || !this.refused.has(event)) {
        this.counters.unserializableEvents++;
        if (typeof event === 'object' && event !== null) this.refused.add(event);
      }
      throw error;
    }
  }

  /** Counts a contained failure and hands it to `onError` (whose own throw is ignored). Never throws. */
  private report(error: unknown, context: ReportedContext): void {
    if (context.stage !== 'serialize' && context.stage !== 'authenticate') this.counters.internalErrors++;
    const hook = this.options.onError;
    if (!hook) return;
    try {
      hook(error, { surface: 'websocket', ...context });
    } catch {
      // The hook's failure must not become the gateway's.
    }
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
    this.expiries.clear();
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
    this.accept(request, socket, head).catch((error: unknown) => {
      this.report(error, { stage: 'upgrade' });
      socket.destroy();
    });
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
    const revocationsBefore = this.revocationSeq;
    let outcome;
    let revoked = false;
    try {
      outcome = await authenticateUpgrade(this.options.authenticate, request, this.options.authTimeoutMs);
      revoked = outcome.ok && (this.revocations.get(outcome.principal.userId)?.seq ?? 0) > revocationsBefore;
    } finally {
      if (--this.pendingHandshakes === 0) this.revocations.clear();
    }
    if (socket.destroyed) return;
    if (!outcome.ok) {
      if (outcome.error !== undefined) this.report(outcome.error, { stage: 'authenticate' });
      if (outcome.status === 401) this.counters.rejectedUnauthorized++;
      else this.counters.rejectedUnavailable++;
      rejectUpgrade(socket, outcome.status, outcome.message);
      return;
    }
    const { principal } = outcome;
    if (revoked) {
      // Revoked while its hook was answering.
      this.counters.rejectedUnauthorized++;
      rejectUpgrade(socket, 401, 'access revoked');
      return;
    }
    if (this.closing) return this.refuse(socket, 503, 'server shutting down');
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      socket.off('error', ignoreError);
      try {
        this.open(ws, principal);
      } catch (error) {
        this.report(error, { stage: 'upgrade', userId: principal.userId });
        ws.terminate();
      }
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
  private open(ws: WebSocket, principal: WebSocketPrincipal): void {
    const { userId } = principal;
    this.openSockets++;
    const connection = new Connection(nanoid(12), userId, ws, this.context, principal.expiresAt ?? Infinity);
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
    this.expiries.add(connection);
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
    // Connection.heartbeat contains its own failures.
    for (const connection of [...this.registry.all()]) connection.heartbeat();
  }
}

/** Ids of an event for an error report (an event in the log may be anything: nothing here throws). */
function eventContext(event: unknown): Pick<ReportedContext, 'userId' | 'threadId' | 'runId' | 'eventId'> {
  const context: Pick<ReportedContext, 'userId' | 'threadId' | 'runId' | 'eventId'> = {};
  try {
    const { id, runId, threadId, userId } = (event ?? {}) as Record<string, unknown>;
    if (typeof id === 'string') context.eventId = id;
    if (typeof runId === 'string') context.runId = runId;
    if (typeof threadId === 'string') context.threadId = threadId;
    if (typeof userId === 'string') context.userId = userId;
  } catch {
    // A throwing getter: report without ids.
  }
  return context;
}
