import type { IncomingMessage, ServerResponse } from 'node:http';
import { callOnError, type OnError } from '../gateway/options.js';
import type { AnyRegistry } from './registry.js';
import { checker, shown } from '../errors/options.js';

export interface MetricsHandlerOptions {
  /**
   * Decides whether a request may read the metrics (false answers 403). Default: everyone —
   * keep the route on an internal port or behind your proxy's access rules. A hook that throws
   * answers 500 with a fixed message (the error goes to `onError`, never to the client).
   */
  authorize?: (req: IncomingMessage) => boolean | Promise<boolean>;
  /**
   * Errors of the handler (`authorize` threw: stage `authorize`; collecting failed: stage
   * `collect`), with `surface: 'metrics'`, as on every surface. The client only ever gets a fixed
   * message. A throwing hook changes nothing.
   */
  onError?: OnError;
}

const TEXT = 'text/plain; charset=utf-8';

/** A `GET /metrics` handler for node:http / express: the registry in its text format (Prometheus by default). */
export function metricsHandler(registry: AnyRegistry, options: MetricsHandlerOptions = {}): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const check = checker('metricsHandler()');
  if (typeof (registry as Partial<AnyRegistry> | null)?.metrics !== 'function') throw check.fail('registry', `must be a prom-client Registry (got ${shown(registry)})`);
  if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object (got ${shown(options)})`);
  if (options.authorize !== undefined) check.fn('authorize', options.authorize);
  if (options.onError !== undefined) check.fn('onError', options.onError);
  const report = (error: unknown, stage: 'authorize' | 'collect'): void => callOnError(options.onError, error, { surface: 'metrics', stage });
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, TEXT, 'Use GET\n', { Allow: 'GET, HEAD' });
    if (options.authorize) {
      let allowed: boolean;
      try {
        allowed = await options.authorize(req);
      } catch (error) {
        // The hook's message (a database URL, the token it checked) stays in the process.
        report(error, 'authorize');
        return reply(res, 500, TEXT, 'Authorization check failed\n');
      }
      if (!allowed) return reply(res, 403, TEXT, 'Forbidden\n');
    }
    try {
      const body = await registry.metrics();
      reply(res, 200, registry.contentType, req.method === 'HEAD' ? '' : body, { 'Content-Length': String(Buffer.byteLength(body)) });
    } catch (error) {
      report(error, 'collect');
      reply(res, 500, TEXT, 'Metrics collection failed\n');
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
