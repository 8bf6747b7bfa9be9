import type { ServerResponse } from 'node:http';

export interface SseStreamOptions {
  /** Interval of `: heartbeat` comments while the stream is open; 0 disables them. */
  heartbeatMs: number;
  /** Bytes that may wait in the response's buffer for a slow client; past it `onOverflow` runs. */
  maxBufferedBytes: number;
  /** The client does not keep up: the stream is already destroyed when this is called. */
  onOverflow: () => void;
}

const HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  Connection: 'keep-alive',
  // Tells nginx-style proxies not to buffer the stream.
  'X-Accel-Buffering': 'no',
};

/**
 * One AG-UI response stream: `data: <json>\n\n` frames (the framing `@ag-ui/client` parses).
 * The 200 and its headers go out with the first frame, so a request refused before anything
 * happened can still be answered with a proper HTTP status.
 */
export class SseStream {
  private timer: NodeJS.Timeout | undefined;
  private state: 'pending' | 'open' | 'ended' = 'pending';
  /** Frames written to the response. */
  framesSent = 0;

  constructor(
    private readonly res: ServerResponse,
    private readonly options: SseStreamOptions,
  ) {}

  get opened(): boolean {
    return this.state !== 'pending';
  }

  get ended(): boolean {
    return this.state === 'ended';
  }

  /** Writes the frames as one chunk. Returns false when the stream is gone (nothing is written). */
  send(frames: readonly object[]): boolean {
    if (this.state === 'ended' || this.res.destroyed) return false;
    if (frames.length === 0) return true;
    if (this.state === 'pending') this.open();
    let chunk = '';
    for (const frame of frames) chunk += `data: ${JSON.stringify(frame)}\n\n`;
    this.res.write(chunk);
    this.framesSent += frames.length;
    if (this.res.writableLength > this.options.maxBufferedBytes) this.overflow();
    return true;
  }

  /** Ends the response (idempotent). */
  end(): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.stopHeartbeat();
    if (!this.res.destroyed && !this.res.writableEnded) this.res.end();
  }

  private open(): void {
    this.state = 'open';
    this.res.writeHead(200, HEADERS);
    // Headers now, not with the first body chunk: the client learns the run started.
    this.res.flushHeaders();
    if (this.options.heartbeatMs > 0) {
      this.timer = setInterval(() => this.heartbeat(), this.options.heartbeatMs);
      this.timer.unref();
    }
  }

  private heartbeat(): void {
    if (this.state !== 'open' || this.res.destroyed) return;
    // A comment: parsers skip it, proxies see traffic on a long tool call.
    this.res.write(': heartbeat\n\n');
    if (this.res.writableLength > this.options.maxBufferedBytes) this.overflow();
  }

  private overflow(): void {
    this.state = 'ended';
    this.stopHeartbeat();
    this.res.destroy();
    this.options.onOverflow();
  }

  private stopHeartbeat(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
