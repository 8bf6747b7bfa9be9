import type { WebSocket } from 'ws';
import { entryChars } from '../follower.js';
import type { FlushScheduler } from './flush-scheduler.js';
import { outgoingJson, type Outgoing } from './server-frames.js';
import type { WebSocketStatsRecorder } from './stats.js';

/** Largest WebSocket message a batch grows to (in UTF-16 code units); more frames go in the next one. */
export const MAX_BATCH_CHARS = 256 * 1024;

/** Largest message (in UTF-16 code units) framed and written here; larger ones go through `ws.send`. */
const DIRECT_MAX_CHARS = 16 * 1024;

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
  /**
   * Characters (≈ bytes) of the items that count toward the bound (`outgoingChars`), kept as items
   * are pushed and taken: the connection's `maxQueuedBytes`. Replayed entries are not in it.
   */
  private liveChars = 0;

  get size(): number {
    return this.queue.length - this.head;
  }

  /** Characters of the queued items that count toward the bound (all but replayed entries); 0 when the queue is empty. */
  get queuedChars(): number {
    return this.liveChars;
  }

  /** Queues an item; returns the number of queued items that count toward the bound (all but replayed entries). See `queuedChars`. */
  push(item: Outgoing): number {
    this.liveChars += outgoingChars(item);
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
    this.liveChars = 0;
  }

  /** Lets an empty queue's backing store go (`pop` keeps it): for a connection gone idle (the heartbeat). */
  trim(): void {
    if (this.head === 0 && this.queue.length === 0) this.queue.length = 0;
  }

  /** Moves past the item at the head. */
  private advance(): void {
    const item = this.queue[this.head++]!;
    const position = this.taken++;
    if (this.replayQueued !== 0) {
      const ranges = this.replayRanges!;
      if (position >= ranges[0]! && position < ranges[1]!) {
        this.replayQueued--;
        if (position + 1 === ranges[1]) ranges.splice(0, 2);
        return;
      }
    }
    this.liveChars -= outgoingChars(item);
  }

  /**
   * Writes queued frames while the socket has room. `drained.onDrained()` (asked for only then:
   * most connections never fill their socket) is passed with the message that fills the socket.
   * May throw (a socket or a log entry that breaks its contract): the caller contains it.
   *
   * When ws's sender is idle (see `directStream`), ASCII messages are framed here and written to
   * the TCP socket as one latin1 string per flush (several messages back to back when batching is
   * off): one `write` and one kernel write, instead of ws's header buffer, cork, two writes and a
   * `writev` that encodes the string per message. Anything else goes through `ws.send`, in order
   * (ws writes synchronously to the same socket while its sender is idle).
   */
  write(socket: WebSocket, batching: boolean, maxBufferedBytes: number, scheduler: FlushScheduler, stats: WebSocketStatsRecorder, drained: DrainWaiter): void {
    const direct = directStream(socket);
    if (direct === undefined) {
      this.writeThroughWs(socket, batching, maxBufferedBytes, scheduler, stats, drained);
      return;
    }
    // Framed messages not yet written, and their bytes (a rope: flattened once by the write).
    let pending = '';
    let pendingBytes = 0;
    let buffered = socket.bufferedAmount;
    try {
      while (this.head < this.queue.length && !this.awaitingDrain) {
        const message = batching ? this.takeBatch(scheduler, stats) : this.takeOne(scheduler, stats);
        // Everything left was skipped (events that are not JSON).
        if (message === undefined) break;
        stats.messagesSent++;
        // Framed as if ASCII (its length in bytes is its length), then checked: measuring the
        // UTF-8 length flattens the framed string once, and that flat string is what is written.
        // Large messages (a replay's batches) go through ws.send: there its one C++ encoding pass
        // beats flattening, measuring and encoding them here (measured: a 10,000-event replay took
        // 21 ms framed here against 16 ms through ws); the saving per write is for small messages.
        const small = message.length <= DIRECT_MAX_CHARS;
        const header = small ? frameHeader(message.length) : '';
        const framed = small ? header + message : '';
        const ascii = small && Buffer.byteLength(framed) === headerUtf8Length(header) + message.length;
        const bytes = ascii ? message.length : Buffer.byteLength(message);
        const fills = buffered + pendingBytes + bytes >= maxBufferedBytes;
        if (fills) this.awaitingDrain = true;
        if (ascii) {
          // Its latin1 bytes are its UTF-8 bytes.
          pending += framed;
          pendingBytes += header.length + bytes;
          if (fills) {
            // This message's callback tells us when the socket has drained.
            direct.write(pending, 'latin1', drained.onDrained());
            pending = '';
          }
          continue;
        }
        if (pending !== '') {
          direct.write(pending, 'latin1');
          pending = '';
          pendingBytes = 0;
        }
        if (fills) socket.send(message, TEXT, drained.onDrained());
        else socket.send(message, TEXT);
        buffered = socket.bufferedAmount;
      }
    } finally {
      if (pending !== '') direct.write(pending, 'latin1');
    }
    this.compact();
  }

  /** `write` through `ws.send` (a socket without the internals `directStream` needs, or a busy sender). */
  private writeThroughWs(socket: WebSocket, batching: boolean, maxBufferedBytes: number, scheduler: FlushScheduler, stats: WebSocketStatsRecorder, drained: DrainWaiter): void {
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
      message += ',' + json;
      parts++;
    }
    // Counted once per message (`first` was counted by takeOne).
    stats.framesSent += parts - 1;
    return parts === 1 ? first : message + ']';
  }

  private compact(): void {
    if (this.head === 1 && this.queue.length === 1) {
      // One item per flush (one event per tick): `pop` is a few nanoseconds, `length = 0` about forty.
      // An optimized `pop` keeps the backing store (17 slots, 152 B); after a control frame (hello,
      // subscribed: what an idle connection is sent last) it goes, as `length = 0` lets it.
      if (typeof this.queue.pop() === 'string') this.queue.length = 0;
      this.head = 0;
      // Empty: nothing counts (an entry of a log that breaks its contract may have measured differently when taken).
      this.liveChars = 0;
    } else if (this.head >= this.queue.length) {
      this.liveChars = 0;
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
 * What an item counts toward `maxQueuedBytes`: a control frame's length, an event's JSON length
 * (`LogEntry.json`: the HTTP surfaces' measure; the small envelope around it is not counted).
 * Characters of JSON, ≈ bytes (the same measure before and after, so the count returns to 0).
 */
function outgoingChars(item: Outgoing): number {
  return typeof item === 'string' ? item.length : entryChars(item);
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

/** What `directStream` reads of a `ws` WebSocket (ws 8): its TCP socket and its sender's state. */
interface WsInternals {
  readyState: number;
  _isServer?: unknown;
  _socket?: { write?: unknown } | null;
  _extensions?: Record<string, unknown>;
  _sender?: { _state?: unknown; _queue?: unknown; _firstFragment?: unknown } | null;
}

type LatinStream = { write(data: string, encoding: 'latin1', callback?: () => void): unknown };

/**
 * The TCP socket under an open server-side `ws` WebSocket whose sender is idle: nothing queued,
 * not compressing or reading a blob (`_state` 0: ws writes every frame synchronously to the socket
 * then), not inside a fragmented message, no extension negotiated (the gateway's server offers
 * none). Frames written to it then go out exactly where `ws.send` would put them, and count in
 * `bufferedAmount` (the socket's writable length). Undefined otherwise, or for anything that is
 * not such a WebSocket (then `ws.send` is used).
 */
function directStream(socket: WebSocket): LatinStream | undefined {
  const ws = socket as unknown as WsInternals;
  if (ws.readyState !== 1 || ws._isServer !== true) return undefined;
  const sender = ws._sender;
  const tcp = ws._socket;
  if (sender == null || tcp == null || typeof tcp.write !== 'function') return undefined;
  if (sender._state !== 0 || sender._firstFragment !== true || !Array.isArray(sender._queue) || sender._queue.length !== 0) return undefined;
  const extensions = ws._extensions;
  if (extensions === undefined || extensions === null) return undefined;
  for (const _ in extensions) return undefined;
  return tcp as LatinStream;
}

/** Headers of final text frames with a payload of 0 to 125 bytes, as latin1 strings. */
const SMALL_HEADERS = Array.from({ length: 126 }, (_, length) => String.fromCharCode(0x81, length));

/** UTF-8 length of a header string (`Buffer.byteLength` counts its characters from 0x80 as two bytes). */
function headerUtf8Length(header: string): number {
  let bytes = header.length;
  for (let i = 0; i < header.length; i++) if (header.charCodeAt(i) >= 0x80) bytes++;
  return bytes;
}

/** The header of an unmasked final text frame (RFC 6455 §5.2) of `bytes` payload bytes, one latin1 character per byte. */
export function frameHeader(bytes: number): string {
  if (bytes < 126) return SMALL_HEADERS[bytes]!;
  if (bytes < 65536) return String.fromCharCode(0x81, 126, bytes >>> 8, bytes & 0xff);
  // A JavaScript string holds fewer than 2^32 bytes of ASCII: the high four length bytes are 0.
  return String.fromCharCode(0x81, 127, 0, 0, 0, 0, (bytes >>> 24) & 0xff, (bytes >>> 16) & 0xff, (bytes >>> 8) & 0xff, bytes & 0xff);
}
