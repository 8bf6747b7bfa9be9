import type { RawData } from 'ws';
import { CloseCode, type GatewayErrorCode } from '../../protocol/constants.js';
import type { ClientFrame, ServerFrame } from '../../protocol/frames.js';
import type { EventLog } from '../../transport/types.js';
import { answerFrame } from './answer-frame.js';
import { cancelFrame } from './cancel-frame.js';
import { parseClientFrame } from './client-frames.js';
import type { ReportedContext, ResolvedGatewayOptions } from './options.js';
import type { WebSocketStatsRecorder } from './stats.js';
import type { Subscriptions } from './subscriptions.js';

/** What a connection lends the handling of its client's frames. */
export interface InboxHost {
  readonly options: ResolvedGatewayOptions;
  /** The log the connection reads; answers go to it as `userId`. */
  readonly log: EventLog;
  readonly userId: string;
  readonly stats: WebSocketStatsRecorder;
  readonly subscriptions: Subscriptions;
  /** Whether the connection still serves (not closing or closed). */
  readonly open: boolean;
  end(code: number, reason: string): void;
  sendFrame(frame: ServerFrame): void;
  sendError(code: GatewayErrorCode, message: string, threadId?: string): void;
  contain(stage: ReportedContext['stage'], step: () => void): void;
  failed(error: unknown, stage: ReportedContext['stage']): void;
}

/**
 * A connection's client frames: rate limit, parsing, answers in the order of the requests (a
 * subscribe waiting for the log holds the frames after it), invalid frames tolerated up to
 * `maxInvalidFrames`, and the cut (4008, 1008) after the answers to what came before it.
 */
export class Inbox {
  /** Set when the connection is cut for what its client sent: no further frame is read. */
  private cutting = false;
  private invalidFrames = 0;
  /** Set while a frame's handling awaits the log: later frames wait their turn. */
  private busy: Promise<void> | undefined;
  /**
   * The rate limit's token bucket, inline (two numbers instead of an object per connection):
   * `rateLimit.burst` tokens, refilled at `rateLimit.framesPerSecond`.
   */
  private tokens: number;
  private refilledAt: number;

  constructor(private readonly host: InboxHost) {
    this.tokens = host.options.rateLimit.burst;
    this.refilledAt = Date.now();
  }

  /** Takes one token from the bucket; false when it is empty. */
  private takeToken(now: number): boolean {
    const elapsedMs = now - this.refilledAt;
    if (elapsedMs > 0) {
      const { framesPerSecond, burst } = this.host.options.rateLimit;
      this.tokens = Math.min(burst, this.tokens + (elapsedMs * framesPerSecond) / 1000);
      this.refilledAt = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** A client frame (the socket's `message` listener calls it). */
  onMessage(data: RawData, isBinary: boolean): void {
    this.host.contain('message', () => {
      if (!this.host.open || this.cutting) return;
      if (!this.takeToken(Date.now())) {
        this.cut(CloseCode.RATE_LIMITED, 'rate limited: too many frames', 'rate_limited');
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
  }

  /** Answers an invalid frame with an `error` frame (in turn with the other answers); past `maxInvalidFrames` closes with 1008. */
  private rejectFrame(code: GatewayErrorCode, message: string): void {
    this.host.stats.invalidFrames++;
    if (++this.invalidFrames > this.host.options.maxInvalidFrames) {
      this.cut(CloseCode.POLICY_VIOLATION, 'too many invalid frames', 'invalid_frames');
      return;
    }
    this.inTurn(() => this.host.sendError(code, message));
  }

  /**
   * Cuts the connection for what its client sent. Frames read before the cut are answered first
   * (a subscribe still waiting for the log gets its `subscribed` and replay), then the close
   * frame follows. If the log does not answer within `closeTimeoutMs`, it closes without them.
   */
  private cut(code: number, reason: string, why: 'rate_limited' | 'invalid_frames'): void {
    this.cutting = true;
    this.host.stats.disconnected(why);
    if (this.busy === undefined) {
      this.host.end(code, reason);
      return;
    }
    const deadline = setTimeout(() => this.host.contain('timer', () => this.host.end(code, reason)), this.host.options.closeTimeoutMs);
    deadline.unref();
    this.inTurn(() => {
      clearTimeout(deadline);
      this.host.end(code, reason);
    });
  }

  /**
   * Runs `step` once the frames before it have been answered (now, when none is pending). Never
   * throws and never leaves a rejected promise behind: a failure costs the connection (1011).
   */
  private inTurn(step: () => Promise<void> | void): void {
    const run = (): Promise<void> | void => (this.host.open ? step() : undefined);
    let pending: Promise<void> | void;
    try {
      pending = this.busy ? this.busy.then(run) : run();
    } catch (error) {
      this.host.failed(error, 'message');
      return;
    }
    if (!pending) return;
    const settle = (): void => {
      if (this.busy === tracked) this.busy = undefined;
    };
    const tracked: Promise<void> = pending.then(settle, (error: unknown) => {
      settle();
      this.host.failed(error, 'message');
    });
    this.busy = tracked;
  }

  private process(frame: ClientFrame): Promise<void> | undefined {
    const { subscriptions } = this.host;
    switch (frame.type) {
      case 'subscribe':
        return subscriptions.subscribe(frame.threadId, frame.after);
      case 'unsubscribe':
        // Answered the same whether the thread is unknown, the user's own, or another user's: the log is not asked.
        if (subscriptions.unsubscribe(frame.threadId)) this.host.sendFrame({ type: 'unsubscribed', threadId: frame.threadId });
        else this.host.sendError('NOT_SUBSCRIBED', `not subscribed to thread "${frame.threadId}"`, frame.threadId);
        return undefined;
      case 'ack':
        // Never answered (metrics only); one for a thread not followed touches nothing and reveals nothing.
        if (subscriptions.has(frame.threadId)) this.host.stats.acks++;
        else this.host.stats.acksIgnored++;
        return undefined;
      case 'answer':
        // As the connection's own user (the frame cannot name another); the log checks the owner and "once".
        return answerFrame(this.host.log, this.host.userId, frame).then((reply) => this.host.sendFrame(reply));
      case 'cancel':
        return cancelFrame(this.host.options.cancelRun, this.host.userId, frame.runId).then((reply) => this.host.sendFrame(reply));
    }
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
