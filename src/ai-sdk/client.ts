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
  /**
   * Runs that stream answer text: `true` while a streamed text part is open (it is the last part):
   * a stream resumed at this cursor sends that part again whole (`text-start` and its text so far),
   * so `messageAtCursor` drops it. Absent for runs that streamed no answer text.
   */
  textOpen?: boolean;
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
  return typeof value.textOpen === 'boolean' ? { ...position, textOpen: value.textOpen } : position;
}

/**
 * The message exactly as of its cursor: a stream cut in the middle of an event's chunks may have
 * left a part of the next event half-received; this drops it (the resumed stream sends it whole).
 * A streamed answer's text part still open at the cursor is dropped too: the resumed stream
 * reopens it with its text so far.
 * Continue from the result, e.g. `readUIMessageStream({ message: messageAtCursor(partial), stream })`.
 * Returns `undefined` when the message carries no cursor (resume without one: a full replay).
 */
export function messageAtCursor<M extends UIMessage>(message: M | undefined): M | undefined {
  const position = agentwireCursorOf(message);
  if (!message || !position || position.parts > message.parts.length) return undefined;
  // A streamed answer's open text part is sent again whole by the resumed stream (the AI SDK's reader
  // cannot continue a part it did not see start).
  const keep = position.textOpen && message.parts[position.parts - 1]?.type === 'text' ? position.parts - 1 : position.parts;
  return { ...message, parts: message.parts.slice(0, keep) };
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
