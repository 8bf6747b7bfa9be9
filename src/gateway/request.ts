import type { IncomingMessage } from 'node:http';

/** Case-insensitive header access, like the web-standard `Headers#get`. */
export interface HeaderReader {
  /** The header's value (repeated headers joined with `", "`), or null when absent. */
  get(name: string): string | null;
}

/**
 * One view of an HTTP request for every surface and runtime: a node `IncomingMessage` (node
 * handlers, WebSocket upgrades) or a web-standard `Request` (Next.js, Hono, Bun, Deno). The
 * `authenticate` hook receives this, so one hook serves node and web handlers alike.
 */
export interface AuthRequest {
  /** `GET`, `POST`, … (upper case). */
  readonly method: string;
  /**
   * The request URL, absolute. For a node request it is built from `Host` (or `localhost` when
   * `Host` is missing or malformed) and `req.url`; only path and query come from the client line.
   * Its scheme is `https:` on a TLS socket, `http:` otherwise (behind a proxy that ends TLS, `http:`).
   */
  readonly url: URL;
  readonly headers: HeaderReader;
  /** The request as the runtime gave it: `IncomingMessage` (node) or `Request` (web). */
  readonly raw: IncomingMessage | Request;
}

const FALLBACK_BASE = 'http://localhost';

/** Headers of a node request behind the `HeaderReader` interface. */
class NodeHeaders implements HeaderReader {
  constructor(private readonly headers: IncomingMessage['headers']) {}
  get(name: string): string | null {
    const value = this.headers[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }
}

/** The `AuthRequest` view of a node request, or undefined when its URL cannot be parsed. */
export function fromNodeRequest(req: IncomingMessage): AuthRequest | undefined {
  const url = nodeUrl(req);
  if (!url) return undefined;
  return { method: (req.method ?? 'GET').toUpperCase(), url, headers: new NodeHeaders(req.headers), raw: req };
}

/** The `AuthRequest` view of a web-standard request, or undefined when its URL cannot be parsed. */
export function fromWebRequest(request: Request): AuthRequest | undefined {
  let url: URL;
  try {
    url = new URL(request.url, FALLBACK_BASE);
  } catch {
    return undefined;
  }
  return { method: request.method.toUpperCase(), url, headers: request.headers, raw: request };
}

function nodeUrl(req: IncomingMessage): URL | undefined {
  const path = req.url ?? '/';
  const host = req.headers.host;
  const scheme = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true ? 'https' : 'http';
  if (host !== undefined && /^[A-Za-z0-9.:[\]_-]{1,300}$/.test(host)) {
    try {
      return new URL(path, `${scheme}://${host}`);
    } catch {
      // fall through to the neutral base
    }
  }
  try {
    return new URL(path, FALLBACK_BASE);
  } catch {
    return undefined;
  }
}

/** Whether `value` is a web-standard `Request` (or looks like one). */
export function isWebRequest(value: unknown): value is Request {
  return typeof Request !== 'undefined' && value instanceof Request;
}
