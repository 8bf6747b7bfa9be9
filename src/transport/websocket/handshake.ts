import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { AuthError } from '../../errors/index.js';
import { principalProblem, type Authenticate, type Principal } from '../../gateway/auth.js';
import { fromNodeRequest } from '../../gateway/request.js';

/** Answers an upgrade request with a plain HTTP error; no WebSocket is opened. */
export function rejectUpgrade(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(message)}\r\n` +
      '\r\n' +
      message,
  );
}

/** The path of a request URL, or undefined when it cannot be parsed. */
export function requestPath(request: IncomingMessage): string | undefined {
  try {
    return new URL(request.url ?? '/', 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

export type AuthOutcome =
  | { ok: true; principal: Principal }
  /** `error`: what the hook threw, when it was not an `AuthError` (for the gateway's `onError`). */
  | { ok: false; status: 401 | 503; message: string; error?: unknown };

/**
 * Runs the `authenticate` hook with a deadline. Fails closed: null, a throw, a malformed
 * principal (user id not 1-256 characters, `expiresAt` not a finite number), an expiry already
 * passed or no answer in time all refuse the upgrade.
 */
export async function authenticateUpgrade(
  authenticate: Authenticate,
  request: IncomingMessage,
  timeoutMs: number,
  now: () => number = Date.now,
): Promise<AuthOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
    timer.unref();
  });
  try {
    const view = fromNodeRequest(request);
    if (!view) return { ok: false, status: 401, message: 'authentication failed' };
    const principal = await Promise.race([Promise.resolve().then(() => authenticate(view)), timeout]);
    if (principal === 'timeout') return { ok: false, status: 503, message: 'authentication timed out' };
    if (!isPrincipal(principal)) return { ok: false, status: 401, message: 'authentication failed' };
    if (principal.expiresAt !== undefined && principal.expiresAt <= now()) return { ok: false, status: 401, message: 'token expired' };
    return { ok: true, principal: { userId: principal.userId, ...(principal.expiresAt !== undefined && { expiresAt: principal.expiresAt }) } };
  } catch (error) {
    // Only an AuthError's message is meant for the client; anything else may be internal.
    if (error instanceof AuthError) return { ok: false, status: 401, message: error.message };
    return { ok: false, status: 401, message: 'authentication failed', error };
  } finally {
    clearTimeout(timer);
  }
}

function isPrincipal(value: unknown): value is Principal {
  // One definition for every surface (src/gateway/auth.ts): user id 1-256 characters, expiresAt finite when given.
  return principalProblem(value) === undefined;
}
