import type { ServerResponse } from 'node:http';
import { AgentwireError, ERROR_CATALOG, GatewayError, ValidationError, isErrorCode, type ErrorClassName } from '../errors/index.js';
import { isInstance, readField } from '../errors/guards.js';

/** The JSON body of every refused HTTP request on every surface: `{ "error": { "code", "message", "field"? } }`. */
export interface HttpErrorBody {
  error: { code: string; message: string; field?: string };
}

/** An HTTP refusal, ready to be written by a node or a web handler. */
export interface Problem {
  status: number;
  headers: Record<string, string>;
  body: HttpErrorBody;
}

/** Error classes whose messages are written for clients (ours); any other error's message stays in the process. */
const CLIENT_SAFE: ReadonlySet<ErrorClassName> = new Set(['GatewayError', 'AuthError', 'ValidationError', 'HistoryGapError', 'StateError']);

/**
 * Any error as an `AgentwireError` for a client: an `AgentwireError` with a readable catalog code
 * as is, anything else (including one whose `code` getter throws, or a proxy whose traps throw) as
 * `GatewayError` `INTERNAL_ERROR` with a generic message (the caller reports the original).
 */
export function toAgentwireError(error: unknown): AgentwireError {
  if (isInstance(error, AgentwireError)) {
    if (isErrorCode(readField(error, 'code'))) return error;
  }
  return new GatewayError('INTERNAL_ERROR', 'The request failed inside the server', { cause: error });
}

/**
 * The one HTTP answer of an error: status from `ERROR_CATALOG`, body `{ error: { code, message,
 * field? } }`, headers from a `GatewayError` (`Allow`, `Retry-After`, …) plus `extra`. Messages
 * of errors not written for clients (a transport's, a driver's) are replaced by the catalog's summary.
 * Never throws: each field of the error is read once, guarded.
 */
export function problemOf(error: unknown, extra: Record<string, string> = {}): Problem {
  const failure = toAgentwireError(error);
  const read = readField(failure, 'code');
  const code = isErrorCode(read) ? read : 'INTERNAL_ERROR';
  const entry = ERROR_CATALOG[code];
  const written = CLIENT_SAFE.has(entry.owner) ? readField(failure, 'message') : undefined;
  const message = typeof written === 'string' ? written : entry.summary;
  const rawField = isInstance(failure, GatewayError) || isInstance(failure, ValidationError) ? readField(failure, 'field') : undefined;
  const field = typeof rawField === 'string' ? rawField : undefined;
  const headers: Record<string, string> = { ...(isInstance(failure, GatewayError) ? headersOf(readField(failure, 'headers')) : {}), ...extra };
  if (code === 'AUTH_FAILED' || code === 'TOKEN_EXPIRED' || code === 'REVOKED') headers['WWW-Authenticate'] ??= 'Bearer';
  return { status: entry.status, headers, body: { error: { code, message, ...(field !== undefined && { field }) } } };
}

/** A `GatewayError`'s extra headers: string values only, copied guarded. */
function headersOf(value: unknown): Record<string, string> {
  const headers: Record<string, string> = {};
  if (typeof value !== 'object' || value === null) return headers;
  try {
    for (const [name, header] of Object.entries(value)) if (typeof header === 'string') headers[name] = header;
  } catch {
    // A hostile headers object adds none.
  }
  return headers;
}

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' } as const;

/** Writes the error's answer to a node response (when the headers are still unsent; otherwise it just ends it). */
export function respondNode(res: ServerResponse, error: unknown, extra?: Record<string, string>): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  const problem = problemOf(error, extra);
  const text = JSON.stringify(problem.body);
  res.writeHead(problem.status, { ...JSON_HEADERS, 'Content-Length': Buffer.byteLength(text), ...problem.headers });
  res.end(text);
}

/** The error's answer as a web-standard `Response`. */
export function respondWeb(error: unknown, extra?: Record<string, string>): Response {
  const problem = problemOf(error, extra);
  return new Response(JSON.stringify(problem.body), { status: problem.status, headers: { ...JSON_HEADERS, ...problem.headers } });
}

/** A JSON answer ready to be written by a node or a web handler: `text` is `undefined` for a body-less one (204). */
export interface JsonReply {
  status: number;
  headers: Record<string, string>;
  text: string | undefined;
}

/**
 * The one guarded serializer of the HTTP answers of every surface: `body` as JSON text. A body
 * that is not JSON (a BigInt or a cycle in what a queue or a log of your own returned, a throwing
 * `toJSON` or getter, a value JSON leaves out) costs this one request, never the process: the reply
 * becomes 500 `INTERNAL_ERROR` with the contract's error body (and the `keep` headers, e.g. CORS),
 * and the error goes to `report`.
 */
export function jsonReply(status: number, body: unknown, headers: Record<string, string>, report: (error: unknown) => void, keep: Record<string, string> = {}): JsonReply {
  if (body === undefined) return { status, headers, text: undefined };
  let text: unknown;
  try {
    text = JSON.stringify(body);
  } catch (error) {
    report(error);
    return unwritable(keep);
  }
  if (typeof text !== 'string') {
    report(new TypeError(`The answer body is not JSON (a ${typeof body})`));
    return unwritable(keep);
  }
  return { status, headers: { ...JSON_HEADERS, ...headers }, text };
}

/** What a client gets for an answer that could not be serialized or written. */
function cannotWrite(): GatewayError {
  return new GatewayError('INTERNAL_ERROR', 'The answer could not be written');
}

function unwritable(keep: Record<string, string>): JsonReply {
  const problem = problemOf(cannotWrite(), keep);
  return { status: problem.status, headers: { ...JSON_HEADERS, ...problem.headers }, text: JSON.stringify(problem.body) };
}

/**
 * Writes `reply` to a node response. Headers node refuses (a run id with a line break from a queue
 * of your own) go to `report` and the answer becomes 500 `INTERNAL_ERROR`; never throws.
 */
export function writeNodeReply(res: ServerResponse, reply: JsonReply, report: (error: unknown) => void): void {
  const text = reply.text ?? '';
  try {
    res.writeHead(reply.status, { ...reply.headers, 'Content-Length': Buffer.byteLength(text) });
  } catch (error) {
    report(error);
    respondNode(res, cannotWrite());
    return;
  }
  res.end(text);
}

/** `reply` as a web-standard `Response`; headers the platform refuses go to `report` and the answer becomes 500 `INTERNAL_ERROR`. */
export function webReply(reply: JsonReply, report: (error: unknown) => void): Response {
  try {
    return new Response(reply.text ?? null, { status: reply.status, headers: reply.headers });
  } catch (error) {
    report(error);
    return respondWeb(cannotWrite());
  }
}
