import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AnyRegistry } from './registry.js';

export interface MetricsHandlerOptions {
  /**
   * Decides whether a request may read the metrics (false answers 403). Default: everyone —
   * keep the route on an internal port or behind your proxy's access rules.
   */
  authorize?: (req: IncomingMessage) => boolean | Promise<boolean>;
}

/** A `GET /metrics` handler for node:http / express: the registry in its text format (Prometheus by default). */
export function metricsHandler(registry: AnyRegistry, options: MetricsHandlerOptions = {}): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'text/plain; charset=utf-8', 'Use GET\n', { Allow: 'GET, HEAD' });
      if (options.authorize && !(await options.authorize(req))) return reply(res, 403, 'text/plain; charset=utf-8', 'Forbidden\n');
      const body = await registry.metrics();
      reply(res, 200, registry.contentType, req.method === 'HEAD' ? '' : body, { 'Content-Length': String(Buffer.byteLength(body)) });
    } catch (error) {
      reply(res, 500, 'text/plain; charset=utf-8', `Metrics collection failed: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  };
}

function reply(res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store', ...headers });
  res.end(body);
}
