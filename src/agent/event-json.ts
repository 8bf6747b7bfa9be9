import { exceedsDepth } from '../events/json.js';

/**
 * The `data` JSON of the agent's own common events, built from the fields the agent just put in
 * (so the key order is known) instead of a `JSON.stringify` of the whole object: for a think()
 * that is a quoted string instead of the generic serializer's walk. Each builder returns exactly
 * `JSON.stringify(data)`, with the nested values (args, result) checked against `maxDepth`, or
 * undefined when it cannot be sure (not a string, a number JSON writes differently, a value that
 * throws, nests too deep, or serializes to nothing): the emitter then takes its generic path,
 * which serializes the data itself and refuses it with the exact error.
 */

/** `JSON.stringify(text)` for a string; short strings without characters to escape are just quoted. */
export function jsonString(text: string): string {
  if (text.length > 64) return JSON.stringify(text);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // Control characters, `"`, `\` and any surrogate (a lone one is escaped): JSON.stringify decides.
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(text);
  }
  return '"' + text + '"';
}

/** A number as JSON writes it: finite numbers only (NaN and ±Infinity become `null` in JSON, not their names). */
function isJsonNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** `agent_thinking` data `{ text }` / `{ text, step }` (think()). */
export function thinkingJson(text: unknown, step: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  if (step === undefined) return '{"text":' + jsonString(text) + '}';
  if (!isJsonNumber(step)) return undefined;
  return '{"text":' + jsonString(text) + ',"step":' + step + '}';
}

/** `agent_thinking` answer-delta data `{ text, channel: 'answer', messageId }` / with `step` after `text` (streamText()). */
export function answerDeltaJson(text: string, step: unknown, messageId: unknown): string | undefined {
  if (typeof messageId !== 'string') return undefined;
  const tail = ',"channel":"answer","messageId":' + jsonString(messageId) + '}';
  if (step === undefined) return '{"text":' + jsonString(text) + tail;
  if (!isJsonNumber(step)) return undefined;
  return '{"text":' + jsonString(text) + ',"step":' + step + tail;
}

/**
 * A value nested in `data` (one level below it), as `JSON.stringify` writes it as a property:
 * undefined when the property is left out (undefined, a function, a symbol) — and then `omitted`
 * is what the caller gets back — or when it throws or nests deeper than `maxDepth` allows.
 */
function nestedJson(value: unknown, maxDepth: number): string | null | undefined {
  // Primitives (what most tools return) without a call into the serializer.
  switch (typeof value) {
    case 'string':
      return jsonString(value);
    case 'number':
      return Number.isFinite(value) ? '' + value : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return null;
  }
  if (value === null) return 'null';
  let json: string | undefined;
  try {
    // A top-level toJSON is called with its key ("args"), which a stringify of the value alone would not pass.
    if (typeof value === 'object' && value !== null && typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
    if (typeof value === 'bigint') return undefined;
    json = JSON.stringify(value);
  } catch {
    return undefined;
  }
  if (json === undefined) return null; // the key is left out
  return exceedsDepth(json, maxDepth - 1) ? undefined : json;
}

/** `tool_executing` data `{ toolCallId, tool, args }` (a call without a pending request). */
export function executingJson(toolCallId: string, tool: string, args: unknown, maxDepth: number): string | undefined {
  const argsJson = nestedJson(args, maxDepth);
  if (argsJson === undefined) return undefined;
  const head = '{"toolCallId":' + jsonString(toolCallId) + ',"tool":' + jsonString(tool);
  return argsJson === null ? head + '}' : head + ',"args":' + argsJson + '}';
}

/** `tool_completed` data `{ toolCallId, tool, status: 'succeeded', result, durationMs }`. */
export function succeededJson(toolCallId: string, tool: string, result: unknown, durationMs: number, maxDepth: number): string | undefined {
  if (!isJsonNumber(durationMs)) return undefined;
  const resultJson = nestedJson(result, maxDepth);
  if (resultJson === undefined) return undefined;
  const head = '{"toolCallId":' + jsonString(toolCallId) + ',"tool":' + jsonString(tool) + ',"status":"succeeded"';
  return (resultJson === null ? head : head + ',"result":' + resultJson) + ',"durationMs":' + durationMs + '}';
}
