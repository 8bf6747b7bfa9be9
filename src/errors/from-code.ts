import { ERROR_CATALOG, type CodeOf, type ErrorCode } from './catalog.js';
import {
  AbortError,
  AuthError,
  DeliveryError,
  GatewayError,
  HistoryGapError,
  StateError,
  ThreadResolutionError,
  ToolError,
  ToolTimeoutError,
  TransportError,
  ValidationError,
  type AgentwireError,
  type AgentwireErrorOptions,
} from './errors.js';

/**
 * The error for a code known only at run time (a code read off the wire, an error frame, an HTTP
 * body), as an instance of the class that owns it in `ERROR_CATALOG`: one code, one class, also on
 * the receiving side. Tool errors get their tool from `details.tool` when it is there.
 */
export function errorFromCode(code: ErrorCode, message: string, options: AgentwireErrorOptions = {}): AgentwireError {
  const tool = typeof options.details?.tool === 'string' ? options.details.tool : '(unknown)';
  switch (ERROR_CATALOG[code].owner) {
    case 'ValidationError':
      return new ValidationError(message, { ...options, code: code as CodeOf<'ValidationError'> });
    case 'ThreadResolutionError':
      return new ThreadResolutionError(message, options);
    case 'DeliveryError':
      return new DeliveryError(message, { ...options, code: code as CodeOf<'DeliveryError'> });
    case 'TransportError':
      return new TransportError(message, { ...options, code: code as CodeOf<'TransportError'> });
    case 'ToolError':
      return new ToolError(tool, message, { ...options, code: code as CodeOf<'ToolError'> });
    case 'ToolTimeoutError': {
      const timeoutMs = typeof options.details?.timeoutMs === 'number' ? options.details.timeoutMs : 0;
      const error = new ToolTimeoutError(tool, timeoutMs);
      error.message = message;
      return error;
    }
    case 'AuthError':
      return new AuthError(message, { ...options, code: code as CodeOf<'AuthError'> });
    case 'AbortError':
      return new AbortError(message, options);
    case 'HistoryGapError':
      return new HistoryGapError(message, options);
    case 'StateError':
      return new StateError(code as CodeOf<'StateError'>, message, options);
    case 'GatewayError':
      return new GatewayError(code as CodeOf<'GatewayError'>, message, options);
  }
}
