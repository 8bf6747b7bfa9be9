/**
 * Helpers for the hot-path attack tests: a raw `ws` peer that records every message exactly as it
 * arrived (bytes and text), hand-built events checked with the public `parseEvent`, and a token
 * auth hook. Public imports only; the receiving peer is the barrier (never a sleep).
 */
import WebSocket from 'ws';
import { AgentBridge, MemoryTransport, generateRunId, parseEvent, tokenFrom, type AgentEvent, type Authenticate } from '../../src/index.js';
import { WebSocketGateway } from '../../src/gateway/websocket/index.js';

/** `Bearer u-<userId>` (or `?token=u-<userId>`) authenticates as `<userId>`; anything else is refused. */
export const authenticate: Authenticate = (request) => {
  const token = tokenFrom(request);
  return token?.startsWith('u-') ? { userId: token.slice(2) } : null;
};

export interface Frame {
  type: string;
  threadId?: string;
  cursor?: string;
  event?: AgentEvent;
  code?: string;
  message?: string;
  replayed?: number;
  [key: string]: unknown;
}

export interface Received {
  /** The message's text, decoded strictly (a byte sequence that is not UTF-8 throws on receipt). */
  text: string;
  bytes: number;
  frames: Frame[];
}

const strict = new TextDecoder('utf-8', { fatal: true });

/** A raw client: records messages, frames and the close; `until()` waits for a condition on what arrived. */
export class Peer {
  readonly messages: Received[] = [];
  readonly frames: Frame[] = [];
  readonly binaryMessages: number[] = [];
  readonly decodeErrors: string[] = [];
  close: { code: number; reason: string } | undefined;
  pings = 0;
  private waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.binaryMessages.push(data.length);
      let text: string;
      try {
        text = strict.decode(data);
      } catch (error) {
        this.decodeErrors.push(String(error));
        text = data.toString('utf8');
      }
      const parsed = JSON.parse(text) as Frame | Frame[];
      const frames = Array.isArray(parsed) ? parsed : [parsed];
      this.messages.push({ text, bytes: data.length, frames });
      this.frames.push(...frames);
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.close = { code, reason: reason.toString() };
      this.wake();
    });
    ws.on('error', () => this.wake());
    ws.on('ping', () => {
      this.pings++;
      this.wake();
    });
  }

  static open(url: string, userId: string, options: WebSocket.ClientOptions = {}): Promise<Peer> {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer u-${userId}` }, ...options });
    const peer = new Peer(ws);
    return new Promise((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
      // The hello frame is the first thing a server sends: wait for it, so the connection is registered
      // (or for a close before it: the caller reads `close`).
      void peer.until(() => peer.close !== undefined || peer.frames.some((f) => f.type === 'hello'), 5_000, 'hello').then(() => resolve(peer), reject);
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  async subscribe(threadId: string, after?: string): Promise<Frame> {
    const before = this.frames.length;
    this.send(after === undefined ? { type: 'subscribe', threadId } : { type: 'subscribe', threadId, after });
    await this.until(() => this.frames.slice(before).some((f) => (f.type === 'subscribed' || f.type === 'history_gap' || f.type === 'error') && f.threadId === threadId), 5_000, `subscribed ${threadId}`);
    return this.frames.slice(before).find((f) => f.threadId === threadId && f.type !== 'event')!;
  }

  /** Event frames received, optionally for one thread. */
  events(threadId?: string): Frame[] {
    return this.frames.filter((f) => f.type === 'event' && (threadId === undefined || f.threadId === threadId));
  }

  errors(): Frame[] {
    return this.frames.filter((f) => f.type === 'error');
  }

  /** Resolves once `condition()` holds (checked on every message and on close); rejects after `timeoutMs`. */
  until(condition: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!condition()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}: ${this.frames.length} frames, ${this.events().length} events, close ${JSON.stringify(this.close)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  closed(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    return this.until(() => this.close !== undefined, timeoutMs, 'close').then(() => this.close!);
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** Builds one run's valid events (checked with `parseEvent`), with `seq` from 1. */
export class RunBuilder {
  readonly runId: string;
  private seq = 0;
  constructor(readonly userId: string, readonly threadId: string, readonly agent = 'attack') {
    this.runId = generateRunId(threadId);
  }
  private make(type: AgentEvent['type'], data: Record<string, unknown>): AgentEvent {
    const seq = ++this.seq;
    const event = { v: 1, id: `${this.runId}.${seq}`, type, runId: this.runId, threadId: this.threadId, userId: this.userId, agent: this.agent, seq, ts: Date.now(), data };
    return parseEvent(event);
  }
  started(): AgentEvent {
    return this.make('agent_started', { metadata: {} });
  }
  thinking(text: string): AgentEvent {
    return this.make('agent_thinking', { text });
  }
  completed(): AgentEvent {
    return this.make('agent_completed', { status: 'succeeded', result: 'ok', durationMs: 1 });
  }
  /** An event whose fields are not checked (for hostile sends: the gateway must refuse it alone). */
  raw(type: AgentEvent['type'], data: unknown, overrides: Record<string, unknown> = {}): AgentEvent {
    const seq = ++this.seq;
    return { v: 1, id: `${this.runId}.${seq}`, type, runId: this.runId, threadId: this.threadId, userId: this.userId, agent: this.agent, seq, ts: Date.now(), data, ...overrides } as unknown as AgentEvent;
  }
}

/** Settles the promise and returns what it rejected with (or undefined). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error;
  }
}

/** Strings that stress encoders: multi-byte UTF-8, lone surrogates, separators, escapes. */
export const NASTY = [
  'emoji 😀🎉👩‍👩‍👧‍👦🏳️‍🌈',
  'CJK 漢字かなカナ한국어',
  'lone high \ud83d end',
  'lone low \ude00 end',
  'reversed pair \ude00\ud83d',
  'separators \u2028 and \u2029',
  'escapes " \\ / \b \f \n \r \t \u0000 \u001f \u007f',
  'html </script><!-- & \u003c',
  'bom \ufeff and nonchar \uffff \ufffe',
  'astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎𠜱',
  'combining e\u0301 a\u030a',
];

/** Opens a peer and registers its teardown with the test file's cleanups. */
export async function openPeer(cleanups: Array<() => Promise<void> | void>, url: string, userId: string, options?: WebSocket.ClientOptions): Promise<Peer> {
  const p = await Peer.open(url, userId, options);
  cleanups.push(() => {
    p.ws.terminate();
  });
  return p;
}

/** A WebSocket gateway on a memory log, listening, with an `AgentBridge` sending through it; both closed by `cleanups`. */
export async function bridgedGateway(cleanups: Array<() => Promise<void> | void>) {
  const gateway = new WebSocketGateway({ authenticate, log: new MemoryTransport() });
  const { url } = await gateway.listen(0);
  cleanups.push(() => gateway.close());
  const bridge = new AgentBridge({ transport: gateway });
  await bridge.initialize();
  cleanups.push(() => bridge.close());
  return { gateway, url, bridge };
}
