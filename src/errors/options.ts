import { ValidationError } from './errors.js';
import { isWellFormed } from '../ids/user-id-format.js';

/**
 * The one validator of constructor options (gateways, transports, the bridge, run queues): every
 * refusal is a `ValidationError` `INVALID_OPTION` whose `field` is the option and whose message
 * reads `<Owner> option <name> <problem> (got <value>)`, e.g.
 * `MemoryTransport option maxTotalEvents must be a positive integer (got 1.5)`.
 *
 * Rules: `undefined` means the default (callers pass `options.x ?? default`); counts are safe
 * integers (`Infinity` is refused: every bound is finite); durations are finite numbers, and at
 * most `MAX_TIMER_MS` where a timer waits for them (Node fires a longer `setTimeout` after 1 ms).
 */

/** The longest delay `setTimeout` / `setInterval` honour (2^31 - 1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;

/** `value`, or `fallback` when it is `undefined` (only then: unlike `??`, a `null` stays and is refused by the checks). */
export function given<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value;
}

/** A value as shown in an option's error message: numbers as written (`NaN`, `1.5`), strings quoted, anything else by its type. */
export function shown(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || value === undefined || value === null) return String(value);
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 80));
  return typeof value;
}

export interface DurationRange {
  /** Smallest accepted value (e.g. 0 where 0 has a documented meaning). Default: any value > 0. */
  min?: number;
  /** Largest accepted value. Default: any finite number (`MAX_TIMER_MS` for a timer's delay). */
  max?: number;
  /** Whole milliseconds only (the value goes to an API that takes integers). Default false. */
  integer?: boolean;
}

export interface NumberRange {
  /** Smallest accepted value. Default: no lower bound. */
  min?: number;
  /** Largest accepted value. Default: no upper bound (still finite). */
  max?: number;
  /** Safe integers only. Default false (fractions allowed). */
  integer?: boolean;
}

export interface OptionChecker {
  /** A `ValidationError` `INVALID_OPTION` for `option`, the message `<owner> option <option> <problem>`. */
  fail(option: string, problem: string): ValidationError;
  /** A safe integer from `min` (default 1) to `max` (default `Number.MAX_SAFE_INTEGER`). */
  integer(option: string, value: unknown, min?: number, max?: number): number;
  /** A finite number > 0 (fractions allowed). */
  positive(option: string, value: unknown): number;
  /** A finite number from `range.min` to `range.max` (both included), a safe integer with `range.integer`. */
  number(option: string, value: unknown, range?: NumberRange): number;
  /**
   * A duration in ms: a finite number > 0, or >= `range.min` when it is given (e.g. 0 where 0
   * means "do not wait"), at most `range.max`.
   */
  duration(option: string, value: unknown, range?: DurationRange): number;
  /** A function. */
  fn<T>(option: string, value: T): T;
  /** `true` or `false`. */
  boolean(option: string, value: unknown): boolean;
  /** One of `values` (strings, shown quoted: `must be "a" or "b"`). */
  oneOf<T extends string>(option: string, value: unknown, values: readonly T[]): T;
  /** A string of `min` (default 1) to `max` characters, well-formed UTF-16 (no lone surrogate). */
  string(option: string, value: unknown, max: number, min?: number): string;
}

/** Validation helpers of one constructor (its name, e.g. `MemoryTransport`, goes into every message). */
export function checker(owner: string): OptionChecker {
  const fail = (option: string, problem: string): ValidationError =>
    new ValidationError(`${owner} option ${option} ${problem}`, { field: option, code: 'INVALID_OPTION' });
  const refuse = (option: string, expected: string, value: unknown): ValidationError => fail(option, `must be ${expected} (got ${shown(value)})`);
  return {
    fail,
    integer(option, value, min = 1, max = Number.MAX_SAFE_INTEGER) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
        throw refuse(option, integerRange(min, max), value);
      }
      return value;
    },
    positive(option, value) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw refuse(option, 'a finite number > 0', value);
      return value;
    },
    number(option, value, range = {}) {
      const { min = -Number.MAX_VALUE, max = Number.MAX_VALUE, integer = false } = range;
      if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isSafeInteger(value))) {
        throw refuse(option, numberRange(range), value);
      }
      return value;
    },
    duration(option, value, range = {}) {
      const { min, max = Number.MAX_VALUE, integer = false } = range;
      const ok =
        typeof value === 'number' &&
        Number.isFinite(value) &&
        (min === undefined ? value > 0 : value >= min) &&
        value <= max &&
        (!integer || Number.isSafeInteger(value));
      if (!ok) {
        const kind = integer ? 'a whole number of milliseconds' : 'a finite number of milliseconds';
        const lower = min === undefined ? '> 0' : `>= ${min}`;
        throw refuse(option, max === Number.MAX_VALUE ? `${kind} ${lower}` : `${kind} ${lower} and <= ${max}`, value);
      }
      return value;
    },
    fn(option, value) {
      if (typeof value !== 'function') throw refuse(option, 'a function', value);
      return value;
    },
    boolean(option, value) {
      if (typeof value !== 'boolean') throw refuse(option, 'true or false', value);
      return value;
    },
    oneOf(option, value, values) {
      if (!(values as readonly unknown[]).includes(value)) {
        const listed = values.map((v) => JSON.stringify(v));
        throw refuse(option, listed.length > 1 ? `${listed.slice(0, -1).join(', ')} or ${listed.at(-1)}` : `${listed[0]}`, value);
      }
      return value as (typeof values)[number];
    },
    string(option, value, max, min = 1) {
      // Names reach UTF-8 stores and Redis scripts: a lone surrogate would come back as U+FFFD.
      if (typeof value !== 'string' || value.length < min || value.length > max || !isWellFormed(value)) {
        throw refuse(option, `a string of ${min} to ${max} characters of well-formed UTF-16`, value);
      }
      return value;
    },
  };
}

function integerRange(min: number, max: number): string {
  if (max !== Number.MAX_SAFE_INTEGER) return `an integer from ${min} to ${max}`;
  if (min === 1) return 'a positive integer';
  if (min === 0) return 'a non-negative integer';
  return `an integer >= ${min}`;
}

function numberRange({ min, max, integer = false }: NumberRange): string {
  const kind = integer ? 'an integer' : 'a number';
  if (min !== undefined && max !== undefined) return `${kind} from ${min} to ${max}`;
  if (min !== undefined) return `${kind} >= ${min}`;
  if (max !== undefined) return `${kind} <= ${max}`;
  return integer ? 'a safe integer' : 'a finite number';
}
