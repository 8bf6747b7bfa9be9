import { z } from 'zod/v4';
import { discriminatedUnion } from '../events/discriminated-union.js';
import { CURSOR_FORMAT, CURSOR_PATTERN, MAX_CURSOR_LENGTH } from '../ids/cursor-format.js';
import { threadIdSchema } from '../ids/thread-id.js';
import { wellFormedString } from '../ids/user-id.js';
import type { AgentEvent, EventType, WIRE_VERSION as SCHEMA_WIRE_VERSION } from '../events/schema.js';
import type { HistoryGapReason } from '../transport/types.js';
import type { ClientFrameType, EVENT_TYPES, PROTOCOL_VERSION, ServerFrameType, WIRE_VERSION } from './constants.js';

/**
 * The frames of the gateway ↔ client protocol: zod schemas of what clients send (the gateways
 * parse with them) and the types of what servers send. The zod-free constants (version, close
 * codes, frame type and error code names) are in `constants.ts`: import those from there in
 * code that must not pull in zod (the browser client).
 */

/** A resume cursor as a client sends it (`ids/cursor-format.ts`, the rule of the SSE gateway too). */
const cursorSchema = z
  .string()
  .min(1, `cursor must be ${CURSOR_FORMAT}`)
  .max(MAX_CURSOR_LENGTH, `cursor must be ${CURSOR_FORMAT}`)
  .regex(CURSOR_PATTERN, `cursor must be ${CURSOR_FORMAT}`);

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
/** Answers a pending request (`tool_executing.data.pending`) as the connection's user; see docs/interactive.md. */
export const answerFrameSchema = z.object({
  type: z.literal('answer'),
  threadId: threadIdSchema,
  // Well-formed like every id that reaches a Redis key, field or script argument (no lone surrogate).
  runId: wellFormedString(1, 512, 'run id'),
  requestId: wellFormedString(1, 64, 'request id'),
  /** Approvals. */
  approved: z.boolean().optional(),
  /** Questions. */
  value: z.unknown().optional(),
  reason: z.string().max(1024).optional(),
});
/** Asks to cancel a run of the connection's user, wherever it runs (the gateway's `cancelRun` hook, e.g. a run queue's `cancel`). */
export const cancelFrameSchema = z.object({
  type: z.literal('cancel'),
  runId: wellFormedString(1, 512, 'run id'),
});
export const clientFrameSchema = discriminatedUnion('type', [subscribeFrameSchema, unsubscribeFrameSchema, ackFrameSchema, answerFrameSchema, cancelFrameSchema]);
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
export interface ErrorFrame {
  type: 'error';
  /** A `GatewayErrorCode` (kept a string so newer servers can add codes). */
  code: string;
  message: string;
  threadId?: string;
  /** The request of the refused `answer` frame. */
  requestId?: string;
  /** The run of the refused `cancel` frame. */
  runId?: string;
}
/** The answer of an `answer` frame was appended to the thread's log (its event follows as an `event` frame). */
export interface AnsweredFrame {
  type: 'answered';
  threadId: string;
  requestId: string;
  /** Cursor of the `user_answered` event. */
  cursor: string;
}
/** A `cancel` frame was taken: the run's `agent_completed` (cancelled, unless it had ended) follows in its thread. */
export interface CancelAcceptedFrame {
  type: 'cancel_accepted';
  runId: string;
  /** `requested` (the run is being aborted), `cancelled` (it was queued and ended at once), `already_finished`. */
  outcome: 'requested' | 'cancelled' | 'already_finished';
}
export type ServerFrame = HelloFrame | EventFrame | SubscribedFrame | UnsubscribedFrame | HistoryGapFrame | ErrorFrame | AnsweredFrame | CancelAcceptedFrame;

/**
 * Compile-time check: the frame types above and the names in `constants.ts` are the same sets,
 * and the zod-free event types and wire version agree with the event schema's (a new event type
 * in the schema fails here until `constants.ts` names it too, so the browser client accepts it).
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
// eslint-disable-next-line @typescript-eslint/no-unused-vars
type FrameTypesAgree = [
  Assert<Same<ClientFrame['type'], ClientFrameType>>,
  Assert<Same<ServerFrame['type'], ServerFrameType>>,
  Assert<Same<(typeof EVENT_TYPES)[number], EventType>>,
  Assert<Same<typeof WIRE_VERSION, typeof SCHEMA_WIRE_VERSION>>,
];
