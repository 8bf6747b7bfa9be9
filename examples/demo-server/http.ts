import type { IncomingMessage, ServerResponse } from 'node:http';

/** A request refused with a status and a JSON body `{ error: { code, message } }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const securityHeaders = {
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
} as const;

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...securityHeaders,
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, code: string, message: string, headers?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { error: { code, message } }, headers);
}

export function sendText(res: ServerResponse, contentType: string, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(200, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(text),
    ...securityHeaders,
    ...headers,
  });
  res.end(text);
}

/** Bodies up to this size are read to the end even when refused, so the client sees the answer rather than a reset. */
const MAX_DRAIN_BYTES = 1024 * 1024;

/** Reads a JSON request body of at most `limitBytes`; refuses other content types (415) and bigger bodies (413). */
export async function readJson(req: IncomingMessage, limitBytes: number): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) {
    await drain(req);
    throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
  }
  const tooLarge = () => new HttpError(413, 'BODY_TOO_LARGE', `the body must be at most ${limitBytes} bytes`);
  if (Number(req.headers['content-length'] ?? 0) > limitBytes) {
    await drain(req);
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) {
      await drain(req, size);
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'INVALID_JSON', 'the body is not valid JSON');
  }
}

/** Discards the rest of a request body (up to MAX_DRAIN_BYTES; past that the connection is closed). */
async function drain(req: IncomingMessage, alreadyRead = 0): Promise<void> {
  let size = alreadyRead;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_DRAIN_BYTES) {
      req.socket.destroySoon();
      return;
    }
  }
}
