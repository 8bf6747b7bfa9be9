import { AuthError } from '../errors/index.js';
import type { AuthRequest } from './request.js';

/**
 * Browser origins a surface serves: `'*'` (any, without credentials), a list of exact origins
 * (`'https://app.example.com'`, echoed with `Access-Control-Allow-Credentials: true`), or a
 * predicate. Requests without an `Origin` header (not from a browser, or same-origin GETs) and
 * same-origin requests (`Origin` matches the request's scheme and `Host`) are always served.
 */
export type AllowedOrigins = '*' | readonly string[] | ((origin: string) => boolean);

/** Headers a browser may send on a cross-origin request to a surface. */
const ALLOWED_REQUEST_HEADERS = 'Authorization, Content-Type, Last-Event-ID, X-Agentwire-Cursor, Accept';
/** Response headers a cross-origin page may read. */
const EXPOSED_HEADERS = 'X-Agentwire-Run-Id, Retry-After';

/** The outcome of the origin check of one request. */
export type OriginCheck =
  /** Serve it; add `headers` (CORS, possibly none) to the answer, refusals included. */
  | { ok: true; headers: Record<string, string> }
  /** Refuse it with 403 `ORIGIN_FORBIDDEN` (also a WebSocket upgrade: no socket is opened). */
  | { ok: false; error: AuthError };

/** The origin policy of one surface: checks requests and answers CORS preflights. */
export class OriginPolicy {
  constructor(
    private readonly allowed: AllowedOrigins | undefined,
    /** Methods the surface serves (`Access-Control-Allow-Methods`). */
    private readonly methods: readonly string[],
  ) {}

  /** Checks the request's `Origin`. Without a configured policy every origin passes and no CORS headers are sent. */
  check(request: AuthRequest): OriginCheck {
    const origin = request.headers.get('origin');
    if (origin === null || this.allowed === undefined) return { ok: true, headers: {} };
    if (isSameOrigin(origin, request)) return { ok: true, headers: {} };
    if (this.allowed === '*') return { ok: true, headers: { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': EXPOSED_HEADERS } };
    let allowed: boolean;
    try {
      // Exact matches of a list only: anything else (a string slipped past validation) allows nothing,
      // never a substring match (`'https://app.example.com'.includes('https://app.example.co')`).
      allowed = typeof this.allowed === 'function' ? this.allowed(origin) === true : Array.isArray(this.allowed) && this.allowed.includes(origin);
    } catch {
      allowed = false;
    }
    if (!allowed) return { ok: false, error: new AuthError('This origin is not allowed', { code: 'ORIGIN_FORBIDDEN' }) };
    return {
      ok: true,
      headers: {
        'Access-Control-Allow-Origin': origin,
        'Access-Control-Allow-Credentials': 'true',
        'Access-Control-Expose-Headers': EXPOSED_HEADERS,
        Vary: 'Origin',
      },
    };
  }

  /**
   * The answer to an `OPTIONS` request: 204 with the CORS preflight headers when the origin is
   * allowed (or `Allow` only when there is no `Origin`), or the 403 to send.
   */
  preflight(request: AuthRequest): { status: 204; headers: Record<string, string> } | { status: 403; error: AuthError } {
    const check = this.check(request);
    if (!check.ok) return { status: 403, error: check.error };
    const headers: Record<string, string> = { ...check.headers, Allow: ['OPTIONS', ...this.methods].join(', ') };
    if (check.headers['Access-Control-Allow-Origin'] !== undefined) {
      headers['Access-Control-Allow-Methods'] = this.methods.join(', ');
      headers['Access-Control-Allow-Headers'] = ALLOWED_REQUEST_HEADERS;
      headers['Access-Control-Max-Age'] = '600';
    }
    return { status: 204, headers };
  }
}

/**
 * Same origin: the scheme and the `Host` of the request itself. The scheme counts: a plain-HTTP
 * page of the same host (one a network attacker injected) is another origin.
 */
function isSameOrigin(origin: string, request: AuthRequest): boolean {
  const host = request.headers.get('host');
  if (host === null) return false;
  try {
    const url = new URL(origin);
    return url.host === host && url.protocol === request.url.protocol;
  } catch {
    return false;
  }
}
