import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AuthError,
  generateRunId,
  tokenFrom,
  type Authenticate,
  type MemoryTransport,
} from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { SseGateway, type SseGatewayOptions } from '../../src/transport/sse/index.js';

/** Test auth hook: `tok-<user>` → user; `expired` → AuthError TOKEN_EXPIRED; anything else → null. */
export const testAuthenticate: Authenticate = (req) => {
  const token = tokenFrom(req);
  if (token === 'expired') throw new AuthError('token expired', { code: 'TOKEN_EXPIRED' });
  return token?.startsWith('tok-') ? { userId: token.slice(4) } : null;
};

export interface GatewayFixture {
  gateway: SseGateway;
  server: Server;
  base: string;
  /** Stream URL of a thread for a user (token in the query, like a browser would). */
  url(threadId: string, userId: string, query?: string): string;
  close(): Promise<void>;
}

/** An SseGateway mounted with `handle()` on a plain http.Server at 127.0.0.1:0 (other paths: 404). */
export async function startGateway(options: Partial<SseGatewayOptions> & Pick<SseGatewayOptions, 'log'>): Promise<GatewayFixture> {
  const gateway = new SseGateway({ authenticate: testAuthenticate, ...options });
  const server = createServer((req, res) => {
    if (gateway.handle(req, res)) return;
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not the gateway');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  return {
    gateway,
    server,
    base,
    url: (threadId, userId, query = '') =>
      `${base}${gateway.path}?threadId=${encodeURIComponent(threadId)}&token=tok-${encodeURIComponent(userId)}${query}`,
    async close() {
      await gateway.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/**
 * A run whose events are appended synchronously to a MemoryTransport as they are built
 * (a real RunEmitter: ids, gapless seq, schema checks), so tests control exactly when each
 * part of a burst happens.
 */
export function scriptedRun(transport: MemoryTransport, userId: string, threadId: string) {
  const emitter = new RunEmitter(
    { runId: generateRunId(threadId), threadId, userId, agent: 'sse-test' },
    { onEvent: (event) => void transport.append(event) },
  );
  let calls = 0;
  return {
    emitter,
    start() {
      emitter.emit('agent_started', { metadata: {} });
    },
    /** `count` thinking events, each with a text of about `size` characters. */
    think(count: number, size = 16) {
      for (let i = 0; i < count; i++) {
        emitter.emit('agent_thinking', { text: `step ${emitter.count} `.padEnd(size, 'x') });
      }
    },
    tool(tool = 'echo') {
      const toolCallId = `call-${++calls}`;
      emitter.emit('tool_executing', { toolCallId, tool, args: { n: calls } });
      emitter.emit('tool_completed', { toolCallId, tool, status: 'succeeded', result: calls, durationMs: 1 });
    },
    complete() {
      emitter.emit('agent_completed', { status: 'succeeded', result: 'done', durationMs: 1 });
    },
  };
}
