import { ERROR_CATALOG, isErrorCode, type CodeOf, type ErrorCode } from './catalog.js';
import { isInstance, readField } from './guards.js';

/**
 * One error hierarchy for the whole SDK. Every error carries a stable `code` from the catalog
 * (`ERROR_CATALOG`) that callers, and clients on the wire, can switch on; messages are for humans.
 */
export interface AgentwireErrorOptions {
  cause?: unknown;
  /** Structured context (the offending value, field path, limit, ...). */
  details?: Record<string, unknown>;
}

export class AgentwireError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  /** Whether repeating the same operation may succeed (drives the bridge's retries). */
  readonly retryable: boolean;

  /**
   * Protected: an error is always an instance of the class that owns its code in the catalog
   * (`errorFromCode` builds one for a code known only at run time).
   */
  protected constructor(code: ErrorCode, message: string, options: AgentwireErrorOptions & { retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    // The types enforce it; plain JavaScript (or a code read off the wire) could break it.
    if (!ownsCode(new.target, code)) {
      throw new TypeError(`${new.target.name}: ${JSON.stringify(String(code))} is not one of its error codes (see ERROR_CATALOG; errorFromCode builds the right class for a code)`);
    }
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable ?? false;
  }

  /** The HTTP status an HTTP surface answers with for this error (from the catalog). */
  get status(): number {
    return ERROR_CATALOG[this.code].status;
  }

  toJSON(): { name: string; code: string; message: string } {
    return { name: this.name, code: this.code, message: this.message };
  }
}

/** Whether the class that owns `code` in the catalog is `target` or one of its ancestors (an application may subclass). */
function ownsCode(target: object, code: unknown): boolean {
  if (!isErrorCode(code)) return false;
  const owner = ERROR_CATALOG[code].owner;
  for (let c: unknown = target; typeof c === 'function' && c !== AgentwireError; c = Object.getPrototypeOf(c)) {
    if ((c as { name: string }).name === owner) return true;
  }
  return false;
}

/** Input that does not match a schema or format: events, run ids, thread ids, frames, options. */
export class ValidationError extends AgentwireError {
  /** Dotted path of the first failing field, when the input was structured. */
  readonly field: string | undefined;
  constructor(message: string, options: AgentwireErrorOptions & { field?: string; code?: CodeOf<'ValidationError'> } = {}) {
    super(options.code ?? 'VALIDATION_FAILED', message, options);
    this.field = options.field;
  }
}

/** A run id could be resolved neither from the registry nor by parsing it. */
export class ThreadResolutionError extends AgentwireError {
  constructor(message: string, options: AgentwireErrorOptions = {}) {
    super('THREAD_UNRESOLVED', message, options);
  }
}

/** An event could not be delivered nor buffered; it is counted in the bridge metrics. The cause says why. */
export class DeliveryError extends AgentwireError {
  /** The code of the underlying error (the transport's refusal, the routing failure, …), when it has one. */
  readonly causeCode: ErrorCode | undefined;
  constructor(message: string, options: AgentwireErrorOptions & { code?: CodeOf<'DeliveryError'> } = {}) {
    super(options.code ?? 'DELIVERY_FAILED', message, options);
    // The cause is often a transport's error: read guarded (a throwing `code` getter names no code).
    const causeCode = isInstance(options.cause, AgentwireError) ? readField(options.cause, 'code') : undefined;
    this.causeCode = isErrorCode(causeCode) ? causeCode : undefined;
  }
}

/** A transport failed to perform an operation. Retryable unless stated otherwise. */
export class TransportError extends AgentwireError {
  constructor(message: string, options: AgentwireErrorOptions & { code?: CodeOf<'TransportError'>; retryable?: boolean } = {}) {
    super(options.code ?? 'TRANSPORT_FAILED', message, { retryable: true, ...options });
  }
}

/** A tool call failed: unknown tool, invalid arguments, an unserializable result, or the tool threw. */
export class ToolError extends AgentwireError {
  readonly tool: string;
  constructor(tool: string, message: string, options: AgentwireErrorOptions & { code?: CodeOf<'ToolError'> } = {}) {
    super(options.code ?? 'TOOL_FAILED', message, options);
    this.tool = tool;
  }
}

/**
 * A tool call exceeded its `timeoutMs`. A `ToolError` like every other tool failure, so
 * `catch (error) { if (error instanceof ToolError) … }` around `callTool` handles it too.
 */
export class ToolTimeoutError extends ToolError {
  constructor(tool: string, timeoutMs: number) {
    // TOOL_TIMEOUT is this subclass's code (the constructor's check accepts it for new.target).
    super(tool, `Tool "${tool}" timed out after ${timeoutMs} ms`, { code: 'TOOL_TIMEOUT' as unknown as CodeOf<'ToolError'>, details: { timeoutMs } });
  }
}

/** Authentication failed or a principal tried to reach something it does not own. */
export class AuthError extends AgentwireError {
  constructor(message: string, options: AgentwireErrorOptions & { code?: CodeOf<'AuthError'> } = {}) {
    super(options.code ?? 'AUTH_FAILED', message, options);
  }
}

/** The run was cancelled through its AbortSignal. Named `AbortError` like the DOM's. */
export class AbortError extends AgentwireError {
  constructor(message = 'The run was aborted', options: AgentwireErrorOptions = {}) {
    super('ABORTED', message, options);
    this.name = 'AbortError';
  }
}

/** A resume cursor cannot be honoured completely: the client must decide what to do. */
export class HistoryGapError extends AgentwireError {
  constructor(message: string, options: AgentwireErrorOptions = {}) {
    super('HISTORY_GAP', message, options);
  }
}

/** An operation was used in the wrong state (e.g. `think()` outside a run, sending on a closed bridge). */
export class StateError extends AgentwireError {
  constructor(code: CodeOf<'StateError'>, message: string, options: AgentwireErrorOptions = {}) {
    super(code, message, options);
  }
}

/**
 * A refusal or report of a front end (WebSocket, SSE, AG-UI, useChat, run endpoints): `error`
 * frames, close codes and HTTP refusals about the request itself (method, size, depth, limits).
 * Any `AgentwireError` that reaches an HTTP surface is answered with its catalog status and code.
 */
export class GatewayError extends AgentwireError {
  /** The request field at fault (`body`, `threadId`, …), when there is one. */
  readonly field: string | undefined;
  /** Extra HTTP response headers (`Allow`, `Retry-After`, …). */
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    code: CodeOf<'GatewayError'>,
    message: string,
    options: AgentwireErrorOptions & { field?: string; headers?: Record<string, string> } = {},
  ) {
    super(code, message, options);
    this.field = options.field;
    this.headers = options.headers ?? {};
  }
}
