/**
 * The SSE, AG-UI and useChat surfaces on Express, through their node handlers. Each `handle(req,
 * res)` serves its own path (`/events`, `/agui`, `/api/chat` and `/api/chat/:id/stream`) and
 * returns false for any other, so they chain like middleware. Run: `npx tsx examples/http/express.ts`
 * (the same curl lines as in ./hono.ts, on port 8788).
 *
 * Mount them before `express.json()`, or after it: behind a body parser the handlers take the
 * parsed `req.body` (the depth limit still applies; the byte limit is then express.json()'s own).
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { agui, chat, closeSurfaces, sse } from './surfaces.js';

export const app = express();

// `handle` is a method: call it on its handler, do not pass `agui.handle` bare.
app.use((req: Request, res: Response, next: NextFunction) => {
  if (sse.handle(req, res) || agui.handle(req, res) || chat.handle(req, res)) return;
  next();
});
app.get('/', (_req, res) => {
  res.type('text/plain').send('agentwire on Express: /events, /agui, /api/chat\n');
});

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 8788);
  const server = app.listen(port, '127.0.0.1', () => {
    console.log(`agentwire on Express: http://127.0.0.1:${port}/events, /agui, /api/chat`);
  });
  process.once('SIGINT', () => {
    void closeSurfaces().then(() => server.close());
  });
}
