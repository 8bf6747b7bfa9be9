import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { AuthError } from '../../errors/index.js';
import type { Authenticate, Principal } from '../../gateway/auth.js';
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
  | { ok: false; status: 401 | 503; message: string };

/**
 * Runs the `authenticate` hook with a deadline. Fails closed: null, a throw, a malformed
 * principal or no answer in time all refuse the upgrade.
 */
export async function authenticateUpgrade(
  authenticate: Authenticate,
  request: IncomingMessage,
  timeoutMs: number,
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
    return { ok: true, principal };
  } catch (error) {
    // Only an AuthError's message is meant for the client; anything else may be internal.
    return { ok: false, status: 401, message: error instanceof AuthError ? error.message : 'authentication failed' };
  } finally {
    clearTimeout(timer);
  }
}

function isPrincipal(value: unknown): value is Principal {
  const userId: unknown = (value as Principal | null)?.userId;
  return typeof userId === 'string' && userId.length > 0 && userId.length <= 256;
}
