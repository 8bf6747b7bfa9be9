import type { IncomingMessage } from 'node:http';
import { isValidThreadId, MAX_THREAD_ID_LENGTH } from '../../ids/thread-id.js';

/** Longest accepted resume cursor (matches the WebSocket protocol's limit). */
export const MAX_CURSOR_LENGTH = 128;
/** Printable ASCII without spaces: what every built-in log issues as a cursor. */
const CURSOR_PATTERN = /^[\x21-\x7e]+$/;

export interface StreamRequest {
  threadId: string;
  /** Resume after this cursor (`Last-Event-ID` header, else `?after=`). */
  after: string | undefined;
}

export interface RequestProblem {
  status: number;
  code: string;
  message: string;
}

/**
 * Reads `threadId` and the resume cursor of a stream request. `Last-Event-ID` (what
 * EventSource sends when it reconnects) wins over `?after=` (the first connection's cursor).
 */
export function parseStreamRequest(req: IncomingMessage, url: URL): StreamRequest | RequestProblem {
  const threadId = url.searchParams.get('threadId');
  if (threadId === null || threadId === '') {
    return { status: 400, code: 'MISSING_THREAD_ID', message: 'query parameter "threadId" is required' };
  }
  if (!isValidThreadId(threadId)) {
    return {
      status: 400,
      code: 'INVALID_THREAD_ID',
      message: `invalid threadId: expected 1-${MAX_THREAD_ID_LENGTH} characters of letters, digits and _ - . :`,
    };
  }
  const header = req.headers['last-event-id'];
  const fromHeader = typeof header === 'string' && header !== '' ? header : undefined;
  const after = fromHeader ?? (url.searchParams.get('after') || undefined);
  if (after !== undefined && (after.length > MAX_CURSOR_LENGTH || !CURSOR_PATTERN.test(after))) {
    const source = fromHeader !== undefined ? 'Last-Event-ID header' : 'query parameter "after"';
    return {
      status: 400,
      code: 'INVALID_CURSOR',
      message: `invalid cursor in ${source}: expected 1-${MAX_CURSOR_LENGTH} printable ASCII characters`,
    };
  }
  return { threadId, after };
}

export function isProblem(value: StreamRequest | RequestProblem): value is RequestProblem {
  return 'status' in value;
}
