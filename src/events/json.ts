import { ValidationError } from '../errors/index.js';
import type { AgentEvent } from './schema.js';

/**
 * JSON safety of events. An event is JSON or it is not emitted: its data is serialized once
 * where the event is built (the `RunEmitter`, or `AgentBridge.send` for integrators' events),
 * checked there, and the string is reused by every transport through `eventJson(event)`.
 *
 * Semantics are `JSON.stringify`'s, plus limits: `toJSON()` is honoured; `undefined`, functions
 * and symbols are omitted from objects (`null` in arrays); `NaN`/`±Infinity` become `null`.
 * What JSON cannot represent is refused with a reason: a BigInt, a cycle, a throwing `toJSON`
 * or getter, nesting deeper than `maxDepth`, or more than `maxBytes` of UTF-8.
 */
export interface JsonLimits {
  /** Deepest nesting of objects and arrays inside an event's `data`. Default 64. */
  maxDepth: number;
  /** Largest serialized event, in UTF-8 bytes. Default 1 MiB. */
  maxBytes: number;
}

export const DEFAULT_JSON_LIMITS: Readonly<JsonLimits> = Object.freeze({ maxDepth: 64, maxBytes: 1024 * 1024 });

/** Why a value is not JSON. */
export type NotJsonReason = 'bigint' | 'cycle' | 'depth' | 'size' | 'unserializable';

export type JsonOutcome = { ok: true; json: string } | { ok: false; reason: NotJsonReason; message: string };

/**
 * Serializes `value` with the checks above. `extraDepth` is the nesting the value sits at inside
 * the text being checked (an event's data sits at depth 1 of the event object).
 */
export function toJson(value: unknown, limits: JsonLimits = DEFAULT_JSON_LIMITS, extraDepth = 0): JsonOutcome {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    return notJson(error);
  }
  if (json === undefined) return { ok: true, json: 'null' };
  if (json.length > limits.maxBytes / 3 && utf8Length(json) > limits.maxBytes) {
    return { ok: false, reason: 'size', message: `the value serializes to more than ${limits.maxBytes} bytes` };
  }
  if (exceedsDepth(json, limits.maxDepth + extraDepth)) {
    return { ok: false, reason: 'depth', message: `the value nests deeper than ${limits.maxDepth} levels` };
  }
  return { ok: true, json };
}

function notJson(error: unknown): JsonOutcome & { ok: false } {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof RangeError) return { ok: false, reason: 'depth', message: 'the value nests too deeply to serialize' };
  if (/bigint/i.test(message)) return { ok: false, reason: 'bigint', message: 'a BigInt cannot be represented in JSON' };
  if (/circular/i.test(message)) return { ok: false, reason: 'cycle', message: 'the value contains a cycle' };
  return { ok: false, reason: 'unserializable', message: `the value cannot be serialized: ${message.slice(0, 200)}` };
}

/** UTF-8 length without Node's Buffer (this module also runs in browsers). */
function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 2; // a surrogate pair: 4 bytes for 2 code units
      i++;
    } else bytes += 2;
  }
  return bytes;
}

/**
 * Whether the JSON text nests deeper than `maxDepth`. Counting opening brackets first (a native
 * scan) settles almost every event: text with at most `maxDepth` of them cannot nest deeper.
 */
export function exceedsDepth(json: string, maxDepth: number): boolean {
  let opens = 0;
  for (let i = json.indexOf('{'); i !== -1 && opens <= maxDepth; i = json.indexOf('{', i + 1)) opens++;
  for (let i = json.indexOf('['); i !== -1 && opens <= maxDepth; i = json.indexOf('[', i + 1)) opens++;
  if (opens <= maxDepth) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > maxDepth) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}

/** Serialized events, by identity (a copy of an event, e.g. `{ ...event }`, is serialized anew). */
const serialized = new WeakMap<object, string>();

/**
 * Serializes a whole event with the limits (its data counts from depth 1) and remembers the
 * string for `eventJson`. Throws `ValidationError` (`EVENT_NOT_SERIALIZABLE` or `EVENT_TOO_LARGE`).
 */
export function serializeEvent(event: AgentEvent, limits: JsonLimits = DEFAULT_JSON_LIMITS): string {
  const outcome = toJson(event, limits, 1);
  if (!outcome.ok) throw notSerializable(event, outcome);
  serialized.set(event, outcome.json);
  return outcome.json;
}

/**
 * The event's JSON: the string made when it was built, or (for an event built elsewhere) made
 * now with the default limits. Transports call this instead of `JSON.stringify`. Throws
 * `ValidationError` for an event that is not JSON: the caller refuses that one event.
 */
export function eventJson(event: AgentEvent): string {
  return serialized.get(event) ?? serializeEvent(event);
}

/** Records the JSON a log already holds for an event it read back (e.g. from a Redis stream). */
export function rememberEventJson(event: AgentEvent, json: string): void {
  serialized.set(event, json);
}

function notSerializable(event: AgentEvent, outcome: JsonOutcome & { ok: false }): ValidationError {
  const code = outcome.reason === 'size' ? 'EVENT_TOO_LARGE' : 'EVENT_NOT_SERIALIZABLE';
  return new ValidationError(`The ${String(event.type)} event of run ${String(event.runId)} is not JSON: ${outcome.message}`, {
    code,
    field: 'data',
    details: { reason: outcome.reason },
  });
}
