import { AuthError } from './errors.js';

/** `AuthError` `THREAD_FORBIDDEN`: the one refusal (and message) wherever a thread of another user is asked for. */
export function threadForbidden(threadId: string, cause?: unknown): AuthError {
  return new AuthError(`Thread "${threadId}" belongs to another user`, cause === undefined ? { code: 'THREAD_FORBIDDEN' } : { code: 'THREAD_FORBIDDEN', cause });
}
