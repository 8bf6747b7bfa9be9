import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AgentEvent } from '../../src/index.js';

/** One dispatched SSE message, as an EventSource would see it. */
export interface SseMessage {
  /** The `id:` of this message (undefined when the message carried none). */
  id: string | undefined;
  event: string;
  data: string;
}

export interface SseOpenOptions {
  headers?: Record<string, string>;
  /** Last-Event-ID to send (what EventSource sends when it reconnects). */
  lastEventId?: string;
}

/**
 * A test client for the SSE gateway over plain `http.request` (a fresh socket per stream):
 * parses the stream like EventSource does (a message is dispatched on a blank line; a partial
 * message at a cut is dropped), records comments, can pause reading to act as a slow consumer.
 */
export class SseTestClient {
  readonly messages: SseMessage[] = [];
  readonly comments: string[] = [];
  /** Every chunk as received (for wire-format assertions). */
  raw = '';
  /** Body of a non-stream response (errors). */
  body = '';
  /** How the response ended: cleanly ('end') or cut ('aborted'). Undefined while open. */
  outcome: 'end' | 'aborted' | undefined;
  readonly ended: Promise<'end' | 'aborted'>;
  private buffer = '';
  private pending: { id?: string; event?: string; data: string[] } = { data: [] };
  private waiters: Array<() => void> = [];
  private resolveEnded!: (outcome: 'end' | 'aborted') => void;

  private constructor(
    private readonly response: IncomingMessage,
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
  ) {
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
    response.setEncoding('utf8');
    const isStream = String(headers['content-type'] ?? '').startsWith('text/event-stream');
    response.on('data', (chunk: string) => {
      this.raw += chunk;
      if (isStream) this.parse(chunk);
      else this.body += chunk;
      this.notify();
    });
    response.on('end', () => this.finish('end'));
    response.on('aborted', () => this.finish('aborted'));
    response.on('error', () => this.finish('aborted'));
    response.on('close', () => this.finish(response.complete ? 'end' : 'aborted'));
  }

  static open(url: string, options: SseOpenOptions = {}): Promise<SseTestClient> {
    const headers: Record<string, string> = { Accept: 'text/event-stream', ...options.headers };
    if (options.lastEventId !== undefined) headers['Last-Event-ID'] = options.lastEventId;
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'GET', headers, agent: false }, (res) => {
        resolve(new SseTestClient(res, res.statusCode ?? 0, res.headers));
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** Parsed agent events (messages with an `id:`), in arrival order. */
  get events(): AgentEvent[] {
    return this.messages.filter((m) => m.id !== undefined).map((m) => JSON.parse(m.data) as AgentEvent);
  }

  /** The id of the last complete event message: what EventSource would send as Last-Event-ID. */
  get lastEventId(): string | undefined {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const id = this.messages[i]?.id;
      if (id !== undefined) return id;
    }
    return undefined;
  }

  /** Parsed error body of a refused request. */
  get error(): { code: string; message: string } {
    return (JSON.parse(this.body) as { error: { code: string; message: string } }).error;
  }

  pause(): void {
    this.response.pause();
  }

  resume(): void {
    this.response.resume();
  }

  /** Cuts the connection from the client side. */
  close(): void {
    this.response.destroy();
  }

  /** Resolves once `predicate` holds; rejects when the stream ends first or after `timeoutMs`. */
  async waitFor(predicate: (client: SseTestClient) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (this.outcome) {
        // Data of the final chunk is already parsed: check once more before failing.
        if (predicate(this)) return;
        throw new Error(`stream ended (${this.outcome}) before ${what}; got ${this.messages.length} messages`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${this.messages.length} messages`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for an event message of type `type` (e.g. agent_completed). */
  waitForEvent(type: string, count = 1, timeoutMs?: number): Promise<void> {
    return this.waitFor((c) => c.messages.filter((m) => m.event === type).length >= count, `${count} × ${type}`, timeoutMs);
  }

  private finish(outcome: 'end' | 'aborted'): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.resolveEnded(outcome);
    this.notify();
  }

  private notify(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** The EventSource parsing algorithm (lines end with LF, CRLF or CR). */
  private parse(chunk: string): void {
    const text = this.buffer + chunk;
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A CR at the very end may be the first half of CRLF: wait for more.
      if (c === 13 && i === text.length - 1) break;
      this.line(text.slice(start, i));
      if (c === 13 && text.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    this.buffer = text.slice(start);
  }

  private line(line: string): void {
    if (line === '') {
      const { id, event, data } = this.pending;
      if (data.length > 0) this.messages.push({ id, event: event ?? 'message', data: data.join('\n') });
      this.pending = { data: [] };
      return;
    }
    if (line.startsWith(':')) {
      this.comments.push(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.pending.data.push(value);
    else if (field === 'event') this.pending.event = value;
    else if (field === 'id') this.pending.id = value;
  }
}
