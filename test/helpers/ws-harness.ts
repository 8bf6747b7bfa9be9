import type { Socket } from 'node:net';
import WebSocket, { type ClientOptions } from 'ws';
import {
  AgentBridge,
  BaseAgent,
  MemoryTransport,
  tokenFrom,
  type AgentEvent,
  type Authenticate,
  type MemoryTransportOptions,
} from '../../src/index.js';
import { type ServerFrame } from '../../src/protocol/index.js';
import { connect, type AgentwireClient, type ConnectOptions } from '../../src/client/node.js';
import { WebSocketGateway, type WebSocketGatewayOptions } from '../../src/transport/websocket/index.js';
import { ScriptedAgent } from './agents.js';
import { recordClient } from './client-recorder.js';
import { until } from './wait.js';

export { until };

/** Test tokens are `token-<userId>`; anything else is refused. */
export const tokenOf = (userId: string): string => `token-${userId}`;
export const authenticate: Authenticate = (request) => {
  const token = tokenFrom(request);
  return token?.startsWith('token-') && token.length > 6 ? { userId: token.slice(6) } : null;
};

/** Emits `thoughts` agent_thinking events, yielding to the event loop every `yieldEvery` of them. */
export class BurstAgent extends BaseAgent<{ thoughts: number; yieldEvery?: number; text?: string }, number> {
  protected async execute({ thoughts, yieldEvery = 0, text = 'step' }: { thoughts: number; yieldEvery?: number; text?: string }): Promise<number> {
    for (let i = 0; i < thoughts; i++) {
      await this.think(`${text} ${i}`, i);
      if (yieldEvery > 0 && i % yieldEvery === yieldEvery - 1) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    return thoughts;
  }
}

export type GatewaySetupOptions = Partial<WebSocketGatewayOptions> & { memory?: MemoryTransportOptions };

/** A real gateway on 127.0.0.1:0 over a real MemoryTransport, with a bridge and real agents writing to it. */
export async function startGateway(options: GatewaySetupOptions = {}) {
  const { memory, ...gatewayOptions } = options;
  const transport = new MemoryTransport(memory);
  const gateway = new WebSocketGateway({ authenticate, transport, ...gatewayOptions });
  const address = await gateway.listen(0, '127.0.0.1');
  const bridge = new AgentBridge({ transport: gateway });
  await bridge.initialize();
  const agent = new ScriptedAgent({ bridge });
  const burst = new BurstAgent({ name: 'burst', bridge });
  return {
    transport,
    gateway,
    bridge,
    agent,
    burst,
    url: address.url,
    port: address.port,
    async stop(): Promise<void> {
      await bridge.close();
      await gateway.close();
      await transport.close();
    },
  };
}

/** A real `agentwire/client` that records everything it hands to the application. */
export function follow(url: string, userId: string, threadId: string, options: Partial<ConnectOptions> = {}) {
  const client: AgentwireClient = connect(url, {
    token: tokenOf(userId),
    threadId,
    reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
    ...options,
  });
  return { ...recordClient(client), userId, threadId };
}

/**
 * A raw `ws` client that records every message the gateway sent it: `messages` as parsed (an
 * object, or an array for a batch), `frames` flattened, and how the socket closed.
 */
export class RawClient {
  readonly messages: unknown[] = [];
  readonly frames: ServerFrame[] = [];
  closed: { code: number; reason: string } | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const message: unknown = JSON.parse(String(data));
      this.messages.push(message);
      this.frames.push(...((Array.isArray(message) ? message : [message]) as ServerFrame[]));
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) };
    });
    ws.on('error', () => undefined);
  }

  /** Opens and waits for the gateway's `hello`. */
  static async open(url: string, userId: string | undefined, options: ClientOptions = {}): Promise<RawClient> {
    const client = await RawClient.connect(url, userId, options);
    await client.waitFor(() => client.frames.some((frame) => frame.type === 'hello'), 'hello');
    return client;
  }

  /** Resolves once the socket is open (the gateway may close it right away). */
  static async connect(url: string, userId: string | undefined, options: ClientOptions = {}): Promise<RawClient> {
    const target = userId === undefined ? url : `${url}?token=${tokenOf(userId)}`;
    const client = new RawClient(new WebSocket(target, options));
    await new Promise<void>((resolve, reject) => {
      client.ws.once('open', () => resolve());
      client.ws.once('error', reject);
    });
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  subscribe(threadId: string, after?: string): void {
    this.send(after === undefined ? { type: 'subscribe', threadId } : { type: 'subscribe', threadId, after });
  }

  ofType<T extends ServerFrame['type']>(type: T): Extract<ServerFrame, { type: T }>[] {
    return this.frames.filter((frame): frame is Extract<ServerFrame, { type: T }> => frame.type === type);
  }

  events(): AgentEvent[] {
    return this.ofType('event').map((frame) => frame.event);
  }

  /** The underlying TCP socket (to pause reading and simulate a slow consumer). */
  get tcp(): Socket {
    return (this.ws as unknown as { _socket: Socket })._socket;
  }

  waitFor(predicate: () => boolean, what: string): Promise<void> {
    return until(predicate, what);
  }

  waitForClose(): Promise<{ code: number; reason: string }> {
    return until(() => this.closed !== undefined, 'close').then(() => this.closed!);
  }

  close(): void {
    this.ws.close();
  }
}

/** The HTTP status an upgrade to `url` was refused with (the test fails if a socket opens). */
export function refusedStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      response.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      ws.terminate();
      reject(new Error(`a socket opened for ${url}`));
    });
    ws.on('error', () => undefined);
  });
}

/** Events of many agents' runs for one user and thread, as the log holds them (the reference a client must match). */
export function logged(transport: MemoryTransport, userId: string, threadId: string): AgentEvent[] {
  return transport.read(threadId, userId);
}
