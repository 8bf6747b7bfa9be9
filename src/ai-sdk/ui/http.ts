import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuthError, ValidationError } from '../../errors/index.js';
import { HttpProblem, requestUrl } from '../../protocol/http.js';
import { AGENTWIRE_CURSOR_HEADER } from '../client.js';

/** 204 No Content: what `useChat` expects when there is no stream to resume. */
export function respondNoContent(res: ServerResponse): void {
  res.writeHead(204, { 'cache-control': 'no-store' });
  res.end();
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
