import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuthError, ValidationError } from '../../errors.js';
import { AGENTWIRE_CURSOR_HEADER } from '../client.js';

/** Ends `res` with `{ error: { code, message } }` (or just ends it when streaming already began). */
export function respondError(res: ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** 204 No Content: what `useChat` expects when there is no stream to resume. */
export function respondNoContent(res: ServerResponse): void {
  res.writeHead(204, { 'cache-control': 'no-store' });
  res.end();
}

export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpProblem';
  }
}

/** Reads a JSON request body of at most `limit` bytes. Throws `HttpProblem` (413, 400). */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new HttpProblem(413, 'BODY_TOO_LARGE', `Request body exceeds ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpProblem(413, 'BODY_TOO_LARGE', `Request body exceeds ${limit} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpProblem(400, 'INVALID_JSON', 'Request body is not valid JSON');
  }
}

/** The request's URL relative to a dummy origin (only path and query matter), or undefined if malformed. */
export function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

/** The HTTP answer for an error thrown while handling a request. */
export function toProblem(error: unknown): HttpProblem {
  if (error instanceof HttpProblem) return error;
  if (error instanceof AuthError) return new HttpProblem(error.code === 'AUTH_FAILED' ? 401 : 403, error.code, error.message);
  if (error instanceof ValidationError) return new HttpProblem(400, error.code, error.message);
  return new HttpProblem(500, 'INTERNAL', 'The chat request failed');
}

/** The resume cursor of a request: the `x-agentwire-cursor` header, else `?cursor=`. Throws `HttpProblem` 400 if malformed. */
export function cursorFrom(req: IncomingMessage): string | undefined {
  const header = req.headers[AGENTWIRE_CURSOR_HEADER];
  const cursor = (Array.isArray(header) ? header[0] : header) ?? requestUrl(req)?.searchParams.get('cursor') ?? undefined;
  if (cursor === undefined || cursor === '') return undefined;
  if (cursor.length > 256 || !/^[\x21-\x7e]+$/.test(cursor)) throw new HttpProblem(400, 'INVALID_CURSOR', 'Invalid cursor');
  return cursor;
}
