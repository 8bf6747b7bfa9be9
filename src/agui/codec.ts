import { EventType, PROTOCOL_VERSION } from '@ag-ui/core';
import { HistoryGapError, ValidationError, type ErrorCode } from '../errors/index.js';
import { eventJson } from '../events/json.js';
import type { RunStreamCodec } from '../gateway/run-stream/index.js';
import type { LogEntry } from '../transport/types.js';
import { interruptFrame } from './interrupts.js';
import { AguiEventMapper, type AguiMapperOptions } from './mapper.js';

/** Characters an SSE id must not contain; a space separates the cursor from the frame index. */
const NOT_IN_ID = /[\r\n\0 ]/;

/**
 * The AG-UI wire of one run's stream (`text/event-stream`, the framing `@ag-ui/client` parses):
 *
 * ```
 * id: <cursor> 0                 every frame but the last of a log entry: "<cursor> <index>"
 * data: {"type":"TOOL_CALL_START",…}
 *
 * id: <cursor> 1
 * data: {"type":"TOOL_CALL_ARGS",…}
 *
 * id: <cursor>                   the last frame of the entry: the log cursor itself
 * data: {"type":"TOOL_CALL_END",…}
 *
 * : heartbeat                    comment, every heartbeatIntervalMs
 *
 * data: {"type":"RUN_ERROR","code":"REVOKED",…}   the server ends the stream early (no id)
 * ```
 *
 * One agentwire event maps to one or more AG-UI events (see `AguiEventMapper`); each gets an
 * `id:`, so `Last-Event-ID` names the exact frame a client has and a resume continues with the
 * next one (inside an event too), without repeating or losing a frame.
 */
export class AguiCodec implements RunStreamCodec {
  readonly trailer = '';
  readonly heartbeat = ': heartbeat\n\n';
  private readonly mapper: AguiEventMapper;

  constructor(options: AguiMapperOptions) {
    this.mapper = new AguiEventMapper(options);
  }

  write(entry: LogEntry, skip = 0): { text: string; frames: number; faults?: unknown[] } {
    // An event that is not JSON is refused here, before the mapping moves (costs this event only).
    if (entry.json === undefined) eventJson(entry.event);
    const cursor = entry.cursor;
    if (typeof cursor !== 'string' || cursor.length === 0 || NOT_IN_ID.test(cursor)) {
      throw new ValidationError(`Cursor ${JSON.stringify(String(cursor)).slice(0, 140)} cannot be an AG-UI event id`, { code: 'INVALID_CURSOR' });
    }
    const saved = this.mapper.save();
    try {
      const frames = this.mapper.map(entry.event);
      // `<cursor> <index>` names a frame before the entry's last (whose id is the bare cursor).
      if (skip > 0 && skip >= frames.length) {
        throw new HistoryGapError('Cannot resume: the event id names no frame of this event', {
          details: { threadId: entry.event.threadId, requested: `${cursor} ${skip - 1}`, reason: 'unknown_cursor' },
        });
      }
      let text = '';
      let written = 0;
      for (let index = skip; index < frames.length; index++) {
        const id = index === frames.length - 1 ? cursor : `${cursor} ${index}`;
        text += `id: ${id}\ndata: ${JSON.stringify(frames[index])}\n\n`;
        written++;
      }
      const faults = this.mapper.takeFaults();
      return faults.length > 0 ? { text, frames: written, faults } : { text, frames: written };
    } catch (error) {
      this.mapper.restore(saved);
      throw error;
    }
  }

  closing(code: ErrorCode, message: string): { text: string; frames: number } {
    const frame = { type: EventType.RUN_ERROR, message, code, timestamp: Date.now() };
    return { text: `data: ${JSON.stringify(frame)}\n\n`, frames: 1 };
  }

  /** A call waiting for its user (approval or question): `RUN_FINISHED` with the `interrupt` outcome (no `id:`, like `closing`). */
  pause(entry: LogEntry): { text: string; frames: number } | undefined {
    const { event } = entry;
    if (event.type !== 'tool_executing' || !event.data.pending) return undefined;
    return { text: `data: ${JSON.stringify(interruptFrame(event))}\n\n`, frames: 1 };
  }

  /** The run continues after a resume: `RUN_STARTED` of the same run (no `id:`). */
  continuation(runId: string, threadId: string): { text: string; frames: number } {
    const frame = { type: EventType.RUN_STARTED, threadId, runId, protocolVersion: PROTOCOL_VERSION, timestamp: Date.now() };
    return { text: `data: ${JSON.stringify(frame)}\n\n`, frames: 1 };
  }
}

/** A resume position from an AG-UI frame id (`<cursor>` or `<cursor> <index>`), or undefined when malformed. */
export function positionOfFrameId(id: string): { cursor: string; skip?: number } | undefined {
  // Frame indexes as the codec writes them: no sign, no leading zero.
  const match = /^([\x21-\x7e]{1,256})(?: (0|[1-9]\d{0,3}))?$/.exec(id);
  if (!match) return undefined;
  const cursor = match[1]!;
  return match[2] === undefined ? { cursor } : { cursor, skip: Number(match[2]) + 1 };
}
