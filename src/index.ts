/**
 * `agentwire`: run agents and stream their five lifecycle events to the people watching.
 *
 * The agent author's and the integrator's API: {@link BaseAgent} and {@link defineTool} to write
 * agents, {@link AgentBridge} to deliver their events through a {@link Transport} (the in-memory
 * {@link MemoryTransport} built in), run and thread ids, the error hierarchy with its catalog of
 * codes, and the event validator. Front ends live under their own subpaths
 * (`agentwire/transport/websocket`, `agentwire/transport/sse`, `agentwire/agui`, …), the
 * browser client under `agentwire/client`, wire schemas and protocol constants under
 * `agentwire/protocol`.
 *
 * @module agentwire
 */

// Agents and tools.
export {
  BaseAgent,
  defineTool,
  defaultErrorInfo,
  type BaseAgentOptions,
  type Redactor,
  type ErrorRedactionContext,
  type AgentInstrumentation,
  type StreamTextOptions,
  type ToolCallInfo,
  type RunOptions,
  type RunResult,
  type RunStatus,
  type AgentListeners,
  type ToolDefinition,
  type ToolContext,
  type AnyTool,
  type RunContext,
  DEFAULT_APPROVAL_TIMEOUT_MS,
  ASK_TOOL_NAME,
  type AskOptions,
} from './agent/index.js';
export type { StandardSchemaV1 } from './agent/standard-schema.js';

// The bridge: delivery with retries, degraded buffering and metrics.
export {
  AgentBridge,
  type AgentBridgeOptions,
  type BridgeState,
  type DeliveryCallback,
  type DeliveryReceipt,
  type RetryOptions,
  type BridgeMetrics,
  type HistogramSnapshot,
} from './bridge/index.js';

// Transports: the integrator's interface (write side and read side) and the in-memory one.
export {
  MemoryTransport,
  type MemoryTransportOptions,
  type Transport,
  type TransportHealth,
  type EventLog,
  type LogEntry,
  type LogListener,
  type HistoryGap,
  type HistoryGapReason,
  type SubscribeRequest,
  type SubscribeResult,
  type Subscription,
  type AnswerInput,
  type AnswerLog,
  type AnswerReceipt,
  type InteractionLog,
  type PendingRequest,
} from './transport/index.js';

// Run ids, thread ids and the run → thread → user registry.
export {
  generateRunId,
  parseRunId,
  isRunId,
  assertThreadId,
  isValidThreadId,
  assertUserId,
  isValidUserId,
  MAX_THREAD_ID_LENGTH,
  MAX_RUN_ID_LENGTH,
  ThreadRegistry,
  type ParsedRunId,
  type ThreadRegistryOptions,
  type ThreadRoute,
} from './ids/index.js';

// Errors: one hierarchy, one catalog of codes.
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
  ERROR_CATALOG,
  httpStatusOf,
  isErrorCode,
  serializeError,
  errorFromCode,
  type AgentwireErrorOptions,
  type ErrorCode,
  type CodeOf,
  type ErrorClassName,
  type ErrorCatalogEntry,
} from './errors/index.js';

// Events: their types, and the validator (schema and lifecycle grammar).
export {
  WIRE_VERSION,
  EVENT_TYPES,
  parseEvent,
  safeParseEvent,
  validateLifecycle,
  LifecycleChecker,
  DEFAULT_JSON_LIMITS,
  isNotSerializableMarker,
  type NotSerializableMarker,
  type NotJsonReason,
  type EventType,
  type AgentEvent,
  type EventOfType,
  type EventData,
  type EventIdentity,
  type AgentStartedEvent,
  type AgentThinkingEvent,
  type ToolExecutingEvent,
  type ToolCompletedEvent,
  type AgentCompletedEvent,
  type ErrorInfo,
  type Usage,
  type LifecycleResult,
  type LifecycleRule,
  type LifecycleViolation,
  type EventLimits,
  type JsonLimits,
} from './events/index.js';

// The auth hook every front end takes (the gateways themselves are under their subpaths).
export { tokenFrom, type Authenticate, type Principal } from './gateway/auth.js';
export type { AuthRequest, HeaderReader } from './gateway/request.js';
// The options every front end shares (each surface's options extend them).
export type { FrontEndOptions, ErrorContext } from './gateway/options.js';
