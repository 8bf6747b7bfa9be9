import type { WebSocket } from 'ws';
import type { FlushScheduler } from './flush-scheduler.js';
import { outgoingJson, type Outgoing } from './server-frames.js';
import type { WebSocketStatsRecorder } from './stats.js';

/** Largest WebSocket message a batch grows to (in UTF-16 code units); more frames go in the next one. */
export const MAX_BATCH_CHARS = 256 * 1024;

/** `ws` send options for a text message we built ourselves: no per-call object, no compression. */
const TEXT = { binary: false, compress: false, fin: true } as const;

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

  get size(): number {
    return this.queue.length - this.head;
  }

  /** Queues an item; returns the queue's length after it. */
  push(item: Outgoing): number {
    return this.queue.push(item) - this.head;
  }

  clear(): void {
    this.queue = [];
    this.head = 0;
  }

  /**
   * Writes queued frames while the socket has room. `onDrained` is passed with the message that
   * fills the socket. May throw (a socket or a log entry that breaks its contract): the caller
   * contains it.
   */
  write(socket: WebSocket, batching: boolean, maxBufferedBytes: number, scheduler: FlushScheduler, stats: WebSocketStatsRecorder, onDrained: () => void): void {
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
          socket.send(message, TEXT, onDrained);
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
      this.head++;
    }
    return undefined;
  }

  private takeOne(scheduler: FlushScheduler, stats: WebSocketStatsRecorder): string | undefined {
    const json = this.peek(scheduler);
    if (json === undefined) return undefined;
    this.head++;
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
      this.head++;
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
