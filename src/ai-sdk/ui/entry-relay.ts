import type { LogEntry, LogListener } from '../../transport/types.js';
import type { RunChunkStream } from './run-chunk-stream.js';

/**
 * The log listener of a UI stream: holds live entries until the stream is set up (replay fed),
 * then forwards them in order. The stream drops repeats by seq, so an entry both replayed and
 * delivered live is sent once.
 */
export class EntryRelay implements LogListener {
  private buffer: LogEntry[] = [];
  private target: RunChunkStream | undefined;

  onEntries(entries: readonly LogEntry[]): void {
    if (this.target) this.target.push(entries);
    else this.buffer.push(...entries);
  }

  onClose(): void {
    this.target?.fail('The event log closed this stream; resume from the last cursor');
  }

  /** Starts forwarding to `target`, first what arrived meanwhile. */
  attach(target: RunChunkStream): void {
    this.target = target;
    const buffered = this.buffer;
    this.buffer = [];
    target.push(buffered);
  }
}
