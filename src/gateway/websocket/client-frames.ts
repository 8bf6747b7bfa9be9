import { describeIssue } from '../../events/parse.js';
import { CURSOR_FORMAT, isValidCursor } from '../../ids/cursor-format.js';
import { isValidThreadId } from '../../ids/thread-id-format.js';
import { CLIENT_FRAME_TYPES, type GatewayErrorCode } from '../../protocol/constants.js';
import { clientFrameSchema, type ClientFrame } from '../../protocol/frames.js';

export type ParsedClientFrame =
  | { ok: true; frame: ClientFrame }
  | { ok: false; code: GatewayErrorCode; message: string; threadId?: string };

const FRAME_TYPES: ReadonlySet<string> = new Set(CLIENT_FRAME_TYPES);

/** The cursor field of the frame types that carry one. */
const CURSOR_FIELDS: Readonly<Record<string, string>> = { subscribe: 'after', ack: 'cursor' };

function invalid(code: GatewayErrorCode, message: string): ParsedClientFrame {
  return { ok: false, code, message };
}

/** Quotes untrusted text for an error message without echoing more than a few characters of it. */
function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

/**
 * Parses the text of one client message. Never throws: anything that is not a valid client
 * frame yields a code and a message for the `error` frame the gateway answers with.
 */
export function parseClientFrame(text: string): ParsedClientFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return invalid('INVALID_JSON', 'frame is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return invalid('INVALID_FRAME', 'frame must be a JSON object with a "type"');
  }
  const type: unknown = (value as { type?: unknown }).type;
  if (typeof type !== 'string') return invalid('INVALID_FRAME', 'frame is missing a string "type"');
  if (!FRAME_TYPES.has(type)) {
    return invalid('UNKNOWN_FRAME_TYPE', `unknown frame type ${quote(type)}; expected subscribe, unsubscribe, ack, answer or cancel`);
  }
  // A cursor outside the format is INVALID_CURSOR (as on SSE), never echoed and never handed to
  // the log: a string of the wrong characters or length, and a present cursor that is no string
  // at all (123, null, {}), so the client learns which thread's resume point is bad. An absent
  // cursor is the schema's (a subscribe may omit `after`; an ack without `cursor` is INVALID_FRAME).
  const cursorField = CURSOR_FIELDS[type];
  if (cursorField !== undefined && Object.hasOwn(value, cursorField)) {
    const cursor: unknown = (value as Record<string, unknown>)[cursorField];
    if (!isValidCursor(cursor)) {
      const threadId: unknown = (value as { threadId?: unknown }).threadId;
      const refused: ParsedClientFrame = { ok: false, code: 'INVALID_CURSOR', message: `invalid ${type} frame: ${cursorField}: expected ${CURSOR_FORMAT}` };
      return isValidThreadId(threadId) ? { ...refused, threadId } : refused;
    }
  }
  const result = clientFrameSchema.safeParse(value);
  if (!result.success) {
    const { field, message } = describeIssue(result.error);
    return invalid('INVALID_FRAME', `invalid ${type} frame: ${field}: ${message}`);
  }
  return { ok: true, frame: result.data };
}
