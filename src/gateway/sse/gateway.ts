import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgentwireError, AuthError, GatewayError, StateError, ValidationError } from '../../errors/index.js';
import type { EventLog, LogEntry } from '../../transport/types.js';
import { authenticateRequest, type Principal } from '../auth.js';
import { ConnectionTracker } from '../connections.js';
import { Heartbeat } from '../heartbeat.js';
import { refusalOf } from '../endings.js';
import { callOnError, checker, given, resolveFrontEndOptions, resolveLog, resolvePath, type ErrorContext, type FrontEndOptions, type ResolvedFrontEndOptions } from '../options.js';
import { OriginPolicy } from '../origin.js';
import { fromNodeRequest, fromWebRequest, type AuthRequest } from '../request.js';
import { respondNode, respondWeb, toAgentwireError } from '../respond.js';
import { Revocations } from '../revocations.js';
import { StatsRecorder, type DisconnectReason, type GatewayStats } from '../stats.js';
import type { FollowResult } from '../follower.js';
import { parseStreamRequest } from './request.js';
import { SseSession } from './session.js';
import { NodeSseSink, WebSseSink } from './sinks.js';
import { STREAM_HEADERS } from './wire.js';
import { threadForbidden } from '../../errors/thread-forbidden.js';
import { isInstance } from '../../errors/guards.js';

export interface SseGatewayOptions extends FrontEndOptions {
  /** Where streams are read from: any `EventLog` (e.g. a `MemoryTransport`). Required. */
  log: EventLog;
  /** Request path served by `handle()` (node); other paths are left to the caller. `fetch()` serves any path. Default `'/events'`. */
  path?: string;
  /** Reconnection delay hint sent as `retry:` when a stream opens. Default 2,000 ms. */
  retryMs?: number;
  /**
   * Live events (in characters of event JSON, ≈ bytes) that may wait for a reader that does not
   * keep up. Past it the stream is cut and the client resumes with `Last-Event-ID`. The replay
   * is paced by the reader and does not count. Default 4 MiB (four of the largest events, so a
   * burst of legal events never cuts a reader that keeps up).
   */
  maxQueuedBytes?: number;
  /** The same bound in events. Default 20,000. */
  maxQueuedEvents?: number;
}

/** Defaults of the SSE gateway where the shared vocabulary leaves them to the surface. */
const SSE_DEFAULTS = { name: 'SseGateway', heartbeatIntervalMs: 15_000, closeTimeoutMs: 1_000 };

/** How one request is answered: the node and the web handler differ only here. */
interface Responder {
  /** Whether the client already went away. */
  gone(): boolean;
  refuse(error: AgentwireError, headers: Record<string, string>): void;
  preflight(status: 204, headers: Record<string, string>): void;
  stream(session: SseSession, result: FollowResult, headers: Record<string, string>): void;
}

/**
 * Server-Sent Events gateway: `GET /events?threadId=…` streams the thread's events (`id:` =
 * cursor, `event:` = type, `data:` = event JSON) to its owner, after replaying what followed the
 * `Last-Event-ID` header (or `?after=`). A cursor that cannot be honoured yields one
 * `history_gap` event and the response ends. A stream the server ends gets a final `close` event
 * (see wire.ts).
 *
 * Mount it on node with `if (!gateway.handle(req, res)) next()` or `listen(port)`; on web-standard
 * runtimes with `gateway.fetch(request)` (Next.js `export const GET = (r) => gateway.fetch(r)`,
 * Hono `app.get('/events', (c) => gateway.fetch(c.req.raw))`).
 */
export class SseGateway {
  readonly path: string;
  private readonly log: EventLog;
  private readonly options: ResolvedFrontEndOptions;
  private readonly retryMs: number;
  private readonly maxQueuedChars: number;
  private readonly maxQueuedEntries: number;
  private readonly origins: OriginPolicy;
  private readonly tracker: ConnectionTracker<SseSession>;
  private readonly recorder = new StatsRecorder();
  /** Revocations that requests still authenticating must see. */
  private readonly revocations = new Revocations();
  /** Sessions not finished yet (open, or still subscribing), for shutdown. */
  private readonly live = new Set<SseSession>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly heartbeat: Heartbeat;
  private server: Server | undefined;
  private closed = false;

  constructor(options: SseGatewayOptions) {
    // Bound, so that `export const GET = handler.fetch` (Next.js) and `app.use(handler.handle)` work.
    this.handle = this.handle.bind(this);
    this.fetch = this.fetch.bind(this);
    this.options = resolveFrontEndOptions(options, SSE_DEFAULTS);
    this.heartbeat = new Heartbeat(this.options.heartbeatIntervalMs, this.live);
    this.log = resolveLog(options.log, SSE_DEFAULTS.name);
    const check = checker(SSE_DEFAULTS.name);
    this.path = resolvePath(check, options.path, '/events');
    this.retryMs = check.integer('retryMs', given(options.retryMs, 2_000), 0);
    this.maxQueuedChars = check.integer('maxQueuedBytes', given(options.maxQueuedBytes, 4 * 1024 * 1024), 1);
    this.maxQueuedEntries = check.integer('maxQueuedEvents', given(options.maxQueuedEvents, 20_000), 1);
    this.origins = new OriginPolicy(this.options.allowedOrigins, ['GET']);
    this.tracker = new ConnectionTracker(this.options);
  }

  /**
   * The node handler: serves `req` when its path is the gateway's and returns true; returns false
   * (and touches nothing) otherwise. The response is completed asynchronously.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const request = fromNodeRequest(req);
    if (!request || request.url.pathname !== this.path) return false;
    const responder: Responder = {
      gone: () => res.destroyed || res.writableEnded,
      refuse: (error, headers) => respondNode(res, error, headers),
      preflight: (status, headers) => {
        res.writeHead(status, headers);
        res.end();
      },
      stream: (session, result, headers) => session.open(new NodeSseSink(res, session, headers), result),
    };
    this.serve(request, responder).catch((error: unknown) => this.failed(error, responder));
    return true;
  }

  /**
   * The web-standard handler `(request: Request) => Promise<Response>` (any path: the router
   * mounted it). The stream is a `ReadableStream` paced by its reader; `request.signal` ends it.
   */
  async fetch(request: Request): Promise<Response> {
    let response: Response | undefined;
    const responder: Responder = {
      gone: () => request.signal?.aborted === true,
      refuse: (error, headers) => (response = respondWeb(error, headers)),
      preflight: (status, headers) => (response = new Response(null, { status, headers })),
      stream: (session, result, headers) => {
        const sink = new WebSseSink(session, request.signal);
        response = new Response(sink.stream, { status: 200, headers: { ...STREAM_HEADERS, ...headers } });
        session.open(sink, result);
      },
    };
    await this.serve(fromWebRequest(request), responder).catch((error: unknown) => this.failed(error, responder));
    return response ?? respondWeb(new GatewayError('INTERNAL_ERROR', 'The event stream failed; retry later'));
  }

  /** Listens on its own `http.Server` (other paths get 404). Default port 0, host 127.0.0.1. */
  async listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    if (this.closed) throw new StateError('GATEWAY_CLOSED', 'SseGateway is closed');
    if (this.server) throw new StateError('ALREADY_LISTENING', 'SseGateway is already listening');
    const server = createServer((req, res) => {
      if (!this.handle(req, res)) this.refuse(res, new GatewayError('NOT_FOUND', `No route for ${req.method ?? 'GET'} ${(req.url ?? '/').slice(0, 200)}`));
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

  /** Open streams. */
  get connectionCount(): number {
    return this.tracker.size;
  }

  /** The stats of every surface (see `GatewayStats`). */
  stats(): GatewayStats {
    return this.recorder.snapshot({ open: this.tracker.size, authenticating: this.tracker.authenticatingCount, users: this.tracker.users });
  }

  /** For `agentwire/metrics`: the same snapshot. */
  metrics(): GatewayStats {
    return this.stats();
  }

  /**
   * Ends every open stream of `userId` with a final `close` event `REVOKED`; returns how many.
   * The user's requests whose `authenticate` hook is still answering are refused with 401
   * `REVOKED`. Make `authenticate` refuse the user's credentials too: EventSource reconnects by itself.
   */
  revoke(userId: string): number {
    this.revocations.revoke(userId);
    return this.tracker.revoke(userId);
  }

  /**
   * Ends every stream (a final `close` event `GATEWAY_CLOSED`; clients reconnect with
   * `Last-Event-ID` elsewhere or later), cuts those still open after `closeTimeoutMs`, stops the
   * heartbeat and, after `listen()`, closes the server. New requests get 503. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.tracker.closeAll('shutdown');
    for (const session of this.live) session.close('shutdown');
    await this.whenAllFinished(this.options.closeTimeoutMs);
    this.heartbeat.stop();
    const server = this.server;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }

  private async serve(request: AuthRequest | undefined, responder: Responder): Promise<void> {
    if (!request) return this.refuseWith(responder, new ValidationError('The request URL is malformed', { code: 'INVALID_REQUEST' }), {});
    const origin = this.origins.check(request);
    if (!origin.ok) return this.refuseWith(responder, origin.error, {});
    if (request.method === 'OPTIONS') {
      const preflight = this.origins.preflight(request);
      if (preflight.status === 403) return this.refuseWith(responder, preflight.error, {});
      return responder.preflight(204, preflight.headers);
    }
    // Refusals from here on carry the CORS headers, so a page on an allowed origin can read them.
    try {
      await this.serveStream(request, responder, origin.headers);
    } catch (error) {
      if (!isInstance(error, AgentwireError)) this.report(error, { surface: 'sse', stage: 'request' });
      if (!responder.gone()) this.refuseWith(responder, toAgentwireError(error), origin.headers);
    }
  }

  private async serveStream(request: AuthRequest, responder: Responder, cors: Record<string, string>): Promise<void> {
    if (this.closed) throw new StateError('GATEWAY_CLOSED', 'The event stream is shutting down; retry later');
    if (request.method !== 'GET') throw new GatewayError('METHOD_NOT_ALLOWED', 'Use GET', { headers: { Allow: 'GET, OPTIONS' } });
    const target = parseStreamRequest(request);

    const done = this.tracker.authenticating();
    // A revoke() of the user while the hook answers refuses the request (REVOKED) when it does.
    const watch = this.revocations.watch();
    let principal: Principal;
    try {
      principal = await authenticateRequest(this.options.authenticate, request, {
        timeoutMs: this.options.authTimeoutMs,
        report: (error) => this.report(error, { surface: 'sse', threadId: target.threadId, stage: 'authenticate' }),
      });
      watch.check(principal.userId);
    } finally {
      watch.end();
      done();
    }
    if (responder.gone()) return; // the client left during authentication
    if (this.closed) throw new StateError('GATEWAY_CLOSED', 'The event stream is shutting down; retry later');

    const { userId } = principal;
    const session = new SseSession(
      userId,
      target.threadId,
      target.after,
      { retryMs: this.retryMs, maxQueuedChars: this.maxQueuedChars, maxQueuedEntries: this.maxQueuedEntries },
      {
        finished: (finished, reason) => this.finished(finished, reason),
        poisoned: (owner, entry, error) => this.poisoned(owner, entry, error),
        isolationDrop: () => void this.recorder.isolationDrops++,
        framesSent: (count) => void (this.recorder.framesSent += count),
      },
    );
    this.tracker.admit(session, principal);
    this.live.add(session);
    this.heartbeat.start();
    let result: FollowResult;
    try {
      result = await session.subscribe(this.log);
    } catch (error) {
      if (!isInstance(error, AuthError)) this.report(error, { surface: 'sse', userId, threadId: target.threadId, stage: 'subscribe' });
      this.discard(session);
      throw error;
    }
    if (!session.isOpen || responder.gone()) {
      // Closed while subscribing (revoked, expired, replaced, shutdown) or the client left.
      const reason = session.reason ?? 'client';
      this.discard(session);
      if (reason !== 'client' && !responder.gone()) throw refusalOf(reason);
      return;
    }
    if (result.status === 'ended') {
      // The log ended the subscription while it answered (the response has not started): refused
      // with why. The thread turned out to be another user's (its first event arrived meanwhile):
      // 403 THREAD_FORBIDDEN, as a stream of it requested now; the log closed it, or more live
      // events arrived than the stream may hold: 503 SUBSCRIBE_FAILED (retry).
      this.discard(session);
      if (isInstance(result.error, AuthError)) {
        throw threadForbidden(target.threadId, result.error);
      }
      throw refusalOf(result.reason === 'overflow' ? 'slow_consumer' : 'log_closed');
    }
    responder.stream(session, result, cors);
  }

  /** Forgets a session that never opened: not counted as a disconnect. */
  private discard(session: SseSession): void {
    this.tracker.remove(session);
    this.live.delete(session);
    session.cut('error');
    session.finished();
    this.checkIdle();
  }

  private failed(error: unknown, responder: Responder): void {
    const failure = toAgentwireError(error);
    if (!isInstance(error, AgentwireError)) this.report(error, { surface: 'sse', stage: 'request' });
    if (!responder.gone()) this.refuseWith(responder, failure, {});
  }

  private refuseWith(responder: Responder, error: AgentwireError, headers: Record<string, string>): void {
    this.recorder.refused(error.code);
    responder.refuse(error, headers);
  }

  private refuse(res: ServerResponse, error: AgentwireError): void {
    this.recorder.refused(error.code);
    respondNode(res, error);
  }

  private finished(session: SseSession, reason: DisconnectReason): void {
    this.tracker.remove(session);
    if (!this.live.delete(session)) return;
    this.recorder.disconnected(reason);
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.live.size > 0) return;
    this.heartbeat.stop();
    for (const waiter of this.idleWaiters.splice(0)) waiter();
  }

  private poisoned(session: SseSession, entry: LogEntry, error: unknown): void {
    this.recorder.poisonedEvents++;
    const event = entry.event as Partial<LogEntry['event']>;
    this.report(error, {
      surface: 'sse',
      userId: session.userId,
      threadId: session.threadId,
      ...(typeof event.runId === 'string' && { runId: event.runId }),
      stage: 'serialize',
    });
  }

  /** Resolves when every session has finished; cuts stragglers after `graceMs`. */
  private async whenAllFinished(graceMs: number): Promise<void> {
    if (this.live.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      timer = setTimeout(() => {
        for (const session of this.live) session.cut('shutdown');
      }, graceMs);
    });
    clearTimeout(timer);
  }

  private report(error: unknown, context: ErrorContext): void {
    this.recorder.errors++;
    callOnError(this.options.onError, error, context);
  }
}

