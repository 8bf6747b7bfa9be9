import type { UIMessageChunk } from 'ai';
import { toJson } from '../../events/json.js';
import { checker, given, shown } from '../../errors/options.js';
import { hookText } from '../../gateway/run-stream/hook-text.js';
import type { AgentEvent, ErrorInfo } from '../../events/schema.js';
import type { AgentwireCursorMetadata } from '../client.js';

/** What every event's `message-metadata` carries: where the client is in the log. */
export interface AgentwireMessageMetadata {
  agentwire: AgentwireCursorMetadata;
}

export interface UiMappingOptions {
  /** The answer text of a succeeded run (`agent_completed.result`). Default: strings as is, `null`/`undefined` none, anything else as JSON. */
  resultText?: (result: unknown) => string | undefined;
  /** The text of an `error` / `tool-output-error` chunk. Default: the error's message. */
  errorText?: (error: ErrorInfo) => string;
  /** Send a `message-metadata` chunk with `{ agentwire: { runId, cursor, seq } }` after each event. Default `true`. */
  cursorMetadata?: boolean;
}

interface OpenText {
  /** `agent_thinking.data.messageId` of its deltas. */
  key: string;
  /** Chunk id (the id of its first delta's event). */
  id: string;
  text: string;
}

/** Chunks that add a part to the message (what `processUIMessageStream` pushes a new part for). */
const PART_OPENING = new Set<UIMessageChunk['type']>(['start-step', 'reasoning-start', 'text-start', 'tool-input-available']);

/**
 * The `error` chunk's text when the `resultText` hook throws (or returns something other than a
 * string or undefined): the stream ends with it and `finish` (`error`); the hook's own error goes
 * to `onError`, never to the client.
 */
export const RESULT_HOOK_FAILED = "INTERNAL_ERROR: The server could not show the run's answer (details withheld)";
/** The text an `error` / `tool-output-error` chunk or an `abort` reason carries when the `errorText` hook throws (or returns no string). */
export const ERROR_HOOK_FAILED = 'The server could not show this error (details withheld)';

export function defaultResultText(result: unknown): string | undefined {
  if (result === undefined || result === null) return undefined;
  if (typeof result === 'string') return result;
  const outcome = toJson(result);
  return outcome.ok ? outcome.json : undefined;
}

/**
 * Maps one run's events, in order, to AI SDK UI message chunks. The mapping is a pure function of
 * the run's event sequence: the chunks of the events after cursor X are exactly the chunks a
 * stream that started at the run's beginning emits after X, which is what makes resume exact.
 *
 * | event | chunks |
 * | --- | --- |
 * | `agent_started` | `start` (`messageId` = run id) |
 * | `agent_thinking` | [`start-step`] `reasoning-start`, `reasoning-delta` (the text), `reasoning-end` |
 * | `agent_thinking` `channel: 'answer'` | first delta of a message: [`start-step`] `text-start`; then `text-delta` (the delta); `text-end` before the next other event |
 * | `tool_executing` | [`start-step`] `tool-input-available` |
 * | `tool_completed` | `tool-output-available` or `tool-output-error` |
 * | `agent_completed` succeeded | [`start-step`] `text-start`, `text-delta` (the answer, unless the run streamed it), `text-end`, `finish-step`, `finish` (`stop`) |
 * | `agent_completed` failed | [`finish-step`] `error`, `finish` (`error`) |
 * | `agent_completed` cancelled | [`finish-step`] `abort` |
 *
 * Every event's chunks end with a `message-metadata` chunk (or carry it on `start` / `finish`):
 * `{ agentwire: { runId, cursor, seq, parts, textOpen? } }`, where the client is in the log.
 *
 * Each event's parts are complete (start, delta, end), except a streamed answer message: its text
 * part stays open over its deltas (`textOpen`). A stream resumed inside it starts with `resumed()`:
 * the part again (`text-start`, its text so far), which `messageAtCursor` dropped from the kept message. Steps: the first content opens one; thinking or the answer after a
 * settled batch of tool calls (none open) closes it and opens the next, as a model's next call would.
 */
export class UiChunkMapper {
  private stepOpen = false;
  /** The step's tool calls all completed: the next content belongs to a new step. */
  private settled = false;
  private readonly openTools = new Set<string>();
  /** Parts the message has so far (step-start, reasoning, text and tool parts each count one). */
  private parts = 0;
  /** The streamed answer text part open: its agentwire `messageId`, chunk id and text so far. */
  private openText: OpenText | undefined;
  /** The run streamed answer text: the result is not sent again as text. */
  private streamed = false;
  private readonly resultText: (result: unknown) => string | undefined;
  private readonly errorText: (error: ErrorInfo) => string;
  private readonly cursorMetadata: boolean;
  /** Errors of user hooks contained while mapping (see `takeFaults`). */
  private faults: unknown[] = [];

  constructor(options: UiMappingOptions = {}) {
    const check = checker('UiChunkMapper');
    if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object (got ${shown(options)})`);
    this.resultText = check.fn('resultText', given<NonNullable<UiMappingOptions['resultText']>>(options.resultText, defaultResultText));
    this.errorText = check.fn('errorText', given<NonNullable<UiMappingOptions['errorText']>>(options.errorText, (error) => error.message));
    this.cursorMetadata = check.boolean('cursorMetadata', given(options.cursorMetadata, true));
  }

  /** The mapping state (to restore when the chunks of an event could not be written). */
  save(): unknown {
    const openText = this.openText && { ...this.openText };
    return { stepOpen: this.stepOpen, settled: this.settled, openTools: [...this.openTools], parts: this.parts, openText, streamed: this.streamed };
  }

  /** The errors user hooks threw while mapping the last event (cleared); its chunks were still made, with fixed texts. */
  takeFaults(): unknown[] {
    const faults = this.faults;
    this.faults = [];
    return faults;
  }

  restore(state: unknown): void {
    this.faults = [];
    const saved = state as {
      stepOpen: boolean;
      settled: boolean;
      openTools: string[];
      parts: number;
      openText: OpenText | undefined;
      streamed: boolean;
    };
    this.openText = saved.openText && { ...saved.openText };
    this.streamed = saved.streamed;
    this.stepOpen = saved.stepOpen;
    this.settled = saved.settled;
    this.openTools.clear();
    for (const id of saved.openTools) this.openTools.add(id);
    this.parts = saved.parts;
  }

  /**
   * What a stream resumed after the events mapped so far sends first: the open streamed text part
   * again (`text-start` with its id, its text so far as one `text-delta`), since a reader cannot
   * continue a part it did not see start. Empty when no part is open.
   */
  resumed(): UIMessageChunk[] {
    if (!this.openText) return [];
    const { id, text } = this.openText;
    return text.length > 0 ? [{ type: 'text-start', id }, { type: 'text-delta', id, delta: text }] : [{ type: 'text-start', id }];
  }

  /** The chunks of `event`, whose log cursor is `cursor`. */
  map(event: AgentEvent, cursor: string): UIMessageChunk[] {
    const chunks = this.content(event);
    for (const chunk of chunks) if (PART_OPENING.has(chunk.type)) this.parts++;
    if (!this.cursorMetadata) return chunks;
    const position = { runId: event.runId, cursor, seq: event.seq, parts: this.parts };
    // Once a run streamed answer text, `textOpen` is always sent: the AI SDK merges metadata, so a `true` must be overwritten.
    const metadata: AgentwireMessageMetadata = { agentwire: this.streamed ? { ...position, textOpen: this.openText !== undefined } : position };
    // The metadata goes last (on `start` / `finish` themselves): a message carrying it reflects the whole event.
    const last = chunks.at(-1);
    if (last && (last.type === 'start' || last.type === 'finish')) {
      chunks[chunks.length - 1] = { ...last, messageMetadata: metadata };
      return chunks;
    }
    const metadataChunk: UIMessageChunk = { type: 'message-metadata', messageMetadata: metadata };
    if (last?.type === 'abort') chunks.splice(chunks.length - 1, 0, metadataChunk);
    else chunks.push(metadataChunk);
    return chunks;
  }

  private content(event: AgentEvent): UIMessageChunk[] {
    if (event.type === 'agent_thinking' && event.data.channel === 'answer') return this.answerDelta(event.data.text, event.data.messageId ?? '', event.id);
    if (!this.openText || event.type === 'user_answered') return this.contentOf(event);
    const end: UIMessageChunk = { type: 'text-end', id: this.openText.id };
    this.openText = undefined;
    return [end, ...this.contentOf(event)];
  }

  /** A delta of a streamed answer message: its text part opens on the first delta (chunk id: that event's id). */
  private answerDelta(delta: string, key: string, eventId: string): UIMessageChunk[] {
    const out: UIMessageChunk[] = [];
    if (this.openText && this.openText.key !== key) {
      out.push({ type: 'text-end', id: this.openText.id });
      this.openText = undefined;
    }
    if (!this.openText) {
      out.push(...this.openStep(), { type: 'text-start', id: eventId });
      this.openText = { key, id: eventId, text: '' };
    }
    this.streamed = true;
    if (delta.length > 0) {
      out.push({ type: 'text-delta', id: this.openText.id, delta });
      this.openText.text += delta;
    }
    return out;
  }

  private contentOf(event: AgentEvent): UIMessageChunk[] {
    switch (event.type) {
      case 'agent_started':
        return [{ type: 'start', messageId: event.runId }];
      case 'user_answered':
        return [];
      case 'agent_thinking': {
        const id = event.id;
        return [...this.openStep(), { type: 'reasoning-start', id }, { type: 'reasoning-delta', id, delta: event.data.text }, { type: 'reasoning-end', id }];
      }
      case 'tool_executing':
        this.openTools.add(event.data.toolCallId);
        return [
          ...this.openStep(false),
          { type: 'tool-input-available', toolCallId: event.data.toolCallId, toolName: event.data.tool, input: event.data.args ?? null },
          // A call waiting for approval: the AI SDK's approval-requested state, its approval id our request id.
          ...(event.data.pending?.kind === 'approval'
            ? [{ type: 'tool-approval-request' as const, approvalId: event.data.pending.requestId, toolCallId: event.data.toolCallId }]
            : []),
        ];
      case 'tool_completed': {
        const { data } = event;
        this.openTools.delete(data.toolCallId);
        if (this.openTools.size === 0) this.settled = true;
        if (data.status === 'succeeded') return [{ type: 'tool-output-available', toolCallId: data.toolCallId, output: data.result ?? null }];
        // A denied call is the AI SDK's output-denied state (the model got TOOL_DENIED as the tool's error result).
        if (data.error.code === 'TOOL_DENIED') return [{ type: 'tool-output-denied', toolCallId: data.toolCallId }];
        return [{ type: 'tool-output-error', toolCallId: data.toolCallId, errorText: this.errorTextOf(data.error) }];
      }
      case 'agent_completed': {
        const { data } = event;
        if (data.status === 'succeeded') {
          let answer: string | undefined;
          try {
            answer = this.streamed ? undefined : hookText(this.resultText(data.result), 'resultText', true);
          } catch (error) {
            // A hook that throws costs its chunks, not the stream's grammar: the step closes and the stream ends with an error.
            this.faults.push(error);
            return [...this.closeStep(), { type: 'error', errorText: RESULT_HOOK_FAILED }, { type: 'finish', finishReason: 'error' }];
          }
          const id = event.id;
          const text: UIMessageChunk[] =
            answer === undefined || answer === ''
              ? []
              : [...this.openStep(), { type: 'text-start', id }, { type: 'text-delta', id, delta: answer }, { type: 'text-end', id }];
          return [...text, ...this.closeStep(), { type: 'finish', finishReason: 'stop' }];
        }
        if (data.status === 'failed') {
          return [...this.closeStep(), { type: 'error', errorText: this.errorTextOf(data.error) }, { type: 'finish', finishReason: 'error' }];
        }
        return [...this.closeStep(), { type: 'abort', reason: this.errorTextOf(data.error) }];
      }
    }
  }

  /** The `errorText` hook's text of `error`, or `ERROR_HOOK_FAILED` when it throws or returns no string. */
  private errorTextOf(error: ErrorInfo): string {
    try {
      return hookText(this.errorText(error), 'errorText', false)!;
    } catch (fault) {
      this.faults.push(fault);
      return ERROR_HOOK_FAILED;
    }
  }

  /**
   * Opens a step if none is. Thinking or an answer after a settled batch of tool calls starts the
   * next step (the model's next call); a further tool call stays in the current step (`afterTools`
   * false): parallel calls whose first finished before the next started remain one step.
   */
  private openStep(afterTools = true): UIMessageChunk[] {
    if (!this.stepOpen) {
      this.stepOpen = true;
      this.settled = false;
      return [{ type: 'start-step' }];
    }
    if (this.settled) {
      this.settled = false;
      if (!afterTools) return [];
      return [{ type: 'finish-step' }, { type: 'start-step' }];
    }
    return [];
  }

  private closeStep(): UIMessageChunk[] {
    if (!this.stepOpen) return [];
    this.stepOpen = false;
    this.settled = false;
    return [{ type: 'finish-step' }];
  }
}

