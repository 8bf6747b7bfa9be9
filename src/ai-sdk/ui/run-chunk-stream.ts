import type { UIMessageChunk } from 'ai';
import type { LogEntry } from '../../transport/types.js';
import type { UiChunkMapper } from './chunk-mapper.js';

export interface RunChunkStreamOptions {
  runId: string;
  /** The principal: events of any other user are never mapped (the log filters too; this is the second lock). */
  userId: string;
  mapper: UiChunkMapper;
  /** Chunks queued for a consumer that does not read; past it the stream ends with an error chunk. */
  maxQueuedChunks: number;
  /** The consumer went away (cancelled the stream). */
  onCancel: () => void;
}

/**
 * The UI message chunks of one run, fed from the thread's log entries (replayed and live).
 * Entries of other runs are ignored, repeated ones (seq already seen) are dropped, and the
 * stream closes after the run's `agent_completed`.
 */
export class RunChunkStream {
  readonly stream: ReadableStream<UIMessageChunk>;
  private controller!: ReadableStreamDefaultController<UIMessageChunk>;
  private lastSeq = 0;
  private ended = false;
  private sawFirst = false;
  private readonly firstListeners: Array<() => void> = [];
  private readonly doneListeners: Array<() => void> = [];
  /** Events of another user that reached this stream (must stay 0). */
  isolationDrops = 0;

  constructor(private readonly options: RunChunkStreamOptions) {
    this.stream = new ReadableStream<UIMessageChunk>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        cancel: () => {
          this.markEnded();
          options.onCancel();
        },
      },
      new CountQueuingStrategy({ highWaterMark: options.maxQueuedChunks }),
    );
  }

  /** The run completed (its terminal chunks are queued) or the stream was ended. */
  get done(): boolean {
    return this.ended;
  }

  /** Whether an event of the run was seen (mapped or skipped). */
  get started(): boolean {
    return this.sawFirst;
  }

  /** Resolves once the first event of the run arrives. */
  firstEvent(): Promise<void> {
    if (this.sawFirst) return Promise.resolve();
    return new Promise((resolve) => this.firstListeners.push(resolve));
  }

  /** Resolves once the stream ended (run completed, failed, cancelled by the consumer). */
  whenDone(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => this.doneListeners.push(resolve));
  }

  /**
   * Feeds entries in log order. With `emit: false` the mapping only advances (the part of the run a
   * resuming client already has); the chunks are not sent.
   */
  push(entries: readonly LogEntry[], emit = true): void {
    for (const entry of entries) {
      if (this.ended) return;
      const { event } = entry;
      if (event.runId !== this.options.runId) continue;
      if (event.userId !== this.options.userId) {
        this.isolationDrops++;
        continue;
      }
      if (event.seq <= this.lastSeq) continue; // at-least-once sources may repeat
      this.lastSeq = event.seq;
      const chunks = this.options.mapper.map(event, entry.cursor);
      if (emit) for (const chunk of chunks) this.enqueue(chunk);
      if (!this.sawFirst) {
        this.sawFirst = true;
        for (const listener of this.firstListeners.splice(0)) listener();
      }
      if (event.type === 'agent_completed') this.end();
    }
  }

  /** Ends the stream with an `error` chunk (and `finish`), e.g. when the log closed under it. */
  fail(errorText: string): void {
    if (this.ended) return;
    this.enqueue({ type: 'error', errorText });
    this.enqueue({ type: 'finish', finishReason: 'error' });
    this.end();
  }

  /** Ends the stream (no more chunks). */
  end(): void {
    if (this.ended) return;
    this.markEnded();
    try {
      this.controller.close();
    } catch {
      // already closed or cancelled
    }
  }

  private markEnded(): void {
    this.ended = true;
    for (const listener of this.doneListeners.splice(0)) listener();
  }

  private enqueue(chunk: UIMessageChunk): void {
    if (this.ended) return;
    if ((this.controller.desiredSize ?? 1) <= 0) {
      // The consumer stopped reading: end instead of buffering without bound. It can resume from its cursor.
      this.controller.enqueue({ type: 'error', errorText: 'The client fell too far behind; resume from the last cursor' });
      this.end();
      return;
    }
    this.controller.enqueue(chunk);
  }
}
