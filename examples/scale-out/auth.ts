import { tokenFrom, type AuthRequest, type Principal } from '../../src/index.js';

/**
 * DEMO ONLY — a token `demo:<userId>` authenticates as that user, with no secret at all.
 * Replace with real verification (a signed session, a JWT) in anything but this example.
 */
export function demoAuthenticate(request: AuthRequest): Principal | null {
  const token = tokenFrom(request);
  if (!token?.startsWith('demo:') || token.length <= 5) return null;
  return { userId: token.slice(5) };
}

export function demoToken(userId: string): string {
  return `demo:${userId}`;
}
