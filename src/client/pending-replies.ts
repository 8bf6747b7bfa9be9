import { TransportError, errorFromCode, isErrorCode, type AgentwireError } from '../errors/index.js';
import type { ErrorFrame } from '../protocol/frames.js';

/** What `AgentwireClient.answer` sends: approvals give `approved`, questions `value`. */
export interface ClientAnswer {
  runId: string;
  requestId: string;
  approved?: boolean;
  value?: unknown;
  reason?: string;
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: AgentwireError) => void;
}

/**
 * Requests a client sent and the gateway has not confirmed yet (answers by request id, cancels by
 * run id): settled by the gateway's reply or an `error` frame naming the key, or failed when the
 * socket goes (whether the request arrived is then unknown; a repeat is refused, never applied twice).
 */
export class PendingReplies<T> {
  private readonly waiters = new Map<string, Waiter<T>>();

  /** `redact` removes the token from what the gateway wrote before an error reaches the caller. */
  constructor(
    private readonly what: string,
    private readonly redact: (error: AgentwireError) => AgentwireError = (error) => error,
  ) {}

  add(key: string): Promise<T> {
    if (this.waiters.has(key)) return Promise.reject(new TransportError(`a ${this.what} for ${key} is already on its way`, { code: 'PROTOCOL_ERROR', retryable: false }));
    return new Promise<T>((resolve, reject) => this.waiters.set(key, { resolve, reject }));
  }

  /** The gateway confirmed `key`; whether it was one of this client's. */
  resolve(key: unknown, value: T): boolean {
    const waiter = this.take(key);
    if (!waiter) return false;
    waiter.resolve(value);
    return true;
  }

  /** The reply for `key` broke the protocol: rejects with `error`; whether it was one of this client's. */
  reject(key: unknown, error: AgentwireError): boolean {
    const waiter = this.take(key);
    if (!waiter) return false;
    waiter.reject(error);
    return true;
  }

  /** The gateway refused `key` with `frame`; whether it was one of this client's. */
  refuse(key: unknown, frame: ErrorFrame): boolean {
    const waiter = this.take(key);
    if (!waiter) return false;
    const code = isErrorCode(frame.code) ? frame.code : 'SERVER_ERROR';
    const message = typeof frame.message === 'string' ? frame.message : `the ${this.what} was refused`;
    waiter.reject(this.redact(errorFromCode(code, message, { details: { key } })));
    return true;
  }

  /** The waiter for `key` (a string the gateway echoed), removed; undefined when none waits. */
  private take(key: unknown): Waiter<T> | undefined {
    if (typeof key !== 'string') return undefined;
    const waiter = this.waiters.get(key);
    if (waiter) this.waiters.delete(key);
    return waiter;
  }

  failAll(): void {
    for (const [key, waiter] of this.waiters) {
      waiter.reject(new TransportError(`the connection closed before the ${this.what} for ${key} was confirmed`, { code: 'CONNECTION_LOST', details: { key } }));
    }
    this.waiters.clear();
  }
}
