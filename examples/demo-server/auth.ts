import { tokenFrom, type Authenticate } from '../../src/index.js';

/**
 * DEMO-ONLY authentication: the token `demo-<user>` authenticates as `<user>`, so anyone can
 * be anyone. It exists so the demo runs without an identity provider; a real deployment
 * verifies a session cookie or a signed token (JWT, opaque session id) in this hook instead.
 */
export const DEMO_TOKEN_PREFIX = 'demo-';

const USER_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/** The demo token of a user (what the page sends). */
export function demoTokenFor(userId: string): string {
  return `${DEMO_TOKEN_PREFIX}${userId}`;
}

/** The user a demo token stands for, or undefined for anything else. */
export function demoUserFromToken(token: string | undefined): string | undefined {
  if (!token?.startsWith(DEMO_TOKEN_PREFIX)) return undefined;
  const userId = token.slice(DEMO_TOKEN_PREFIX.length);
  return USER_PATTERN.test(userId) ? userId : undefined;
}

/** The demo's `Authenticate` hook, shared by the WebSocket gateway, the SSE gateway and the API. */
export const demoAuthenticate: Authenticate = (request) => {
  const userId = demoUserFromToken(tokenFrom(request));
  return userId ? { userId } : null;
};
