import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AuthError, StateError } from '../../errors/index.js';
import type { Authenticate, Principal } from '../../protocol/auth.js';
import type { EventLog } from '../types.js';
import { requestUrl, respondError } from '../../protocol/http.js';
import { isProblem, parseStreamRequest } from './http.js';
import { SseConnection, type SseCloseReason } from './sse-connection.js';

export interface SseGatewayOptions {
  /** Where streams are read from: any `EventLog` (e.g. a `MemoryTransport`). Required. */
  log: EventLog;
  /**
   * Authenticates every request before anything else; null or a thrown error refuses it with
   * 401. The token usually comes from `tokenFrom(req)`: `Authorization: Bearer …` or `?token=`
   * (EventSource cannot set headers). Required.
   */
  authenticate: Authenticate;
  /** Request path served by `handle()`; other paths are left to the caller. Default `'/events'`. */
  path?: string;
  /** Interval of `: heartbeat` comments on every open stream; 0 disables them. Default 15,000 ms. */
  heartbeatMs?: number;
  /** Reconnection delay hint sent as `retry:` when a stream opens. Default 2,000 ms. */
  retryMs?: number;
  /** Open streams per user; one more is refused with 429. Default 3. */
  maxConnectionsPerUser?: number;
  /** Open streams in total (including requests being authenticated); past it 429. Default 10,000. */
  maxConnections?: number;
  /**
   * Live events (in characters of serialized text, ≈ bytes) that may wait for a socket that
   * pushes back. Past it the response is cut and the client resumes with `Last-Event-ID`.
   * The replay itself is paced by `drain` and does not count. Default 1 MiB.
   */
  maxBufferedBytes?: number;
  /** How long `authenticate` may take before the request is refused with 503. Default 10,000 ms. */
  authTimeoutMs?: number;
  /** How long `close()` waits for ended streams to flush before destroying them. Default 1,000 ms. */
  closeGraceMs?: number;
  /** Errors of the auth hook, the log or a connection. Default: ignored (they are counted in `stats()`). */
  onError?: (error: unknown, context: { userId?: string; threadId?: string }) => void;
}

const TIMED_OUT = Symbol('timed out');

function isPrincipal(value: unknown): value is Principal {
  const userId: unknown = (value as Principal | null)?.userId;
  return typeof userId === 'string' && userId.length > 0 && userId.length <= 256;
}

/** Why a request was refused before its stream opened. */
interface Refusal {
  status: number;
  code: string;
  message: string;
}

export interface SseGatewayStats {
  /** Open streams. */
  connections: number;
  /** Users with at least one open stream. */
  users: number;
  /** Events written to streams, since the gateway was created. */
  eventsWritten: number;
  /** Streams cut because their client did not keep up. */
  slowConsumerCuts: number;
  /** Events of another user withheld from a stream (the log should make this 0). */
  isolationDrops: number;
  /** Requests answered with an HTTP error (4xx/5xx). */
  refused: number;
  /** Errors reported through `onError`. */
  errors: number;
}

/**
 * Server-Sent Events gateway over `node:http`: `GET /events?threadId=…` streams the thread's
 * events (`id:` = cursor, `event:` = type, `data:` = event JSON) to its owner, after replaying
 * what followed the `Last-Event-ID` header (or `?after=`). A cursor that cannot be honoured
 * yields one `history_gap` event and the response ends.
 *
 * Mount it beside any router with `if (!gateway.handle(req, res)) next()`, or `listen(port)`.
 */
export class SseGateway {
  readonly path: string;
  private readonly log: EventLog;
  private readonly authenticate: Authenticate;
  private readonly heartbeatMs: number;
  private readonly retryMs: number;
  private readonly maxConnectionsPerUser: number;
  private readonly maxConnections: number;
  private readonly maxBufferedBytes: number;
  private readonly closeGraceMs: number;
  private readonly authTimeoutMs: number;
  private readonly onError: SseGatewayOptions['onError'];
  private readonly connections = new Set<SseConnection>();
  private readonly perUser = new Map<string, number>();
  private authenticating = 0;
  private readonly idleWaiters: Array<() => void> = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private server: Server | undefined;
  private closed = false;
  private readonly counters = { eventsWritten: 0, slowConsumerCuts: 0, isolationDrops: 0, refused: 0, errors: 0 };

  constructor(options: SseGatewayOptions) {
    this.log = options.log;
    this.authenticate = options.authenticate;
    this.path = options.path ?? '/events';
    this.heartbeatMs = options.heartbeatMs ?? 15_000;
    this.retryMs = options.retryMs ?? 2_000;
    this.maxConnectionsPerUser = options.maxConnectionsPerUser ?? 3;
    this.maxConnections = options.maxConnections ?? 10_000;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
    this.closeGraceMs = options.closeGraceMs ?? 1_000;
    this.authTimeoutMs = options.authTimeoutMs ?? 10_000;
    this.onError = options.onError;
  }

  /**
   * Serves `req` when its path is the gateway's; returns false (and touches nothing) otherwise.
   * The response is completed asynchronously.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = requestUrl(req);
    if (!url || url.pathname !== this.path) return false;
    this.serve(req, res, url).catch((error: unknown) => {
      this.report(error, {});
      if (res.headersSent) res.destroy();
      else this.refuse(res, 500, 'INTERNAL_ERROR', 'the event stream failed; retry later');
    });
    return true;
  }

  /** Listens on its own `http.Server` (other paths get 404). Default port 0, host 127.0.0.1. */
  async listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    if (this.closed) throw new StateError('GATEWAY_CLOSED', 'SseGateway is closed');
    if (this.server) throw new StateError('ALREADY_LISTENING', 'SseGateway is already listening');
    const server = createServer((req, res) => {
      if (!this.handle(req, res)) this.refuse(res, 404, 'NOT_FOUND', `no route for ${req.method ?? 'GET'} ${req.url ?? '/'}`);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  stats(): SseGatewayStats {
    let eventsWritten = this.counters.eventsWritten;
    for (const connection of this.connections) eventsWritten += connection.eventsWritten;
    return { ...this.counters, eventsWritten, connections: this.connections.size, users: this.perUser.size };
  }

  /**
   * Ends every stream (clients reconnect with `Last-Event-ID` elsewhere or later), stops the
   * heartbeat and, after `listen()`, closes the server. New requests get 503. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const connection of this.connections) connection.shutdown();
    await this.whenAllClosed(this.closeGraceMs);
    this.stopHeartbeat();
    const server = this.server;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }

  private async serve(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (this.closed) return this.refuse(res, 503, 'GATEWAY_CLOSED', 'the event stream is shutting down; retry later');
    if (req.method !== 'GET') return this.refuse(res, 405, 'METHOD_NOT_ALLOWED', 'use GET', { Allow: 'GET' });
    const request = parseStreamRequest(req, url);
    if (isProblem(request)) return this.refuse(res, request.status, request.code, request.message);
    if (this.connections.size + this.authenticating >= this.maxConnections) return this.refuseAtCapacity(res);

    const auth = await this.authenticateRequest(req, request.threadId);
    if ('refusal' in auth) return this.refuse(res, auth.refusal.status, auth.refusal.code, auth.refusal.message);
    const { userId } = auth.principal;
    if (res.destroyed || res.writableEnded) return; // the client left during authentication
    if (this.closed) return this.refuse(res, 503, 'GATEWAY_CLOSED', 'the event stream is shutting down; retry later');
    if ((this.perUser.get(userId) ?? 0) >= this.maxConnectionsPerUser) {
      return this.refuse(res, 429, 'TOO_MANY_CONNECTIONS', `at most ${this.maxConnectionsPerUser} open streams per user`, {
        'Retry-After': '5',
      });
    }
    if (this.connections.size >= this.maxConnections) return this.refuseAtCapacity(res);

    const connection = this.open(res, userId, request.threadId);
    let result;
    try {
      result = await this.log.subscribe({ userId, threadId: request.threadId, after: request.after }, connection);
    } catch (error) {
      if (error instanceof AuthError) {
        this.counters.refused++;
        return connection.refuse(403, error.code, error.message);
      }
      this.report(error, { userId, threadId: request.threadId });
      this.counters.refused++;
      return connection.refuse(503, 'SUBSCRIBE_FAILED', 'could not subscribe to the thread; retry later');
    }
    connection.attach(result);
  }

  private async authenticateRequest(req: IncomingMessage, threadId: string): Promise<{ principal: Principal } | { refusal: Refusal }> {
    this.authenticating++;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), this.authTimeoutMs);
      timer.unref();
    });
    try {
      const principal = await Promise.race([this.authenticate(req), timeout]);
      if (principal === TIMED_OUT) {
        return { refusal: { status: 503, code: 'AUTH_TIMEOUT', message: 'authentication took too long; retry later' } };
      }
      if (isPrincipal(principal)) return { principal };
      return { refusal: { status: 401, code: 'AUTH_FAILED', message: 'missing or invalid token' } };
    } catch (error) {
      if (error instanceof AuthError) return { refusal: { status: 401, code: error.code, message: error.message } };
      this.report(error, { threadId });
      return { refusal: { status: 401, code: 'AUTH_FAILED', message: 'authentication failed' } };
    } finally {
      clearTimeout(timer);
      this.authenticating--;
    }
  }

  private open(res: ServerResponse, userId: string, threadId: string): SseConnection {
    const connection = new SseConnection(
      res,
      userId,
      threadId,
      { maxBufferedBytes: this.maxBufferedBytes, retryMs: this.retryMs },
      {
        closed: (closing) => this.remove(closing),
        isolationDrop: () => void this.counters.isolationDrops++,
        slowConsumer: () => void this.counters.slowConsumerCuts++,
        error: (error, failing) => this.report(error, { userId: failing.userId, threadId: failing.threadId }),
      },
    );
    this.connections.add(connection);
    this.perUser.set(userId, (this.perUser.get(userId) ?? 0) + 1);
    this.startHeartbeat();
    return connection;
  }

  private remove(connection: SseConnection): void {
    if (!this.connections.delete(connection)) return;
    this.counters.eventsWritten += connection.eventsWritten;
    const count = (this.perUser.get(connection.userId) ?? 1) - 1;
    if (count > 0) this.perUser.set(connection.userId, count);
    else this.perUser.delete(connection.userId);
    if (this.connections.size === 0) {
      this.stopHeartbeat();
      for (const waiter of this.idleWaiters.splice(0)) waiter();
    }
  }

  /** Resolves when every connection has closed; destroys stragglers after `graceMs`. */
  private async whenAllClosed(graceMs: number): Promise<void> {
    if (this.connections.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      timer = setTimeout(() => {
        for (const connection of this.connections) connection.destroy();
      }, graceMs);
    });
    clearTimeout(timer);
  }

  private startHeartbeat(): void {
    if (this.heartbeatTimer || this.heartbeatMs <= 0) return;
    this.heartbeatTimer = setInterval(() => {
      for (const connection of this.connections) connection.heartbeat();
    }, this.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private refuseAtCapacity(res: ServerResponse): void {
    this.refuse(res, 429, 'SERVER_AT_CAPACITY', `the server has reached ${this.maxConnections} open streams`, {
      'Retry-After': '5',
    });
  }

  private refuse(res: ServerResponse, status: number, code: string, message: string, headers?: Record<string, string>): void {
    this.counters.refused++;
    respondError(res, status, code, message, headers);
  }

  private report(error: unknown, context: { userId?: string; threadId?: string }): void {
    this.counters.errors++;
    try {
      this.onError?.(error, context);
    } catch {
      // A throwing error hook must not take the gateway down.
    }
  }
}

export type { SseCloseReason };
