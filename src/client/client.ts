import { EventEmitter } from 'eventemitter3';
import { AgentwireError, AuthError, GatewayError, HistoryGapError, StateError, TransportError, ValidationError, errorFromCode, isErrorCode, type CodeOf } from '../errors/index.js';
import type { AgentEvent, AnyEventType, EventOfType, EventType } from '../events/schema.js';
import { CloseCode, PROTOCOL_VERSION } from '../protocol/constants.js';
import type { CancelAcceptedFrame, ErrorFrame, EventFrame, HelloFrame, HistoryGapFrame, ServerFrame } from '../protocol/frames.js';

/** What a cancel did (`AgentwireClient.cancel`). */
export type CancelOutcome = CancelAcceptedFrame['outcome'];
import type { HistoryGapReason } from '../transport/types.js';
import { MAX_TIMER_MS, checker, given, shown } from '../errors/options.js';
import { CURSOR_FORMAT, isValidCursor } from '../ids/cursor-format.js';
import { MAX_THREAD_ID_LENGTH, isValidThreadId } from '../ids/thread-id-format.js';
import { isValidUserId } from '../ids/user-id-format.js';
import { reconnectDelay, resolveReconnect, type ReconnectOptions } from './backoff.js';
import { EventStream } from './event-stream.js';
import { RunOrderCheck } from './order-check.js';
import { PendingReplies, type ClientAnswer } from './pending-replies.js';
import { RecentSet } from './recent-set.js';
import { isAgentEvent, parseServerMessage, retainedFieldProblem } from './server-messages.js';
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

/** A token, or a function that returns a fresh one (called before every connection attempt). */
export type TokenSource = string | (() => string | Promise<string>);

/**
 * Only `undefined` means a default: `null` or any other value an option does not take throws
 * `ValidationError` `INVALID_OPTION` naming it (`connect() option dedupeWindow must be a positive integer (got -1)`).
 */
export interface ConnectOptions {
  /** The thread to follow. */
  threadId: string;
  /**
   * The credential the gateway's `authenticate` hook checks. Default: none.
   * - A string is sent on every connection. When the server closes with `TOKEN_EXPIRED` (4401)
   *   the client stops (`AuthError` `TOKEN_EXPIRED`): the token will not get better.
   * - A function is called before every connection attempt; on 4401 the client calls it for a
   *   fresh token and reconnects, resuming after its cursor. If it throws or rejects, the attempt
   *   counts as failed (`AuthError` `AUTH_FAILED` is reported) and the client retries with backoff.
   *
   * The token never appears in an error message (nor in a URL quoted in one).
   */
  token?: TokenSource;
  /**
   * How the token travels. `'query'`: as the `token` query parameter (browsers cannot set headers on a
   * WebSocket). `'header'`: as `Authorization: Bearer <token>`, with the WebSocket class constructed as
   * `new WebSocket(url, { headers })` (the `ws` package's signature; not available in browsers).
   * Default `'query'`; `agentwire/client/node` defaults to `'header'` when it opens sockets with `ws`.
   */
  tokenIn?: 'query' | 'header';
  /** Resume after this cursor (e.g. one saved from `client.cursor`). Default: replay everything retained. */
  after?: string;
  /** The WebSocket class. Default: the global one (browsers); in Node 20 pass `WebSocket` from `ws`. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect schedule, or `false` to stay closed after the first connection ends. Default: see `ReconnectOptions`. */
  reconnect?: ReconnectOptions | false;
  /**
   * Longest wait of one connection attempt, from its start (the token function included) until the
   * gateway confirms the subscription (`subscribed`): a handshake that never completes (a
   * black-holed load balancer) or a `subscribe` never answered. Then the attempt fails: the client
   * reconnects with backoff (`maxAttempts` counts it), or with `reconnect: false` stops with
   * `CONNECT_FAILED`. 0 to 2^31 - 1 ms; 0 disables. Default 10,000.
   */
  connectTimeoutMs?: number;
  /** What to do after a `history_gap`. Default `'resubscribe'`. */
  onHistoryGap?: HistoryGapPolicy;
  /**
   * Event ids remembered to drop repeats (replays after a reconnect), a positive integer. Default
   * 10,000. An event whose ids are outside the event schema's bounds (`id` 1-64 characters) is
   * refused (`PROTOCOL_ERROR`) before it is kept, so the window is bounded in bytes too.
   */
  dedupeWindow?: number;
  /**
   * Check each run's order with the `LifecycleChecker` and report violations as `error`s, a boolean.
   * Default true. A run first seen without its `agent_started` in a replay (the retained tail may
   * begin mid-run) is left unchecked, and so is any run joined mid-way after `after` or a history gap.
   * Bounded: a run with more than 10,000 open tool calls (100,000 across runs) is reported once as
   * `LIFECYCLE_UNCHECKED` and no longer checked (its events are still delivered).
   */
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
} & { [T in AnyEventType]: (event: EventOfType<T>, cursor: string) => void };

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
  [CloseCode.UNSUPPORTED_DATA, 'UNSUPPORTED_DATA'],
  [CloseCode.INVALID_FRAME_PAYLOAD_DATA, 'INVALID_FRAME_PAYLOAD_DATA'],
  [CloseCode.POLICY_VIOLATION, 'POLICY_VIOLATION'],
  [CloseCode.MESSAGE_TOO_BIG, 'MESSAGE_TOO_BIG'],
  [CloseCode.TOO_MANY_CONNECTIONS, 'TOO_MANY_CONNECTIONS'],
]);

/** What replaces a token in messages. */
const REDACTED = '[redacted]';

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
  private readonly token: TokenSource | undefined;
  private readonly tokenIn: 'query' | 'header';
  /** The token of the current (or last) connection attempt: what `redact` removes from messages. */
  private currentToken: string | undefined;
  private readonly WebSocketClass: WebSocketConstructor;
  private readonly reconnect: Required<ReconnectOptions> | false;
  private readonly gapPolicy: HistoryGapPolicy;
  private readonly seen: RecentSet;
  private readonly order: RunOrderCheck | undefined;
  private readonly answers = new PendingReplies<string>('answer', (error) => this.redactError(error));
  private readonly cancels = new PendingReplies<CancelOutcome>('cancel', (error) => this.redactError(error));
  private readonly streams = new Set<EventStream<AgentEvent>>();
  private socket: WebSocketLike | undefined;
  private currentStatus: ClientStatus = 'connecting';
  private lastCursor: string | undefined;
  private userIdFromServer: string | undefined;
  /**
   * The user the current connection's first `hello` named: the only one whose events it may
   * deliver. Undefined until that `hello` (events before it are refused); a later `hello` does not change it.
   */
  private connectionUser: string | undefined;
  private helloSeen = false;
  /**
   * Failed attempts in a row. Reset only once a connection proved healthy: it delivered a new event,
   * or stayed subscribed for `reconnect.maxDelayMs` (see `armHealthy`). A server that confirms the
   * subscription and drops it at once does not reset the backoff nor `maxAttempts`.
   */
  private attempts = 0;
  private healthyTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly connectTimeoutMs: number;
  /** Ends the current attempt when it is not subscribed within `connectTimeoutMs`. */
  private attemptTimer: ReturnType<typeof setTimeout> | undefined;
  /** Numbers attempts, so a token that arrives after its attempt timed out is not used. */
  private attemptId = 0;
  /** `history_gap`s since the last new event: past the first, re-subscribing is paced like a reconnect. */
  private gapsInARow = 0;
  /** Why the last attempt failed, when the client knows better than "the socket closed" (quoted by RECONNECT_FAILED). */
  private lastFailure: string | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private lastSocketError: string | undefined;
  /** Whether a socket of this client ever opened: a first attempt that never did is `CONNECT_FAILED`, not a lost connection. */
  private everOpened = false;

  constructor(url: string, options: ConnectOptions) {
    super();
    const check = checker('connect()');
    if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object (got ${shown(options)})`);
    // The gateway refuses a subscribe to anything else (INVALID_FRAME), which no reconnect mends.
    if (!isValidThreadId(options.threadId)) {
      throw check.fail('threadId', `must be a thread id, 1 to ${MAX_THREAD_ID_LENGTH} characters of letters, digits and _ - . : (got ${shown(options.threadId)})`);
    }
    this.threadId = options.threadId;
    if (options.token !== undefined && typeof options.token !== 'string' && typeof options.token !== 'function') {
      throw check.fail('token', `must be a string or a function returning one (got ${shown(options.token)})`);
    }
    if (options.tokenIn !== undefined && options.tokenIn !== 'query' && options.tokenIn !== 'header') {
      throw check.fail('tokenIn', `must be "query" or "header" (got ${shown(options.tokenIn)})`);
    }
    this.token = options.token;
    this.currentToken = typeof options.token === 'string' ? options.token : undefined;
    this.tokenIn = options.tokenIn ?? 'query';
    // As for every option: only `undefined` means the default (`null`, -1, 'x' are refused, not defaulted).
    // The gateway refuses a subscribe whose cursor is anything else (INVALID_CURSOR), which no reconnect mends.
    if (options.after !== undefined && !isValidCursor(options.after)) {
      throw check.fail('after', `must be a cursor, ${CURSOR_FORMAT} (got ${shown(options.after)})`);
    }
    if (options.WebSocket !== undefined) check.fn('WebSocket', options.WebSocket);
    const gapPolicy = given<unknown>(options.onHistoryGap, 'resubscribe');
    if (gapPolicy !== 'resubscribe' && gapPolicy !== 'stop') throw check.fail('onHistoryGap', `must be "resubscribe" or "stop" (got ${shown(gapPolicy)})`);
    const dedupeWindow = check.integer('dedupeWindow', given(options.dedupeWindow, 10_000));
    this.connectTimeoutMs = check.duration('connectTimeoutMs', given(options.connectTimeoutMs, 10_000), { min: 0, max: MAX_TIMER_MS });
    const checkLifecycle = check.boolean('checkLifecycle', given(options.checkLifecycle, true));
    this.url = checkedUrl(url);
    this.WebSocketClass = resolveWebSocket(options.WebSocket);
    this.reconnect = options.reconnect === false ? false : resolveReconnect(options.reconnect);
    this.gapPolicy = gapPolicy;
    this.seen = new RecentSet(dedupeWindow);
    this.lastCursor = options.after;
    this.order = checkLifecycle ? new RunOrderCheck(options.after !== undefined) : undefined;
    this.openSocket();
    // The first status is emitted once the caller could attach a listener (right after connect()).
    queueMicrotask(() => {
      if (this.currentStatus === 'connecting') this.safeEmit('status', 'connecting');
    });
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

  /**
   * Answers a pending request of a run in this client's thread (`tool_executing.data.pending`) as
   * the connected user. Resolves with the cursor of the `user_answered` event once the gateway
   * stored it (the event itself arrives like any other); rejects with the refusal's code
   * (`ANSWER_FORBIDDEN`, `ANSWER_ALREADY_GIVEN`, `REQUEST_CLOSED`, …), or `CONNECTION_LOST` when
   * the socket is not open or closes first (answer again: a repeat is refused, never applied twice).
   */
  answer(answer: ClientAnswer): Promise<string> {
    const socket = this.socket;
    if (!socket || socket.readyState !== OPEN) {
      return Promise.reject(new TransportError('not connected: answer once the client is open', { code: 'CONNECTION_LOST' }));
    }
    const confirmed = this.answers.add(answer.requestId);
    socket.send(JSON.stringify({ type: 'answer', threadId: this.threadId, ...answer }));
    return confirmed;
  }

  /**
   * Asks the gateway to cancel a run of the connected user, wherever it runs (the gateway's
   * `cancelRun` hook). Resolves with `requested`, `cancelled` (it was queued) or
   * `already_finished`; the run's `agent_completed` arrives like any other event. Rejects with the
   * refusal's code (`THREAD_FORBIDDEN`, `RUN_NOT_FOUND`, `UNAVAILABLE`), or `CONNECTION_LOST`.
   */
  cancel(runId: string): Promise<CancelOutcome> {
    const socket = this.socket;
    if (!socket || socket.readyState !== OPEN) {
      return Promise.reject(new TransportError('not connected: cancel once the client is open', { code: 'CONNECTION_LOST' }));
    }
    const confirmed = this.cancels.add(runId);
    socket.send(JSON.stringify({ type: 'cancel', runId }));
    return confirmed;
  }

  /** Events from now on, in order, until `close()` (or a terminal error) ends the client. */
  [Symbol.asyncIterator](): AsyncIterator<AgentEvent> {
    const stream = new EventStream<AgentEvent>((ended) => this.streams.delete(ended));
    if (this.currentStatus === 'closed') stream.end();
    else this.streams.add(stream);
    return stream;
  }

  /**
   * Starts a connection attempt: gets the token (calling the token function, if that is what was
   * given), then opens the socket. Nothing is reported synchronously: this runs from the
   * constructor, before the application can have attached an `error` listener, so failures are
   * reported on a later tick.
   */
  private openSocket(): void {
    const attempt = ++this.attemptId;
    this.startAttemptTimer();
    const source = this.token;
    if (typeof source !== 'function') {
      this.openSocketWith(source);
      return;
    }
    let token: string | Promise<string>;
    try {
      token = source();
    } catch (error) {
      this.later(() => this.tokenFailed(error));
      return;
    }
    if (typeof token === 'string') {
      this.openSocketWith(token);
      return;
    }
    Promise.resolve(token).then(
      (fresh) => {
        if (this.currentStatus === 'closed' || attempt !== this.attemptId) return;
        if (typeof fresh !== 'string') this.tokenFailed(new TypeError(`the token function resolved to ${typeof fresh}, not a string`));
        else this.openSocketWith(fresh);
      },
      (error: unknown) => {
        if (this.currentStatus !== 'closed' && attempt === this.attemptId) this.tokenFailed(error);
      },
    );
  }

  /** The token function threw or rejected: that attempt failed; try again with backoff. */
  private tokenFailed(error: unknown): void {
    if (this.currentStatus === 'closed') return;
    this.clearAttemptTimer();
    this.report(new AuthError(`the token function failed: ${messageOf(error)}`, { code: 'AUTH_FAILED' }));
    this.scheduleReconnect();
  }

  private openSocketWith(token: string | undefined): void {
    this.currentToken = token;
    let socket: WebSocketLike;
    try {
      if (this.tokenIn === 'header' && token !== undefined) {
        const withHeaders = this.WebSocketClass as unknown as new (url: string, options: { headers: Record<string, string> }) => WebSocketLike;
        socket = new withHeaders(this.url, { headers: { Authorization: `Bearer ${token}` } });
      } else {
        socket = new this.WebSocketClass(withToken(this.url, token));
      }
    } catch (error) {
      const message = `cannot open a WebSocket to ${redactUrl(this.url)}: ${messageOf(error)}`;
      this.later(() => this.fail(new TransportError(message, { code: 'CONNECT_FAILED', retryable: false })));
      return;
    }
    this.socket = socket;
    this.lastSocketError = undefined;
    this.helloSeen = false;
    this.connectionUser = undefined;
    this.lastFailure = undefined;
    socket.onopen = () => {
      if (socket !== this.socket) return;
      this.everOpened = true;
      this.subscribe(this.lastCursor);
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
        this.onHello(frame);
        return;
      case 'subscribed':
        if (frame.threadId !== this.threadId) return;
        // The replay's events come next: runs first seen in it may have begun before it (see RunOrderCheck).
        this.order?.subscribed(frame.replayed);
        this.clearAttemptTimer();
        this.armHealthy();
        this.setStatus('open');
        return;
      case 'event':
        this.onEvent(frame);
        return;
      case 'history_gap':
        if (frame.threadId === this.threadId) this.onHistoryGap(frame);
        return;
      case 'error':
        if (this.answers.refuse(frame.requestId, frame) || this.cancels.refuse(frame.runId, frame)) return;
        this.onServerError(frame);
        return;
      case 'answered':
        // A confirmation whose cursor fails the cursor rule is not handed out as a resume point.
        if (!isValidCursor(frame.cursor)) {
          const refused = new TransportError(`the server confirmed an answer with a cursor that is not ${CURSOR_FORMAT}`, { code: 'PROTOCOL_ERROR', retryable: false });
          if (!this.answers.reject(frame.requestId, refused)) this.report(refused);
          return;
        }
        this.answers.resolve(frame.requestId, frame.cursor);
        return;
      case 'cancel_accepted':
        this.cancels.resolve(frame.runId, frame.outcome);
        return;
      default:
        // `unsubscribed`, and frame types of newer servers: nothing to do.
        return;
    }
  }

  /**
   * Only the first `hello` of a connection counts: it names the user whose events the connection
   * may deliver. A later one is a `PROTOCOL_ERROR` and changes nothing; a first one without a user
   * id is a `PROTOCOL_ERROR` that fails the attempt (the connection is dropped and retried with
   * backoff: no event could be checked on it).
   */
  private onHello(frame: HelloFrame): void {
    if (this.helloSeen) {
      this.report(new TransportError('the server sent a second hello on one connection (ignored: the first one names the user)', { code: 'PROTOCOL_ERROR', retryable: false }));
      return;
    }
    this.helloSeen = true;
    if (frame.v !== PROTOCOL_VERSION) {
      this.fail(new TransportError(`the server speaks protocol version ${String(frame.v)}; this client speaks ${PROTOCOL_VERSION}`, { code: 'PROTOCOL_VERSION' }));
      return;
    }
    if (!isValidUserId(frame.userId)) {
      this.report(new TransportError('the server sent a hello without a valid userId (connection dropped)', { code: 'PROTOCOL_ERROR', retryable: false }));
      this.dropSocket();
      this.scheduleReconnect();
      return;
    }
    this.connectionUser = frame.userId;
    this.userIdFromServer = frame.userId;
  }

  private onEvent(frame: EventFrame): void {
    const replayed = frame.threadId === this.threadId && this.order !== undefined && this.order.frameArrived();
    const event: unknown = frame.event;
    if (!isAgentEvent(event) || typeof frame.cursor !== 'string') {
      this.report(new TransportError('the server sent a malformed event frame', { code: 'PROTOCOL_ERROR', retryable: false }));
      return;
    }
    // Ids outside the schema's bounds are refused before anything keeps them (dedupe, order check).
    const problem = retainedFieldProblem(event);
    if (problem !== undefined) {
      this.report(new TransportError(`the server sent an event whose ${problem} is outside the event schema (event dropped)`, { code: 'PROTOCOL_ERROR', retryable: false }));
      return;
    }
    // The cursor becomes `client.cursor` and the next resume's `after`: it must pass the rule every
    // side uses (else the gateway would refuse the resume, and connect({ after }) would too). The
    // event is dropped with its frame, like any malformed frame: delivered without its position, a
    // saved `client.cursor` would replay it to the next client. Not remembered as seen either, so
    // the same event with a valid cursor (after a reconnect) is still delivered.
    if (!isValidCursor(frame.cursor)) {
      this.report(new TransportError(`the server sent an event frame whose cursor is not ${CURSOR_FORMAT} (event dropped)`, { code: 'PROTOCOL_ERROR', retryable: false }));
      return;
    }
    if (this.connectionUser === undefined) {
      // `hello` is the first frame: before it, nobody said whose events this connection carries.
      this.report(new TransportError(`the server sent an event before hello (event dropped)`, { code: 'PROTOCOL_ERROR', retryable: false }));
      return;
    }
    if (event.userId !== this.connectionUser || frame.threadId !== this.threadId || event.threadId !== this.threadId) {
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
    this.connectionHealthy();
    this.gapsInARow = 0;
    this.lastCursor = frame.cursor;
    this.stats.received++;
    const checked = this.order?.check(event, replayed);
    if (checked?.violation) {
      const { violation } = checked;
      this.report(new ValidationError(violation.message, { code: 'LIFECYCLE_VIOLATION', details: { violation, eventId: event.id } }));
    } else if (checked?.stopped) {
      const { runId, openTools, message } = checked.stopped;
      this.report(new ValidationError(message, { code: 'LIFECYCLE_UNCHECKED', details: { runId, openTools, eventId: event.id } }));
    }
    this.safeEmit('event', event, frame.cursor);
    this.safeEmit(event.type, event as never, frame.cursor);
    for (const stream of this.streams) stream.push(event);
  }

  private onHistoryGap(frame: HistoryGapFrame): void {
    // What the server wrote is redacted like any message: a server (or proxy) echoing the token does not pass it on.
    const gap: HistoryGapInfo = {
      threadId: frame.threadId,
      requested: this.redactValue(frame.requested) as string,
      reason: this.redactValue(frame.reason) as HistoryGapReason,
      message: this.redactValue(frame.message) as string,
    };
    this.safeEmit('history_gap', gap);
    // The first gap since the last new event is the normal one (the cursor is gone): re-subscribe
    // at once, without a cursor. A subscribe without a cursor has nothing to honour, so a gap again
    // (before any new event) means a broken or hostile server: that attempt failed, and the next
    // one is a new connection after the backoff delay (maxAttempts counts it), never a tight loop.
    const repeated = this.gapPolicy === 'resubscribe' && ++this.gapsInARow > 1;
    const then = this.gapPolicy === 'stop' ? 'stopping' : repeated ? `${this.gapsInARow} in a row, ${this.reconnect === false ? 'stopping' : 'reconnecting with backoff'}` : 'resubscribing from the oldest retained event';
    this.report(new HistoryGapError(`history gap on thread "${gap.threadId}" (${gap.reason}): ${gap.message}; ${then}`, { details: { ...gap } }));
    if (this.gapPolicy === 'stop' || this.currentStatus === 'closed') {
      this.finish();
      return;
    }
    // Until a new event arrives there is no cursor: a reconnect also starts from the oldest retained event.
    this.lastCursor = undefined;
    if (this.order) this.order.joinedMidStream = true;
    if (!repeated) {
      this.subscribe(undefined);
      return;
    }
    const failure = `the server answered ${this.gapsInARow} subscribes in a row with history_gap`;
    if (this.reconnect === false) {
      this.fail(new TransportError(`${failure} (reconnecting is disabled)`, { code: 'RECONNECT_FAILED', retryable: false }));
      return;
    }
    this.dropSocket();
    this.lastFailure = failure;
    this.scheduleReconnect();
  }

  private onServerError(frame: ErrorFrame): void {
    const message = typeof frame.message === 'string' ? frame.message : 'the server reported an error';
    // A newer server may send codes this client does not know: they are reported as SERVER_ERROR.
    const code = isErrorCode(frame.code) ? frame.code : 'SERVER_ERROR';
    if (code === 'THREAD_FORBIDDEN') {
      this.fail(new AuthError(message, { code }));
      return;
    }
    this.report(errorFromCode(code, message, { details: { ...(frame.threadId !== undefined && { threadId: frame.threadId }), ...(code !== frame.code && { serverCode: frame.code }) } }));
    if ((code === 'SUBSCRIPTION_ENDED' || code === 'SUBSCRIBE_FAILED') && frame.threadId === this.threadId) {
      // Start over on a new connection (with backoff), resuming from the cursor.
      this.dropSocket();
      this.scheduleReconnect();
    }
  }

  private onSocketClosed(code: number, reason: string): void {
    this.detachSocket();
    const closedWith = `the server closed the connection (${code}${reason ? `: ${reason}` : ''})`;
    if (code === CloseCode.REVOKED) {
      this.fail(new AuthError(closedWith, { code: 'REVOKED' }));
      return;
    }
    if (code === CloseCode.TOKEN_EXPIRED) {
      // With a token function, a fresh token resumes the stream; a fixed token stays expired.
      if (typeof this.token === 'function') this.scheduleReconnect();
      else this.fail(new AuthError(closedWith, { code: 'TOKEN_EXPIRED' }));
      return;
    }
    const terminal = TERMINAL_CLOSE_CODES.get(code);
    if (terminal) {
      this.fail(new GatewayError(terminal, closedWith));
      return;
    }
    const httpStatus = /\b(401|403)\b/.exec(this.lastSocketError ?? '');
    if (httpStatus && this.currentStatus !== 'open') {
      this.fail(new AuthError(`the server refused the connection (HTTP ${httpStatus[1]})`, { code: 'AUTH_FAILED' }));
      return;
    }
    this.scheduleReconnect();
  }

  private startAttemptTimer(): void {
    this.clearAttemptTimer();
    if (this.connectTimeoutMs === 0) return;
    this.attemptTimer = setTimeout(() => {
      this.attemptTimer = undefined;
      if (this.currentStatus !== 'closed') this.attemptTimedOut();
    }, this.connectTimeoutMs);
  }

  private clearAttemptTimer(): void {
    clearTimeout(this.attemptTimer);
    this.attemptTimer = undefined;
  }

  /** No `subscribed` within `connectTimeoutMs`: the attempt failed (a token still coming is not used). */
  private attemptTimedOut(): void {
    const opened = this.socket !== undefined && this.socket.readyState === OPEN;
    const failure = opened ? `no subscription within ${this.connectTimeoutMs} ms` : `no open connection within ${this.connectTimeoutMs} ms`;
    this.attemptId++;
    this.dropSocket();
    if (this.reconnect === false) {
      this.fail(new TransportError(`could not connect to ${redactUrl(this.url)}: ${failure} (connectTimeoutMs; reconnecting is disabled)`, { code: 'CONNECT_FAILED', retryable: false }));
      return;
    }
    this.lastFailure = `${failure} (connectTimeoutMs)`;
    this.scheduleReconnect();
  }

  /**
   * A subscription was confirmed: the connection counts as a success (the attempts in a row are
   * reset) once it delivers a new event, or once it stayed up for `maxDelayMs`, the longest
   * backoff delay. So a flapping server is reconnected to no faster than the backoff allows, and
   * `maxAttempts` ends it.
   */
  private armHealthy(): void {
    this.disarmHealthy();
    if (this.reconnect === false || this.attempts === 0) return;
    this.healthyTimer = setTimeout(() => this.connectionHealthy(), this.reconnect.maxDelayMs);
  }

  private connectionHealthy(): void {
    this.disarmHealthy();
    this.attempts = 0;
  }

  /** The connection ended before it proved healthy: its attempt stays counted. */
  private disarmHealthy(): void {
    clearTimeout(this.healthyTimer);
    this.healthyTimer = undefined;
  }

  private scheduleReconnect(): void {
    if (this.currentStatus === 'closed' || this.reconnectTimer !== undefined) return;
    if (this.reconnect === false) {
      if (this.everOpened) this.fail(new TransportError('the connection closed and reconnecting is disabled', { code: 'CONNECTION_LOST', retryable: false }));
      else {
        const cause = this.lastSocketError ? `: ${this.lastSocketError}` : '';
        this.fail(new TransportError(`could not connect to ${redactUrl(this.url)}${cause} (reconnecting is disabled)`, { code: 'CONNECT_FAILED', retryable: false }));
      }
      return;
    }
    this.attempts++;
    if (this.attempts > this.reconnect.maxAttempts) {
      const last = this.lastFailure === undefined ? '' : ` (the last: ${this.lastFailure})`;
      this.fail(new TransportError(`gave up reconnecting after ${this.attempts - 1} attempts${last}`, { code: 'RECONNECT_FAILED', retryable: false }));
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
    this.clearAttemptTimer();
    this.attemptId++;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.dropSocket();
    this.setStatus('closed');
    for (const stream of this.streams) stream.end();
    this.streams.clear();
  }

  private dropSocket(): void {
    const socket = this.detachSocket();
    if (socket && socket.readyState <= OPEN) socket.close(CloseCode.NORMAL_CLOSURE, 'client closed');
  }

  /** Forgets the current socket (closed by the server, or about to be by `dropSocket`): its timers stop, its pending answers and cancels fail. */
  private detachSocket(): WebSocketLike | undefined {
    const socket = this.socket;
    this.socket = undefined;
    this.disarmHealthy();
    this.clearAttemptTimer();
    this.answers.failAll();
    this.cancels.failAll();
    return socket;
  }

  private setStatus(status: ClientStatus): void {
    if (status === this.currentStatus) return;
    this.currentStatus = status;
    this.safeEmit('status', status);
  }

  private report(error: AgentwireError): void {
    this.safeEmit('error', this.redactError(error));
  }

  /**
   * Whatever produced an error (a socket error, a server frame, a token function), the token does
   * not leave in it: not in its message, its stack, nor any string of its `details`.
   */
  private redactError(error: AgentwireError): AgentwireError {
    error.message = this.redact(error.message);
    if (error.stack) error.stack = this.redact(error.stack);
    if (error.details !== undefined) (error as { details: unknown }).details = this.redactValue(error.details);
    return error;
  }

  /** `value` with every string in it (nested in plain objects and arrays) redacted; anything else as it is. */
  private redactValue(value: unknown, depth = 0): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (depth >= 8 || typeof value !== 'object' || value === null) return value;
    if (Array.isArray(value)) return value.map((item) => this.redactValue(item, depth + 1));
    const prototype = Object.getPrototypeOf(value) as unknown;
    if (prototype !== Object.prototype && prototype !== null) return value;
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) copy[key] = this.redactValue(item, depth + 1);
    return copy;
  }

  /** `text` without the current token, nor any `token=` query parameter. */
  private redact(text: string): string {
    let redacted = redactUrl(text);
    const token = this.currentToken;
    // Very short tokens are not replaced as text (that would mangle every message); they still never get in via URLs.
    if (token !== undefined && token.length >= 4) {
      redacted = redacted.split(token).join(REDACTED);
      const encoded = encodeURIComponent(token);
      if (encoded !== token) redacted = redacted.split(encoded).join(REDACTED);
    }
    return redacted;
  }

  /** Runs `report` on a later tick, unless the client is closed by then. */
  private later(report: () => void): void {
    setTimeout(() => {
      if (this.currentStatus !== 'closed') report();
    }, 0);
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
      this.report(new StateError('LISTENER_FAILED', `a "${String(name)}" listener threw: ${messageOf(error)}`, { cause: error }));
    }
  }
}

/** Opens a client following `options.threadId` at `url` (e.g. `ws://host/ws`). */
export function connect(url: string, options: ConnectOptions): AgentwireClient {
  return new AgentwireClient(url, options);
}

/** The URL, normalized; throws `ValidationError` (with any token in it redacted) when it is not one. */
function checkedUrl(url: string): string {
  try {
    return new URL(url).toString();
  } catch {
    throw new ValidationError(`connect(): invalid URL ${JSON.stringify(redactUrl(String(url)))}`, { field: 'url', code: 'INVALID_OPTION' });
  }
}

function withToken(url: string, token: string | undefined): string {
  if (token === undefined) return url;
  const parsed = new URL(url);
  parsed.searchParams.set('token', token);
  return parsed.toString();
}

/** Replaces the value of every `token=` parameter in `text` (URLs quoted in messages). */
export function redactUrl(text: string): string {
  return text.replace(/([?&#;]token=)[^&#\s"'<>]*/gi, `$1${REDACTED}`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
