import { ValidationError } from '../errors/index.js';
import { isInstance, readField } from '../errors/guards.js';
import { checker, given, shown } from '../errors/options.js';
import type { AgentEvent, EventIdentity } from './schema.js';

/**
 * JSON safety of events. An event is JSON or it is not emitted: it is serialized once where it
 * is built (the `RunEmitter`, or `AgentBridge.send` for integrators' events), checked there, and
 * the string is reused by every transport through `eventJson(event)`.
 *
 * Semantics are `JSON.stringify`'s, plus limits: `toJSON()` is honoured; `undefined`, functions
 * and symbols are omitted from objects (`null` in arrays); `NaN`/`±Infinity` become `null`; a
 * `Map` or `Set` becomes `{}`. What JSON cannot represent is refused with a reason: a BigInt, a
 * cycle, a throwing `toJSON` or getter, nesting deeper than `maxDepth`, or more than `maxBytes`
 * of UTF-8.
 */
export interface JsonLimits {
  /** Deepest nesting of objects and arrays inside an event's `data` (`data` itself is level 1). Default 64. */
  maxDepth: number;
  /** Largest serialized event, in UTF-8 bytes. Default 1 MiB. */
  maxBytes: number;
}

/**
 * The limits as agents and bridges take them (`limits` option of `BaseAgent` and `AgentBridge`).
 * Every field is optional; absent ones keep their default.
 */
export interface EventLimits {
  /** Largest serialized event, in UTF-8 bytes. Default 1 MiB (1,048,576); at least 16 KiB. */
  maxEventBytes?: number;
  /** Deepest nesting of objects and arrays inside an event's `data` (`data` is level 1). Default 64; at least 4. */
  maxDepth?: number;
}

export const DEFAULT_JSON_LIMITS: Readonly<JsonLimits> = Object.freeze({ maxDepth: 64, maxBytes: 1024 * 1024 });

/** Smallest accepted `maxEventBytes`: a failed terminal event with bounded error fields always fits. */
export const MIN_EVENT_BYTES = 16 * 1024;
/** Smallest accepted `maxDepth`: an event's data, an error object and a marker. */
export const MIN_DEPTH = 4;

/**
 * Checks `EventLimits` and turns them into `JsonLimits` (on top of `base`, default
 * `DEFAULT_JSON_LIMITS`). Throws `ValidationError` `INVALID_OPTION` for a bad value.
 */
export function resolveLimits(limits: EventLimits | undefined, base: Readonly<JsonLimits> = DEFAULT_JSON_LIMITS, owner = 'limits'): Readonly<JsonLimits> {
  if (limits === undefined) return base;
  // The one checker: `<owner> option limits.maxEventBytes must be … (got …)`; only undefined is the default (null is refused).
  const check = checker(owner);
  if (limits === null || typeof limits !== 'object' || Array.isArray(limits)) throw check.fail('limits', `must be an object { maxEventBytes?, maxDepth? } (got ${shown(limits)})`);
  const maxBytes = check.integer('limits.maxEventBytes', given(limits.maxEventBytes, base.maxBytes), MIN_EVENT_BYTES);
  const maxDepth = check.integer('limits.maxDepth', given(limits.maxDepth, base.maxDepth), MIN_DEPTH);
  if (maxBytes === base.maxBytes && maxDepth === base.maxDepth) return base;
  return Object.freeze({ maxBytes, maxDepth });
}

/** Why a value is not JSON. */
export type NotJsonReason = 'bigint' | 'cycle' | 'depth' | 'size' | 'unserializable';

export type JsonOutcome = { ok: true; json: string } | { ok: false; reason: NotJsonReason; message: string };

/**
 * What an event carries instead of a value that cannot be represented (tool arguments today):
 * `{ "$agentwire": "not_serializable", "reason": "bigint" }`. The code that got the value (the
 * tool) still sees the real one; only the event shows the marker.
 */
export interface NotSerializableMarker {
  $agentwire: 'not_serializable';
  reason: NotJsonReason;
}

export function notSerializableMarker(reason: NotJsonReason): NotSerializableMarker {
  return { $agentwire: 'not_serializable', reason };
}

/** Whether a value (e.g. `tool_executing.data.args` on a client) is the marker of a value that could not be represented. */
export function isNotSerializableMarker(value: unknown): value is NotSerializableMarker {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { $agentwire?: unknown }).$agentwire === 'not_serializable' &&
    typeof (value as { reason?: unknown }).reason === 'string'
  );
}

/**
 * Serializes `value` with the checks above. `extraDepth` is the nesting the value sits at inside
 * the text being checked (an event's data sits at depth 1 of the event object).
 *
 * Cost: one `JSON.stringify`. The size check only counts UTF-8 bytes when the text is longer than
 * a third of the limit; the depth check only scans the text when it has more opening brackets
 * than `maxDepth` (two native `indexOf` scans settle that for small values).
 */
export function toJson(value: unknown, limits: JsonLimits = DEFAULT_JSON_LIMITS, extraDepth = 0): JsonOutcome {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    return notJson(error, limits);
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

/**
 * Classifies what `JSON.stringify` threw. The messages never quote the thrown error's own text:
 * a throwing getter or `toJSON` is the author's code and its message may hold anything.
 */
function notJson(error: unknown, limits: JsonLimits): JsonOutcome & { ok: false } {
  let message = '';
  let name = 'Error';
  try {
    if (isInstance(error, Error)) {
      message = String(error.message);
      name = String(error.name).slice(0, 64);
    }
  } catch {
    // A hostile error object: classify it as unserializable below.
  }
  if (isInstance(error, RangeError) && /invalid string length/i.test(message)) {
    return { ok: false, reason: 'size', message: `the value serializes to more than ${limits.maxBytes} bytes` };
  }
  if (isInstance(error, RangeError)) return { ok: false, reason: 'depth', message: `the value nests deeper than ${limits.maxDepth} levels` };
  if (isInstance(error, TypeError) && /bigint/i.test(message)) return { ok: false, reason: 'bigint', message: 'a BigInt cannot be represented in JSON' };
  if (isInstance(error, TypeError) && /circular/i.test(message)) return { ok: false, reason: 'cycle', message: 'the value contains a cycle' };
  return { ok: false, reason: 'unserializable', message: `the value cannot be serialized (a toJSON method, getter or proxy threw ${name})` };
}

/** UTF-8 length without Node's Buffer (this module also runs in browsers). */
function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 2; // a surrogate pair: 4 bytes for 2 code units (JSON.stringify escapes lone surrogates)
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

/**
 * An event built by a `RunEmitter`. To everything outside this module it is the event's plain
 * data (the envelope's fields, in wire order; `JSON.stringify`, `{ ...event }`, `Object.keys` and
 * deep-equality checks see nothing else); it also keeps its JSON in a private field. That costs a
 * few nanoseconds per event, where a `WeakMap` entry per event costs about a microsecond on the
 * hot path (the garbage collector processes every live entry of a WeakMap) and a non-enumerable
 * property about half of one.
 */
class RunEvent {
  #json: string | undefined = undefined;
  v: number;
  id: string;
  type: string;
  runId: string;
  threadId: string;
  userId: string;
  agent: string;
  seq: number;
  ts: number;
  data: unknown;

  constructor(v: number, id: string, type: string, identity: EventIdentity, seq: number, ts: number, data: unknown) {
    this.v = v;
    this.id = id;
    this.type = type;
    this.runId = identity.runId;
    this.threadId = identity.threadId;
    this.userId = identity.userId;
    this.agent = identity.agent;
    this.seq = seq;
    this.ts = ts;
    this.data = data;
  }

  static jsonOf(event: object): string | undefined {
    return #json in event ? (event as RunEvent).#json : undefined;
  }

  static remember(event: object, json: string): boolean {
    if (!(#json in event)) return false;
    (event as RunEvent).#json = json;
    return true;
  }
}

/** A new event of a run (for `RunEmitter`): plain event data that can carry its own JSON. */
export function newRunEvent<E extends AgentEvent>(v: number, id: string, type: string, identity: EventIdentity, seq: number, ts: number, data: unknown): E {
  return new RunEvent(v, id, type, identity, seq, ts, data) as unknown as E;
}

/** JSON of events built elsewhere (integrators' events, events read back from a log), by identity. */
const otherJson = new WeakMap<object, string>();

function remember(event: object, json: string): void {
  if (!RunEvent.remember(event, json)) otherJson.set(event, json);
}

function remembered(event: object): string | undefined {
  return RunEvent.jsonOf(event) ?? otherJson.get(event);
}

/**
 * Serializes a whole event with the limits (its data counts from depth 1) and remembers the
 * string for `eventJson`. Throws `ValidationError` (`EVENT_NOT_SERIALIZABLE` or `EVENT_TOO_LARGE`,
 * with `details.reason`).
 */
export function serializeEvent(event: AgentEvent, limits: JsonLimits = DEFAULT_JSON_LIMITS): string {
  const json = eventToJson(event, limits);
  remember(event, json);
  return json;
}

/** The event's JSON within `limits` (its data counting from depth 1), or the not-serializable `ValidationError`. */
function eventToJson(event: AgentEvent, limits: JsonLimits): string {
  const outcome = toJson(event, limits, 1);
  if (!outcome.ok) throw notSerializable(event, outcome);
  return outcome.json;
}

/**
 * The part of a run's events' JSON that every event of the run shares (`"runId":…,"agent":…`),
 * made once per run by the `RunEmitter` for `serializeRunEvent`.
 */
export function runEnvelopeJson(identity: EventIdentity): string {
  const { runId, threadId, userId, agent } = identity;
  return `"runId":${JSON.stringify(runId)},"threadId":${JSON.stringify(threadId)},"userId":${JSON.stringify(userId)},"agent":${JSON.stringify(agent)}`;
}

/**
 * `serializeEvent` for an event a `RunEmitter` built: its id (a nanoid), type, seq and ts need no
 * escaping and its run's part is made once (`runEnvelopeJson`), so only `data` goes through
 * `JSON.stringify`, and only `data` is scanned for depth. The text is the same as
 * `JSON.stringify(event)`'s. Throws like `serializeEvent`.
 */
export function serializeRunEvent(event: AgentEvent, runJson: string, limits: JsonLimits = DEFAULT_JSON_LIMITS): string {
  let data: string | undefined;
  try {
    data = JSON.stringify(event.data);
  } catch (error) {
    throw notSerializable(event, notJson(error, limits));
  }
  if (data === undefined) data = 'null';
  else if (exceedsDepth(data, limits.maxDepth)) {
    throw notSerializable(event, { ok: false, reason: 'depth', message: `the value nests deeper than ${limits.maxDepth} levels` });
  }
  // Concatenation is the cheapest way to build the text (about a third of an array join), but it
  // makes a rope: a dozen string objects for the garbage collector to trace per retained event.
  // Reading one character flattens it in place into one string (the rope's parts become garbage).
  const json = '{"v":' + event.v + ',"id":"' + event.id + '","type":"' + event.type + '",' + runJson + ',"seq":' + event.seq + ',"ts":' + event.ts + ',"data":' + data + '}';
  json.charCodeAt(0);
  if (json.length > limits.maxBytes / 3 && utf8Length(json) > limits.maxBytes) {
    throw notSerializable(event, { ok: false, reason: 'size', message: `the value serializes to more than ${limits.maxBytes} bytes` });
  }
  remember(event, json);
  return json;
}

/**
 * The event's JSON: the string made when it was built, or (for an event built elsewhere) made
 * now with the default limits. Transports call this instead of `JSON.stringify`. Throws
 * `ValidationError` for an event that is not JSON: the caller refuses that one event.
 */
export function eventJson(event: AgentEvent): string {
  return remembered(event) ?? serializeEvent(event);
}

/**
 * `eventJson` that does not remember a string it has to make, for a caller that hands that string
 * on itself (a WeakMap entry per event costs about a microsecond: the garbage collector visits
 * every live one). Throws like `eventJson`.
 */
export function eventJsonUnremembered(event: AgentEvent): string {
  return remembered(event) ?? eventToJson(event, DEFAULT_JSON_LIMITS);
}

/** Whether the event was serialized where it was built (or its JSON recorded by a log). */
export function hasEventJson(event: AgentEvent): boolean {
  return remembered(event) !== undefined;
}

/** Records the JSON a log already holds for an event it read back (e.g. from a Redis stream). */
export function rememberEventJson(event: AgentEvent, json: string): void {
  remember(event, json);
}

/** The reason a `ValidationError` of `serializeEvent` gives, if it is one. */
export function notJsonReasonOf(error: unknown): NotJsonReason | undefined {
  // Also asked about what an output hook threw: every read guarded.
  if (!isInstance(error, ValidationError)) return undefined;
  const code = readField(error, 'code');
  if (code !== 'EVENT_NOT_SERIALIZABLE' && code !== 'EVENT_TOO_LARGE') return undefined;
  const details = readField(error, 'details');
  const reason = typeof details === 'object' && details !== null ? readField(details, 'reason') : undefined;
  return typeof reason === 'string' ? (reason as NotJsonReason) : undefined;
}

function notSerializable(event: AgentEvent, outcome: JsonOutcome & { ok: false }): ValidationError {
  const code = outcome.reason === 'size' ? 'EVENT_TOO_LARGE' : 'EVENT_NOT_SERIALIZABLE';
  return new ValidationError(`The ${String(event.type)} event of run ${String(event.runId).slice(0, 256)} is not JSON: ${outcome.message}`, {
    code,
    field: 'data',
    details: { reason: outcome.reason },
  });
}
