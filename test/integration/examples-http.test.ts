/**
 * The mounts in examples/http work as their comments and docs/interop.md say: the Next.js route
 * modules answer plain `Request`s the way a route handler receives them, the Hono app serves all
 * three surfaces, and the shared origin policy and auth hold. Asserted on what a reader of each
 * response received.
 */
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { app as expressApp } from '../../examples/http/express.js';
import { app } from '../../examples/http/hono.js';
import * as aguiRoute from '../../examples/http/nextjs/app/agui/route.js';
import * as chatRoute from '../../examples/http/nextjs/app/api/chat/route.js';
import * as streamRoute from '../../examples/http/nextjs/app/api/chat/[id]/stream/route.js';
import * as eventsRoute from '../../examples/http/nextjs/app/events/route.js';
import { closeSurfaces } from '../../examples/http/surfaces.js';

const BASE = 'http://127.0.0.1:3001';
const alice = { authorization: 'Bearer demo-alice' };

function chatBody(id: string, text: string): string {
  return JSON.stringify({ id, trigger: 'submit-message', messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text }] }] });
}

/** The `data:` payloads of an SSE body, parsed (the UI message stream's closing `[DONE]` left out). */
function dataOf(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line.startsWith('data: ') && line !== 'data: [DONE]')
    .map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>);
}

afterAll(async () => {
  await closeSurfaces();
});

describe('examples/http', () => {
  it('Next.js app/api/chat/route.ts streams a useChat run to its end', async () => {
    const response = await chatRoute.POST(
      new Request(`${BASE}/api/chat`, { method: 'POST', headers: { ...alice, 'content-type': 'application/json' }, body: chatBody('chat-next', 'What is Redis?') }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const chunks = dataOf(await response.text());
    expect(chunks[0]).toMatchObject({ type: 'start' });
    expect(String(chunks[0]!.messageId)).toMatch(/^thread_chat-next_run_\d+_[A-Za-z0-9]{12}$/);
    expect(chunks.map((chunk) => chunk.type)).toContain('tool-input-available');
    expect(chunks.at(-1)).toMatchObject({ type: 'finish' });
    expect(streamRoute.GET).toBeTypeOf('function');
  });

  it('refuses a request without a token (401) and another origin (403), answers an allowed preflight', async () => {
    const anonymous = await chatRoute.POST(
      new Request(`${BASE}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody('chat-anon', 'hi') }),
    );
    expect(anonymous.status).toBe(401);
    const foreign = await eventsRoute.GET(new Request(`${BASE}/events?threadId=chat-other`, { headers: { ...alice, origin: 'https://evil.example' } }));
    expect(foreign.status).toBe(403);
    const preflight = await chatRoute.OPTIONS(
      new Request(`${BASE}/api/chat`, {
        method: 'OPTIONS',
        headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
      }),
    );
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
  });

  it('Next.js app/events/route.ts replays the thread as SSE; another user gets 403', async () => {
    const run = await chatRoute.POST(
      new Request(`${BASE}/api/chat`, { method: 'POST', headers: { ...alice, 'content-type': 'application/json' }, body: chatBody('chat-events', 'Why SSE?') }),
    );
    await run.text(); // the run has ended: its events are in the log
    const controller = new AbortController();
    const response = await eventsRoute.GET(new Request(`${BASE}/events?threadId=chat-events`, { headers: alice, signal: controller.signal }));
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('event: agent_completed')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    controller.abort();
    await reader.cancel().catch(() => undefined);
    expect(text).toContain('event: agent_started');
    expect(text).toContain('event: agent_completed');
    const bob = await eventsRoute.GET(new Request(`${BASE}/events?threadId=chat-events`, { headers: { authorization: 'Bearer demo-bob' } }));
    expect(bob.status).toBe(403);
  });

  it('the Hono app and app/agui/route.ts serve AG-UI runs', async () => {
    const input = (threadId: string) =>
      JSON.stringify({ threadId, runId: '', messages: [{ id: 'm1', role: 'user', content: 'What is Redis?' }], tools: [], context: [], state: {}, forwardedProps: {} });
    const viaHono = await app.request('/agui', { method: 'POST', headers: { ...alice, 'content-type': 'application/json' }, body: input('agui-hono') });
    expect(viaHono.status).toBe(200);
    const honoTypes = dataOf(await viaHono.text()).map((event) => event.type);
    expect(honoTypes[0]).toBe('RUN_STARTED');
    expect(honoTypes.at(-1)).toBe('RUN_FINISHED');
    const viaNext = await aguiRoute.POST(
      new Request(`${BASE}/agui`, { method: 'POST', headers: { ...alice, 'content-type': 'application/json' }, body: input('agui-next') }),
    );
    expect(dataOf(await viaNext.text()).at(-1)).toMatchObject({ type: 'RUN_FINISHED' });
    const empty = await aguiRoute.POST(
      new Request(`${BASE}/agui`, {
        method: 'POST',
        headers: { ...alice, 'content-type': 'application/json' },
        body: JSON.stringify({ threadId: 'agui-empty', runId: '', messages: [], tools: [], context: [], state: {}, forwardedProps: {} }),
      }),
    );
    expect(empty.status).toBe(400);
  });

  it('the Express app serves useChat and SSE through the node handlers', async () => {
    const server = expressApp.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const run = await fetch(`${base}/api/chat`, { method: 'POST', headers: { ...alice, 'content-type': 'application/json' }, body: chatBody('chat-express', 'Why Express?') });
      expect(run.status).toBe(200);
      expect(dataOf(await run.text()).at(-1)).toMatchObject({ type: 'finish' });
      const resume = await fetch(`${base}/api/chat/chat-express/stream`, { headers: alice });
      expect(resume.status).toBe(204); // the run has finished: nothing to resume
      const other = await fetch(`${base}/`);
      expect(await other.text()).toContain('agentwire on Express');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
