import type { IncomingMessage, ServerResponse } from 'node:http';

/** The JSON body of every refused request: `{ "error": { "code", "message", "field"? } }`. */
export interface AguiErrorBody {
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

/** Ends `res` with the problem as JSON (or just ends it when a stream already started). */
export function sendProblem(res: ServerResponse, problem: HttpProblem): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body: AguiErrorBody = {
    error: { code: problem.code, message: problem.message, ...(problem.field !== undefined && { field: problem.field }) },
  };
  const text = JSON.stringify(body);
  res.writeHead(problem.status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...problem.headers,
  });
  res.end(text);
}

/**
 * Reads and parses a JSON request body of at most `maxBytes`. Throws `HttpProblem` 413 when it
 * is larger (the rest of the body is discarded) and 400 when it is not JSON.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
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
  if (text.trim().length === 0) throw new HttpProblem(400, 'VALIDATION_FAILED', 'The request body is empty: expected a JSON RunAgentInput', 'body');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpProblem(400, 'INVALID_JSON', `The request body is not JSON: ${(error as Error).message}`, 'body');
  }
}

function tooLarge(maxBytes: number): HttpProblem {
  return new HttpProblem(413, 'BODY_TOO_LARGE', `The request body exceeds ${maxBytes} bytes`, 'body', { Connection: 'close' });
}
