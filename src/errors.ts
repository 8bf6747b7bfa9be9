/**
 * One error hierarchy for the whole SDK. Every error carries a stable `code`
 * that callers (and clients on the wire) can switch on; messages are for humans.
 */
export interface AgentwireErrorOptions {
  cause?: unknown;
  /** Structured context (the offending value, field path, limit, ...). */
  details?: Record<string, unknown>;
}

export class AgentwireError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;
  /** Whether repeating the same operation may succeed (drives the bridge's retries). */
  readonly retryable: boolean;

  constructor(code: string, message: string, options: AgentwireErrorOptions & { retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable ?? false;
  }

  toJSON(): { name: string; code: string; message: string } {
    return { name: this.name, code: this.code, message: this.message };
  }
}

/** Input that does not match a schema or format: events, run ids, thread ids, frames. */
export class ValidationError extends AgentwireError {
  /** Dotted path of the first failing field, when the input was structured. */
  readonly field: string | undefined;
  constructor(message: string, options: AgentwireErrorOptions & { field?: string; code?: string } = {}) {
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

/** An event could not be delivered nor buffered; it is counted in the bridge metrics. */
export class DeliveryError extends AgentwireError {
  constructor(message: string, options: AgentwireErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'DELIVERY_FAILED', message, options);
  }
}

/** A transport failed to perform an operation. Retryable unless stated otherwise. */
export class TransportError extends AgentwireError {
  constructor(message: string, options: AgentwireErrorOptions & { code?: string; retryable?: boolean } = {}) {
    super(options.code ?? 'TRANSPORT_FAILED', message, { retryable: true, ...options });
  }
}

/** A tool call failed: unknown tool, invalid arguments, timeout, or the tool threw. */
export class ToolError extends AgentwireError {
  readonly tool: string;
  constructor(tool: string, message: string, options: AgentwireErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'TOOL_FAILED', message, options);
    this.tool = tool;
  }
}

/** A tool call exceeded its `timeoutMs`. */
export class ToolTimeoutError extends ToolError {
  constructor(tool: string, timeoutMs: number) {
    super(tool, `Tool "${tool}" timed out after ${timeoutMs} ms`, { code: 'TOOL_TIMEOUT', details: { timeoutMs } });
  }
}

/** Authentication failed or a principal tried to reach something it does not own. */
export class AuthError extends AgentwireError {
  constructor(message: string, options: AgentwireErrorOptions & { code?: string } = {}) {
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
  constructor(code: string, message: string, options: AgentwireErrorOptions = {}) {
    super(code, message, options);
  }
}

/** The `{name, message, code?}` shape errors take inside events. */
export function serializeError(error: unknown): { name: string; message: string; code?: string } {
  if (error instanceof AgentwireError) return { name: error.name, message: error.message, code: error.code };
  if (error instanceof Error) return { name: error.name || 'Error', message: error.message };
  return { name: 'Error', message: typeof error === 'string' ? error : safeString(error) };
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
