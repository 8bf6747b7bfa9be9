import type { RawData, WebSocket } from 'ws';
import { AgentwireError, AuthError } from '../../errors/index.js';
import { CloseCode, PROTOCOL_VERSION, type GatewayErrorCode } from '../../protocol/constants.js';
import type { ClientFrame, ServerFrame } from '../../protocol/frames.js';
import type { EventLog, LogEntry, LogListener, SubscribeResult, Subscription } from '../types.js';
import { parseClientFrame } from './client-frames.js';
import { answerFrame } from './answer-frame.js';
import type { Expiring } from './expiry-queue.js';
import type { FlushScheduler, Flushable } from './flush-scheduler.js';
import type { ReportedContext, ResolvedGatewayOptions } from './options.js';
import { frameJson, outgoingJson, type Outgoing } from './server-frames.js';
import type { GatewayCounters } from './stats.js';
import { TokenBucket } from './token-bucket.js';

/** What every connection shares with its gateway (one reference per connection). */
export interface ConnectionContext {
  readonly options: ResolvedGatewayOptions;
  readonly log: EventLog;
  readonly scheduler: FlushScheduler;
  readonly counters: GatewayCounters;
  /** The connection no longer counts toward limits (it is closing or closed). Called once. */
  released(connection: Connection): void;
  /** The socket is gone. Called once. */
  socketClosed(connection: Connection): void;
  /** Reports a failure the connection contained (counted, given to `onError`). Never throws. */
  report(error: unknown, context: ReportedContext): void;
}

/** One followed thread. `early` buffers live entries that arrive before the log's answer. */
interface ThreadSubscription {
  readonly threadId: string;
  early: LogEntry[] | undefined;
  handle: Subscription | undefined;
}

/** Largest WebSocket message a batch grows to (in UTF-16 code units); more frames go in the next one. */
const MAX_BATCH_CHARS = 256 * 1024;

/**
 * Closes after which nothing queued is written first: a slow consumer (its queue is what is too
 * long), a revoked or expired credential (its access has ended), an internal failure.
 */
const CLOSE_WITHOUT_FLUSH: ReadonlySet<number> = new Set([CloseCode.TRY_AGAIN_LATER, CloseCode.REVOKED, CloseCode.TOKEN_EXPIRED, CloseCode.INTERNAL_ERROR]);

type Stage = ReportedContext['stage'];

/**
 * One authenticated socket: parses and answers client frames, follows threads in the event log,
 * and queues frames that the gateway's per-tick flush writes, batched and paced by the socket's
 * buffer. Everything it sends is checked against its own `userId`.
 *
 * Nothing it runs from a socket callback, a log callback or a timer throws: a failure is reported
 * (`onError`) and costs this connection (closed with 1011), never the process or another user.
 */
export class Connection implements Flushable, Expiring {
  dirty = false;
  expiryIndex = -1;
  /** Whether the peer answered the last ping. */
  private alive = true;
  private state: 'open' | 'closing' | 'closed' = 'open';
  /**
   * Set when the connection is cut for what its client sent (4008, 1008): no further frame is
   * read, the frames before the cut are still answered, then it closes.
   */
  private cutting = false;
  private readonly subscriptions = new Map<string, ThreadSubscription>();
  private queue: Outgoing[] = [];
  private queueHead = 0;
  /** A message was sent with a drain callback; nothing more is written until it fires. */
  private awaitingDrain = false;
  private invalidFrames = 0;
  /** Set while a frame's handling awaits the log: later frames wait their turn, so answers keep the order of requests. */
  private busy: Promise<void> | undefined;
  private readonly bucket: TokenBucket;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    readonly userId: string,
    readonly socket: WebSocket,
    private readonly context: ConnectionContext,
    /** When the principal's credential expires (epoch ms; Infinity: never). */
    readonly expiresAt: number = Infinity,
  ) {
    const { rateLimit } = context.options;
    this.bucket = new TokenBucket(rateLimit.framesPerSecond, rateLimit.burst, Date.now());
    socket.on('message', this.onMessage);
    socket.on('pong', this.onPong);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  get queuedFrames(): number {
    return this.queue.length - this.queueHead;
  }

  /** Greets the client (protocol version, who it is) and starts the no-subscription timer. */
  start(): void {
    this.send({ type: 'hello', v: PROTOCOL_VERSION, userId: this.userId, connectionId: this.id });
    this.armIdleTimer();
  }

  /** Heartbeat tick: closes a peer that did not answer the previous ping, pings the others. */
  heartbeat(): void {
    this.contain('timer', () => {
      if (this.state !== 'open') return;
      if (!this.alive) {
        this.context.counters.closedHeartbeat++;
        this.close(CloseCode.HEARTBEAT_TIMEOUT, 'heartbeat timeout: no pong');
        // The peer is not answering: do not wait for its close frame.
        this.socket.terminate();
        return;
      }
      this.alive = false;
      this.socket.ping();
    });
  }

  /**
   * Closes the connection: it stops counting, following threads and queueing at once. Answers
   * already queued (e.g. the `error` frames for the invalid frames that led to a 1008) go out
   * before the close frame, so the client learns why; not for the closes of `CLOSE_WITHOUT_FLUSH`.
   * Never throws.
   */
  close(code: number, reason: string): void {
    if (this.state !== 'open') return;
    if (!CLOSE_WITHOUT_FLUSH.has(code)) this.flush();
    // A flush that failed has already closed the connection (1011).
    if (this.state !== 'open') return;
    this.release();
    this.closeSocket(code, reason);
  }

  /** Gateway shutdown: writes what is queued, then closes with 1001. */
  shutdown(): void {
    this.close(CloseCode.GOING_AWAY, 'server shutting down');
  }

  /** Writes queued frames: batched into one message per `MAX_BATCH_CHARS`, while the socket has room. Never throws. */
  flush(): void {
    if (this.state !== 'open') return;
    try {
      this.write();
    } catch (error) {
      this.failed(error, 'flush');
    }
  }

  private write(): void {
    const { batching, maxBufferedBytes } = this.context.options;
    // Every message of this flush goes to the kernel in one write (`cork` … `uncork`) instead of
    // one `writev` per message: the messages and their frames on the wire are unchanged. With
    // batching off that turns the ten messages a busy connection gets per tick into one system
    // call, which is what a profile of the fan-out shows the time going to.
    const stream = transportStream(this.socket);
    stream?.cork();
    try {
      while (this.queueHead < this.queue.length && !this.awaitingDrain) {
        const message = batching ? this.takeBatch() : this.takeOne();
        // Everything left was skipped (events that are not JSON).
        if (message === undefined) break;
        this.context.counters.messagesSent++;
        if (this.socket.bufferedAmount + message.length >= maxBufferedBytes) {
          // The socket is full: this message's callback tells us when it has drained.
          this.awaitingDrain = true;
          this.socket.send(message, this.onDrained);
        } else {
          this.socket.send(message);
        }
      }
    } finally {
      stream?.uncork();
    }
    this.compactQueue();
  }

  private readonly onDrained = (): void => {
    this.contain('timer', () => {
      this.awaitingDrain = false;
      if (this.state === 'open' && this.queuedFrames > 0) this.context.scheduler.markDirty(this);
    });
  };

  /** JSON of the item at the head of the queue, skipping (and dropping) items whose event is not JSON. */
  private peek(): string | undefined {
    while (this.queueHead < this.queue.length) {
      const json = outgoingJson(this.queue[this.queueHead]!, this.context.scheduler);
      if (json !== undefined) return json;
      this.queueHead++;
    }
    return undefined;
  }

  private takeOne(): string | undefined {
    const json = this.peek();
    if (json === undefined) return undefined;
    this.queueHead++;
    this.context.counters.framesSent++;
    return json;
  }

  private takeBatch(): string | undefined {
    const first = this.takeOne();
    if (first === undefined || this.queueHead >= this.queue.length) return first;
    const parts = [first];
    let size = first.length;
    while (size < MAX_BATCH_CHARS) {
      const json = this.peek();
      if (json === undefined || size + json.length > MAX_BATCH_CHARS) break;
      this.queueHead++;
      this.context.counters.framesSent++;
      parts.push(json);
      size += json.length + 1;
    }
    return parts.length === 1 ? first : `[${parts.join(',')}]`;
  }

  private compactQueue(): void {
    if (this.queueHead >= this.queue.length) {
      // Drop a large backing array after a burst so an idle connection stays small.
      if (this.queue.length > 1024) this.queue = [];
      else this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private enqueue(item: Outgoing): void {
    if (this.state !== 'open') return;
    this.queue.push(item);
    if (this.queuedFrames > this.context.options.maxQueuedFrames) {
      this.closeSlowConsumer();
      return;
    }
    this.context.scheduler.markDirty(this);
  }

  private closeSlowConsumer(): void {
    this.context.counters.closedSlowConsumer++;
    this.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer: send queue full; reconnect and resume from your cursor');
  }

  private send(frame: ServerFrame): void {
    this.enqueue(frameJson(frame));
  }

  private sendError(code: GatewayErrorCode, message: string, threadId?: string): void {
    this.send(threadId === undefined ? { type: 'error', code, message } : { type: 'error', code, message, threadId });
  }

  private readonly onMessage = (data: RawData, isBinary: boolean): void => {
    this.contain('message', () => {
      if (this.state !== 'open' || this.cutting) return;
      if (!this.bucket.take(Date.now())) {
        this.context.counters.closedRateLimited++;
        this.cut(CloseCode.RATE_LIMITED, 'rate limited: too many frames');
        return;
      }
      if (isBinary) {
        this.rejectFrame('BINARY_NOT_SUPPORTED', 'binary frames are not supported: send JSON text frames');
        return;
      }
      const parsed = parseClientFrame(rawText(data));
      if (parsed.ok) {
        const { frame } = parsed;
        this.inTurn(() => this.process(frame));
      } else {
        this.rejectFrame(parsed.code, parsed.message);
      }
    });
  };

  /** Answers an invalid frame with an `error` frame (in turn with the other answers); past `maxInvalidFrames` closes with 1008. */
  private rejectFrame(code: GatewayErrorCode, message: string): void {
    this.context.counters.invalidFrames++;
    if (++this.invalidFrames > this.context.options.maxInvalidFrames) {
      this.context.counters.closedInvalidFrames++;
      this.cut(CloseCode.POLICY_VIOLATION, 'too many invalid frames');
      return;
    }
    this.inTurn(() => this.sendError(code, message));
  }

  /**
   * Cuts the connection for what its client sent. Frames read before the cut are answered first
   * (a subscribe still waiting for the log gets its `subscribed` and replay, as far as the socket's
   * buffer takes them), then the close frame follows; frames after it are not read. If the log
   * does not answer within `closeTimeoutMs`, the connection closes without those answers.
   */
  private cut(code: number, reason: string): void {
    this.cutting = true;
    if (this.busy === undefined) {
      this.close(code, reason);
      return;
    }
    const deadline = setTimeout(() => this.contain('timer', () => this.close(code, reason)), this.context.options.closeTimeoutMs);
    deadline.unref();
    this.inTurn(() => {
      clearTimeout(deadline);
      this.close(code, reason);
    });
  }

  /**
   * Runs `step` once the frames before it have been answered (now, when none is pending). Never
   * throws and never leaves a rejected promise behind: a failure is reported and costs this
   * connection (1011).
   */
  private inTurn(step: () => Promise<void> | void): void {
    const run = (): Promise<void> | void => (this.state === 'open' ? step() : undefined);
    let pending: Promise<void> | void;
    try {
      pending = this.busy ? this.busy.then(run) : run();
    } catch (error) {
      this.failed(error, 'message');
      return;
    }
    if (!pending) return;
    const settle = (): void => {
      if (this.busy === tracked) this.busy = undefined;
    };
    const tracked: Promise<void> = pending.then(settle, (error: unknown) => {
      settle();
      this.failed(error, 'message');
    });
    this.busy = tracked;
  }

  private process(frame: ClientFrame): Promise<void> | undefined {
    switch (frame.type) {
      case 'subscribe':
        return this.subscribe(frame.threadId, frame.after);
      case 'unsubscribe':
        this.unsubscribe(frame.threadId);
        return undefined;
      case 'ack':
        this.ack(frame.threadId);
        return undefined;
      case 'answer':
        return answerFrame(this.context.log, this.userId, frame).then((reply) => this.send(reply));
    }
  }

  /**
   * Follows a thread: `subscribed`, then the replay, then live entries, in that order. The log
   * registers the listener and computes the replay atomically; live entries that reach the
   * listener before its answer is handled wait in `early` and go out after the replay.
   */
  private async subscribe(threadId: string, after: string | undefined): Promise<void> {
    if (this.subscriptions.has(threadId)) {
      this.sendError('ALREADY_SUBSCRIBED', `already subscribed to thread "${threadId}"`, threadId);
      return;
    }
    if (this.subscriptions.size >= this.context.options.maxSubscriptionsPerConnection) {
      this.sendError(
        'TOO_MANY_SUBSCRIPTIONS',
        `at most ${this.context.options.maxSubscriptionsPerConnection} subscriptions per connection`,
        threadId,
      );
      return;
    }
    const subscription: ThreadSubscription = { threadId, early: [], handle: undefined };
    this.subscriptions.set(threadId, subscription);
    this.clearIdleTimer();
    const listener: LogListener = {
      onEntries: (entries) => this.contain('deliver', () => this.onLive(subscription, entries), threadId),
      onClose: () => this.contain('deliver', () => this.endSubscription(subscription), threadId),
    };

    let result: SubscribeResult;
    try {
      result = await this.context.log.subscribe({ userId: this.userId, threadId, after }, listener);
    } catch (error) {
      this.context.counters.subscribeFailures++;
      this.forget(subscription);
      if (error instanceof AuthError) {
        this.sendError('THREAD_FORBIDDEN', `thread "${threadId}" belongs to another user`, threadId);
      } else {
        const reason = error instanceof AgentwireError ? error.message : 'the event log failed';
        this.sendError('SUBSCRIBE_FAILED', `could not subscribe to thread "${threadId}": ${reason}`, threadId);
      }
      return;
    }
    try {
      this.subscribed(subscription, result);
    } catch (error) {
      // The log answered with something that is not a SubscribeResult (it broke its contract).
      this.context.counters.subscribeFailures++;
      closeQuietly(subscription.handle ?? (result as { subscription?: Subscription } | undefined)?.subscription);
      this.forget(subscription);
      this.context.report(error, { stage: 'message', userId: this.userId, connectionId: this.id, threadId });
      this.sendError('SUBSCRIBE_FAILED', `could not subscribe to thread "${threadId}": the event log failed`, threadId);
    }
  }

  private subscribed(subscription: ThreadSubscription, result: SubscribeResult): void {
    const { threadId } = subscription;
    if (this.subscriptions.get(threadId) !== subscription) {
      // Unsubscribed or closed while the log was answering.
      if (result.status === 'subscribed') closeQuietly(result.subscription);
      return;
    }
    if (result.status === 'history_gap') {
      this.forget(subscription);
      const { gap } = result;
      this.send({ type: 'history_gap', threadId, requested: gap.requested, reason: gap.reason, message: gap.message });
      return;
    }
    subscription.handle = result.subscription;
    // `replayed` counts what follows: events of this user and thread, and JSON (others are skipped for everyone).
    const replay = result.replay.filter((entry) => this.owns(entry, threadId) && this.context.scheduler.eventJson(entry) !== undefined);
    this.send({ type: 'subscribed', threadId, cursor: result.cursor, replayed: replay.length });
    for (const entry of replay) this.enqueue(entry);
    const early = subscription.early ?? [];
    subscription.early = undefined;
    if (early.length > 0) this.deliver(subscription, withoutReplayed(early, replay));
  }

  /** Live entries from the log: held until the subscription's replay is queued, then queued. */
  private onLive(subscription: ThreadSubscription, entries: readonly LogEntry[]): void {
    const early = subscription.early;
    if (!early) {
      this.deliver(subscription, entries);
      return;
    }
    for (const entry of entries) early.push(entry);
    // Held entries count toward the connection's bound like queued ones.
    if (early.length + this.queuedFrames > this.context.options.maxQueuedFrames) this.closeSlowConsumer();
  }

  private unsubscribe(threadId: string): void {
    const subscription = this.subscriptions.get(threadId);
    if (!subscription) {
      this.notSubscribed(threadId);
      return;
    }
    closeQuietly(subscription.handle);
    this.forget(subscription);
    this.send({ type: 'unsubscribed', threadId });
  }

  /**
   * Acks are never answered (metrics only). One for a thread this connection follows is counted;
   * any other (an unknown thread, another user's) is ignored and counted as `acksIgnored`: it
   * touches no state and, unanswered, reveals nothing.
   */
  private ack(threadId: string): void {
    if (this.subscriptions.has(threadId)) this.context.counters.acks++;
    else this.context.counters.acksIgnored++;
  }

  /**
   * The answer to an `unsubscribe` of a thread this connection does not follow: the same whether
   * the thread is unknown, the user's own, or another user's. The log is not asked, so the
   * answer reveals nothing about other users' threads.
   */
  private notSubscribed(threadId: string): void {
    this.sendError('NOT_SUBSCRIBED', `not subscribed to thread "${threadId}"`, threadId);
  }

  /** The log ended a subscription (closed, evicted): tell the client, which resumes from its cursor. */
  private endSubscription(subscription: ThreadSubscription): void {
    if (this.subscriptions.get(subscription.threadId) !== subscription) return;
    this.forget(subscription);
    this.sendError('SUBSCRIPTION_ENDED', `the event log ended the subscription to thread "${subscription.threadId}"`, subscription.threadId);
  }

  private forget(subscription: ThreadSubscription): void {
    if (this.subscriptions.get(subscription.threadId) === subscription) this.subscriptions.delete(subscription.threadId);
    if (this.subscriptions.size === 0) this.armIdleTimer();
  }

  /** Queues live entries, each checked against this connection's user and thread. */
  private deliver(subscription: ThreadSubscription, entries: readonly LogEntry[]): void {
    for (const entry of entries) {
      if (this.owns(entry, subscription.threadId)) this.enqueue(entry);
    }
  }

  private owns(entry: LogEntry, threadId: string): boolean {
    const event = (entry as LogEntry | undefined)?.event;
    if (event?.userId === this.userId && event.threadId === threadId) return true;
    this.context.counters.isolationDrops++;
    return false;
  }

  private armIdleTimer(): void {
    const timeoutMs = this.context.options.subscribeTimeoutMs;
    if (timeoutMs <= 0 || this.state !== 'open' || this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.contain('timer', () => {
        if (this.subscriptions.size > 0) return;
        this.context.counters.closedNoSubscription++;
        this.close(CloseCode.NO_SUBSCRIPTION, 'no subscription: subscribe to a thread after connecting');
      });
    }, timeoutMs);
    this.idleTimer.unref();
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** Stops everything this connection holds; it no longer counts toward limits. Never throws. */
  private release(): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.clearIdleTimer();
    for (const subscription of this.subscriptions.values()) closeQuietly(subscription.handle);
    this.subscriptions.clear();
    this.queue = [];
    this.queueHead = 0;
    try {
      this.context.released(this);
    } catch (error) {
      this.context.report(error, { stage: 'close', userId: this.userId, connectionId: this.id });
    }
  }

  /** Sends the close frame; a socket that refuses it is cut. */
  private closeSocket(code: number, reason: string): void {
    try {
      this.socket.close(code, closeReason(reason));
    } catch (error) {
      this.context.report(error, { stage: 'close', userId: this.userId, connectionId: this.id });
      this.socket.terminate();
    }
  }

  /** Runs `step`; a throw is reported and costs this connection (closed with 1011), nothing else. */
  private contain(stage: Stage, step: () => void, threadId?: string): void {
    try {
      step();
    } catch (error) {
      this.failed(error, stage, threadId);
    }
  }

  /** Reports `error` and closes with 1011 without writing anything more. Never throws. */
  private failed(error: unknown, stage: Stage, threadId?: string): void {
    this.context.report(error, { stage, userId: this.userId, connectionId: this.id, ...(threadId !== undefined && { threadId }) });
    if (this.state === 'open') this.context.counters.closedInternalError++;
    try {
      this.release();
      this.closeSocket(CloseCode.INTERNAL_ERROR, 'internal error');
    } catch {
      this.socket.terminate();
    }
  }

  private readonly onPong = (): void => {
    this.alive = true;
  };

  private readonly onError = (error: Error & { code?: string }): void => {
    // ws closes the socket itself after an error (1009 for frames over maxPayload, 1002/1007 for protocol errors).
    if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.context.counters.oversizedFrames++;
  };

  private readonly onClose = (): void => {
    this.release();
    this.state = 'closed';
    try {
      this.context.socketClosed(this);
    } catch (error) {
      this.context.report(error, { stage: 'close', userId: this.userId, connectionId: this.id });
    }
  };
}

/** Closes a log subscription; a log that throws doing so is not this connection's problem. */
function closeQuietly(subscription: Subscription | undefined): void {
  try {
    subscription?.close();
  } catch {
    // Nothing to do: the subscription is forgotten either way.
  }
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

/**
 * The TCP socket under a `ws` WebSocket (`ws` keeps it in `_socket` and has no public cork), or
 * undefined if this `ws` version does not expose it; then writes are simply not coalesced.
 */
function transportStream(socket: WebSocket): { cork(): void; uncork(): void } | undefined {
  const stream = (socket as unknown as { _socket?: { cork?: unknown; uncork?: unknown } })._socket;
  return stream && typeof stream.cork === 'function' && typeof stream.uncork === 'function'
    ? (stream as { cork(): void; uncork(): void })
    : undefined;
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/** Live entries that the replay already contained (only possible with a log that is not atomic). */
function withoutReplayed(early: LogEntry[], replay: LogEntry[]): LogEntry[] {
  if (replay.length === 0) return early;
  const replayed = new Set(replay.map((entry) => entry.event.id));
  return early.filter((entry) => !replayed.has(entry.event.id));
}
