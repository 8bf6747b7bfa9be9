/**
 * @deprecated Compatibility layer for the AG-UI and useChat handlers until they are ported to the
 * front-end contract (`src/gateway`): new code throws `GatewayError` (or any `AgentwireError`)
 * and answers with `respondNode` / `respondWeb` from `src/gateway/respond.ts`. Remove this file
 * when `src/agui` and `src/ai-sdk` no longer import it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../errors/index.js';
import { readNodeBody } from '../gateway/body.js';
import { DEFAULTS } from '../gateway/options.js';
import { problemOf, type HttpErrorBody } from '../gateway/respond.js';

export type { HttpErrorBody };

/** @deprecated Use `GatewayError` (status from the catalog). */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpProblem';
  }
}

/** @deprecated Use `respondNode(res, error)`. */
export function respondError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
  field?: string,
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body: HttpErrorBody = { error: { code, message, ...(field !== undefined && { field }) } };
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** @deprecated Use `respondNode(res, error)`. */
export function sendProblem(res: ServerResponse, problem: HttpProblem): void {
  respondError(res, problem.status, problem.code, problem.message, problem.headers, problem.field);
}

/** @deprecated Use `fromNodeRequest(req).url`. */
export function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

/**
 * @deprecated Use `readNodeBody(req, options)`. Now backed by it: byte limit, the default depth
 * limit (64, checked without recursion) and the default body timeout (10 s), as `HttpProblem`s.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number, emptyBody?: HttpProblem): Promise<unknown> {
  try {
    return await readNodeBody(req, {
      maxBodyBytes: maxBytes,
      maxBodyDepth: DEFAULTS.maxBodyDepth,
      bodyTimeoutMs: DEFAULTS.bodyTimeoutMs,
      ...(emptyBody && { emptyBody: new GatewayError('INVALID_JSON', emptyBody.message, { field: emptyBody.field }) }),
    });
  } catch (error) {
    if (error instanceof GatewayError && emptyBody && error.message === emptyBody.message) throw emptyBody;
    const problem = problemOf(error);
    throw new HttpProblem(problem.status, problem.body.error.code, problem.body.error.message, problem.body.error.field, problem.headers);
  }
}
