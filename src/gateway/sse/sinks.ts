import type { ServerResponse } from 'node:http';
import type { SseSink } from './session.js';
import { STREAM_HEADERS } from './wire.js';

/** What a sink tells the stream it writes for (an SSE session, or a run stream of AG-UI / useChat). */
export interface SinkOwner {
  /** The sink can take more. */
  resume(): void;
  /** The sink is gone (ended, cut, or the client left). */
  finished(): void;
}

/** A node `ServerResponse` as a session's sink: `write()`'s return value and `drain` pace it. */
export class NodeSseSink implements SseSink {
  private readonly onDrain = (): void => this.session.resume();

  constructor(
    private readonly res: ServerResponse,
    private readonly session: SinkOwner,
    headers: Record<string, string>,
  ) {
    res.on('close', () => session.finished());
    // Socket errors surface as 'close'; without a listener they would be thrown.
    res.on('error', () => undefined);
    res.writeHead(200, { ...STREAM_HEADERS, ...headers });
  }

  write(text: string): boolean {
    if (this.res.destroyed || this.res.writableEnded) return false;
    if (this.res.write(text)) return true;
    this.res.once('drain', this.onDrain);
    return false;
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }

  destroy(): void {
    this.res.destroy();
  }
}

/** Bytes a web stream holds for its reader before the session stops writing (the sink pushes back). */
const WEB_HIGH_WATER_BYTES = 64 * 1024;

/**
 * A web `ReadableStream` as a session's sink: it writes while the stream's `desiredSize` is
 * positive and resumes in `pull()`; the reader cancelling, or `request.signal` aborting, ends the
 * session.
 */
export class WebSseSink implements SseSink {
  readonly stream: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private readonly encoder = new TextEncoder();
  private done = false;
  private readonly onAbort = (): void => this.abort();

  constructor(
    private readonly session: SinkOwner,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        pull: () => {
          if (!this.done) session.resume();
        },
        cancel: () => this.finish(),
      },
      { highWaterMark: WEB_HIGH_WATER_BYTES, size: (chunk) => chunk.byteLength },
    );
    if (signal) {
      if (signal.aborted) queueMicrotask(() => this.abort());
      else signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  write(text: string): boolean {
    if (this.done) return false;
    this.controller.enqueue(this.encoder.encode(text));
    return (this.controller.desiredSize ?? 0) > 0;
  }

  end(): void {
    if (this.done) return;
    try {
      this.controller.close();
    } catch {
      // already closed or errored
    }
    this.finish();
  }

  destroy(): void {
    if (this.done) return;
    try {
      this.controller.error(new Error('The event stream was cut'));
    } catch {
      // already closed or errored
    }
    this.finish();
  }

  private abort(): void {
    if (this.done) return;
    try {
      this.controller.close();
    } catch {
      // already closed or errored
    }
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    // The runtime may keep a request's signal (and its listeners) until the request is collected.
    this.signal?.removeEventListener('abort', this.onAbort);
    this.session.finished();
  }
}
