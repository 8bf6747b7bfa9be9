import { WebSocket, type RawData } from 'ws';
import { CloseCode, PROTOCOL_VERSION, type GatewayErrorCode } from '../../protocol/constants.js';
import type { ServerFrame } from '../../protocol/frames.js';
import type { EventLog, LogEntry } from '../../transport/types.js';
import type { TrackedConnection } from '../connections.js';
import type { DisconnectReason } from '../stats.js';
import type { Expiring } from './expiry-queue.js';
import type { FlushScheduler, Flushable } from './flush-scheduler.js';
import type { IdleDeadlines, IdleWaiter } from './idle-deadlines.js';
import type { ReportedContext, ResolvedGatewayOptions } from './options.js';
import { Outbox, type DrainWaiter } from './outbox.js';
import { frameJson } from './server-frames.js';
import type { WebSocketStatsRecorder } from './stats.js';
import { Subscriptions } from './subscriptions.js';

/** What every connection shares with its gateway (one reference per connection). */
export interface ConnectionContext {
  readonly options: ResolvedGatewayOptions;
  readonly log: EventLog;
  readonly scheduler: FlushScheduler;
  readonly stats: WebSocketStatsRecorder;
  /** The connection no longer counts toward limits (it is closing or closed). Called once. */
  released(connection: Connection): void;
  /** The socket is gone. Called once. */
  socketClosed(connection: Connection): void;
  /** Reports a failure the connection contained (counted, given to `onError`). Never throws. */
  report(error: unknown, context: ReportedContext): void;
  /** The no-subscription deadlines (`subscribeTimeoutMs`) of the gateway's connections, behind one timer. */
  readonly idle: IdleDeadlines<Connection>;
}

/** The close code and default reason of each way the server ends a connection. */
const CLOSES: Partial<Record<DisconnectReason, readonly [number, string]>> = {
  user_limit: [CloseCode.TOO_MANY_CONNECTIONS, 'replaced by a newer connection of the same user'],
  revoked: [CloseCode.REVOKED, 'access revoked'],
  token_expired: [CloseCode.TOKEN_EXPIRED, 'token expired'],
  shutdown: [CloseCode.GOING_AWAY, 'server shutting down'],
  slow_consumer: [CloseCode.TRY_AGAIN_LATER, 'slow consumer: send queue full; reconnect and resume from your cursor'],
  heartbeat: [CloseCode.HEARTBEAT_TIMEOUT, 'heartbeat timeout: no pong'],
  no_subscription: [CloseCode.NO_SUBSCRIPTION, 'no subscription: subscribe to a thread after connecting'],
};

/** Closes after which nothing queued is written first: the queue is the problem, access has ended, or the server failed. */
const CLOSE_WITHOUT_FLUSH: ReadonlySet<number> = new Set([CloseCode.TRY_AGAIN_LATER, CloseCode.REVOKED, CloseCode.TOKEN_EXPIRED, CloseCode.INTERNAL_ERROR]);

type Stage = ReportedContext['stage'];

/**
 * One authenticated socket: its lifecycle (hello, heartbeat, idle timeout, close codes), its
 * client frames (the `Inbox` layer), the threads it follows (the `Subscriptions` layer: one
 * object with this one, not three) and its send queue (`Outbox`, written by the gateway's
 * per-tick flush). Everything it sends is checked against
 * its own `userId`. Nothing it runs from a socket, log or timer callback throws: a failure is
 * reported (`onError`) and costs this connection (1011), never the process or another user.
 */
export class Connection extends Subscriptions implements Flushable, Expiring, TrackedConnection, DrainWaiter, IdleWaiter {
  dirty = false;
  flushedRound = 0;
  expiryIndex = -1;
  /** Whether the peer answered the last ping. */
  private alive = true;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private readonly outbox = new Outbox();
  /** @internal `IdleWaiter`: its slot among the gateway's no-subscription deadlines while it has no subscription (-1 otherwise). */
  idleSlot = -1;

  constructor(
    readonly id: string,
    readonly userId: string,
    readonly socket: WebSocket,
    private readonly context: ConnectionContext,
    /** When the principal's credential expires (epoch ms; Infinity: never). */
    readonly expiresAt: number = Infinity,
  ) {
    super();
    // The socket hands its events to this connection itself (see `GatewaySocket`): no listener per socket.
    if (socket instanceof GatewaySocket) socket.connection = this;
    else listen(socket, this);
  }

  get options(): ResolvedGatewayOptions {
    return this.context.options;
  }
  get stats(): WebSocketStatsRecorder {
    return this.context.stats;
  }
  get log(): EventLog {
    return this.context.log;
  }
  get scheduler(): FlushScheduler {
    return this.context.scheduler;
  }
  get maxSubscriptions(): number {
    return this.context.options.maxSubscriptionsPerConnection;
  }
  get maxQueuedFrames(): number {
    return this.context.options.maxQueuedFrames;
  }
  get maxQueuedBytes(): number {
    return this.context.options.maxQueuedBytes;
  }
  get open(): boolean {
    return this.state === 'open';
  }
  get queuedFrames(): number {
    return this.outbox.size;
  }
  /** Characters of the live frames in the send queue (what `maxQueuedBytes` bounds). */
  get queuedBytes(): number {
    return this.outbox.queuedChars;
  }

  /** Greets the client (protocol version, who it is) and starts the no-subscription timer. */
  start(): void {
    this.sendFrame({ type: 'hello', v: PROTOCOL_VERSION, userId: this.userId, connectionId: this.id });
    this.armIdleTimer();
  }

  /** Heartbeat tick: closes a peer that did not answer the previous ping, pings the others. */
  heartbeat(): void {
    this.contain('timer', () => {
      if (this.state !== 'open') return;
      if (!this.alive) {
        this.close('heartbeat');
        // The peer is not answering: do not wait for its close frame.
        this.socket.terminate();
        return;
      }
      this.alive = false;
      this.socket.ping();
      // Idle since the last tick or not, an empty send queue need not keep its backing store.
      this.outbox.trim();
    });
  }

  /** Ends the connection for `reason` (counted in `disconnects`) with its close code. Never throws. */
  close(reason: DisconnectReason, text?: string): void {
    if (this.state !== 'open') return;
    const [code, defaultText] = CLOSES[reason] ?? [CloseCode.INTERNAL_ERROR, 'internal error'];
    this.context.stats.disconnected(reason);
    this.end(code, text ?? defaultText);
  }

  /**
   * Closes with `code`: the connection stops counting, following and queueing at once. Answers
   * already queued go out before the close frame (the client learns why), except for the closes
   * of `CLOSE_WITHOUT_FLUSH`. Never throws.
   */
  end(code: number, reason: string): void {
    if (this.state !== 'open') return;
    if (!CLOSE_WITHOUT_FLUSH.has(code)) this.write();
    // A flush that failed has already closed the connection (1011).
    if (this.state !== 'open') return;
    this.release();
    this.closeSocket(code, reason);
  }

  /**
   * The per-tick flush: writes queued frames while the socket has room; a socket left full with
   * more than `maxQueuedBytes` of live frames still waiting (a burst queued in one tick) is a slow
   * consumer. Never throws.
   */
  flush(): void {
    if (this.state !== 'open') return;
    this.write();
    const outbox = this.outbox;
    if (this.state === 'open' && outbox.awaitingDrain && outbox.queuedChars > this.context.options.maxQueuedBytes) this.closeSlowConsumer();
  }

  /** Writes queued frames while the socket has room (a failure closes the connection with 1011). Never throws. */
  private write(): void {
    try {
      const { batching, maxBufferedBytes } = this.context.options;
      this.outbox.write(this.socket, batching, maxBufferedBytes, this.context.scheduler, this.context.stats, this);
    } catch (error) {
      this.failed(error, 'flush');
    }
  }

  /** The callback of a message that fills the socket (made the first time one does: most connections never fill theirs). */
  private drainedCallback: (() => void) | undefined;

  /** @internal `DrainWaiter`: asked for by the send queue only when a message fills the socket. */
  onDrained(): () => void {
    return (this.drainedCallback ??= () => {
      this.contain('timer', () => {
        this.outbox.awaitingDrain = false;
        if (this.state === 'open' && this.outbox.size > 0) this.context.scheduler.markDirty(this);
      });
    });
  }

  /** Queues an event frame (or an already serialized control frame); past `maxQueuedFrames` or `maxQueuedBytes` the consumer is too slow. */
  enqueue(item: LogEntry | string): void {
    if (this.state !== 'open') return;
    const outbox = this.outbox;
    const options = this.context.options;
    if (outbox.push(item) > options.maxQueuedFrames || (outbox.queuedChars > options.maxQueuedBytes && this.pastQueuedBytes())) {
      this.closeSlowConsumer();
      return;
    }
    this.context.scheduler.markDirty(this);
  }

  /**
   * Whether the live frames queued are more than `maxQueuedBytes` past what the next flush can
   * still write into the socket (`maxBufferedBytes` less what it holds; none while it is full).
   * A reader that keeps up is never cut by a burst queued in one tick (nothing is written before
   * the tick's flush): up to `maxBufferedBytes` of it goes straight into the socket.
   */
  private pastQueuedBytes(): boolean {
    const outbox = this.outbox;
    const { maxQueuedBytes, maxBufferedBytes } = this.context.options;
    const room = outbox.awaitingDrain ? 0 : Math.max(0, maxBufferedBytes - this.socket.bufferedAmount);
    return outbox.queuedChars > maxQueuedBytes + room;
  }

  /** Queues a subscription's replay: the log's retained tail, queued whole, not counted toward `maxQueuedFrames` or `maxQueuedBytes`. */
  enqueueReplay(entries: readonly LogEntry[]): void {
    if (this.state !== 'open' || entries.length === 0) return;
    this.outbox.pushReplay(entries);
    this.context.scheduler.markDirty(this);
  }

  closeSlowConsumer(): void {
    this.close('slow_consumer');
  }

  sendFrame(frame: ServerFrame): void {
    this.enqueue(frameJson(frame));
  }

  sendError(code: GatewayErrorCode, message: string, threadId?: string): void {
    this.sendFrame(threadId === undefined ? { type: 'error', code, message } : { type: 'error', code, message, threadId });
  }

  protected subscriptionsChanged(count: number): void {
    if (count === 0) this.armIdleTimer();
    else this.clearIdleTimer();
  }

  /** @internal Its no-subscription deadline passed (`IdleDeadlines`). */
  idleExpired(): void {
    this.contain('timer', () => {
      if (this.subscriptionCount === 0) this.close('no_subscription');
    });
  }

  private armIdleTimer(): void {
    if (this.context.options.subscribeTimeoutMs <= 0 || this.state !== 'open') return;
    this.context.idle.arm(this);
  }

  private clearIdleTimer(): void {
    this.context.idle.disarm(this);
  }

  /** Stops everything this connection holds; it no longer counts toward limits. Never throws. */
  private release(): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.clearIdleTimer();
    this.closeSubscriptions();
    this.outbox.clear();
    try {
      this.context.released(this);
    } catch (error) {
      this.report(error, { stage: 'close', userId: this.userId, connectionId: this.id });
    }
  }

  /** Sends the close frame; a socket that refuses it is cut. */
  private closeSocket(code: number, reason: string): void {
    try {
      this.socket.close(code, closeReason(reason));
    } catch (error) {
      this.report(error, { stage: 'close', userId: this.userId, connectionId: this.id });
      this.socket.terminate();
    }
  }

  report(error: unknown, context: ReportedContext): void {
    this.context.report(error, context);
  }

  /** Runs `step`; a throw is reported and costs this connection (closed with 1011), nothing else. */
  contain(stage: Stage, step: () => void, threadId?: string): void {
    try {
      step();
    } catch (error) {
      this.failed(error, stage, threadId);
    }
  }

  /** Reports `error` and closes with 1011 without writing anything more. Never throws. */
  failed(error: unknown, stage: Stage, threadId?: string): void {
    this.report(error, { stage, userId: this.userId, connectionId: this.id, ...(threadId !== undefined && { threadId }) });
    if (this.state === 'open') this.context.stats.disconnected('error');
    try {
      this.release();
      this.closeSocket(CloseCode.INTERNAL_ERROR, 'internal error');
    } catch {
      this.socket.terminate();
    }
  }

  /** @internal The socket's `pong`. */
  pong(): void {
    this.alive = true;
  }

  /** @internal The socket's `error`. */
  socketError(error: Error & { code?: string }): void {
    // ws closes the socket itself after an error (1009 for frames over maxPayload, 1002 for protocol
    // errors); the UTF-8 of text frames is the gateway's own check (1007, counted as `invalid_utf8`: see `Inbox`).
    if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.context.stats.disconnected('oversized_frame');
  }

  /** @internal The socket's `close`. */
  socketClose(): void {
    this.release();
    this.state = 'closed';
    try {
      this.context.socketClosed(this);
    } catch (error) {
      this.report(error, { stage: 'close', userId: this.userId, connectionId: this.id });
    }
  }
}

/**
 * The gateway's WebSocket class (`WebSocketServer`'s `WebSocket` option): it hands `message`,
 * `pong`, `error` and `close` straight to its connection instead of through listeners, so an
 * idle socket's listener table stays as small as a bare `ws` socket's (four listeners grow it
 * by ~96 B) and the connection sits in a declared field (no property added to the socket).
 * Listeners added by others still run; without a connection it is a plain `ws` socket.
 */
export class GatewaySocket extends WebSocket {
  connection: Connection | undefined = undefined;

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const connection = this.connection;
    if (connection !== undefined) {
      switch (event) {
        case 'message':
          connection.onMessage(args[0] as RawData, args[1] as boolean);
          break;
        case 'pong':
          connection.pong();
          break;
        case 'error':
          connection.socketError(args[0] as Error & { code?: string });
          // Handled: an 'error' without listeners must not throw.
          if (this.listenerCount('error') === 0) return true;
          break;
        case 'close':
          connection.socketClose();
          break;
      }
    }
    return super.emit(event, ...args);
  }
}

/** A socket that is not a `GatewaySocket` (a test's stand-in): listeners that find the connection in a closure. */
function listen(socket: WebSocket, connection: Connection): void {
  socket.on('message', (data: RawData, isBinary: boolean) => connection.onMessage(data, isBinary));
  socket.on('pong', () => connection.pong());
  socket.on('error', (error: Error & { code?: string }) => connection.socketError(error));
  socket.on('close', () => connection.socketClose());
}

/** A close reason fits in 123 bytes of UTF-8 (ws throws on a longer one). */
export function closeReason(reason: string): string {
  if (reason.length <= 41 || Buffer.byteLength(reason) <= 123) return reason;
  let cut = reason.slice(0, 120);
  while (Buffer.byteLength(cut) > 120) cut = cut.slice(0, -1);
  // Do not leave half a surrogate pair at the end.
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}
