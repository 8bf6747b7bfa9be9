import type { EventType } from '../events/schema.js';

/**
 * A quick check of the common shapes of event data, in plain code, before the zod schema
 * (`assertEventData`). It only ever says "valid" for data the schema accepts (a subset: plain
 * objects with the documented fields of the documented types); anything else, including every
 * invalid value, goes to the schema, which stays the judge and names the bad field. A think()
 * step then costs a few property reads instead of a schema pass.
 */
export function quickValid(type: EventType, data: unknown): boolean {
  if (!isPlain(data)) return false;
  const d = data as Record<string, unknown>;
  switch (type) {
    case 'agent_thinking':
      return (
        typeof d.text === 'string' &&
        (d.step === undefined || count(d.step)) &&
        (d.channel === undefined || d.channel === 'answer' || d.channel === 'reasoning') &&
        (d.messageId === undefined || messageId(d.messageId))
      );
    case 'tool_executing':
      return name(d.toolCallId) && name(d.tool);
    case 'tool_completed':
      return d.status === 'succeeded' && name(d.toolCallId) && name(d.tool) && duration(d.durationMs);
    case 'agent_started':
      return isPlain(d.metadata);
    case 'agent_completed':
      return d.status === 'succeeded' && duration(d.durationMs) && d.usage === undefined;
    default:
      return false;
  }
}

/** A non-null, non-array object with Object's (or no) prototype: what `z.object` / `z.record` take without question. */
function isPlain(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** `z.string().min(1).max(128)`. */
function name(value: unknown): boolean {
  return typeof value === 'string' && value.length >= 1 && value.length <= 128;
}

/** `z.string().min(1).max(64)`. */
function messageId(value: unknown): boolean {
  return typeof value === 'string' && value.length >= 1 && value.length <= 64;
}

/** `z.number().int().nonnegative()` (safe integers: a subset). */
function count(value: unknown): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** `z.number().nonnegative()` (finite: a subset). */
function duration(value: unknown): boolean {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}
