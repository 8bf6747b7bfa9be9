import { safeParseEvent } from '../../events/parse.js';
import type { AgentEvent } from '../../events/schema.js';
import { ValidationError } from '../../errors/index.js';
import type { LogEntry } from '../types.js';
import { formatCursor } from './cursor.js';
import { EPOCH_FIELD, EVENT_FIELD } from './keys.js';

/** A stream entry as RESP2 returns it: `[id, [field, value, …]]`. */
export type RawStreamEntry = [id: string, fields: string[]];

/**
 * One stream entry, shared by every subscriber of a gateway. `json` is the exact string stored in
 * Redis (the writer serialized the event once), so gateways never serialize it again.
 */
export class RedisLogEntry implements LogEntry {
  constructor(
    /** Stream entry id. */
    readonly id: string,
    /** Incarnation of the stream the entry belongs to. */
    readonly epoch: string,
    /** `threadTag` of the stream's thread (shared by its entries). */
    readonly tag: string,
    readonly event: AgentEvent,
    readonly json: string,
  ) {}

  get cursor(): string {
    return formatCursor(this.epoch, this.tag, this.id);
  }
}

/** Turns a raw entry of the stream of the thread tagged `tag` into a `RedisLogEntry`, or an error naming what is wrong with it. */
export function readEntry(raw: RawStreamEntry, validate: boolean, tag: string): RedisLogEntry | ValidationError {
  const [id, fields] = raw;
  let json: string | undefined;
  let epoch: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === EVENT_FIELD) json = fields[i + 1];
    else if (fields[i] === EPOCH_FIELD) epoch = fields[i + 1];
  }
  if (json === undefined || epoch === undefined) {
    return new ValidationError(`Stream entry ${id} lacks the "${EVENT_FIELD}" or "${EPOCH_FIELD}" field`, { code: 'INVALID_ENTRY' });
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    return new ValidationError(`Stream entry ${id} is not JSON`, { code: 'INVALID_ENTRY', cause: error });
  }
  if (!validate) return new RedisLogEntry(id, epoch, tag, value as AgentEvent, json);
  const parsed = safeParseEvent(value);
  if (!parsed.success) return parsed.error;
  return new RedisLogEntry(id, epoch, tag, parsed.event, json);
}
