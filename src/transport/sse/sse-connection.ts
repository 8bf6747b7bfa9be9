import type { ServerResponse } from 'node:http';
import type { LogEntry, LogListener, SubscribeResult, Subscription } from '../types.js';
import { respondError } from '../../protocol/http.js';
import { eventBlock, HEARTBEAT_BLOCK, historyGapBlock, retryBlock, STREAM_HEADERS, subscribedBlock } from './wire.js';

/** Why a stream ended. */
export type SseCloseReason =
  /** The client went away (or the socket failed). */
  | 'client'
  /** Live events piled up past `maxBufferedBytes` while the client was not reading. */
  | 'slow_consumer'
  /** The cursor could not be honoured; a `history_gap` event was sent. */
  | 'history_gap'
  /** The gateway is closing. */
  | 'shutdown'
  /** The event log ended the subscription. */
  | 'log_closed'
  /** Refused with an HTTP error after authentication (403, 503). */
  | 'refused'
  /** An unexpected error; reported through `onError`. */
  | 'error';

/** What a connection tells its gateway. */
export interface SseConnectionHooks {
  /** Called exactly once, when the response has closed for any reason. */
  closed(connection: SseConnection): void;
  /** An entry of another user reached this connection and was withheld. */
  isolationDrop(connection: SseConnection, entry: LogEntry): void;
  /** The connection is being cut as a slow consumer. */
  slowConsumer(connection: SseConnection): void;
  error(error: unknown, connection: SseConnection): void;
}

export interface SseConnectionLimits {
  /** Characters of live events that may wait for a blocked socket before the stream is cut. */
  maxBufferedBytes: number;
  /** `retry:` hint sent when the stream opens. */
  retryMs: number;
}

/** Largest piece handed to `res.write` at once; replay is paced by `drain` in pieces of this size. */
const WRITE_CHUNK_CHARS = 64 * 1024;
const EMPTY: readonly LogEntry[] = [];

type State = 'subscribing' | 'streaming' | 'ending' | 'closed';

/**
 * One SSE response following one thread for one user. It is the log listener of its
 * subscription: replayed entries are written first (paced by `drain`), live ones after them,
 * each checked against the connection's user. Memory is bounded: the replay is held by the log
 * anyway; live entries waiting for a blocked socket are counted, and past the bound the
 * response is cut so the client resumes with `Last-Event-ID` instead of growing memory here.
 */
export class SseConnection implements LogListener {
  private state: State = 'subscribing';
  /** Live entries that arrived before the replay was written. */
  private early: LogEntry[] = [];
  private replay: readonly LogEntry[] = EMPTY;
  private replayIndex = 0;
  private live: LogEntry[] = [];
  private liveIndex = 0;
  private liveChars = 0;
  private blocked = false;
  private subscription: Subscription | undefined;
  /** Why the stream ended (set once it is ending). */
  closeReason: SseCloseReason | undefined;
  /** Cursor of the last event written to this response. */
  cursor: string | undefined;
  /** Events written to this response. */
  eventsWritten = 0;

  constructor(
    private readonly res: ServerResponse,
    readonly userId: string,
    readonly threadId: string,
    private readonly limits: SseConnectionLimits,
    private readonly hooks: SseConnectionHooks,
  ) {
    res.on('close', () => this.finish());
    // Socket errors surface as 'close'; without a listener they would be thrown.
    res.on('error', () => undefined);
  }

  get isOpen(): boolean {
    return this.state === 'subscribing' || this.state === 'streaming';
  }

  /** Starts the stream from a subscribe result (or answers the history gap and ends). */
  attach(result: SubscribeResult): void {
    if (result.status === 'subscribed' && !this.isOpen) {
      result.subscription.close();
      return;
    }
    if (!this.isOpen) return;
    if (result.status === 'history_gap') {
      this.state = 'ending';
      this.closeReason = 'history_gap';
      this.res.writeHead(200, STREAM_HEADERS);
      this.res.end(retryBlock(this.limits.retryMs) + historyGapBlock(result.gap));
      return;
    }
    this.subscription = result.subscription;
    this.replay = result.replay.filter((entry) => this.owns(entry));
    if (this.early.length > 0) {
      // Entries the log delivered live while it was still preparing the replay: keep those the
      // replay does not already hold, after it.
      const seen = new Set(this.replay.map((entry) => entry.event.id));
      this.live = this.early.filter((entry) => !seen.has(entry.event.id));
      this.liveChars = this.live.reduce((sum, entry) => sum + eventBlock(entry).length, 0);
      this.early = [];
    }
    this.state = 'streaming';
    this.res.writeHead(200, STREAM_HEADERS);
    this.write(retryBlock(this.limits.retryMs) + subscribedBlock(this.threadId, result.cursor, this.replay.length));
    this.pump();
  }

  /** Answers with an HTTP error instead of a stream (before `attach`). */
  refuse(status: number, code: string, message: string): void {
    if (!this.isOpen) return;
    this.state = 'ending';
    this.closeReason = 'refused';
    respondError(this.res, status, code, message);
  }

  onEntries(entries: readonly LogEntry[]): void {
    if (!this.isOpen) return;
    try {
      for (const entry of entries) {
        if (!this.owns(entry)) continue;
        if (this.state === 'subscribing') this.early.push(entry);
        this.enqueueLive(entry);
      }
      if (this.state === 'streaming' && !this.blocked) this.pump();
      else this.checkBound();
    } catch (error) {
      // Never throw into the log that is delivering: fail this connection only.
      this.fail(error);
    }
  }

  onClose(): void {
    if (!this.isOpen) return;
    this.closeReason = 'log_closed';
    this.end();
  }

  /** Writes a heartbeat comment unless the socket is already full. */
  heartbeat(): void {
    if (this.state === 'streaming' && !this.blocked) this.write(HEARTBEAT_BLOCK);
  }

  /** Ends the stream gracefully (a blocked one is destroyed: its peer is not reading). */
  shutdown(): void {
    if (!this.isOpen) return;
    this.closeReason = 'shutdown';
    if (this.blocked) {
      this.state = 'ending';
      this.res.destroy();
    } else {
      this.end();
    }
  }

  /** Destroys the response at once (after `close()`'s grace period). */
  destroy(): void {
    if (this.state === 'closed') return;
    this.state = 'ending';
    this.res.destroy();
  }

  private end(): void {
    this.state = 'ending';
    if (this.res.headersSent) this.res.end();
    else respondError(this.res, 503, 'GATEWAY_CLOSING', 'the event stream is shutting down; retry later');
  }

  private fail(error: unknown): void {
    this.hooks.error(error, this);
    this.closeReason = 'error';
    this.state = 'ending';
    this.res.destroy();
  }

  private owns(entry: LogEntry): boolean {
    if (entry.event.userId === this.userId) return true;
    this.hooks.isolationDrop(this, entry);
    return false;
  }

  /** Queues a live entry (while subscribing: counts it only; `attach` queues it after the replay). */
  private enqueueLive(entry: LogEntry): void {
    if (this.state === 'streaming') this.live.push(entry);
    this.liveChars += eventBlock(entry).length;
  }

  private readonly onDrain = (): void => {
    this.blocked = false;
    this.pump();
  };

  private write(text: string): void {
    if (!this.res.write(text) && !this.blocked) {
      this.blocked = true;
      this.res.once('drain', this.onDrain);
    }
  }

  /** Writes queued entries (replay first) in chunks until the socket pushes back. */
  private pump(): void {
    while (this.state === 'streaming' && !this.blocked) {
      let chunk = '';
      let count = 0;
      let last: LogEntry | undefined;
      while (chunk.length < WRITE_CHUNK_CHARS) {
        let entry: LogEntry | undefined;
        if (this.replayIndex < this.replay.length) {
          entry = this.replay[this.replayIndex++];
        } else if (this.liveIndex < this.live.length) {
          entry = this.live[this.liveIndex++];
          if (entry) this.liveChars -= eventBlock(entry).length;
        }
        if (!entry) break;
        chunk += eventBlock(entry);
        count++;
        last = entry;
      }
      this.compact();
      if (!last) break;
      this.eventsWritten += count;
      this.cursor = last.cursor;
      this.write(chunk);
    }
    this.checkBound();
  }

  private compact(): void {
    if (this.replay.length > 0 && this.replayIndex >= this.replay.length) {
      this.replay = EMPTY;
      this.replayIndex = 0;
    }
    if (this.liveIndex >= this.live.length) {
      if (this.liveIndex > 0) {
        this.live = [];
        this.liveIndex = 0;
      }
    } else if (this.liveIndex > 1024 && this.liveIndex * 2 > this.live.length) {
      this.live = this.live.slice(this.liveIndex);
      this.liveIndex = 0;
    }
  }

  /** Cuts the stream when live entries waiting (for a blocked socket, or for the replay) exceed the bound. */
  private checkBound(): void {
    if (!this.isOpen || this.liveChars <= this.limits.maxBufferedBytes) return;
    this.closeReason = 'slow_consumer';
    this.state = 'ending';
    this.hooks.slowConsumer(this);
    this.res.destroy();
  }

  private finish(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeReason ??= 'client';
    this.subscription?.close();
    this.subscription = undefined;
    this.early = [];
    this.replay = EMPTY;
    this.live = [];
    this.liveChars = 0;
    this.hooks.closed(this);
  }
}
