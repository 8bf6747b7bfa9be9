/**
 * Next.js route handler: app/api/chat/[id]/stream/route.ts. `useChat({ resume: true })` GETs
 * this to reconnect to a run still going (204 when there is none); with an `x-agentwire-cursor`
 * header it continues exactly after that event. `chat.fetch` routes by the `/:id/stream` suffix.
 */
import { chat } from '../../../../../../surfaces.js';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export const GET = (request: Request): Promise<Response> => chat.fetch(request);
