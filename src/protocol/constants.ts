/**
 * Constants of the gateway ↔ client protocol, with no dependency at all (no zod, no Node
 * built-in): the browser client imports them from here, the gateways too, so both sides agree
 * on every number and name by construction. The zod schemas of client frames are in `frames.ts`.
 *
 * @module agentwire/protocol/constants
 */

/**
 * Wire format version every event carries (`v`). Same value as the event schema's, checked at
 * compile time in `frames.ts`.
 */
export const WIRE_VERSION = 1 as const;

/** The event types of wire format version 1 (the schema's list, checked at compile time in `frames.ts`). */
export const EVENT_TYPES = ['agent_started', 'agent_thinking', 'tool_executing', 'tool_completed', 'agent_completed'] as const;

/** Version of the gateway ↔ client protocol (independent of the event wire version). */
export const PROTOCOL_VERSION = 1 as const;

/** Types of the frames a client sends. */
export const CLIENT_FRAME_TYPES = ['subscribe', 'unsubscribe', 'ack', 'answer', 'cancel'] as const;
export type ClientFrameType = (typeof CLIENT_FRAME_TYPES)[number];

/** Types of the frames a server sends (a message holds one frame, or an array of frames). */
export const SERVER_FRAME_TYPES = ['hello', 'event', 'subscribed', 'unsubscribed', 'history_gap', 'error', 'answered', 'cancel_accepted'] as const;
export type ServerFrameType = (typeof SERVER_FRAME_TYPES)[number];

/** Codes of the `error` frames the gateways send (clients may switch on them). */
export const GATEWAY_ERROR_CODES = [
  /** The frame is not JSON text. */
  'INVALID_JSON',
  /** A binary frame (only JSON text frames are accepted). */
  'BINARY_NOT_SUPPORTED',
  /** The frame is JSON but not a valid client frame (wrong or missing fields). */
  'INVALID_FRAME',
  /** A cursor (`after` of a subscribe, `cursor` of an ack) that is not 1-128 printable ASCII characters; the value is not echoed. */
  'INVALID_CURSOR',
  'UNKNOWN_FRAME_TYPE',
  /** The thread belongs to another user (answer to `subscribe`). */
  'THREAD_FORBIDDEN',
  'ALREADY_SUBSCRIBED',
  /** `unsubscribe` of a thread this connection does not follow (whoever owns it; acks are never answered). */
  'NOT_SUBSCRIBED',
  'TOO_MANY_SUBSCRIPTIONS',
  /** The event log failed or refused the subscription for another reason. */
  'SUBSCRIBE_FAILED',
  /** The log ended the subscription (closed, evicted): reconnect and resume from the cursor. */
  'SUBSCRIPTION_ENDED',
  /** Refusals of a `cancel` frame (the error frame names the `runId`): no such run, or the gateway takes no cancels. */
  'RUN_NOT_FOUND',
  /** Refusals of an `answer` frame (the error frame names the `requestId`); see docs/interactive.md. */
  'ANSWER_FORBIDDEN',
  'ANSWER_ALREADY_GIVEN',
  'ANSWER_UNKNOWN_REQUEST',
  'ANSWER_INVALID',
  'REQUEST_CLOSED',
  'RUN_CLOSED',
  /** The gateway's log takes no answers, or failed to store one. */
  'UNAVAILABLE',
] as const;
export type GatewayErrorCode = (typeof GATEWAY_ERROR_CODES)[number];

/** Close codes used by the gateways (4xxx are agentwire's own). */
export const CloseCode = {
  /** Normal closure: the client called `close()`, or the server ended the connection cleanly. */
  NORMAL_CLOSURE: 1000,
  /** Server shutting down (`close()`): reconnect elsewhere or later. */
  GOING_AWAY: 1001,
  /** Protocol violation the connection cannot recover from (e.g. binary frames). */
  UNSUPPORTED_DATA: 1003,
  /** A text frame that is not valid UTF-8. */
  INVALID_FRAME_PAYLOAD_DATA: 1007,
  /** Too many invalid frames. */
  POLICY_VIOLATION: 1008,
  /** A frame exceeded `maxPayload`. */
  MESSAGE_TOO_BIG: 1009,
  /** The server failed while serving this connection (reported through its `onError`); reconnect and resume. */
  INTERNAL_ERROR: 1011,
  /** Slow consumer: the send buffer exceeded its bound. Reconnect and resume from the cursor. */
  TRY_AGAIN_LATER: 1013,
  /** The peer stopped answering heartbeats. */
  HEARTBEAT_TIMEOUT: 4000,
  /** The connection subscribed to nothing within the gateway's `subscribeTimeoutMs`. */
  NO_SUBSCRIPTION: 4001,
  /** Client frames arrived faster than the per-connection rate limit. */
  RATE_LIMITED: 4008,
  /**
   * The principal's `expiresAt` passed. Terminal for a client with a fixed token; a client given
   * a token function fetches a fresh token and resumes.
   */
  TOKEN_EXPIRED: 4401,
  /** The user's access was revoked (`gateway.revoke(userId)`). Terminal. */
  REVOKED: 4403,
  /** The user already has the maximum number of connections. */
  TOO_MANY_CONNECTIONS: 4029,
} as const;
export type CloseCodeName = keyof typeof CloseCode;
export type CloseCodeValue = (typeof CloseCode)[CloseCodeName];
