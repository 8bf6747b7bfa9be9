import type { WebSocket } from 'ws';
import type { FlushScheduler } from './flush-scheduler.js';
import { outgoingJson, type Outgoing } from './server-frames.js';
import type { WebSocketStatsRecorder } from './stats.js';

/** Largest WebSocket message a batch grows to (in UTF-16 code units); more frames go in the next one. */
export const MAX_BATCH_CHARS = 256 * 1024;

/** `ws` send options for a text message we built ourselves: no per-call object, no compression. */
const TEXT = { binary: false, compress: false, fin: true } as const;

/** Gives the callback of a message that fills the socket (made when first asked for). */
export interface DrainWaiter {
  onDrained(): () => void;
}

/**
 * One connection's send queue: frames wait here until the gateway's per-tick flush writes them,
 * batched into one message per tick (a JSON array; a lone frame as a plain object) and paced by
 * the socket's buffer (`maxBufferedBytes`): past it the rest waits for the socket to drain.
 */
export class Outbox {
  private queue: Outgoing[] = [];
  private head = 0;
  /** A message was sent with a drain callback; nothing more is written until it fires. */
  awaitingDrain = false;
  /**
   * Replayed entries still queued, and where they sit: `[start, end)` ranges of queue positions
   * counted from the first item ever queued (`taken` items are before `head`). They do not count
   * toward the bound: a replay is the log's retained tail, queued whole, however slow the reader.
   */
  private replayQueued = 0;
  private replayRanges: number[] | undefined;
  private taken = 0;

  get size(): number {
    return this.queue.length - this.head;
  }

  /** Queues an item; returns the number of queued items that count toward the bound (all but replayed entries). */
  push(item: Outgoing): number {
    return this.queue.push(item) - this.head - this.replayQueued;
  }

  /** Queues a replay (entries that do not count toward the bound). */
  pushReplay(entries: readonly Outgoing[]): void {
    if (entries.length === 0) return;
    const start = this.taken + this.size;
    for (const entry of entries) this.queue.push(entry);
    (this.replayRanges ??= []).push(start, start + entries.length);
    this.replayQueued += entries.length;
  }

  clear(): void {
    this.queue = [];
    this.head = 0;
    this.replayQueued = 0;
    this.replayRanges = undefined;
  }

  /** Moves past the item at the head. */
  private advance(): void {
    this.head++;
    const position = this.taken++;
    if (this.replayQueued === 0) return;
    const ranges = this.replayRanges!;
    if (position >= ranges[0]! && position < ranges[1]!) {
      this.replayQueued--;
      if (position + 1 === ranges[1]) ranges.splice(0, 2);
    }
  }

  /**
   * Writes queued frames while the socket has room. `drained.onDrained()` (asked for only then:
   * most connections never fill their socket) is passed with the message that fills the socket.
   * May throw (a socket or a log entry that breaks its contract): the caller contains it.
   */
  write(socket: WebSocket, batching: boolean, maxBufferedBytes: number, scheduler: FlushScheduler, stats: WebSocketStatsRecorder, drained: DrainWaiter): void {
    // Several messages in one flush (batching off): one kernel write (`cork` … `uncork`) instead
    // of one per message. A single message needs none (ws corks its header and payload itself).
    const stream = !batching && this.size > 1 ? transportStream(socket) : undefined;
    stream?.cork();
    try {
      while (this.head < this.queue.length && !this.awaitingDrain) {
        const message = batching ? this.takeBatch(scheduler, stats) : this.takeOne(scheduler, stats);
        // Everything left was skipped (events that are not JSON).
        if (message === undefined) break;
        stats.messagesSent++;
        if (socket.bufferedAmount + message.length >= maxBufferedBytes) {
          // The socket is full: this message's callback tells us when it has drained.
          this.awaitingDrain = true;
          socket.send(message, TEXT, drained.onDrained());
        } else {
          socket.send(message, TEXT);
        }
      }
    } finally {
      stream?.uncork();
    }
    this.compact();
  }

  /** JSON of the item at the head of the queue, skipping (and dropping) items whose event is not JSON. */
  private peek(scheduler: FlushScheduler): string | undefined {
    while (this.head < this.queue.length) {
      const json = outgoingJson(this.queue[this.head]!, scheduler);
      if (json !== undefined) return json;
      this.advance();
    }
    return undefined;
  }

  private takeOne(scheduler: FlushScheduler, stats: WebSocketStatsRecorder): string | undefined {
    const json = this.peek(scheduler);
    if (json === undefined) return undefined;
    this.advance();
    stats.framesSent++;
    return json;
  }

  private takeBatch(scheduler: FlushScheduler, stats: WebSocketStatsRecorder): string | undefined {
    const first = this.takeOne(scheduler, stats);
    if (first === undefined || this.head >= this.queue.length) return first;
    let message = '[' + first;
    let parts = 1;
    while (message.length < MAX_BATCH_CHARS) {
      const json = this.peek(scheduler);
      if (json === undefined || message.length + json.length > MAX_BATCH_CHARS) break;
      this.advance();
      stats.framesSent++;
      message += ',' + json;
      parts++;
    }
    return parts === 1 ? first : message + ']';
  }

  private compact(): void {
    if (this.head >= this.queue.length) {
      // Drop a large backing array after a burst so an idle connection stays small.
      if (this.queue.length > 1024) this.queue = [];
      else this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
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
