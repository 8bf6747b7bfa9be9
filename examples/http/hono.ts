/**
 * The SSE, AG-UI and useChat surfaces on Hono, through their web-standard handlers
 * (`(request: Request) => Promise<Response>`). Run: `npx tsx examples/http/hono.ts`, then e.g.
 *
 *   curl -N -H 'authorization: Bearer demo-alice' -H 'content-type: application/json' \
 *     -d '{"threadId":"t1","runId":"","messages":[{"id":"m1","role":"user","content":"What is Redis?"}],"tools":[],"context":[],"state":{},"forwardedProps":{}}' \
 *     http://127.0.0.1:8787/agui
 *   curl -N 'http://127.0.0.1:8787/events?threadId=t1&token=demo-alice'
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { agui, chat, closeSurfaces, sse } from './surfaces.js';

export const app = new Hono();
// `fetch` is a method: call it on its handler (`(c) => sse.fetch(c.req.raw)`), do not pass it bare.
app.on(['GET', 'OPTIONS'], '/events', (c) => sse.fetch(c.req.raw));
app.on(['GET', 'POST', 'OPTIONS'], '/agui', (c) => agui.fetch(c.req.raw));
app.on(['POST', 'OPTIONS'], '/api/chat', (c) => chat.fetch(c.req.raw));
app.get('/api/chat/:id/stream', (c) => chat.fetch(c.req.raw));

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 8787);
  const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, ({ port }) => {
    console.log(`agentwire on Hono: http://127.0.0.1:${port}/events, /agui, /api/chat`);
  });
  process.once('SIGINT', () => {
    void closeSurfaces().then(() => server.close());
  });
}
