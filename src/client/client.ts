import { EventEmitter } from 'eventemitter3';
import { AgentwireError, AuthError, GatewayError, HistoryGapError, TransportError, ValidationError, isErrorCode, type CodeOf } from '../errors/index.js';
import type { AgentEvent, EventOfType, EventType } from '../events/schema.js';
import type { ErrorFrame, EventFrame, HistoryGapFrame, ServerFrame } from '../protocol/frames.js';
import type { HistoryGapReason } from '../transport/types.js';
import { reconnectDelay, resolveReconnect, type ReconnectOptions } from './backoff.js';
import { EventStream } from './event-stream.js';
import { RunOrderCheck } from './order-check.js';
import { RecentSet } from './recent-set.js';
import { isAgentEvent, parseServerMessage } from './server-messages.js';
import {
  OPEN,
  resolveWebSocket,
  type CloseEventLike,
  type ErrorEventLike,
  type MessageEventLike,
  type WebSocketConstructor,
  type WebSocketLike,
} from './socket.js';

export type ClientStatus = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What the client does after a `history_gap` (it always emits `history_gap` and an `error` first). */
export type HistoryGapPolicy =
  /**
   * Subscribe again without a cursor: everything the server still retains is replayed (repeats
   * dropped by id) and the client follows live. Runs already under way are not order-checked.
   */
  | 'resubscribe'
  /** Close the client (status `closed`); the application decides what to do. */
  | 'stop';

export interface ConnectOptions {
  /** The thread to follow. */
  threadId: string;
  /** Sent as the `token` query parameter (browsers cannot set headers on a WebSocket). Default: none. */
  token?: string;
  /** Resume after this cursor (e.g. one saved from `client.cursor`). Default: replay everything retained. */
  after?: string;
  /** The WebSocket class. Default: the global one (browsers); in Node 20 pass `WebSocket` from `ws`. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect schedule, or `false` to stay closed after the first connection ends. Default: see `ReconnectOptions`. */
  reconnect?: ReconnectOptions | false;
  /** What to do after a `history_gap`. Default `'resubscribe'`. */
  onHistoryGap?: HistoryGapPolicy;
  /** Event ids remembered to drop repeats (replays after a reconnect). Default 10,000. */
  dedupeWindow?: number;
  /** Check each run's order with the `LifecycleChecker` and report violations as `error`s. Default true. */
  checkLifecycle?: boolean;
}

export interface HistoryGapInfo {
  threadId: string;
  /** The cursor the client asked to resume after. */
  requested: string;
  reason: HistoryGapReason;
  message: string;
}

export type ClientEvents = {
  /** Every new event, exactly once, in order. */
  event: (event: AgentEvent, cursor: string) => void;
  status: (status: ClientStatus) => void;
  /** Protocol errors, lifecycle violations (`LIFECYCLE_VIOLATION`), history gaps (`HISTORY_GAP`), refusals. */
  error: (error: AgentwireError) => void;
  history_gap: (gap: HistoryGapInfo) => void;
} & { [T in EventType]: (event: EventOfType<T>, cursor: string) => void };

export interface ClientStats {
  /** New events delivered to listeners. */
  received: number;
  /** Repeats dropped by id. */
  duplicates: number;
  /** Sockets opened after the first. */
  reconnects: number;
  /** Events refused because they were not of this client's user or thread (should stay 0). */
  foreign: number;
  /** Listeners that threw (reported as `LISTENER_FAILED` errors). */
  listenerErrors: number;
}

/** Close codes after which reconnecting would only repeat the problem. */
const TERMINAL_CLOSE_CODES: ReadonlyMap<number, CodeOf<'GatewayError'>> = new Map<number, CodeOf<'GatewayError'>>([
  [1003, 'UNSUPPORTED_DATA'],
  [1008, 'POLICY_VIOLATION'],
  [1009, 'MESSAGE_TOO_BIG'],
  [4029, 'TOO_MANY_CONNECTIONS'],
]);

/**
 * Follows one thread over a WebSocket: reconnects with backoff and jitter, resumes after the last
 * cursor, drops repeats by event id, checks each run's order, and surfaces anything it cannot
 * fix (history gaps, order violations, refusals) as `error` events instead of hiding it.
 * Runs in browsers and in Node; it imports no Node built-in and no server code.
 */
export class AgentwireClient extends EventEmitter<ClientEvents> implements AsyncIterable<AgentEvent> {
  readonly threadId: string;
  readonly stats: ClientStats = { received: 0, duplicates: 0, reconnects: 0, foreign: 0, listenerErrors: 0 };
  private readonly url: string;
  private readonly WebSocketClass: WebSocketConstructor;
  private readonly reconnect: Required<ReconnectOptions> | false;
  private readonly gapPolicy: HistoryGapPolicy;
  private readonly seen: RecentSet;
  private readonly order: RunOrderCheck | undefined;
  private readonly streams = new Set<EventStream<AgentEvent>>();
  private socket: WebSocketLike | undefined;
  private currentStatus: ClientStatus = 'connecting';
  private lastCursor: string | undefined;
  private userIdFromServer: string | undefined;
  /** Failed attempts in a row (reset when a subscription is confirmed). */
  private attempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private lastSocketError: string | undefined;

  constructor(url: string, options: ConnectOptions) {
    super();
    if (typeof options.threadId !== 'string' || options.threadId.length === 0) {
      throw new ValidationError('connect(): threadId is required', { field: 'threadId', code: 'INVALID_OPTION' });
    }
    this.threadId = options.threadId;
    this.url = withToken(url, options.token);
    this.WebSocketClass = resolveWebSocket(options.WebSocket);
    this.reconnect = options.reconnect === false ? false : resolveReconnect(options.reconnect);
    this.gapPolicy = options.onHistoryGap ?? 'resubscribe';
    this.seen = new RecentSet(options.dedupeWindow ?? 10_000);
    this.lastCursor = options.after;
    this.order = options.checkLifecycle === false ? undefined : new RunOrderCheck(options.after !== undefined);
    this.openSocket();
  }

  /** Cursor of the last new event received: pass it as `after` to resume elsewhere. */
  get cursor(): string | undefined {
    return this.lastCursor;
  }

  get status(): ClientStatus {
    return this.currentStatus;
  }

  /** The user the server authenticated this client as (known once connected). */
  get userId(): string | undefined {
    return this.userIdFromServer;
  }

  /** Stops for good: closes the socket, cancels reconnects, ends every `for await` loop. */
  close(): void {
    this.finish();
  }

  /** Events from now on, in order, until `close()` (or a terminal error) ends the client. */
  [Symbol.asyncIterator](): AsyncIterator<AgentEvent> {
    const stream = new EventStream<AgentEvent>((ended) => this.streams.delete(ended));
    if (this.currentStatus === 'closed') stream.end();
    else this.streams.add(stream);
    return stream;
  }

  private openSocket(): void {
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketClass(this.url);
    } catch (error) {
      this.fail(new TransportError(`cannot open a WebSocket to ${this.url}: ${messageOf(error)}`, { code: 'CONNECT_FAILED', retryable: false }));
      return;
    }
    this.socket = socket;
    this.lastSocketError = undefined;
    socket.onopen = () => {
      if (socket === this.socket) this.subscribe(this.lastCursor);
    };
    socket.onmessage = (event: MessageEventLike) => {
      if (socket === this.socket) this.onMessage(event.data);
    };
    socket.onerror = (event: ErrorEventLike) => {
      if (socket === this.socket) this.lastSocketError = event.message ?? messageOf(event.error);
    };
    socket.onclose = (event: CloseEventLike) => {
      if (socket === this.socket) this.onSocketClosed(event.code, event.reason);
    };
  }

  private subscribe(after: string | undefined): void {
    const frame = after === undefined ? { type: 'subscribe', threadId: this.threadId } : { type: 'subscribe', threadId: this.threadId, after };
    if (this.socket?.readyState === OPEN) this.socket.send(JSON.stringify(frame));
  }

  private onMessage(data: unknown): void {
    const parsed = parseServerMessage(data);
    if (!parsed.ok) {
      this.report(new TransportError(parsed.message, { code: 'PROTOCOL_ERROR', retryable: false }));
      return;
    }
    for (const frame of parsed.frames) {
      if (this.currentStatus === 'closed') return;
      this.onFrame(frame);
    }
  }

  private onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case 'hello':
        if (frame.v !== 1) {
          this.fail(new TransportError(`the server speaks protocol version ${String(frame.v)}; this client speaks 1`, { code: 'PROTOCOL_VERSION' }));
          return;
        }
        this.userIdFromServer = frame.userId;
        return;
      case 'subscribed':
        if (frame.threadId !== this.threadId) return;
        this.attempts = 0;
        this.setStatus('open');
        return;
      case 'event':
        this.onEvent(frame);
        return;
      case 'history_gap':
        if (frame.threadId === this.threadId) this.onHistoryGap(frame);
        return;
      case 'error':
        this.onServerError(frame);
        return;
      default:
        // `unsubscribed`, and frame types of newer servers: nothing to do.
        return;
    }
  }

  private onEvent(frame: EventFrame): void {
    const event: unknown = frame.event;
    if (!isAgentEvent(event) || typeof frame.cursor !== 'string') {
      this.report(new TransportError('the server sent a malformed event frame', { code: 'PROTOCOL_ERROR', retryable: false }));
      return;
    }
    const foreignUser = this.userIdFromServer !== undefined && event.userId !== this.userIdFromServer;
    if (foreignUser || frame.threadId !== this.threadId || event.threadId !== this.threadId) {
      // Defence in depth: the gateway already filters; never show such an event.
      this.stats.foreign++;
      this.report(new AuthError(`refused an event of another user or thread (event ${event.id})`, { code: 'FOREIGN_EVENT' }));
      return;
    }
    if (this.seen.has(event.id)) {
      this.stats.duplicates++;
      return;
    }
    this.seen.add(event.id);
    this.lastCursor = frame.cursor;
    this.stats.received++;
    const violation = this.order?.check(event);
    if (violation) {
      this.report(new ValidationError(violation.message, { code: 'LIFECYCLE_VIOLATION', details: { violation, eventId: event.id } }));
    }
    this.safeEmit('event', event, frame.cursor);
    this.safeEmit(event.type, event as never, frame.cursor);
    for (const stream of this.streams) stream.push(event);
  }

  private onHistoryGap(frame: HistoryGapFrame): void {
    const gap: HistoryGapInfo = { threadId: frame.threadId, requested: frame.requested, reason: frame.reason, message: frame.message };
    this.safeEmit('history_gap', gap);
    const then = this.gapPolicy === 'resubscribe' ? 'resubscribing from the oldest retained event' : 'stopping';
    this.report(new HistoryGapError(`history gap on thread "${gap.threadId}" (${gap.reason}): ${gap.message}; ${then}`, { details: { ...gap } }));
    if (this.gapPolicy === 'stop') {
      this.finish();
      return;
    }
    // Until a new event arrives there is no cursor: a reconnect also starts from the oldest retained event.
    this.lastCursor = undefined;
    if (this.order) this.order.joinedMidStream = true;
    this.subscribe(undefined);
  }

  private onServerError(frame: ErrorFrame): void {
    const message = typeof frame.message === 'string' ? frame.message : 'the server reported an error';
    // A newer server may send codes this client does not know: they are reported as SERVER_ERROR.
    const code = isErrorCode(frame.code) ? frame.code : 'SERVER_ERROR';
    if (code === 'THREAD_FORBIDDEN') {
      this.fail(new AuthError(message, { code }));
      return;
    }
    this.report(new AgentwireError(code, message, { details: { ...(frame.threadId !== undefined && { threadId: frame.threadId }), ...(code !== frame.code && { serverCode: frame.code }) } }));
    if ((code === 'SUBSCRIPTION_ENDED' || code === 'SUBSCRIBE_FAILED') && frame.threadId === this.threadId) {
      // Start over on a new connection (with backoff), resuming from the cursor.
      this.dropSocket();
      this.scheduleReconnect();
    }
  }

  private onSocketClosed(code: number, reason: string): void {
    this.socket = undefined;
    const terminal = TERMINAL_CLOSE_CODES.get(code);
    if (terminal) {
      this.fail(new GatewayError(terminal, `the server closed the connection (${code}${reason ? `: ${reason}` : ''})`));
      return;
    }
    const httpStatus = /\b(401|403)\b/.exec(this.lastSocketError ?? '');
    if (httpStatus && this.currentStatus !== 'open') {
      this.fail(new AuthError(`the server refused the connection (HTTP ${httpStatus[1]})`, { code: 'AUTH_FAILED' }));
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.currentStatus === 'closed' || this.reconnectTimer !== undefined) return;
    if (this.reconnect === false) {
      this.fail(new TransportError('the connection closed and reconnecting is disabled', { code: 'CONNECTION_LOST', retryable: false }));
      return;
    }
    this.attempts++;
    if (this.attempts > this.reconnect.maxAttempts) {
      this.fail(new TransportError(`gave up reconnecting after ${this.attempts - 1} attempts`, { code: 'RECONNECT_FAILED', retryable: false }));
      return;
    }
    this.setStatus('reconnecting');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.currentStatus === 'closed') return;
      this.stats.reconnects++;
      this.openSocket();
    }, reconnectDelay(this.attempts, this.reconnect));
  }

  /** Reports an error the client cannot recover from, then stops. */
  private fail(error: AgentwireError): void {
    this.report(error);
    this.finish();
  }

  private finish(): void {
    if (this.currentStatus === 'closed') return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.dropSocket();
    this.setStatus('closed');
    for (const stream of this.streams) stream.end();
    this.streams.clear();
  }

  private dropSocket(): void {
    const socket = this.socket;
    this.socket = undefined;
    if (socket && socket.readyState <= OPEN) socket.close(1000, 'client closed');
  }

  private setStatus(status: ClientStatus): void {
    if (status === this.currentStatus) return;
    this.currentStatus = status;
    this.safeEmit('status', status);
  }

  private report(error: AgentwireError): void {
    this.safeEmit('error', error);
  }

  /**
   * Emits without letting a throwing listener break the client: the error is counted and
   * reported as `LISTENER_FAILED` (listeners after the throwing one miss that one emission).
   */
  private safeEmit<K extends keyof ClientEvents>(name: K, ...args: Parameters<ClientEvents[K]>): void {
    try {
      (this.emit as (name: K, ...rest: Parameters<ClientEvents[K]>) => boolean)(name, ...args);
    } catch (error) {
      this.stats.listenerErrors++;
      if (name === 'error') return;
      this.report(new AgentwireError('LISTENER_FAILED', `a "${String(name)}" listener threw: ${messageOf(error)}`, { cause: error }));
    }
  }
}

/** Opens a client following `options.threadId` at `url` (e.g. `ws://host/ws`). */
export function connect(url: string, options: ConnectOptions): AgentwireClient {
  return new AgentwireClient(url, options);
}

function withToken(url: string, token: string | undefined): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ValidationError(`connect(): invalid URL ${JSON.stringify(url)}`, { field: 'url', code: 'INVALID_OPTION' });
  }
  if (token !== undefined) parsed.searchParams.set('token', token);
  return parsed.toString();
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
