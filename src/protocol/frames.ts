import { z } from 'zod';
import { threadIdSchema } from '../ids/thread-id.js';
import type { AgentEvent } from '../events/schema.js';
import type { HistoryGapReason } from '../transport/types.js';

/** Version of the gateway ↔ client protocol (independent of the event wire version). */
export const PROTOCOL_VERSION = 1 as const;

const cursorSchema = z.string().min(1).max(128);

/** Client → server frames. Every frame is JSON text; binary frames are refused. */
export const subscribeFrameSchema = z.object({
  type: z.literal('subscribe'),
  threadId: threadIdSchema,
  /** Resume after this cursor; absent = replay everything retained, then follow live. */
  after: cursorSchema.optional(),
});
export const unsubscribeFrameSchema = z.object({
  type: z.literal('unsubscribe'),
  threadId: threadIdSchema,
});
/** Optional: tells the server what the client has displayed (used for metrics only). */
export const ackFrameSchema = z.object({
  type: z.literal('ack'),
  threadId: threadIdSchema,
  cursor: cursorSchema,
});
export const clientFrameSchema = z.discriminatedUnion('type', [subscribeFrameSchema, unsubscribeFrameSchema, ackFrameSchema]);
export type ClientFrame = z.infer<typeof clientFrameSchema>;

/** Server → client frames. A WebSocket message holds one frame, or an array of frames (a batch). */
export interface HelloFrame {
  type: 'hello';
  v: typeof PROTOCOL_VERSION;
  userId: string;
  connectionId: string;
}
export interface EventFrame {
  type: 'event';
  threadId: string;
  /** Resume point just after this event. */
  cursor: string;
  event: AgentEvent;
}
export interface SubscribedFrame {
  type: 'subscribed';
  threadId: string;
  /** Newest cursor of the thread at subscription time (null for an empty thread). */
  cursor: string | null;
  /** Number of replayed events that follow this frame. */
  replayed: number;
}
export interface UnsubscribedFrame {
  type: 'unsubscribed';
  threadId: string;
}
export interface HistoryGapFrame {
  type: 'history_gap';
  threadId: string;
  requested: string;
  reason: HistoryGapReason;
  message: string;
}
/** Codes of the `error` frames the gateways send (clients may switch on them). */
export type GatewayErrorCode =
  /** The frame is not JSON text (or is a binary frame). */
  | 'INVALID_JSON'
  | 'BINARY_NOT_SUPPORTED'
  /** The frame is JSON but not a valid client frame (wrong or missing fields). */
  | 'INVALID_FRAME'
  | 'UNKNOWN_FRAME_TYPE'
  /** The thread belongs to another user. */
  | 'THREAD_FORBIDDEN'
  | 'ALREADY_SUBSCRIBED'
  | 'NOT_SUBSCRIBED'
  | 'TOO_MANY_SUBSCRIPTIONS'
  /** The event log failed or refused the subscription for another reason. */
  | 'SUBSCRIBE_FAILED'
  /** The log ended the subscription (closed, evicted): reconnect and resume from the cursor. */
  | 'SUBSCRIPTION_ENDED';

export interface ErrorFrame {
  type: 'error';
  /** A `GatewayErrorCode` (kept a string so newer servers can add codes). */
  code: string;
  message: string;
  threadId?: string;
}
export type ServerFrame = HelloFrame | EventFrame | SubscribedFrame | UnsubscribedFrame | HistoryGapFrame | ErrorFrame;

/** Close codes used by the gateways (4xxx are agentwire's own). */
export const CloseCode = {
  /** Server shutting down (`close()`): reconnect elsewhere or later. */
  GOING_AWAY: 1001,
  /** Protocol violation the connection cannot recover from (e.g. binary frames). */
  UNSUPPORTED_DATA: 1003,
  /** A frame exceeded `maxPayload`. */
  MESSAGE_TOO_BIG: 1009,
  /** Slow consumer: the send buffer exceeded its bound. Reconnect and resume from the cursor. */
  TRY_AGAIN_LATER: 1013,
  /** Too many invalid frames. */
  POLICY_VIOLATION: 1008,
  /** The user already has the maximum number of connections. */
  TOO_MANY_CONNECTIONS: 4029,
  /** Client frames arrived faster than the per-connection rate limit. */
  RATE_LIMITED: 4008,
  /** The peer stopped answering heartbeats. */
  HEARTBEAT_TIMEOUT: 4000,
  /** The connection subscribed to nothing within the gateway's `subscribeTimeoutMs`. */
  NO_SUBSCRIPTION: 4001,
} as const;
