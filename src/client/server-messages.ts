import type { AgentEvent } from '../events/schema.js';
import { EVENT_TYPES as EVENT_TYPE_LIST, WIRE_VERSION } from '../protocol/constants.js';
import type { ServerFrame } from '../protocol/frames.js';
import { MAX_AGENT_NAME_LENGTH, MAX_EVENT_ID_LENGTH, MAX_REQUEST_ID_LENGTH, MAX_TOOL_CALL_ID_LENGTH } from '../events/id-format.js';
import { MAX_RUN_ID_LENGTH, isSafeId } from '../ids/thread-id-format.js';
import { isWellFormed } from '../ids/user-id-format.js';

// From the zod-free constants so the browser bundle does not pull in the zod schemas.
const EVENT_TYPES: ReadonlySet<string> = new Set<string>([...EVENT_TYPE_LIST, 'user_answered']);

export type ParsedMessage = { ok: true; frames: ServerFrame[] } | { ok: false; message: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The envelope fields the client relies on (routing, dedupe, order). The server validated the rest. */
export function isAgentEvent(value: unknown): value is AgentEvent {
  return (
    isObject(value) &&
    value.v === WIRE_VERSION &&
    typeof value.id === 'string' &&
    typeof value.type === 'string' &&
    EVENT_TYPES.has(value.type) &&
    typeof value.runId === 'string' &&
    typeof value.threadId === 'string' &&
    typeof value.userId === 'string' &&
    typeof value.seq === 'number' &&
    isObject(value.data)
  );
}

function boundedString(value: unknown, max: number): boolean {
  return typeof value === 'string' && value.length > 0 && value.length <= max;
}

/**
 * The first field of `event` the client would keep in memory (its dedupe window, its per-run order
 * check) that is outside the event schema's bounds, or undefined. Those bounds are what keep the
 * client's memory bounded in bytes and not only in counts: `id` 1-64 characters of well-formed
 * UTF-16, `runId` a run id (1-256 of letters, digits and _ - . :), `agent` 1-128, `toolCallId`
 * 1-128, a request id 1-64. Names the field, never shows the value.
 */
export function retainedFieldProblem(event: AgentEvent): string | undefined {
  if (!boundedString(event.id, MAX_EVENT_ID_LENGTH) || !isWellFormed(event.id)) return `id (1-${MAX_EVENT_ID_LENGTH} characters of well-formed UTF-16)`;
  if (!isSafeId(event.runId, MAX_RUN_ID_LENGTH)) return `runId (1-${MAX_RUN_ID_LENGTH} characters of letters, digits and _ - . :)`;
  if (!boundedString(event.agent, MAX_AGENT_NAME_LENGTH)) return `agent (1-${MAX_AGENT_NAME_LENGTH} characters)`;
  if (event.type === 'tool_executing' || event.type === 'tool_completed' || event.type === 'user_answered') {
    const data = event.data as { toolCallId?: unknown; requestId?: unknown; pending?: unknown };
    if (!boundedString(data.toolCallId, MAX_TOOL_CALL_ID_LENGTH)) return `data.toolCallId (1-${MAX_TOOL_CALL_ID_LENGTH} characters)`;
    if (event.type === 'user_answered' && !boundedString(data.requestId, MAX_REQUEST_ID_LENGTH)) return `data.requestId (1-${MAX_REQUEST_ID_LENGTH} characters)`;
    if (event.type === 'tool_executing' && data.pending !== undefined) {
      if (!isObject(data.pending) || !boundedString(data.pending.requestId, MAX_REQUEST_ID_LENGTH)) return `data.pending.requestId (1-${MAX_REQUEST_ID_LENGTH} characters)`;
    }
  }
  return undefined;
}

/**
 * One WebSocket message from the gateway: a frame object, or an array of frames (a batch).
 * Frames are checked for a string `type`; their own fields are checked where they are used.
 */
export function parseServerMessage(data: unknown): ParsedMessage {
  if (typeof data !== 'string') return { ok: false, message: 'expected a text message from the server' };
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return { ok: false, message: 'the server sent a message that is not JSON' };
  }
  const frames = Array.isArray(value) ? value : [value];
  for (const frame of frames) {
    if (!isObject(frame) || typeof frame.type !== 'string') {
      return { ok: false, message: 'the server sent a frame without a type' };
    }
  }
  return { ok: true, frames: frames as ServerFrame[] };
}
