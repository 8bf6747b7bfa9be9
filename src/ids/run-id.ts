import { customAlphabet } from 'nanoid';
import { ValidationError } from '../errors/index.js';
import { checker, shown as shownValue } from '../errors/options.js';
import { assertThreadId, isValidThreadId } from './thread-id.js';

/**
 * Standard run ids: `thread_<threadId>_run_<epochMs>_<unique>`.
 *
 * The unique part uses an alphabet without `_`, and the timestamp is digits only, so the
 * suffix `_run_<digits>_<unique>` can be matched from the right: whatever precedes it is the
 * thread id, even when the thread id itself contains `_` or `_run_`.
 */
const UNIQUE_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const UNIQUE_LENGTH = 12;
const makeUnique = customAlphabet(UNIQUE_ALPHABET, UNIQUE_LENGTH);
const RUN_ID_PATTERN = new RegExp(`^thread_(.+)_run_(\\d{1,15})_([0-9A-Za-z]{${UNIQUE_LENGTH}})$`);
/** The largest timestamp the pattern takes (15 digits; about the year 33658). */
const MAX_RUN_ID_TIMESTAMP = 999_999_999_999_999;
const check = checker('generateRunId()');

export interface ParsedRunId {
  threadId: string;
  /** Epoch milliseconds at which the run id was generated. */
  timestamp: number;
  unique: string;
}

/**
 * A new standard run id of `threadId`. `now` (default `Date.now()`) is the timestamp written into
 * it: an integer from 0 to 999,999,999,999,999 ms (15 digits), so that `parseRunId` takes every id this
 * returns; anything else (`-1`, `1.5`, `NaN`, `Infinity`, `null`, a string) throws a
 * `ValidationError` `INVALID_OPTION`, as an invalid thread id throws `INVALID_THREAD_ID`.
 */
export function generateRunId(threadId: string, now?: number): string {
  assertThreadId(threadId);
  const timestamp = now === undefined ? Date.now() : check.integer('now', now, 0, MAX_RUN_ID_TIMESTAMP);
  return `thread_${threadId}_run_${timestamp}_${makeUnique()}`;
}

function match(runId: unknown): ParsedRunId | undefined {
  if (typeof runId !== 'string' || runId.length > 512) return undefined;
  const m = RUN_ID_PATTERN.exec(runId);
  if (!m) return undefined;
  const threadId = m[1]!;
  if (!isValidThreadId(threadId)) return undefined;
  return { threadId, timestamp: Number(m[2]), unique: m[3]! };
}

export function isRunId(value: unknown): value is string {
  return match(value) !== undefined;
}

/** Parses a standard run id exactly; throws a `ValidationError` naming the value otherwise. */
export function parseRunId(runId: unknown): ParsedRunId {
  const parsed = match(runId);
  if (parsed) return parsed;
  // Never String(value): an object without a prototype, or whose toString throws, must still get this error.
  const shown = typeof runId === 'string' ? JSON.stringify(runId.slice(0, 120)) : shownValue(runId);
  throw new ValidationError(
    `Invalid run id ${shown}: expected thread_<threadId>_run_<epochMs>_<unique>`,
    { field: 'runId', code: 'INVALID_RUN_ID', details: { value: runId } },
  );
}
