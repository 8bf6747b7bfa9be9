/**
 * `agentwire/ai-sdk/client`: browser-safe helpers for `useChat` clients of `createChatHandler` (no
 * Node imports; only types from `ai`).
 *
 * @module agentwire/ai-sdk/client
 */
import type { PrepareReconnectToStreamRequest, UIMessage } from 'ai';

/** Request header carrying the resume cursor of `GET {api}/:id/stream` (the `?cursor=` query parameter works too). */
export const AGENTWIRE_CURSOR_HEADER = 'x-agentwire-cursor';
/** Response header naming the run a UI message stream belongs to. */
export const AGENTWIRE_RUN_ID_HEADER = 'x-agentwire-run-id';

/** `message.metadata.agentwire` of an assistant message streamed by `createChatHandler`. */
export interface AgentwireCursorMetadata {
  runId: string;
  /** Log cursor of the last event the message reflects. */
  cursor: string;
  seq: number;
  /** Parts the message has once that event is applied (see `messageAtCursor`). */
  parts: number;
  /** While an answer streams (its text part open, the last part): that part's text length once the event is applied. */
  textChars?: number;
}

/** The resume position a streamed assistant message carries, if any. */
export function agentwireCursorOf(message: UIMessage | undefined): AgentwireCursorMetadata | undefined {
  if (message?.role !== 'assistant') return undefined;
  const metadata = message.metadata as { agentwire?: Partial<AgentwireCursorMetadata> } | null | undefined;
  const value = metadata?.agentwire;
  if (!value || typeof value.cursor !== 'string' || typeof value.runId !== 'string' || typeof value.seq !== 'number' || typeof value.parts !== 'number') {
    return undefined;
  }
  const position = { runId: value.runId, cursor: value.cursor, seq: value.seq, parts: value.parts };
  return typeof value.textChars === 'number' ? { ...position, textChars: value.textChars } : position;
}

/**
 * The message exactly as of its cursor: a stream cut in the middle of an event's chunks may have
 * left a part of the next event half-received; this drops it (the resumed stream sends it whole).
 * Continue from the result, e.g. `readUIMessageStream({ message: messageAtCursor(partial), stream })`.
 * Returns `undefined` when the message carries no cursor (resume without one: a full replay).
 */
export function messageAtCursor<M extends UIMessage>(message: M | undefined): M | undefined {
  const position = agentwireCursorOf(message);
  if (!message || !position || position.parts > message.parts.length) return undefined;
  const parts = message.parts.slice(0, position.parts);
  const last = parts.at(-1);
  // A streamed answer: deltas of its text part received after the cursor's event are dropped too.
  if (position.textChars !== undefined && last?.type === 'text' && last.text.length > position.textChars) {
    parts[parts.length - 1] = { ...last, text: last.text.slice(0, position.textChars) };
  }
  return { ...message, parts };
}

/**
 * A `prepareReconnectToStreamRequest` for `DefaultChatTransport` that asks the server to continue
 * after the cursor of the message the client still holds (instead of replaying the run).
 *
 * For clients that continue a message they keep themselves (`readUIMessageStream({ message:
 * messageAtCursor(partial) })`, or a custom `ChatTransport`). `useChat` itself needs none of this:
 * without a cursor the server replays the active run from its start and `useChat` (with
 * `DefaultChatTransport`'s default `resumeStreamIsReplay: true`) rebuilds the message from it.
 * Return `undefined` from `partial()` when the client holds no partial message (e.g. after a page
 * reload): the server then replays.
 */
export function resumeAfterCursor(partial: () => UIMessage | undefined): PrepareReconnectToStreamRequest {
  return ({ headers }) => {
    const position = agentwireCursorOf(partial());
    const base = headerRecord(headers);
    return { headers: position ? { ...base, [AGENTWIRE_CURSOR_HEADER]: position.cursor } : base };
  };
}

function headerRecord(headers: HeadersInit | undefined): Record<string, string> {
  const record: Record<string, string> = {};
  if (!headers) return record;
  if (typeof Headers !== 'undefined' && headers instanceof Headers) headers.forEach((value, key) => (record[key] = value));
  else if (Array.isArray(headers)) for (const [key, value] of headers) record[key] = value;
  else Object.assign(record, headers);
  return record;
}
