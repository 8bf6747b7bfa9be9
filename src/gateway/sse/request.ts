import { ValidationError } from '../../errors/index.js';
import { CURSOR_FORMAT, MAX_CURSOR_LENGTH, isValidCursor } from '../../ids/cursor-format.js';
import { isValidThreadId, MAX_THREAD_ID_LENGTH } from '../../ids/thread-id.js';
import type { AuthRequest } from '../request.js';

/** Longest accepted resume cursor (the WebSocket gateway's too: one rule, `ids/cursor-format.ts`). */
export { MAX_CURSOR_LENGTH };

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
  if (after !== undefined && !isValidCursor(after)) {
    const source = fromHeader !== undefined ? 'Last-Event-ID header' : 'query parameter "after"';
    throw new ValidationError(`invalid cursor in ${source}: expected ${CURSOR_FORMAT}`, {
      code: 'INVALID_CURSOR',
      field: fromHeader !== undefined ? 'Last-Event-ID' : 'after',
    });
  }
  return { threadId, after };
}
