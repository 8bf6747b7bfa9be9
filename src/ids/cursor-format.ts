/**
 * The format of a resume cursor without zod: what the WebSocket gateway (`after` of a subscribe,
 * `cursor` of an ack), the SSE gateway (`Last-Event-ID`, `?after=`) and `agentwire/client` (its
 * `after` option) accept, one rule for every side. Cursors stay opaque: this only bounds what a
 * client may send before a log is asked about it.
 */

/** Longest accepted resume cursor. */
export const MAX_CURSOR_LENGTH = 128;

/** Printable ASCII without spaces: what every built-in log issues as a cursor. */
export const CURSOR_PATTERN = /^[\x21-\x7e]+$/;

/** What a refusal says of a malformed cursor (never the value itself). */
export const CURSOR_FORMAT = `1-${MAX_CURSOR_LENGTH} printable ASCII characters`;

/** Whether `value` is a cursor a client may send: 1-128 characters of printable ASCII, no space. */
export function isValidCursor(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_CURSOR_LENGTH && CURSOR_PATTERN.test(value);
}
