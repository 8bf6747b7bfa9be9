import { TransportError, errorFromCode, isErrorCode, type AgentwireError } from '../errors/index.js';
import type { AnsweredFrame, ErrorFrame } from '../protocol/frames.js';

/** What `AgentwireClient.answer` sends: approvals give `approved`, questions `value`. */
export interface ClientAnswer {
  runId: string;
  requestId: string;
  approved?: boolean;
  value?: unknown;
  reason?: string;
}

interface Waiter {
  resolve: (cursor: string) => void;
  reject: (error: AgentwireError) => void;
}

/** Answers sent and not yet confirmed, by request id: settled by `answered` / `error` frames, or failed when the socket goes. */
export class PendingAnswers {
  private readonly waiters = new Map<string, Waiter>();

  add(requestId: string): Promise<string> {
    if (this.waiters.has(requestId)) return Promise.reject(new TransportError(`an answer to ${requestId} is already on its way`, { code: 'PROTOCOL_ERROR', retryable: false }));
    return new Promise<string>((resolve, reject) => this.waiters.set(requestId, { resolve, reject }));
  }

  /** Whether the frame settled an answer of this client. */
  settle(frame: AnsweredFrame | ErrorFrame): boolean {
    if (typeof frame.requestId !== 'string') return false;
    const waiter = this.waiters.get(frame.requestId);
    if (!waiter) return false;
    this.waiters.delete(frame.requestId);
    if (frame.type === 'answered') {
      waiter.resolve(frame.cursor);
    } else {
      const code = isErrorCode(frame.code) ? frame.code : 'SERVER_ERROR';
      waiter.reject(errorFromCode(code, typeof frame.message === 'string' ? frame.message : 'the answer was refused', { details: { requestId: frame.requestId } }));
    }
    return true;
  }

  /** The socket closed: whether the answer arrived is unknown; the caller may answer again (a repeat is refused, not applied twice). */
  failAll(): void {
    for (const [requestId, waiter] of this.waiters) {
      waiter.reject(new TransportError(`the connection closed before the answer to ${requestId} was confirmed`, { code: 'CONNECTION_LOST', details: { requestId } }));
    }
    this.waiters.clear();
  }
}
