import { ValidationError } from '../../errors/index.js';
import { isValidThreadId, MAX_THREAD_ID_LENGTH } from '../../ids/thread-id.js';
import type { AuthRequest } from '../request.js';

/** Longest accepted resume cursor (matches the WebSocket protocol's limit). */
export const MAX_CURSOR_LENGTH = 128;
/** Printable ASCII without spaces: what every built-in log issues as a cursor. */
const CURSOR_PATTERN = /^[\x21-\x7e]+$/;

export interface StreamRequest {
  threadId: string;
  /** Resume after this cursor (`Last-Event-ID` header, else `?after=`). */
  after: string | undefined;
}

/**
 * Reads `threadId` and the resume cursor of a stream request. `Last-Event-ID` (what
 * EventSource sends when it reconnects) wins over `?after=` (the first connection's cursor).
 * Throws `ValidationError` (400) `MISSING_THREAD_ID`, `INVALID_THREAD_ID` or `INVALID_CURSOR`.
 */
export function parseStreamRequest(request: Pick<AuthRequest, 'url' | 'headers'>): StreamRequest {
  const threadId = request.url.searchParams.get('threadId');
  if (threadId === null || threadId === '') {
    throw new ValidationError('query parameter "threadId" is required', { code: 'MISSING_THREAD_ID', field: 'threadId' });
  }
  if (!isValidThreadId(threadId)) {
    throw new ValidationError(`invalid threadId: expected 1-${MAX_THREAD_ID_LENGTH} characters of letters, digits and _ - . :`, {
      code: 'INVALID_THREAD_ID',
      field: 'threadId',
    });
  }
  const header = request.headers.get('last-event-id');
  const fromHeader = header !== null && header !== '' ? header : undefined;
  const after = fromHeader ?? (request.url.searchParams.get('after') || undefined);
  if (after !== undefined && (after.length > MAX_CURSOR_LENGTH || !CURSOR_PATTERN.test(after))) {
    const source = fromHeader !== undefined ? 'Last-Event-ID header' : 'query parameter "after"';
    throw new ValidationError(`invalid cursor in ${source}: expected 1-${MAX_CURSOR_LENGTH} printable ASCII characters`, {
      code: 'INVALID_CURSOR',
      field: fromHeader !== undefined ? 'Last-Event-ID' : 'after',
    });
  }
  return { threadId, after };
}
