import { isUtf8 } from 'node:buffer';
import type { RawData } from 'ws';
import { CloseCode, type GatewayErrorCode } from '../../protocol/constants.js';
import type { ClientFrame, ServerFrame } from '../../protocol/frames.js';
import type { EventLog } from '../../transport/types.js';
import { answerFrame } from './answer-frame.js';
import { cancelFrame } from './cancel-frame.js';
import { parseClientFrame } from './client-frames.js';
import type { ReportedContext, ResolvedGatewayOptions } from './options.js';
import type { WebSocketStatsRecorder } from './stats.js';

/** Origin of the rate limit's clock (see `Inbox.fullAt`). */
const CLOCK_ORIGIN = Date.now();

/**
 * A connection's client frames: rate limit, parsing, answers in the order of the requests (a
 * subscribe waiting for the log holds the frames after it), invalid frames tolerated up to
 * `maxInvalidFrames`, and the cut (4008, 1008, 1007 for a text frame that is not UTF-8) after
 * the answers to what came before it.
 *
 * The first layer of `Connection` (`Inbox` ← `Subscriptions` ← `Connection`: one object per
 * connection, each layer in its own module); what it needs of the connection is abstract here.
 */
export abstract class Inbox {
  /** Set when the connection is cut for what its client sent: no further frame is read. */
  private cutting = false;
  private invalidFrames = 0;
  /** Set while a frame's handling awaits the log: later frames wait their turn. */
  private busy: Promise<void> | undefined;
  /**
   * The rate limit: a token bucket of `rateLimit.burst` tokens refilled at
   * `rateLimit.framesPerSecond`, kept as one number (GCRA): when the bucket is full again, in ms
   * after `CLOCK_ORIGIN` (a small integer: no heap number per connection). Tokens left at `t`:
   * burst − (fullAt − t) / interval.
   */
  private fullAt: number;

  constructor() {
    this.fullAt = Date.now() - CLOCK_ORIGIN;
  }

  abstract get options(): ResolvedGatewayOptions;
  /** The log the connection reads; answers go to it as `userId`. */
  abstract get log(): EventLog;
  abstract readonly userId: string;
  abstract get stats(): WebSocketStatsRecorder;
  /** Whether the connection still serves (not closing or closed). */
  abstract get open(): boolean;
  abstract end(code: number, reason: string): void;
  abstract sendFrame(frame: ServerFrame): void;
  abstract sendError(code: GatewayErrorCode, message: string, threadId?: string): void;
  abstract contain(stage: ReportedContext['stage'], step: () => void): void;
  abstract failed(error: unknown, stage: ReportedContext['stage']): void;
  /** Hands a contained error to the gateway's `onError`. Never throws. */
  abstract report(error: unknown, context: ReportedContext): void;
  abstract readonly id: string;
  /** The subscription layer's (`Subscriptions`). */
  abstract subscribe(threadId: string, after: string | undefined): Promise<void>;
  protected abstract unsubscribe(threadId: string): boolean;
  abstract isSubscribed(threadId: string): boolean;

  /** Takes one token from the bucket; false when it is empty. */
  private takeToken(now: number): boolean {
    const { framesPerSecond, burst } = this.options.rateLimit;
    const interval = 1000 / framesPerSecond;
    const at = now - CLOCK_ORIGIN;
    const fullAt = Math.max(this.fullAt, at);
    // Fewer than one token left (the tolerance absorbs the rounding of a fractional interval).
    if (fullAt - at > (burst - 1) * interval + 1e-6) return false;
    this.fullAt = fullAt + interval;
    return true;
  }

  /** A client frame (the socket's `message`). */
  onMessage(data: RawData, isBinary: boolean): void {
    this.contain('message', () => {
      if (!this.open || this.cutting) return;
      if (!this.takeToken(Date.now())) {
        this.cutFor(CloseCode.RATE_LIMITED, 'rate limited: too many frames', 'rate_limited');
        return;
      }
      if (isBinary) {
        this.rejectFrame('BINARY_NOT_SUPPORTED', 'binary frames are not supported: send JSON text frames');
        return;
      }
      const text = utf8Text(data);
      if (text === undefined) {
        // The gateway's socket leaves this check to the gateway (`skipUTF8Validation`) so that the
        // close carries a reason and is counted, and what came before it is answered first.
        this.cutFor(CloseCode.INVALID_FRAME_PAYLOAD_DATA, 'invalid UTF-8 in a text frame', 'invalid_utf8');
        return;
      }
      const parsed = parseClientFrame(text);
      if (parsed.ok) {
        const { frame } = parsed;
        this.inTurn(() => this.processFrame(frame));
      } else {
        this.rejectFrame(parsed.code, parsed.message, parsed.threadId);
      }
    });
  }

  /** Answers an invalid frame with an `error` frame (in turn with the other answers); past `maxInvalidFrames` closes with 1008. */
  private rejectFrame(code: GatewayErrorCode, message: string, threadId?: string): void {
    this.stats.invalidFrames++;
    if (++this.invalidFrames > this.options.maxInvalidFrames) {
      this.cutFor(CloseCode.POLICY_VIOLATION, 'too many invalid frames', 'invalid_frames');
      return;
    }
    this.inTurn(() => this.sendError(code, message, threadId));
  }

  /**
   * Cuts the connection for what its client sent. Frames read before the cut are answered first
   * (a subscribe still waiting for the log gets its `subscribed` and replay), then the close
   * frame follows. If the log does not answer within `closeTimeoutMs`, it closes without them.
   */
  private cutFor(code: number, reason: string, why: 'rate_limited' | 'invalid_frames' | 'invalid_utf8'): void {
    this.cutting = true;
    this.stats.disconnected(why);
    if (this.busy === undefined) {
      this.end(code, reason);
      return;
    }
    const deadline = setTimeout(() => this.contain('timer', () => this.end(code, reason)), this.options.closeTimeoutMs);
    deadline.unref();
    this.inTurn(() => {
      clearTimeout(deadline);
      this.end(code, reason);
    });
  }

  /**
   * Runs `step` once the frames before it have been answered (now, when none is pending). Never
   * throws and never leaves a rejected promise behind: a failure costs the connection (1011).
   */
  private inTurn(step: () => Promise<void> | void): void {
    const run = (): Promise<void> | void => (this.open ? step() : undefined);
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

  private processFrame(frame: ClientFrame): Promise<void> | undefined {
    switch (frame.type) {
      case 'subscribe':
        return this.subscribe(frame.threadId, frame.after);
      case 'unsubscribe':
        // Answered the same whether the thread is unknown, the user's own, or another user's: the log is not asked.
        if (this.unsubscribe(frame.threadId)) this.sendFrame({ type: 'unsubscribed', threadId: frame.threadId });
        else this.sendError('NOT_SUBSCRIBED', `not subscribed to thread "${frame.threadId}"`, frame.threadId);
        return undefined;
      case 'ack':
        // Never answered (metrics only); one for a thread not followed touches nothing and reveals nothing.
        if (this.isSubscribed(frame.threadId)) this.stats.acks++;
        else this.stats.acksIgnored++;
        return undefined;
      case 'answer':
        // As the connection's own user (the frame cannot name another); the log checks the owner and "once".
        return answerFrame(this.log, this.userId, frame).then((reply) => this.sendFrame(reply));
      case 'cancel':
        return cancelFrame(this.options.cancelRun, this.userId, frame.runId, (error) =>
          this.report(error, { stage: 'cancel', userId: this.userId, connectionId: this.id, runId: frame.runId }),
        ).then((reply) => this.sendFrame(reply));
    }
  }
}

/** The text of a text frame; undefined when its bytes are not UTF-8 (RFC 6455 §8.1: the connection fails with 1007). */
function utf8Text(data: RawData): string | undefined {
  const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  return isUtf8(bytes) ? bytes.toString('utf8') : undefined;
}
