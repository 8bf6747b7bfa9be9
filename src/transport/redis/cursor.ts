/**
 * Cursors of the Redis log: `<epoch>.<thread tag>:<entry id>`, e.g. `k3x9q2mz.1f.3.1ghkija:1718000000000-4`.
 *
 * The epoch names one incarnation of one thread's stream (made by the append script when it
 * creates the stream, unique per stream: `<writer seed>.<batch>.<index in batch>`, stored beside
 * it and in every entry), so a cursor from a deleted and recreated stream, or of another thread's
 * stream, is never mistaken for one of this stream. The thread tag (`threadTag(threadId)`) tells a
 * cursor of another thread (`unknown_cursor`) apart from a recreated stream (`epoch_changed`). The
 * entry id is the Redis stream id of the event the cursor points after. Clients treat the whole
 * string as opaque.
 */
export interface RedisCursor {
  readonly epoch: string;
  /** `threadTag` of the thread the cursor was issued for. */
  readonly tag: string;
  /** Stream entry id, `<ms>-<seq>`. */
  readonly id: string;
}

/** The smallest stream id; "before every entry". */
export const ID_ZERO = '0-0';

const CURSOR_PATTERN = /^([0-9a-z.]{1,48})\.([0-9a-z]{1,7}):((?:0|[1-9]\d{0,19})-(?:0|[1-9]\d{0,19}))$/;
const EPOCH_PATTERN = /^[0-9a-z.]{1,48}$/;
const U64_MAX = '18446744073709551615';

export function formatCursor(epoch: string, tag: string, id: string): string {
  return `${epoch}.${tag}:${id}`;
}

/** Parses a cursor; undefined when it is not one this log issues. */
export function parseCursor(cursor: string): RedisCursor | undefined {
  const match = CURSOR_PATTERN.exec(cursor);
  if (!match) return undefined;
  const id = match[3]!;
  const dash = id.indexOf('-');
  // Each part is a 64-bit number; the largest one has no successor (an exclusive range from it is an error in Redis).
  if (compareDecimal(id.slice(0, dash), U64_MAX) >= 0 || compareDecimal(id.slice(dash + 1), U64_MAX) >= 0) return undefined;
  return { epoch: match[1]!, tag: match[2]!, id };
}

export function isEpoch(value: string): boolean {
  return EPOCH_PATTERN.test(value);
}

/** Orders two stream ids (`<ms>-<seq>`, decimal without leading zeros): negative, 0 or positive. */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const dashA = a.indexOf('-');
  const dashB = b.indexOf('-');
  const byMs = compareDecimal(a.slice(0, dashA), b.slice(0, dashB));
  if (byMs !== 0) return byMs;
  return compareDecimal(a.slice(dashA + 1), b.slice(dashB + 1));
}

function compareDecimal(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}
