/**
 * Bounds of the ids an event carries, without zod: what the event schema (`schema.ts`) is built
 * from and what `agentwire/client` checks before it keeps an id in memory (its dedupe window and
 * its per-run order check hold them), so one rule bounds them on every side.
 */

/** Longest event id (`id`, the dedupe key): 1-64 characters of well-formed UTF-16. */
export const MAX_EVENT_ID_LENGTH = 64;
/** Longest request id (`tool_executing.data.pending.requestId`, `user_answered.data.requestId`). */
export const MAX_REQUEST_ID_LENGTH = 64;
/** Longest tool call id (`toolCallId`). */
export const MAX_TOOL_CALL_ID_LENGTH = 128;
/** Longest agent name (`agent`). */
export const MAX_AGENT_NAME_LENGTH = 128;
