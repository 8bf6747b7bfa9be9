import type { IncomingMessage } from 'node:http';
import { AuthError, ValidationError } from '../errors/index.js';
import { MAX_USER_ID_LENGTH, userIdProblem } from '../ids/user-id-format.js';
import type { AuthRequest } from './request.js';
import { agentwireCode } from '../errors/code-of.js';

export type { AuthRequest, HeaderReader } from './request.js';

/** Longest accepted user id. */
export { MAX_USER_ID_LENGTH };

/** Who a connection or request belongs to. Everything it receives is filtered by this `userId`. */
export interface Principal {
  /** 1–256 characters of well-formed UTF-16 (no lone surrogate: Redis would store it as U+FFFD, another user's id). */
  userId: string;
  /**
   * When the credentials expire (epoch milliseconds). An open connection or stream is closed
   * when it passes (SSE: a final `close` event with code `TOKEN_EXPIRED`; WebSocket: close code
   * 4401). A principal already expired is refused with 401 `TOKEN_EXPIRED`.
   */
  expiresAt?: number;
}

/**
 * The auth hook of every front end (WebSocket upgrades, SSE, AG-UI, useChat, node and web
 * handlers alike). Return the principal, or null / throw to refuse with 401. Only an
 * `AuthError`'s own message reaches the client; anything else thrown is reported through
 * `onError` and the client gets a generic text.
 */
export type Authenticate = (request: AuthRequest) => Principal | null | Promise<Principal | null>;

/**
 * The bearer token of a request: `Authorization: Bearer <token>` first, then the `token` query
 * parameter (browsers cannot set headers on WebSocket or EventSource connections). Takes an
 * `AuthRequest`, a node `IncomingMessage` or a web `Request`.
 */
export function tokenFrom(request: AuthRequest | IncomingMessage | Request): string | undefined {
  const headers = request.headers as AuthRequest['headers'] | IncomingMessage['headers'];
  const raw = typeof (headers as AuthRequest['headers']).get === 'function'
    ? (headers as AuthRequest['headers']).get('authorization')
    : (headers as IncomingMessage['headers']).authorization;
  const header = typeof raw === 'string' ? raw : undefined;
  if (header !== undefined && /^bearer /i.test(header)) return header.slice(7).trim() || undefined;
  const url = request.url;
  let parsed: URL;
  try {
    parsed = url instanceof URL ? url : new URL(url ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
  return parsed.searchParams.get('token') || undefined;
}

export interface AuthenticateOptions {
  timeoutMs: number;
  /** Errors to report (a throwing hook, a malformed principal); never shown to the client. */
  report: (error: unknown) => void;
  /** Clock for the expiry check. Default `Date.now`. */
  now?: () => number;
}

const TIMED_OUT = Symbol('timed out');

/** The generic refusal: what every client sees unless the hook threw an `AuthError` of its own. */
export function authFailed(): AuthError {
  return new AuthError('Authentication failed: missing or invalid credentials');
}

/**
 * Runs the hook with a deadline and validates what it returns. Fails closed: null, a throw, a
 * malformed principal → `AuthError` `AUTH_FAILED` (401, generic message; an `AuthError` thrown
 * by the hook passes as is); no answer in time → `AuthError` `AUTH_TIMEOUT` (503); an expiry
 * already passed → `AuthError` `TOKEN_EXPIRED` (401).
 */
export async function authenticateRequest(hook: Authenticate, request: AuthRequest, options: AuthenticateOptions): Promise<Principal> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), options.timeoutMs);
    (timer as { unref?: () => void }).unref?.();
  });
  let outcome: Principal | null | typeof TIMED_OUT;
  try {
    outcome = await Promise.race([Promise.resolve().then(() => hook(request)), timeout]);
  } catch (error) {
    // The hook's own AuthError passes as is when its code reads as one (read guarded: a hostile value is a generic failure).
    if (agentwireCode(error, AuthError) !== undefined) throw error;
    options.report(error);
    throw authFailed();
  } finally {
    clearTimeout(timer);
  }
  if (outcome === TIMED_OUT) throw new AuthError('Authentication took too long; retry later', { code: 'AUTH_TIMEOUT' });
  if (outcome === null || outcome === undefined) throw authFailed();
  const problem = principalProblem(outcome);
  if (problem) {
    options.report(new ValidationError(`authenticate returned an invalid principal: ${problem}`, { code: 'INVALID_USER_ID', field: 'userId' }));
    throw authFailed();
  }
  assertUnexpired(outcome, (options.now ?? Date.now)());
  return outcome;
}

/** Throws `AuthError` `TOKEN_EXPIRED` when the principal's `expiresAt` has passed at `now`. */
export function assertUnexpired(principal: Principal, now: number): void {
  if (principal.expiresAt !== undefined && principal.expiresAt <= now) {
    throw new AuthError('The credentials have expired', { code: 'TOKEN_EXPIRED' });
  }
}

/** Why `value` is not a principal, or undefined when it is one. */
export function principalProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'expected an object { userId }';
  const { userId, expiresAt } = value as Partial<Principal>;
  const userIdIssue = userIdProblem(userId);
  if (userIdIssue !== undefined) return userIdIssue;
  if (expiresAt !== undefined && (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt))) {
    return 'expiresAt must be a finite number (epoch milliseconds) when given';
  }
  return undefined;
}
