import type { IncomingMessage } from 'node:http';

/** Who a connection belongs to. Everything it receives is filtered by this `userId`. */
export interface Principal {
  userId: string;
}

/**
 * Gateways call this for every connection/request before anything else. Return the principal,
 * or return null / throw (`AuthError`) to refuse: the handshake then fails with HTTP 401.
 */
export type Authenticate = (request: IncomingMessage) => Principal | null | Promise<Principal | null>;

/**
 * The bearer token of a request: `Authorization: Bearer <token>` first, then the `token`
 * query parameter (browsers cannot set headers on WebSocket or EventSource connections).
 */
export function tokenFrom(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice(7).trim() || undefined;
  const url = new URL(request.url ?? '/', 'http://localhost');
  return url.searchParams.get('token') ?? undefined;
}
