import { AuthError, type ErrorCode } from '../../errors/index.js';
import type { EventLog, LogEntry } from '../../transport/types.js';
import type { TrackedConnection } from '../connections.js';
import { SERVER_ENDINGS } from '../endings.js';
import { Follower, type FollowResult } from '../follower.js';
import type { DisconnectReason } from '../stats.js';
import { closeBlock, eventBlock, HEARTBEAT_BLOCK, historyGapBlock, retryBlock, subscribedBlock } from './wire.js';
import { isInstance } from '../../errors/guards.js';

/** Where a session writes: a node `ServerResponse` or a web `ReadableStream` (see node.ts, web.ts). */
export interface SseSink {
  /** Writes text; false when the reader pushes back (the sink then calls `session.resume()` once it can take more). */
  write(text: string): boolean;
  /** Ends the stream after what was written. */
  end(): void;
  /** Cuts the stream at once (a reader that does not read). */
  destroy(): void;
}

/** What a session tells its gateway. */
export interface SseSessionHooks {
  /** The session no longer counts (ended for any reason). Called once. */
  finished(session: SseSession, reason: DisconnectReason): void;
  /** An entry could not be written (not JSON, bad cursor): skipped, reported and counted. */
  poisoned(session: SseSession, entry: LogEntry, error: unknown): void;
  isolationDrop(session: SseSession): void;
  framesSent(count: number): void;
}

export interface SseSessionLimits {
  retryMs: number;
  maxQueuedChars: number;
  maxQueuedEntries: number;
}

/** Largest piece handed to the sink at once; replay is paced by the sink in pieces of this size. */
const WRITE_CHUNK_CHARS = 64 * 1024;

/** The `close` event of a stream ended because its thread belongs to another user. */
const FORBIDDEN_ENDING = ['THREAD_FORBIDDEN', 'The thread belongs to another user'] as const;

/**
 * One SSE stream: one thread followed for one user through the shared `Follower`, written to a
 * sink. It pulls from the follower only while the sink takes more, so memory is bounded by the
 * follower's queue bound (past it: cut as a slow consumer, the client resumes with `Last-Event-ID`).
 */
export class SseSession implements TrackedConnection {
  private state: 'subscribing' | 'open' | 'ending' | 'closed' = 'subscribing';
  private sink: SseSink | undefined;
  private blocked = false;
  private pumping = false;
  private readonly follower: Follower;
  /** Why the stream ended (or is ending), once it is. */
  reason: DisconnectReason | undefined;
  /** Overrides the final `close` event of the reason. */
  private finalEvent: readonly [ErrorCode, string] | undefined;
  /** Cursor of the last event written. */
  cursor: string | undefined;

  constructor(
    readonly userId: string,
    readonly threadId: string,
    after: string | undefined,
    private readonly limits: SseSessionLimits,
    private readonly hooks: SseSessionHooks,
  ) {
    this.follower = new Follower(
      { userId, threadId, after },
      {
        maxQueuedChars: limits.maxQueuedChars,
        maxQueuedEntries: limits.maxQueuedEntries,
        readable: () => this.pump(),
        ended: (why, error) => {
          if (why === 'overflow') return this.cut('slow_consumer');
          // The log refused the user after the fact (e.g. the thread's first event is another user's).
          if (isInstance(error, AuthError)) this.finalEvent = FORBIDDEN_ENDING;
          this.close('log_closed');
        },
        isolationDrop: () => hooks.isolationDrop(this),
      },
    );
  }

  get isOpen(): boolean {
    return this.state === 'subscribing' || this.state === 'open';
  }

  /** Subscribes (see `Follower.start`; throws its refusals). */
  subscribe(log: EventLog): Promise<FollowResult> {
    return this.follower.start(log);
  }

  /** Starts writing: the retry hint, then `subscribed` and the events, or `history_gap` and the end. */
  open(sink: SseSink, result: FollowResult): void {
    if (this.state !== 'subscribing') return;
    this.sink = sink;
    if (result.status === 'history_gap') {
      this.state = 'ending';
      this.reason = 'history_gap';
      sink.write(retryBlock(this.limits.retryMs) + historyGapBlock(result.gap));
      this.hooks.framesSent(1);
      sink.end();
      return;
    }
    if (result.status === 'ended') {
      // The gateway refuses such a request before its response starts (403 THREAD_FORBIDDEN, 503
      // SUBSCRIBE_FAILED). Given one here, the headers are out: the stream ends at once with its
      // `close` event (THREAD_FORBIDDEN for another user's thread, else the reason's, e.g.
      // SUBSCRIPTION_ENDED), never left open with nothing to follow.
      if (isInstance(result.error, AuthError)) this.finalEvent = FORBIDDEN_ENDING;
      this.state = 'open';
      this.write(retryBlock(this.limits.retryMs));
      this.close(result.reason === 'closed' ? (this.reason ?? 'shutdown') : 'log_closed');
      return;
    }
    this.state = 'open';
    this.write(retryBlock(this.limits.retryMs) + subscribedBlock(this.threadId, result.cursor, result.replayed));
    this.hooks.framesSent(1);
    this.pump();
  }

  /** The sink can take more. */
  resume(): void {
    this.blocked = false;
    this.pump();
  }

  /** Writes a heartbeat comment unless the sink is full. */
  heartbeat(): void {
    if (this.state === 'open' && !this.blocked) this.write(HEARTBEAT_BLOCK);
  }

  /**
   * Ends the stream for a server-side reason: the final `close` event, then the end. A stream
   * whose reader is not reading is cut instead. Before `open` it only marks the session.
   */
  close(reason: DisconnectReason): void {
    if (!this.isOpen) return;
    const wasOpen = this.state === 'open';
    this.state = 'ending';
    this.reason ??= reason;
    this.follower.close();
    if (!wasOpen || !this.sink) return;
    if (this.blocked) {
      this.sink.destroy();
      return;
    }
    const final = this.finalEvent ?? SERVER_ENDINGS[reason];
    if (final) {
      this.sink.write(closeBlock(final[0], final[1]));
      this.hooks.framesSent(1);
    }
    this.sink.end();
  }

  /** Cuts the stream at once (slow consumer, shutdown grace passed). */
  cut(reason: DisconnectReason): void {
    if (this.state === 'closed') return;
    this.reason ??= reason;
    this.state = 'ending';
    this.follower.close();
    this.sink?.destroy();
  }

  /** The sink is gone (ended, cut, or the client left). Called by the sink; idempotent. */
  finished(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.reason ??= 'client';
    this.follower.close();
    this.hooks.finished(this, this.reason);
  }

  private write(text: string): void {
    if (!this.sink!.write(text)) this.blocked = true;
  }

  /** Writes queued entries (replay first) in chunks until the sink pushes back. */
  private pump(): void {
    if (this.pumping || this.state !== 'open') return;
    this.pumping = true;
    try {
      while (this.state === 'open' && !this.blocked) {
        let chunk = '';
        let count = 0;
        let last: LogEntry | undefined;
        while (chunk.length < WRITE_CHUNK_CHARS) {
          const entry = this.follower.next();
          if (!entry) break;
          let block: string;
          try {
            block = eventBlock(entry);
          } catch (error) {
            // One entry that cannot be written costs that entry only.
            this.hooks.poisoned(this, entry, error);
            continue;
          }
          chunk += block;
          count++;
          last = entry;
        }
        if (!last) break;
        this.cursor = last.cursor;
        this.hooks.framesSent(count);
        this.write(chunk);
      }
    } finally {
      this.pumping = false;
    }
  }
}
