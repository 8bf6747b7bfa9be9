/**
 * Next.js route handler: app/agui/route.ts. AG-UI clients (`new HttpAgent({ url: '/agui' })`,
 * CopilotKit) POST a `RunAgentInput`; `GET /agui?threadId=…&runId=…` with `Last-Event-ID`
 * resumes a run's stream after the last frame received.
 */
import { agui } from '../../../surfaces.js';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export const POST = (request: Request): Promise<Response> => agui.fetch(request);
export const GET = POST;
export const OPTIONS = POST;
