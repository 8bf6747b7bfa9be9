export {
  AgentwireError,
  ValidationError,
  ThreadResolutionError,
  DeliveryError,
  TransportError,
  ToolError,
  ToolTimeoutError,
  AuthError,
  AbortError,
  HistoryGapError,
  StateError,
  GatewayError,
  type AgentwireErrorOptions,
} from './errors.js';
export { ERROR_CATALOG, httpStatusOf, isErrorCode, type ErrorCode, type CodeOf, type ErrorClassName, type ErrorCatalogEntry } from './catalog.js';
export { serializeError } from './serialize.js';
export { errorFromCode } from './from-code.js';
