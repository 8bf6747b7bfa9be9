import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { authFailed, authenticateRequest, type Authenticate, type Principal } from '../auth.js';
import type { AuthRequest } from '../request.js';
import { Revocations } from '../revocations.js';
import { problemOf } from '../respond.js';

/** Answers an upgrade request with a plain HTTP error; no WebSocket is opened. */
export function rejectUpgrade(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      extra +
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

const GENERIC_AUTH_FAILURE = authFailed().message;

/**
 * Refuses an upgrade for `error` (an `AgentwireError`; anything else is `INTERNAL_ERROR`): status
 * and headers from the catalog (`problemOf`: every field read once, guarded), a short plain-text body.
 */
export function refuseUpgrade(socket: Duplex, error: unknown): void {
  const problem = problemOf(error);
  rejectUpgrade(socket, problem.status, upgradeMessage(problem.body.error.code, problem.body.error.message), problem.headers);
}

/** The body of a refused upgrade: an `AuthError` of the hook's own verbatim, the generic texts short. */
function upgradeMessage(code: string, message: string): string {
  switch (code) {
    case 'AUTH_FAILED':
      return message === GENERIC_AUTH_FAILURE ? 'authentication failed' : message;
    case 'AUTH_TIMEOUT':
      return 'authentication timed out';
    case 'TOKEN_EXPIRED':
      return 'token expired';
    case 'REVOKED':
      return 'access revoked';
    case 'SERVER_AT_CAPACITY':
      return 'too many connections; try again later';
    case 'GATEWAY_CLOSED':
      return 'server shutting down';
    default:
      return message;
  }
}

/**
 * Authentication of upgrades through the contract's `authenticateRequest`, plus revocations that
 * land while a hook is answering (the shared `Revocations` of every surface): a handshake that
 * started before `revoke(userId)` is refused (`REVOKED`) when its hook answers.
 */
export class Handshakes {
  private readonly revocations = new Revocations();

  constructor(
    private readonly hook: Authenticate,
    private readonly timeoutMs: number,
  ) {}

  /** Handshakes waiting for `authenticate`. */
  get pending(): number {
    return this.revocations.size;
  }

  /** The principal of `request`; throws `AuthError` (`AUTH_FAILED`, `AUTH_TIMEOUT`, `TOKEN_EXPIRED`, `REVOKED`). */
  async authenticate(request: AuthRequest, report: (error: unknown) => void): Promise<Principal> {
    const principal = await this.revocations.watching(async (watch) => {
      const answered = await authenticateRequest(this.hook, request, { timeoutMs: this.timeoutMs, report });
      watch.check(answered.userId);
      return answered;
    });
    // Only what the gateway uses: a hook may return a richer object.
    return principal.expiresAt === undefined ? { userId: principal.userId } : { userId: principal.userId, expiresAt: principal.expiresAt };
  }

  /** Handshakes of `userId` pending now are refused when their hook answers. */
  revoke(userId: string): void {
    this.revocations.revoke(userId);
  }
}
