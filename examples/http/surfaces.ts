/**
 * What every example in this folder mounts: one agent, one log, and the three HTTP surfaces that
 * read it (SSE, AG-UI, useChat), built once per process. In your app, import from `agentwire`,
 * `agentwire/gateway/sse`, `agentwire/agui` and `agentwire/ai-sdk` instead of ../../src.
 */
import type { UIMessage } from 'ai';
import { AgentBridge, MemoryTransport, ValidationError } from '../../src/index.js';
import { SseGateway } from '../../src/gateway/sse/index.js';
import { createAguiHandler, lastUserText } from '../../src/agui/index.js';
import { createChatHandler } from '../../src/ai-sdk/index.js';
import { demoAuthenticate } from '../demo-server/auth.js';
import { ResearchAgent } from '../research-agent.js';

/** The thread logs every surface reads; the agent's bridge writes to it. Use a RedisStreamsTransport to scale out. */
export const log = new MemoryTransport();
export const agent = new ResearchAgent({ bridge: new AgentBridge({ transport: log }) });

/**
 * DEMO-ONLY auth: the token `demo-<user>` (Bearer header or ?token=) is user `<user>`. Verify a
 * real session or signed token here; the same hook serves node and web handlers.
 */
const authenticate = demoAuthenticate;
/** A front end on another origin (a Next.js dev server on :3000) may call these surfaces. */
const allowedOrigins = ['http://localhost:3000'];

function lastUserMessageText(messages: readonly UIMessage[]): string | undefined {
  const last = [...messages].reverse().find((message) => message.role === 'user');
  const text = last?.parts.map((part) => (part.type === 'text' ? part.text : '')).join('').trim();
  return text || undefined;
}

/** `GET /events?threadId=…`: the thread's events as SSE, resumed with Last-Event-ID. */
export const sse = new SseGateway({ log, authenticate, allowedOrigins });

/** `POST /agui` starts a run (AG-UI `RunAgentInput`), `GET /agui?threadId&runId` resumes it. */
export const agui = createAguiHandler({
  agent,
  log,
  authenticate,
  allowedOrigins,
  toInput: (input) => {
    const question = lastUserText(input);
    if (!question) throw new ValidationError('Send a user message', { field: 'messages' }); // 400
    return { question };
  },
});

/** `POST /api/chat` (useChat) starts a run, `GET /api/chat/:id/stream` resumes it. */
export const chat = createChatHandler({
  agent,
  log,
  authenticate,
  allowedOrigins,
  input: (request) => {
    const question = lastUserMessageText(request.messages);
    if (!question) throw new ValidationError('Send a user message', { field: 'messages' }); // 400
    return { question };
  },
});

/** Ends every stream and run, then the log (the examples call it on SIGINT). */
export async function closeSurfaces(): Promise<void> {
  await Promise.all([sse.close(), agui.close(), chat.close()]);
  await log.close();
}
