/**
 * The catalog of every error code agentwire uses: which error class owns it, the HTTP status an
 * HTTP surface answers with when it reaches a client that way, and what it means. Codes are
 * stable (clients switch on them); messages are for humans and may change.
 *
 * One code, one owner: `new ValidationError(…, { code })` only accepts the codes owned by
 * `ValidationError`, and so on. `docs/errors.md` is checked against this table by the tests.
 */
export const ERROR_CATALOG = {
  // ValidationError: input that does not match a schema or format.
  VALIDATION_FAILED: { owner: 'ValidationError', status: 400, summary: 'Input does not match its schema.' },
  INVALID_EVENT: { owner: 'ValidationError', status: 400, summary: 'An event does not match the event schema (the field is named).' },
  EVENT_NOT_SERIALIZABLE: { owner: 'ValidationError', status: 400, summary: 'Event data cannot be represented as JSON (BigInt, cycle, nesting deeper than the limit).' },
  EVENT_TOO_LARGE: { owner: 'ValidationError', status: 413, summary: 'A serialized event exceeds the size limit.' },
  INPUT_NOT_SERIALIZABLE: { owner: 'ValidationError', status: 400, summary: 'A run input or metadata cannot be represented as JSON, or is too large or too deep.' },
  OUTPUT_NOT_SERIALIZABLE: { owner: 'ValidationError', status: 500, summary: "A run's output cannot be represented as JSON, or is too large or too deep; the run fails with this error." },
  INVALID_OPTION: { owner: 'ValidationError', status: 400, summary: 'An option passed to a constructor or function is invalid.' },
  INVALID_USER_ID: { owner: 'ValidationError', status: 400, summary: 'A user id is not a string of 1-256 characters of well-formed UTF-16 (no lone surrogate).' },
  INVALID_THREAD_ID: { owner: 'ValidationError', status: 400, summary: 'A thread id is not 1-128 characters of letters, digits and _ - . :' },
  MISSING_THREAD_ID: { owner: 'ValidationError', status: 400, summary: 'A request needs a thread id and has none.' },
  INVALID_RUN_ID: { owner: 'ValidationError', status: 400, summary: 'A run id is malformed.' },
  INVALID_RUN_OPTIONS: { owner: 'ValidationError', status: 400, summary: 'The options of run() or of a run queue submit() are invalid.' },
  RUN_THREAD_MISMATCH: { owner: 'ValidationError', status: 400, summary: 'A standard run id names another thread than the one given.' },
  RUN_ID_CONFLICT: { owner: 'ValidationError', status: 409, summary: 'A run id is already in use or its events are still retained: a run id is used once.' },
  DUPLICATE_TOOL: { owner: 'ValidationError', status: 400, summary: 'Two tools of one agent have the same name.' },
  INVALID_CURSOR: { owner: 'ValidationError', status: 400, summary: 'A resume cursor is malformed.' },
  INVALID_ENTRY: { owner: 'ValidationError', status: 500, summary: 'A stored log entry is not a valid event (skipped and counted).' },
  INVALID_REQUEST: { owner: 'ValidationError', status: 400, summary: 'A request body does not match the endpoint schema.' },
  INVALID_INPUT: { owner: 'ValidationError', status: 400, summary: 'A request cannot be turned into the agent input.' },
  INVALID_MESSAGES: { owner: 'ValidationError', status: 400, summary: 'Chat messages are malformed.' },
  LIFECYCLE_VIOLATION: { owner: 'ValidationError', status: 500, summary: 'A run broke the lifecycle grammar (reported by the client and the validator).' },
  LIFECYCLE_UNCHECKED: { owner: 'ValidationError', status: 500, summary: "The client stopped checking a run's order: it holds more open tool calls than the client tracks (10,000 per run, 100,000 in all); its events are still delivered." },
  ANSWER_INVALID: { owner: 'ValidationError', status: 400, summary: "An answer has the wrong shape (approvals need approved, questions a value), or its value does not match the question's schema." },

  // ThreadResolutionError
  THREAD_UNRESOLVED: { owner: 'ThreadResolutionError', status: 400, summary: 'A run id resolves neither through the registry nor by parsing; nothing is delivered to a guessed target.' },

  // DeliveryError: an event that was neither delivered nor buffered.
  DELIVERY_FAILED: { owner: 'DeliveryError', status: 500, summary: 'The transport refused the event (see the cause for its code).' },
  BUFFER_FULL: { owner: 'DeliveryError', status: 503, summary: "The run's queue, or the degraded buffer, is full." },
  BRIDGE_UNAVAILABLE: { owner: 'DeliveryError', status: 503, summary: 'The bridge is closed or failed and accepts no events.' },
  UNDELIVERED: { owner: 'DeliveryError', status: 503, summary: 'The bridge gave up on a queued event (closed, or the transport stayed down past failAfterMs).' },

  // TransportError: a transport failed; retryable unless stated otherwise.
  TRANSPORT_FAILED: { owner: 'TransportError', status: 503, summary: 'A transport operation failed.' },
  TRANSPORT_UNHEALTHY: { owner: 'TransportError', status: 503, summary: 'The transport reported itself unhealthy at initialize().' },
  TRANSPORT_CLOSED: { owner: 'TransportError', status: 503, summary: 'The transport or log is closed.' },
  TRANSPORT_REFUSED: { owner: 'TransportError', status: 500, summary: 'A transport refused an event for good (not retryable).' },
  THREAD_OWNER_MISMATCH: { owner: 'TransportError', status: 403, summary: 'An event names a thread that belongs to another user; it was not stored.' },
  TOO_MANY_THREADS: { owner: 'TransportError', status: 503, summary: 'The log follows as many threads as it may, or opening one would forget the owner of a thread dropped for room.' },
  REDIS_UNAVAILABLE: { owner: 'TransportError', status: 503, summary: 'Redis is unreachable (retryable).' },
  REDIS_ERROR: { owner: 'TransportError', status: 500, summary: 'Redis answered with an error.' },
  REPLAY_UNSTABLE: { owner: 'TransportError', status: 503, summary: 'A replay kept being overtaken by retention or growth.' },
  SUBSCRIBE_RACE: { owner: 'TransportError', status: 503, summary: 'A thread changed while subscribing; try again.' },
  SUBSCRIBER_OVERFLOW: { owner: 'TransportError', status: 503, summary: 'Too many live entries arrived while a replay was completed.' },
  TOO_MANY_REPLAYS: { owner: 'TransportError', status: 429, summary: "A user has as many replays reading the Redis log and waiting for their turn as allowed (maxConcurrentReplaysPerUser, maxQueuedReplaysPerUser); retry shortly." },
  CONNECT_FAILED: { owner: 'TransportError', status: 503, summary: 'The client could not open a connection.' },
  CONNECTION_LOST: { owner: 'TransportError', status: 503, summary: 'The connection closed and reconnecting is disabled.' },
  RECONNECT_FAILED: { owner: 'TransportError', status: 503, summary: 'The client gave up reconnecting.' },
  PROTOCOL_ERROR: { owner: 'TransportError', status: 502, summary: 'The peer sent something the protocol does not allow.' },
  PROTOCOL_VERSION: { owner: 'TransportError', status: 502, summary: 'The peer speaks another protocol version.' },
  UNSUPPORTED_DATA: { owner: 'GatewayError', status: 400, summary: 'Closed with 1003: the server does not accept this kind of data.' },
  INVALID_FRAME_PAYLOAD_DATA: { owner: 'GatewayError', status: 400, summary: 'Closed with 1007: a text frame was not valid UTF-8.' },
  POLICY_VIOLATION: { owner: 'GatewayError', status: 400, summary: 'Closed with 1008: too many invalid frames.' },
  MESSAGE_TOO_BIG: { owner: 'GatewayError', status: 413, summary: 'Closed with 1009: a frame exceeded maxPayload.' },

  // ToolError: a tool call failed.
  TOOL_FAILED: { owner: 'ToolError', status: 500, summary: 'The tool threw.' },
  TOOL_NOT_FOUND: { owner: 'ToolError', status: 400, summary: 'No tool of that name is registered on the agent.' },
  TOOL_INVALID_ARGS: { owner: 'ToolError', status: 400, summary: "The arguments do not match the tool's schema (the field is named)." },
  APPROVAL_ARGS_NOT_SHOWN: { owner: 'ToolError', status: 500, summary: 'A tool call that needs approval has arguments that cannot be shown as JSON; nobody can approve what they cannot see, so the call fails without a request.' },
  RESULT_NOT_SERIALIZABLE: { owner: 'ToolError', status: 500, summary: "A tool's result cannot be represented as JSON, or is too large; the call fails." },
  TOOL_DENIED: { owner: 'ToolError', status: 403, summary: 'The user denied the tool call; the tool did not run (a model gets this as the tool result).' },
  APPROVAL_TIMEOUT: { owner: 'ToolError', status: 504, summary: "No answer arrived within the call's approvalTimeoutMs (default 5 min); the tool did not run." },
  TOOL_TIMEOUT: { owner: 'ToolTimeoutError', status: 504, summary: "The tool exceeded its timeoutMs; its signal was aborted." },

  // AuthError: authentication failed, or a principal reached for something it does not own.
  AUTH_FAILED: { owner: 'AuthError', status: 401, summary: 'Missing or invalid credentials (the hook returned null or threw).' },
  AUTH_TIMEOUT: { owner: 'AuthError', status: 503, summary: 'The authenticate hook did not answer within authTimeoutMs.' },
  TOKEN_EXPIRED: { owner: 'AuthError', status: 401, summary: "The principal's expiry passed; the connection was closed." },
  REVOKED: { owner: 'AuthError', status: 401, summary: "The user's access was revoked; the connection was closed." },
  THREAD_FORBIDDEN: { owner: 'AuthError', status: 403, summary: 'The thread (or run) belongs to another user.' },
  FOREIGN_EVENT: { owner: 'AuthError', status: 403, summary: 'The client refused an event of another user or thread.' },
  ANSWER_FORBIDDEN: { owner: 'AuthError', status: 403, summary: "Only the run's own user may answer its requests." },
  ORIGIN_FORBIDDEN: { owner: 'AuthError', status: 403, summary: 'The request comes from an origin that is not allowed.' },

  // AbortError
  ABORTED: { owner: 'AbortError', status: 499, summary: 'The run (or the operation) was cancelled through its AbortSignal.' },

  // HistoryGapError
  HISTORY_GAP: { owner: 'HistoryGapError', status: 409, summary: 'A resume cursor cannot be honoured completely; the client decides what to do.' },

  // StateError: an operation used in the wrong state.
  NO_ACTIVE_RUN: { owner: 'StateError', status: 500, summary: 'think(), callTool() or reportUsage() was called outside a run of this agent.' },
  RUN_CLOSED: { owner: 'StateError', status: 409, summary: 'The run has completed: nothing can follow agent_completed.' },
  RUN_ENDED: { owner: 'StateError', status: 500, summary: 'The run finished before this tool call did (the call is closed as failed).' },
  BRIDGE_CLOSED: { owner: 'StateError', status: 503, summary: 'The bridge is closed.' },
  BRIDGE_FAILED: { owner: 'StateError', status: 503, summary: 'The bridge failed (transport down past failAfterMs, or its health check failed); runs and events are refused until initialize() succeeds.' },
  BRIDGE_GAVE_UP: { owner: 'StateError', status: 503, summary: 'The bridge gave up retrying an event.' },
  GATEWAY_CLOSED: { owner: 'StateError', status: 503, summary: 'The gateway or handler is closed or shutting down.' },
  ALREADY_LISTENING: { owner: 'StateError', status: 500, summary: 'listen() was called twice.' },
  LISTENER_FAILED: { owner: 'StateError', status: 500, summary: 'A local listener threw; the run or client went on.' },
  ANSWER_ALREADY_GIVEN: { owner: 'StateError', status: 409, summary: 'The request was answered already: a request is answered once.' },
  ANSWER_UNKNOWN_REQUEST: { owner: 'StateError', status: 404, summary: 'The log knows no request of that id in that run (never asked, or no longer retained).' },
  REQUEST_CLOSED: { owner: 'StateError', status: 409, summary: 'The request was closed without an answer (timed out, cancelled, or its run ended).' },
  NO_ANSWER_LOG: { owner: 'StateError', status: 500, summary: "A call needs an answer but the agent has no log to wait on (set the agent's interaction option, or use a bridge whose transport is one, or a gateway over one)." },

  // GatewayError: what a front end refuses or reports to a client (error frames, close codes, HTTP refusals).
  INVALID_JSON: { owner: 'GatewayError', status: 400, summary: 'A frame or body is not JSON.' },
  BINARY_NOT_SUPPORTED: { owner: 'GatewayError', status: 400, summary: 'Binary frames are not supported.' },
  INVALID_FRAME: { owner: 'GatewayError', status: 400, summary: 'A frame is JSON but not a valid client frame.' },
  UNKNOWN_FRAME_TYPE: { owner: 'GatewayError', status: 400, summary: 'A frame has an unknown type.' },
  ALREADY_SUBSCRIBED: { owner: 'GatewayError', status: 409, summary: 'The connection already follows that thread.' },
  NOT_SUBSCRIBED: { owner: 'GatewayError', status: 409, summary: 'The connection does not follow that thread.' },
  TOO_MANY_SUBSCRIPTIONS: { owner: 'GatewayError', status: 429, summary: 'The connection follows as many threads as it may.' },
  SUBSCRIBE_FAILED: { owner: 'GatewayError', status: 503, summary: 'The event log failed or refused the subscription.' },
  SUBSCRIPTION_ENDED: { owner: 'GatewayError', status: 503, summary: 'The log ended the subscription; resume from the cursor.' },
  SERVER_ERROR: { owner: 'GatewayError', status: 500, summary: 'The server reported an error this client does not know.' },

  // HTTP refusals of a front end (also GatewayError).
  METHOD_NOT_ALLOWED: { owner: 'GatewayError', status: 405, summary: 'The endpoint does not accept this method.' },
  NOT_FOUND: { owner: 'GatewayError', status: 404, summary: 'No route for this path.' },
  BODY_TOO_LARGE: { owner: 'GatewayError', status: 413, summary: 'The request body exceeds maxBodyBytes.' },
  BODY_TOO_DEEP: { owner: 'GatewayError', status: 400, summary: 'The request body nests deeper than maxBodyDepth.' },
  BODY_TIMEOUT: { owner: 'GatewayError', status: 408, summary: 'The request body did not arrive within the body timeout.' },
  TOO_MANY_RUNS: { owner: 'GatewayError', status: 429, summary: 'The user, or the server, runs as many runs as it may.' },
  TOO_MANY_CONNECTIONS: { owner: 'GatewayError', status: 429, summary: 'The user holds as many connections or streams as allowed (or 4029 on a WebSocket).' },
  SERVER_AT_CAPACITY: { owner: 'GatewayError', status: 503, summary: 'The server holds as many connections or streams as it may.' },
  UNAVAILABLE: { owner: 'GatewayError', status: 503, summary: 'The endpoint cannot serve the request now.' },
  INTERNAL_ERROR: { owner: 'GatewayError', status: 500, summary: 'The request failed inside the server (details withheld, reported through onError).' },

  // Run queue (src/runs): submit, cancel, status across processes.
  WORKER_LOST: { owner: 'StateError', status: 500, summary: "The worker running the run stopped renewing its lease (died, or was too slow); the run was ended as failed by another process." },
  RUN_FENCED: { owner: 'StateError', status: 409, summary: 'This worker lost the run (presumed dead, or the run was ended elsewhere): its later events are refused by the log.' },
  RUN_NOT_FOUND: { owner: 'StateError', status: 404, summary: 'The run queue knows no run of that id (never submitted, or its status expired).' },
  QUEUE_CLOSED: { owner: 'StateError', status: 503, summary: 'The run queue or worker is closed or shutting down.' },
  UNKNOWN_AGENT: { owner: 'ValidationError', status: 400, summary: 'No agent of that name is served (submit names an agent, workers serve agents by name).' },
  QUEUE_FULL: { owner: 'GatewayError', status: 429, summary: 'The run queue holds as many queued runs as it may (cluster-wide).' },
} as const satisfies Record<string, ErrorCatalogEntry>;

/** One row of {@link ERROR_CATALOG}: the class that owns the code, its HTTP status, what it means. */
export interface ErrorCatalogEntry {
  readonly owner: ErrorClassName;
  readonly status: number;
  readonly summary: string;
}

/** Names of the error classes that own codes. */
export type ErrorClassName =
  | 'ValidationError'
  | 'ThreadResolutionError'
  | 'DeliveryError'
  | 'TransportError'
  | 'ToolError'
  | 'ToolTimeoutError'
  | 'AuthError'
  | 'AbortError'
  | 'HistoryGapError'
  | 'StateError'
  | 'GatewayError';

/** Every error code agentwire uses. */
export type ErrorCode = keyof typeof ERROR_CATALOG;

/** The codes owned by one error class. */
export type CodeOf<Owner extends ErrorClassName> = {
  [K in ErrorCode]: (typeof ERROR_CATALOG)[K]['owner'] extends Owner ? K : never;
}[ErrorCode];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CATALOG, value);
}

/** The HTTP status an HTTP surface answers with for `code`. */
export function httpStatusOf(code: ErrorCode): number {
  return ERROR_CATALOG[code].status;
}
