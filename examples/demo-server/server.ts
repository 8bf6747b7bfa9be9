import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { AgentBridge, MemoryTransport, ValidationError } from '../../src/index.js';
import { threadIdSchema } from '../../src/protocol/index.js';
import { createAguiHandler, lastUserText } from '../../src/agui/index.js';
import { createMetricsRegistry, metricsHandler, sseGatewayMetrics, websocketGatewayMetrics } from '../../src/metrics/index.js';
import { AnswerEndpoint, SseGateway } from '../../src/transport/sse/index.js';
import { fromNodeRequest } from '../../src/gateway/index.js';
import { WebSocketGateway } from '../../src/transport/websocket/index.js';
import { ResearchAgent } from '../research-agent.js';
import { demoAuthenticate } from './auth.js';
import { buildDemoBundles, CLIENT_URL } from './bundle.js';
import { HttpError, readJson, sendError, sendJson, sendText } from './http.js';
import { RunRefusal, RunService, type StartedRun } from './runs.js';

export interface DemoServerOptions {
  /** TCP port; 0 picks a free one. Default 4173. */
  port?: number;
  /** Interface to listen on. Default `'127.0.0.1'` (the demo is not meant to be exposed). */
  host?: string;
  /** Extra latency added to every tool call, so a run lasts long enough to interrupt it. Default 0. */
  toolDelayMs?: number;
  /** Runs one user may have in progress. Default 3. */
  maxRunsPerUser?: number;
  /** Runs in progress across all users. Default 50. */
  maxRuns?: number;
}

export interface DemoServer {
  /** The page's address, e.g. `http://127.0.0.1:4173/`. */
  url: string;
  port: number;
  /** The in-memory event log both gateways serve. */
  transport: MemoryTransport;
  bridge: AgentBridge;
  agent: ResearchAgent;
  /** What `POST /api/runs` does, without HTTP. */
  startRun(userId: string, threadId: string, question: string): Promise<StartedRun>;
  /**
   * Simulates a network failure: destroys every open TCP connection (page loads, WebSockets,
   * SSE streams) without a close handshake. Clients reconnect and resume from their cursor.
   */
  dropConnections(): number;
  /** Cancels runs in progress, ends every stream and closes the server. */
  close(): Promise<void>;
}

const webFile = (name: string) => fileURLToPath(new URL(`../web/${name}`, import.meta.url));
const runRequestSchema = z.object({
  question: z.string().trim().min(1, 'question must not be empty').max(500, 'question must be at most 500 characters'),
  threadId: threadIdSchema,
});
const MAX_BODY_BYTES = 16 * 1024;

/**
 * The demo: one `http.Server` serving the chat page, the browser client bundle, `POST /api/runs`
 * (starts a ResearchAgent run for the authenticated user), the WebSocket gateway at `/ws` and
 * the SSE gateway at `/events`, all over one in-memory event log.
 */
export async function startDemoServer(options: DemoServerOptions = {}): Promise<DemoServer> {
  const [bundles, html, css] = await Promise.all([
    buildDemoBundles(),
    readFile(webFile('index.html'), 'utf8'),
    readFile(webFile('style.css'), 'utf8'),
  ]);
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  await bridge.initialize();
  const agent = new ResearchAgent({ bridge, toolDelayMs: options.toolDelayMs ?? 0 });
  const runs = new RunService({
    agent,
    bridge,
    transport,
    maxRunsPerUser: options.maxRunsPerUser ?? 3,
    maxRuns: options.maxRuns ?? 50,
  });
  const sse = new SseGateway({ log: transport, authenticate: demoAuthenticate, path: '/events', retryMs: 1_000 });
  // AG-UI clients (CopilotKit, @ag-ui/client's HttpAgent) POST RunAgentInput here; the run goes through
  // the same bridge, so the user's WebSocket/SSE pages see it live too.
  // The stream is read from the log (like /ws and /events), so an AG-UI run can be resumed:
  // GET /agui?threadId=…&runId=… with Last-Event-ID.
  const agui = createAguiHandler({
    agent,
    log: transport,
    authenticate: demoAuthenticate,
    toInput: (input) => {
      const question = lastUserText(input)?.trim();
      if (!question) throw new ValidationError('Send a user message with the question', { field: 'messages' });
      return { question };
    },
  });

  const pageHeaders = {
    'Content-Security-Policy': "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'none'",
  };
  const assets: Record<string, [contentType: string, body: string, headers?: Record<string, string>]> = {
    '/': ['text/html; charset=utf-8', html, pageHeaders],
    '/index.html': ['text/html; charset=utf-8', html, pageHeaders],
    '/style.css': ['text/css; charset=utf-8', css],
    '/app.js': ['text/javascript; charset=utf-8', bundles.app],
    [CLIENT_URL]: ['text/javascript; charset=utf-8', bundles.client],
  };

  const answers = new AnswerEndpoint({ authenticate: demoAuthenticate, log: transport });

  async function authenticatePost(req: IncomingMessage) {
    const view = fromNodeRequest(req);
    const principal = view ? await demoAuthenticate(view) : null;
    if (!principal) throw new HttpError(401, 'AUTH_FAILED', 'missing or invalid token (demo tokens look like "demo-alice")');
    return principal;
  }

  async function postRun(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const principal = await authenticatePost(req);
    const parsed = runRequestSchema.safeParse(await readJson(req, MAX_BODY_BYTES));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new HttpError(400, 'VALIDATION_FAILED', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
    }
    const run = await runs.start(principal.userId, parsed.data.threadId, parsed.data.question);
    sendJson(res, 202, { runId: run.runId, threadId: run.threadId });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (sse.handle(req, res) || agui.handle(req, res)) return;
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/api/runs') {
      if (req.method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'use POST');
      return postRun(req, res);
    }
    // Allow / Deny: answers go to the same log the run waits on (the page posts them for WebSocket and SSE alike).
    if (path === '/api/answer') return answers.node(req, res);
    if (path === '/api/runs/cancel') {
      if (req.method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'use POST');
      const principal = await authenticatePost(req);
      const body = z.object({ runId: z.string().min(1).max(512) }).safeParse(await readJson(req, MAX_BODY_BYTES));
      if (!body.success) throw new HttpError(400, 'VALIDATION_FAILED', 'runId: required');
      if (!runs.cancel(principal.userId, body.data.runId)) throw new HttpError(404, 'NOT_FOUND', 'no run of yours in progress with that id');
      return sendJson(res, 202, { runId: body.data.runId, cancelled: true });
    }
    if (path === '/metrics') return serveMetrics(req, res);
    if (path === '/api/health') {
      return sendJson(res, 200, { bridge: await bridge.health(), websocket: ws.stats(), sse: sse.stats(), runs: runs.activeCount });
    }
    const asset = assets[path];
    if (!asset) throw new HttpError(404, 'NOT_FOUND', `no route for ${path}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'use GET');
    const [contentType, body, headers] = asset;
    sendText(res, contentType, body, headers);
  }

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      if (error instanceof HttpError || error instanceof RunRefusal) {
        return sendError(res, error.status, error.code, error.message);
      }
      console.error('demo server error:', error);
      sendError(res, 500, 'INTERNAL_ERROR', 'something went wrong');
    });
  });
  const ws = new WebSocketGateway({ transport, authenticate: demoAuthenticate, server, path: '/ws' });
  const serveMetrics = metricsHandler(
    createMetricsRegistry({
      bridges: { default: bridge },
      gateways: { ws: websocketGatewayMetrics(ws), sse: sseGatewayMetrics(sse), agui },
    }),
  );
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 4173, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}/`,
    port: address.port,
    transport,
    bridge,
    agent,
    startRun: (userId, threadId, question) => runs.start(userId, threadId, question),
    dropConnections() {
      const count = sockets.size;
      for (const socket of sockets) socket.destroy();
      return count;
    },
    close() {
      closing ??= (async () => {
        await runs.abortAll();
        await agui.close();
        await bridge.close();
        await Promise.all([ws.close(), sse.close()]);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await transport.close();
      })();
      return closing;
    },
  };
}
