import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { z } from 'zod';
import type { RunAgentInput } from '@ag-ui/core';
import { createAguiHandler, type AguiHandler, type AguiHandlerBaseOptions } from '../../src/agui/index.js';
import { createChatHandler, type ChatHandler, type ChatHandlerBaseOptions, type ChatRequest } from '../../src/ai-sdk/index.js';
import { AgentBridge, AuthError, MemoryTransport, ValidationError, tokenFrom, type AgentEvent, type Authenticate } from '../../src/index.js';
import { ScriptedAgent, type Step } from './agents.js';

/**
 * The two HTTP surfaces that start runs (AG-UI and useChat) behind one fixture, mounted through
 * their node handler on a plain node:http server or through their web handler in a real Hono app
 * (@hono/node-server), on 127.0.0.1:0. Both run a `ScriptedAgent` whose steps travel in the POST
 * body (AG-UI: `forwardedProps.steps`; useChat: a `steps` field next to `id` and `messages`).
 */
export type SurfaceKind = 'agui' | 'chat';
export type Mount = 'node' | 'hono';

/** `Bearer tok-<user>` → user; anything else is refused (null). */
export const surfaceAuthenticate: Authenticate = (req) => {
  const token = tokenFrom(req);
  if (token === 'suspended') throw new AuthError('Your account is suspended');
  return token?.startsWith('tok-') ? { userId: token.slice(4) } : null;
};

const stepSchema: z.ZodType<Step> = z.union([
  z.object({ think: z.string() }),
  z.object({ tool: z.string(), args: z.unknown(), catchError: z.boolean().optional() }),
  z.object({ throw: z.string() }),
  z.object({ wait: z.literal('abort') }),
]) as z.ZodType<Step>;

export function stepsFrom(value: unknown): Step[] {
  const parsed = z.array(stepSchema).safeParse(value);
  if (!parsed.success) throw new ValidationError('steps must be a list of steps', { field: 'steps' });
  return parsed.data;
}

export type SurfaceOptions = Partial<AguiHandlerBaseOptions<Step[]>> & Partial<ChatHandlerBaseOptions<Step[]>>;

export interface SurfaceFixture {
  kind: SurfaceKind;
  mount: Mount;
  base: string;
  /** The POST url. */
  url: string;
  transport: MemoryTransport;
  bridge: AgentBridge;
  agent: ScriptedAgent;
  handler: AguiHandler | ChatHandler;
  /** Every event the agent emitted. */
  events: AgentEvent[];
  /** The surface's POST body for a run of `steps` in `threadId`. */
  body(threadId: string, steps: Step[], extra?: Record<string, unknown>): Record<string, unknown>;
  /** The resume URL of a thread (AG-UI: also the run). */
  resumeUrl(threadId: string, runId?: string): string;
  close(): Promise<void>;
}

export async function startSurface(kind: SurfaceKind, mount: Mount, options: SurfaceOptions = {}, transport = new MemoryTransport()): Promise<SurfaceFixture> {
  const bridge = new AgentBridge({ transport });
  const agent = new ScriptedAgent({ bridge });
  const events: AgentEvent[] = [];
  agent.on('event', (event) => events.push(event));
  const common = { agent, log: transport, authenticate: surfaceAuthenticate, heartbeatIntervalMs: 0, ...options };
  const handler =
    kind === 'agui'
      ? createAguiHandler<Step[]>({ ...common, toInput: (input: RunAgentInput) => stepsFrom((input.forwardedProps as { steps?: unknown } | undefined)?.steps) } as never)
      : createChatHandler<Step[]>({ ...common, input: (request: ChatRequest) => stepsFrom(request.body.steps) } as never);
  let server: Server;
  if (mount === 'node') {
    server = createServer((req, res) => {
      if (!handler.handle(req, res)) res.writeHead(404).end('not a surface');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  } else {
    const app = new Hono();
    if (kind === 'agui') app.on(['GET', 'POST', 'OPTIONS', 'PUT'], handler.path, (c) => handler.fetch(c.req.raw));
    else {
      app.on(['POST', 'OPTIONS', 'GET'], handler.path, (c) => handler.fetch(c.req.raw));
      app.on(['GET', 'OPTIONS', 'POST'], `${handler.path}/:id/stream`, (c) => handler.fetch(c.req.raw));
    }
    app.notFound((c) => c.text('not a surface', 404));
    server = await new Promise<Server>((resolve) => {
      const started: ServerType = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started as Server));
    });
  }
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    kind,
    mount,
    base,
    url: `${base}${handler.path}`,
    transport,
    bridge,
    agent,
    handler,
    events,
    body: (threadId, steps, extra = {}) =>
      kind === 'agui'
        ? { threadId, messages: [], forwardedProps: { steps }, ...extra }
        : { id: threadId, messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'go' }] }], trigger: 'submit-message', steps, ...extra },
    resumeUrl: (threadId, runId) =>
      kind === 'agui'
        ? `${base}${handler.path}?threadId=${encodeURIComponent(threadId)}${runId ? `&runId=${encodeURIComponent(runId)}` : ''}`
        : `${base}${handler.path}/${encodeURIComponent(threadId)}/stream`,
    async close() {
      await handler.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await bridge.close();
      await transport.close();
    },
  };
}

/** One SSE message as an EventSource dispatches it. */
export interface Frame {
  id: string | undefined;
  data: string;
}

/**
 * One HTTP exchange over its own socket, read like EventSource reads a stream (a message is
 * dispatched on a blank line; a partial one at a cut is dropped). `pause()` stops reading.
 */
export class Exchange {
  status = 0;
  headers: IncomingHttpHeaders = {};
  body = '';
  readonly frames: Frame[] = [];
  readonly comments: string[] = [];
  outcome: 'end' | 'aborted' | undefined;
  readonly responded: Promise<void>;
  readonly ended: Promise<'end' | 'aborted'>;
  private buffer = '';
  private pending: { id?: string; data: string[] } = { data: [] };
  private waiters: Array<() => void> = [];
  private response: IncomingMessage | undefined;
  private readonly req: ReturnType<typeof httpRequest>;

  constructor(
    url: string,
    options: { method?: string; headers?: Record<string, string>; body?: string | string[]; hold?: boolean; length?: number } = {},
  ) {
    let resolveResponded!: () => void;
    let resolveEnded!: (outcome: 'end' | 'aborted') => void;
    this.responded = new Promise((resolve) => (resolveResponded = resolve));
    this.ended = new Promise((resolve) => (resolveEnded = resolve));
    const finish = (outcome: 'end' | 'aborted') => {
      if (this.outcome) return;
      this.outcome = outcome;
      resolveResponded();
      resolveEnded(outcome);
      this.notify();
    };
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) headers['Content-Type'] ??= 'application/json';
    if (options.length !== undefined) headers['Content-Length'] = String(options.length);
    this.req = httpRequest(url, { method: options.method ?? (options.body === undefined ? 'GET' : 'POST'), headers, agent: false }, (res) => {
      this.response = res;
      this.status = res.statusCode ?? 0;
      this.headers = res.headers;
      resolveResponded();
      const isStream = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (isStream) this.parse(chunk);
        else this.body += chunk;
        this.notify();
      });
      res.on('end', () => finish('end'));
      res.on('aborted', () => finish('aborted'));
      res.on('error', () => finish('aborted'));
      res.on('close', () => finish(res.complete ? 'end' : 'aborted'));
    });
    this.req.on('error', () => finish('aborted'));
    for (const part of Array.isArray(options.body) ? options.body : options.body === undefined ? [] : [options.body]) this.req.write(part);
    if (!options.hold) this.req.end();
  }

  /** Sends the rest of a held body (`hold: true`) and ends the request. */
  finishBody(rest: string): void {
    this.req.end(rest);
  }

  /** The JSON data of every frame. */
  get data(): Array<Record<string, unknown>> {
    return this.frames.map((frame) => (frame.data === '[DONE]' ? { type: '[DONE]' } : (JSON.parse(frame.data) as Record<string, unknown>)));
  }

  /** The id of the last frame with one (EventSource's Last-Event-ID). */
  get lastEventId(): string | undefined {
    for (let i = this.frames.length - 1; i >= 0; i--) if (this.frames[i]!.id !== undefined) return this.frames[i]!.id;
    return undefined;
  }

  get error(): { code: string; message: string; field?: string } {
    return (JSON.parse(this.body) as { error: { code: string; message: string; field?: string } }).error;
  }

  waitFor(predicate: (exchange: this) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (predicate(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`gave up waiting for ${what}; frames: ${this.frames.length}, status ${this.status}`)), timeoutMs);
      const check = () => {
        if (predicate(this)) {
          clearTimeout(timer);
          resolve();
        } else if (this.outcome) {
          clearTimeout(timer);
          reject(new Error(`the exchange ended before ${what} (status ${this.status}, ${this.frames.length} frames): ${this.body.slice(0, 300)}`));
        } else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  pause(): void {
    this.response?.pause();
  }

  resume(): void {
    this.response?.resume();
  }

  /** Sends the rest of a held body. */
  write(text: string, end = true): void {
    this.req.write(text);
    if (end) this.req.end();
  }

  /** Cuts the connection (a network drop). */
  destroy(): void {
    this.req.destroy();
    this.response?.destroy();
  }

  private notify(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  private parse(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      if (line === '') {
        if (this.pending.data.length > 0) this.frames.push({ id: this.pending.id, data: this.pending.data.join('\n') });
        this.pending = { data: [] };
      } else if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
      else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') this.pending.data.push(value);
        else if (field === 'id') this.pending.id = value;
      }
    }
  }
}

/** POSTs `body` (JSON unless a string or parts) to the surface as `token`. */
export function post(fixture: Pick<SurfaceFixture, 'url'>, token: string | undefined, body: unknown, options: { headers?: Record<string, string>; hold?: boolean; length?: number } = {}): Exchange {
  const headers: Record<string, string> = { ...options.headers };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  const text = typeof body === 'string' || Array.isArray(body) ? (body as string | string[]) : JSON.stringify(body);
  return new Exchange(fixture.url, { headers, body: text, hold: options.hold, length: options.length });
}

/** Whether a frame is the run's last (AG-UI RUN_FINISHED / RUN_ERROR; useChat `[DONE]`). */
export function isLastFrame(kind: SurfaceKind, data: Record<string, unknown>): boolean {
  return kind === 'agui' ? data.type === 'RUN_FINISHED' || data.type === 'RUN_ERROR' : data.type === '[DONE]';
}

/** The code of the server's closing message (AG-UI `RUN_ERROR` without id; useChat `error` chunk `CODE: …`). */
export function closingCode(kind: SurfaceKind, exchange: Exchange): string | undefined {
  if (kind === 'agui') {
    const last = exchange.frames.at(-1);
    if (!last || last.id !== undefined) return undefined;
    const data = JSON.parse(last.data) as { type: string; code?: string };
    return data.type === 'RUN_ERROR' ? data.code : undefined;
  }
  const error = exchange.data.find((chunk) => chunk.type === 'error');
  return typeof error?.errorText === 'string' ? error.errorText.split(':')[0] : undefined;
}
