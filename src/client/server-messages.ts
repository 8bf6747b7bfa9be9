import type { AgentEvent } from '../events/schema.js';
import { EVENT_TYPES as EVENT_TYPE_LIST, WIRE_VERSION } from '../protocol/constants.js';
import type { ServerFrame } from '../protocol/frames.js';

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
