import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { nanoid } from 'nanoid';
import { WebSocketServer, type WebSocket } from 'ws';
import { AuthError, GatewayError, StateError, ValidationError } from '../../errors/index.js';
import { eventJson, eventJsonUnremembered } from '../../events/json.js';
import type { AgentEvent } from '../../events/schema.js';
import { isValidThreadId } from '../../ids/thread-id.js';
import { CloseCode } from '../../protocol/constants.js';
import { MemoryTransport } from '../../transport/memory/memory-transport.js';
import type { EventLog, Transport, TransportHealth } from '../../transport/types.js';
import type { Principal } from '../auth.js';
import { ConnectionTracker } from '../connections.js';
import { callOnError, checker, given, resolveLog } from '../options.js';
import { OriginPolicy } from '../origin.js';
import { fromNodeRequest } from '../request.js';
import { Connection, GatewaySocket, closeReason, type ConnectionContext } from './connection.js';
import { ExpiryQueue } from './expiry-queue.js';
import { FlushScheduler } from './flush-scheduler.js';
import { IdleDeadlines } from './idle-deadlines.js';
import { Lingering } from './lingering.js';
import { checkServer, resolveGatewayOptions, type ReportedContext, type ResolvedGatewayOptions, type WebSocketGatewayOptions } from './options.js';
import { WebSocketStatsRecorder, type WebSocketGatewayStats } from './stats.js';
import { Handshakes, refuseUpgrade, rejectUpgrade, requestPath } from './upgrade.js';
import { agentwireCode } from '../../errors/code-of.js';

const ACCEPTED = Promise.resolve();

/** Where a gateway started by `listen()` accepts connections. */
export interface GatewayAddress {
  host: string;
  port: number;
  /** `ws://host:port/path`, ready for a client. */
  url: string;
}

/**
 * Serves agent events to WebSocket clients, on the front-end contract (`agentwire/gateway`):
 * the shared options, `authenticateRequest`, the origin policy (checked before upgrading: 403),
 * the connection limits with their overflow policy, the `Follower` for replay → live, one stats
 * shape. Attach it to an existing `http.Server` (it only takes upgrades on its `path`, so it sits
 * beside express or hono) or let it `listen()`. It is also a `Transport`: give it to an
 * `AgentBridge` and `send()` appends to its log.
 */
export class WebSocketGateway implements Transport {
  /** The log connections read and `send()` appends to. */
  readonly log: Transport & EventLog;
  readonly sendSync?: (event: AgentEvent) => void;
  /** The log when it is a plain `MemoryTransport`: `send()` hands it the JSON it made (no second lookup, nothing remembered per event). */
  private readonly memory: MemoryTransport | undefined;
  private readonly options: ResolvedGatewayOptions;
  private readonly ownsLog: boolean;
  private readonly wss: WebSocketServer;
  private readonly origins: OriginPolicy;
  private readonly tracker: ConnectionTracker<Connection>;
  private readonly handshakes: Handshakes;
  private readonly recorder = new WebSocketStatsRecorder();
  private readonly scheduler = new FlushScheduler({
    onUnserializable: (entry, error) => {
      this.recorder.poisonedEvents++;
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
    (connection) => connection.close('token_expired'),
    (error, connection) => this.report(error, { stage: 'timer', userId: connection.userId, connectionId: connection.id }),
  );
  /** Events `send()` refused as not JSON (by identity), so each is counted once. */
  private readonly refusedEvents = new WeakSet<object>();
  private readonly lingering: Lingering;
  private readonly context: ConnectionContext;
  /** Attached servers and the upgrade handler registered on each. */
  private readonly servers = new Map<Server, (request: IncomingMessage, socket: Duplex, head: Buffer) => void>();
  private ownServer: Server | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: WebSocketGatewayOptions) {
    this.options = resolveGatewayOptions(options);
    this.scheduler.coalesceUnderLoad = this.options.coalesceUnderLoad;
    // Only undefined means the default (a new MemoryTransport): a null log is refused by resolveLog.
    const supplied = given<unknown>(options.log, options.transport);
    this.ownsLog = supplied === undefined;
    this.log = supplied === undefined ? new MemoryTransport() : (resolveLog(supplied, 'WebSocketGateway') as Transport & EventLog);
    // Inline delivery from the bridge, only when the log accepts events synchronously (the in-memory one does).
    const log = this.log;
    const memory = log.constructor === MemoryTransport ? (log as MemoryTransport) : undefined;
    this.memory = memory;
    if (memory) {
      this.sendSync = (event) => {
        memory.appendSerialized(event, this.checkJson(event, false));
      };
    } else if (log.sendSync) {
      this.sendSync = (event) => {
        this.checkJson(event, true);
        log.sendSync!(event);
      };
    }
    // UTF-8 of text frames is checked by the connection (`Inbox`): closed with 1007, a reason, and counted (`invalid_utf8`).
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: this.options.maxPayload,
      skipUTF8Validation: true,
      WebSocket: GatewaySocket,
    });
    this.origins = new OriginPolicy(this.options.allowedOrigins, ['GET']);
    this.tracker = new ConnectionTracker(this.options);
    this.handshakes = new Handshakes(this.options.authenticate, this.options.authTimeoutMs);
    this.lingering = new Lingering(this.options.maxConnectionsPerUser);
    this.context = {
      options: this.options,
      log: this.log,
      scheduler: this.scheduler,
      stats: this.recorder,
      released: (connection) => {
        this.tracker.remove(connection);
        this.expiries.remove(connection);
        this.lingering.add(connection);
      },
      socketClosed: (connection) => this.lingering.closed(connection),
      report: (error, context) => this.report(error, context),
      idle: new IdleDeadlines<Connection>(this.options.subscribeTimeoutMs, (connection) => connection.idleExpired()),
    };
    if (this.options.heartbeatIntervalMs > 0) {
      const sweep = (): void => {
        try {
          // Connection.heartbeat contains its own failures.
          for (const connection of [...this.tracker.all()]) connection.heartbeat();
        } catch (error) {
          this.report(error, { stage: 'timer' });
        }
      };
      // The verdict waits for this turn's I/O: on a loop busy past the interval, pongs that have
      // arrived are read before a peer is judged silent (timers run before the poll phase).
      this.heartbeatTimer = setInterval(() => setImmediate(sweep), this.options.heartbeatIntervalMs);
      this.heartbeatTimer.unref();
    }
    if (options.server !== undefined) this.attach(options.server);
  }

  /** @deprecated The old name of `log`. */
  get transport(): Transport & EventLog {
    return this.log;
  }

  /** Handles WebSocket upgrades on `path` of this server. Other paths are left to other handlers. */
  attach(server: Server): this {
    checkServer(checker('WebSocketGateway attach()'), 'server', server);
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
   * flush. An event that is not JSON is refused here (a `ValidationError`, not retryable) and
   * counted in `poisonedEvents`; one that reaches the log some other way is skipped when written.
   */
  send(event: AgentEvent): Promise<void> {
    const memory = this.memory;
    if (memory === undefined) {
      try {
        this.checkJson(event, true);
      } catch (error) {
        return Promise.reject(error);
      }
      return this.log.send(event);
    }
    try {
      memory.appendSerialized(event, this.checkJson(event, false));
    } catch (error) {
      return Promise.reject(error);
    }
    // What MemoryTransport.send returns: one shared settled promise, no allocation per event.
    return ACCEPTED;
  }

  /**
   * Closes every open connection of `userId` with `CloseCode.REVOKED` (4403), without writing
   * what is queued for them (4403 is terminal for the client). Handshakes of that user still
   * waiting for `authenticate` are refused with 401 when it answers. New connections are up to
   * your `authenticate` hook. Returns the number of connections closed.
   */
  revoke(userId: string, reason = 'access revoked'): number {
    this.handshakes.revoke(userId);
    const connections = [...this.tracker.of(userId)];
    for (const connection of connections) connection.close('revoked', closeReason(String(reason)));
    return connections.length;
  }

  /**
   * The event's JSON (remembered with the event for the log when `remember`); throws the
   * `ValidationError` of an event that is not JSON (counted once per event: the bridge may offer it twice).
   */
  private checkJson(event: AgentEvent, remember: boolean): string {
    try {
      // The frame envelope quotes the thread id as it is (no escaping on the hot path).
      if (!isValidThreadId((event as Partial<AgentEvent> | null)?.threadId)) {
        throw new ValidationError('send() takes an event whose threadId is a thread id ([A-Za-z0-9_.:-], 1–128 characters)', { code: 'INVALID_EVENT', field: 'threadId' });
      }
      return remember ? eventJson(event) : eventJsonUnremembered(event);
    } catch (error) {
      if (typeof event !== 'object' || event === null || !this.refusedEvents.has(event)) {
        this.recorder.poisonedEvents++;
        if (typeof event === 'object' && event !== null) this.refusedEvents.add(event);
      }
      throw error;
    }
  }

  /** Counts a contained failure and hands it to `onError` (whose own throw is ignored). Never throws. */
  private report(error: unknown, context: ReportedContext): void {
    this.recorder.errors++;
    if (context.stage !== 'serialize' && context.stage !== 'authenticate') this.recorder.internalErrors++;
    callOnError(this.options.onError, error, { surface: 'websocket', ...context });
  }

  async health(): Promise<TransportHealth> {
    if (this.closing) return { ok: false, detail: 'closed' };
    const inner = (await this.log.health?.()) ?? { ok: true };
    const detail = `${this.tracker.size} connections` + (inner.detail ? `; log: ${inner.detail}` : '');
    return { ok: inner.ok, detail };
  }

  /** The contract's `GatewayStats` (read by `agentwire/metrics` as is) plus the WebSocket's gauges. Gauges are O(connections). */
  stats(): WebSocketGatewayStats {
    let subscriptions = 0;
    let queuedFrames = 0;
    let queuedBytes = 0;
    let bufferedBytes = 0;
    let maxBufferedBytes = 0;
    this.tracker.forEach((connection) => {
      subscriptions += connection.subscriptionCount;
      queuedFrames += connection.queuedFrames;
      queuedBytes += connection.queuedBytes;
      const buffered = connection.socket.bufferedAmount;
      bufferedBytes += buffered;
      if (buffered > maxBufferedBytes) maxBufferedBytes = buffered;
    });
    const r = this.recorder;
    return {
      ...r.snapshot({ open: this.tracker.size, authenticating: this.tracker.authenticatingCount, users: this.tracker.users }),
      subscriptions,
      queuedFrames,
      queuedBytes,
      bufferedBytes,
      maxBufferedBytes,
      messagesSent: r.messagesSent,
      acks: r.acks,
      acksIgnored: r.acksIgnored,
      invalidFrames: r.invalidFrames,
      subscribeFailures: r.subscribeFailures,
      internalErrors: r.internalErrors,
    };
  }

  /** The same as `stats()` (the `GatewayMetricsSource` of `agentwire/metrics`). */
  metrics(): WebSocketGatewayStats {
    return this.stats();
  }

  /**
   * Stops accepting, writes what is queued, closes every socket with 1001 and waits for them
   * (cutting those that do not answer within `closeTimeoutMs`). Closes the server it started
   * and the log it created; no timer outlives it.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const [server, handler] of this.servers) server.off('upgrade', handler);
    clearInterval(this.heartbeatTimer);
    this.expiries.clear();
    this.context.idle.clear();
    this.scheduler.flushAll();
    const sockets = [...this.tracker.all()].map((connection) => connection.socket);
    const allClosed = this.lingering.allClosed();
    this.tracker.closeAll('shutdown');
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
    if (this.ownsLog) await this.log.close();
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
    let principal: Principal;
    try {
      principal = await this.admit(request);
    } catch (error) {
      const code = agentwireCode(error);
      if (code === undefined) throw error;
      this.recorder.refused(code);
      if (!socket.destroyed) refuseUpgrade(socket, error);
      return;
    }
    if (socket.destroyed) return;
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

  /** Everything before the upgrade: shutdown, origin, capacity, authentication. Throws the refusal. */
  private async admit(request: IncomingMessage): Promise<Principal> {
    if (this.closing) throw new StateError('GATEWAY_CLOSED', 'The gateway is shutting down; retry later');
    const view = fromNodeRequest(request);
    if (!view) throw new AuthError('Authentication failed: missing or invalid credentials');
    // Cross-site WebSocket hijacking: a page of another origin riding on the user's cookies.
    const origin = this.origins.check(view);
    if (!origin.ok) throw origin.error;
    // Closing sockets count too: the bound is on sockets (file descriptors), not only on served connections.
    if (this.lingering.sockets + this.tracker.authenticatingCount >= this.options.maxConnections) {
      throw new GatewayError('SERVER_AT_CAPACITY', 'too many connections', { headers: { 'Retry-After': '5' } });
    }
    const done = this.tracker.authenticating();
    let principal: Principal;
    try {
      principal = await this.handshakes.authenticate(view, (error) => this.report(error, { stage: 'authenticate' }));
    } finally {
      done();
    }
    if (this.closing) throw new StateError('GATEWAY_CLOSED', 'The gateway is shutting down; retry later');
    return principal;
  }

  /** Registers an authenticated socket under the per-user limit and its overflow policy. */
  private open(ws: WebSocket, principal: Principal): void {
    this.lingering.opened();
    const connection = new Connection(nanoid(12), principal.userId, ws, this.context, principal.expiresAt ?? Infinity);
    try {
      // Expiry is the gateway's (one timer for all connections), so the tracker gets the user id only.
      this.tracker.admit(connection, { userId: principal.userId });
    } catch (error) {
      const code = agentwireCode(error, GatewayError);
      if (code === undefined) throw error;
      this.recorder.refused(code);
      if (code === 'TOO_MANY_CONNECTIONS') connection.end(CloseCode.TOO_MANY_CONNECTIONS, 'too many connections for this user');
      else connection.end(CloseCode.TRY_AGAIN_LATER, 'server at capacity; try again later');
      return;
    }
    this.expiries.add(connection);
    connection.start();
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
