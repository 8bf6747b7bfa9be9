import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { SseGateway, type SseGatewayOptions } from '../../src/gateway/sse/index.js';
import { testAuthenticate, type GatewayFixture } from './sse-server.js';

/**
 * An SseGateway served through its web-standard handler by a real Hono app on Node
 * (`@hono/node-server`), at 127.0.0.1:0: `GET/OPTIONS /events` → `gateway.fetch(c.req.raw)`,
 * other paths 404 (Hono's). Same shape as `startGateway` so tests run against both mounts.
 */
export async function startHonoGateway(options: Partial<SseGatewayOptions> & Pick<SseGatewayOptions, 'log'>): Promise<GatewayFixture> {
  const gateway = new SseGateway({ authenticate: testAuthenticate, ...options });
  const app = new Hono();
  app.on(['GET', 'POST', 'OPTIONS'], gateway.path, (c) => gateway.fetch(c.req.raw));
  app.notFound((c) => c.text('not the gateway', 404));
  let server: ServerType | undefined;
  const address = await new Promise<AddressInfo>((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, resolve);
  });
  const base = `http://127.0.0.1:${address.port}`;
  return {
    gateway,
    server: server! as GatewayFixture['server'],
    base,
    url: (threadId, userId, query = '') =>
      `${base}${gateway.path}?threadId=${encodeURIComponent(threadId)}&token=tok-${encodeURIComponent(userId)}${query}`,
    async close() {
      await gateway.close();
      const http = server as GatewayFixture['server'];
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    },
  };
}

/** One SSE message read from a web `Response` body. */
export interface WebSseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * Reads a web `Response`'s event stream the way a Next.js route handler's caller would get it:
 * through `response.body.getReader()`. `pause()` stops reading (a slow consumer).
 */
export class WebSseReader {
  readonly messages: WebSseMessage[] = [];
  readonly comments: string[] = [];
  outcome: 'end' | 'error' | undefined;
  readonly ended: Promise<'end' | 'error'>;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private paused = false;
  private resumeReading: (() => void) | undefined;
  private waiters: Array<() => void> = [];

  constructor(readonly response: Response) {
    this.reader = response.body!.getReader();
    this.ended = this.loop();
  }

  get events(): Array<{ id: string; type: string; userId: string; seq: number }> {
    return this.messages.filter((m) => m.id !== undefined).map((m) => JSON.parse(m.data) as { id: string; type: string; userId: string; seq: number });
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.resumeReading?.();
  }

  cancel(): Promise<void> {
    return this.reader.cancel();
  }

  async waitFor(predicate: (reader: WebSseReader) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (this.outcome) throw new Error(`stream ended (${this.outcome}) before ${what}; got ${this.messages.length} messages`);
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

  private async loop(): Promise<'end' | 'error'> {
    try {
      for (;;) {
        if (this.paused) await new Promise<void>((resolve) => (this.resumeReading = resolve));
        const { done, value } = await this.reader.read();
        if (done) break;
        this.parse(this.decoder.decode(value, { stream: true }));
      }
      this.outcome = 'end';
    } catch {
      this.outcome = 'error';
    }
    for (const waiter of this.waiters.splice(0)) waiter();
    return this.outcome;
  }

  private parse(text: string): void {
    this.buffer += text;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) !== -1) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const message: { id?: string; event?: string; data: string[] } = { data: [] };
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          this.comments.push(line.slice(1).trim());
          continue;
        }
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') message.data.push(value);
        else if (field === 'event') message.event = value;
        else if (field === 'id') message.id = value;
      }
      if (message.data.length > 0) this.messages.push({ id: message.id, event: message.event ?? 'message', data: message.data.join('\n') });
    }
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}
