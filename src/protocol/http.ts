import type { IncomingMessage, ServerResponse } from 'node:http';

/** The JSON body of every refused HTTP request (SSE, AG-UI, useChat): `{ "error": { "code", "message", "field"? } }`. */
export interface HttpErrorBody {
  error: { code: string; message: string; field?: string };
}

/** A request refused before its stream opened: becomes an HTTP status with a JSON error body. */
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

/** Ends `res` with a JSON error body (when the headers are still unsent; otherwise just ends it). */
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

export function sendProblem(res: ServerResponse, problem: HttpProblem): void {
  respondError(res, problem.status, problem.code, problem.message, problem.headers, problem.field);
}

/** The request's URL relative to a dummy origin (only path and query matter), or undefined if malformed. */
export function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

/**
 * Reads and parses a JSON request body of at most `maxBytes`. Throws `HttpProblem` 413 when it is
 * larger (the rest of the body is discarded and the connection closed after the answer) and 400
 * when it is not JSON, or `emptyBody` when given and the body is empty.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number, emptyBody?: HttpProblem): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    throw tooLarge(maxBytes);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  // destroyOnReturn: false keeps the socket alive for the 413 answer when reading stops early.
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      req.resume();
      throw tooLarge(maxBytes);
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (emptyBody && text.trim().length === 0) throw emptyBody;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpProblem(400, 'INVALID_JSON', `The request body is not JSON: ${(error as Error).message}`, 'body');
  }
}

function tooLarge(maxBytes: number): HttpProblem {
  return new HttpProblem(413, 'BODY_TOO_LARGE', `The request body exceeds ${maxBytes} bytes`, 'body', { Connection: 'close' });
}
