/**
 * Next.js route handler: app/events/route.ts. `new EventSource('/events?threadId=…&token=…')`
 * follows a thread; EventSource resumes with `Last-Event-ID` by itself.
 */
import { sse } from '../../../surfaces.js';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export const GET = (request: Request): Promise<Response> => sse.fetch(request);
export const OPTIONS = GET;
