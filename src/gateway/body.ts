import type { IncomingMessage } from 'node:http';
import { exceedsDepth } from '../events/json.js';
import { GatewayError } from '../errors/index.js';
import type { ResolvedBodyOptions } from './options.js';
import { isInstance } from '../errors/guards.js';

/**
 * Request bodies of every HTTP surface, node and web: at most `maxBodyBytes` (413
 * `BODY_TOO_LARGE`), within `bodyTimeoutMs` (408 `BODY_TIMEOUT`), JSON (400 `INVALID_JSON`)
 * nesting at most `maxBodyDepth` (400 `BODY_TOO_DEEP`). Depth is checked on the text, with a
 * loop and no recursion, before `JSON.parse` runs: no body can blow the stack of a parser, a
 * schema or a serializer after it.
 */
export interface ReadBodyOptions extends ResolvedBodyOptions {
  /** Answer for an empty (or whitespace-only) body. Default: 400 `INVALID_JSON`. */
  emptyBody?: GatewayError;
}

function tooLarge(maxBytes: number): GatewayError {
  return new GatewayError('BODY_TOO_LARGE', `The request body exceeds ${maxBytes} bytes`, { field: 'body', headers: { Connection: 'close' } });
}

function timedOut(timeoutMs: number): GatewayError {
  return new GatewayError('BODY_TIMEOUT', `The request body did not arrive within ${timeoutMs} ms`, { field: 'body', headers: { Connection: 'close' } });
}

/** Parses a body's text with the depth limit (see above). */
export function parseJsonBody(text: string, maxDepth: number, emptyBody?: GatewayError): unknown {
  if (text.trim().length === 0) {
    throw emptyBody ?? new GatewayError('INVALID_JSON', 'The request body is empty: expected JSON', { field: 'body' });
  }
  if (exceedsDepth(text, maxDepth)) {
    throw new GatewayError('BODY_TOO_DEEP', `The request body nests deeper than ${maxDepth} levels`, { field: 'body' });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const detail = error instanceof Error ? error.message.slice(0, 200) : 'invalid JSON';
    throw new GatewayError('INVALID_JSON', `The request body is not JSON: ${detail}`, { field: 'body' });
  }
}

/**
 * Whether an already parsed value (e.g. `req.body` behind express.json()) nests deeper than
 * `maxDepth`, measured with an explicit stack. Cycles cannot loop: the walk stops at the limit.
 */
export function valueExceedsDepth(value: unknown, maxDepth: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  let visited = 0;
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    if (depth + 1 > maxDepth) return true;
    // A wide value is bounded by the body size it came from; this only guards pathological objects.
    if (++visited > 1_000_000) return true;
    for (const child of Array.isArray(current) ? current : Object.values(current)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Reads and parses the JSON body of a node request (see above). Refused bodies are drained; 413/408 close the connection. */
export async function readNodeBody(req: IncomingMessage, options: ReadBodyOptions): Promise<unknown> {
  // Behind a body parser (express.json()) the stream is consumed: take what it parsed, with the depth check.
  const preParsed = (req as IncomingMessage & { body?: unknown }).body;
  if (req.readableEnded && preParsed !== undefined) {
    if (valueExceedsDepth(preParsed, options.maxBodyDepth)) {
      throw new GatewayError('BODY_TOO_DEEP', `The request body nests deeper than ${options.maxBodyDepth} levels`, { field: 'body' });
    }
    return preParsed;
  }
  const text = await readNodeText(req, options.maxBodyBytes, options.bodyTimeoutMs);
  return parseJsonBody(text, options.maxBodyDepth, options.emptyBody);
}

/** The body of a node request as UTF-8 text, with the byte limit and the timeout. */
export function readNodeText(req: IncomingMessage, maxBytes: number, timeoutMs: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume(); // discard it: the answer is sent and the connection closed
    return Promise.reject(tooLarge(maxBytes));
  }
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (error: GatewayError | undefined, text?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      req.off('close', onClose);
      if (error) {
        // Keep discarding what still comes so the refusal can be written; Connection: close ends it.
        req.on('error', () => undefined);
        req.resume();
        reject(error);
      } else resolve(text ?? '');
    };
    const onData = (chunk: Buffer | string): void => {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += buffer.length;
      if (size > maxBytes) return finish(tooLarge(maxBytes));
      chunks.push(buffer);
    };
    const onEnd = (): void => finish(undefined, Buffer.concat(chunks).toString('utf8'));
    const onError = (): void => finish(new GatewayError('INVALID_JSON', 'The request body could not be read', { field: 'body' }));
    const onAborted = (): void => finish(new GatewayError('INVALID_JSON', 'The client aborted the request body', { field: 'body' }));
    // A client that left while the auth hook ran: its request is destroyed and will never end.
    const onClose = (): void => {
      if (!req.readableEnded) onAborted();
    };
    const timer = setTimeout(() => finish(timedOut(timeoutMs)), timeoutMs);
    timer.unref();
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
    req.on('close', onClose);
    if (req.readableEnded) onEnd();
    else if (req.destroyed) onAborted();
  });
}

/** Reads and parses the JSON body of a web-standard request (see above). */
export async function readWebBody(request: Request, options: ReadBodyOptions): Promise<unknown> {
  const text = await readWebText(request, options.maxBodyBytes, options.bodyTimeoutMs);
  return parseJsonBody(text, options.maxBodyDepth, options.emptyBody);
}

/** The body of a web request as UTF-8 text, with the byte limit and the timeout. */
export async function readWebText(request: Request, maxBytes: number, timeoutMs: number): Promise<string> {
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await request.body?.cancel().catch(() => undefined);
    throw tooLarge(maxBytes);
  }
  const body = request.body;
  if (!body) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8');
  let text = '';
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
    (timer as { unref?: () => void }).unref?.();
  });
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), deadline]);
      if (next === 'timeout') throw timedOut(timeoutMs);
      if (next.done) break;
      const chunk = next.value as Uint8Array;
      size += chunk.byteLength;
      if (size > maxBytes) throw tooLarge(maxBytes);
      text += decoder.decode(chunk, { stream: true });
    }
    return text + decoder.decode();
  } catch (error) {
    void reader.cancel().catch(() => undefined);
    if (isInstance(error, GatewayError)) throw error;
    throw new GatewayError('INVALID_JSON', 'The request body could not be read', { field: 'body', cause: error });
  } finally {
    clearTimeout(timer);
  }
}
