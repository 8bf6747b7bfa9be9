/**
 * Next.js App Router route handler: app/api/chat/route.ts. `useChat` POSTs here
 * (`new DefaultChatTransport({ api: '/api/chat' })`, the default `api`).
 *
 * The handlers are built once per server process in one module that every route imports
 * (here ../../../../surfaces.ts; in your app e.g. lib/agentwire.ts). The agent runs inside the
 * Next.js server, so use the Node.js runtime and never cache these routes.
 */
import { chat } from '../../../../surfaces.js';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

// `fetch` is a method: wrap it (or `chat.fetch.bind(chat)`); `export const POST = chat.fetch` loses `this`.
export const POST = (request: Request): Promise<Response> => chat.fetch(request);
export const OPTIONS = POST; // CORS preflight, when the page is on another origin (allowedOrigins)
