import { EventType, PROTOCOL_VERSION, type BaseEvent, type TokenUsage } from '@ag-ui/core';
import { toJson as jsonOf } from '../events/json.js';
import { checker, given, shown } from '../errors/options.js';
import { hookText } from '../gateway/run-stream/hook-text.js';
import type { AgentEvent, ErrorInfo, EventOfType, Usage } from '../events/schema.js';

/** How `agent_thinking` is shown to an AG-UI client. */
export type ThinkingMode =
  /** `REASONING_*`: consecutive thoughts form one reasoning span, one reasoning message each. */
  | 'reasoning'
  /** `TEXT_MESSAGE_*`: one assistant text message per thought (for front ends that ignore reasoning). */
  | 'text';

/** How a cancelled run ends its AG-UI stream. */
export type CancelledMode =
  /** `RUN_FINISHED` with `outcome: { type: 'cancelled' }` (AG-UI 1.0's own outcome for a stopped run). */
  | 'outcome'
  /** `RUN_ERROR` with `code: 'ABORTED'` (for clients older than AG-UI 1.0, which read unknown outcomes as success). */
  | 'error';

export interface AguiMapperOptions {
  /** How `agent_thinking` is mapped. Default `'reasoning'`. */
  thinking?: ThinkingMode;
  /** How a cancelled run ends. Default `'outcome'`. */
  cancelled?: CancelledMode;
  /**
   * The assistant text message streamed before `RUN_FINISHED` for a succeeded run, or
   * undefined for none. Default: the output when it is a non-empty string.
   */
  answerText?: (output: unknown) => string | undefined;
}

/** One AG-UI event as written to the wire (validated by `@ag-ui/core`'s `EventSchema` in the tests). */
export type AguiEvent = BaseEvent & { type: EventType };

const defaultAnswerText = (output: unknown): string | undefined =>
  typeof output === 'string' && output.length > 0 ? output : undefined;

/**
 * What a client is told when the `answerText` hook throws (or returns something other than a
 * string or undefined): the run's stream ends with `RUN_ERROR` `INTERNAL_ERROR` and this message
 * (never the hook's own error text, which goes to `onError`).
 */
export const ANSWER_HOOK_FAILED = "The server could not show the run's answer (details withheld)";

/**
 * Translates the events of ONE agentwire run into AG-UI events, in order. Stateful (an open
 * reasoning span is closed before anything else happens), so use one mapper per run.
 *
 * | agentwire | AG-UI |
 * | --- | --- |
 * | `agent_started` | `RUN_STARTED` |
 * | `agent_thinking` | `REASONING_START` (first of a streak) + `REASONING_MESSAGE_START/CONTENT/END`, or a `TEXT_MESSAGE_*` triple |
 * | `agent_thinking` `channel: 'answer'` | `TEXT_MESSAGE_START` (first delta of a message) + `TEXT_MESSAGE_CONTENT` (the delta); `TEXT_MESSAGE_END` before the next other event |
 * | `tool_executing` | `TOOL_CALL_START` + `TOOL_CALL_ARGS` (JSON of the args) + `TOOL_CALL_END` |
 * | `tool_completed` | `TOOL_CALL_RESULT` (failed: `{"error":{name,message,code?}}`) |
 * | `agent_completed` succeeded | answer `TEXT_MESSAGE_*` (string output, unless the run streamed its answer) + `RUN_FINISHED` (`result`, `outcome: success`) |
 * | `agent_completed` failed | `RUN_ERROR` (`message`, `code` = error code or name) |
 * | `agent_completed` cancelled | `RUN_FINISHED` (`outcome: cancelled`), or `RUN_ERROR` `ABORTED` |
 */
export class AguiEventMapper {
  private readonly thinking: ThinkingMode;
  private readonly cancelled: CancelledMode;
  private readonly answerText: (output: unknown) => string | undefined;
  /** Id of the reasoning span left open by a streak of thoughts. */
  private openReasoning: string | undefined;
  /** The streamed answer message open: its agentwire `messageId` and its AG-UI message id. */
  private openText: { key: string; messageId: string } | undefined;
  /** The run streamed answer text: its final text message is not sent again with the result. */
  private streamed = false;
  /** Errors of user hooks contained while mapping (see `takeFaults`). */
  private faults: unknown[] = [];

  constructor(options: AguiMapperOptions = {}) {
    const check = checker('AguiEventMapper');
    if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object (got ${shown(options)})`);
    this.thinking = check.oneOf('thinking', given(options.thinking, 'reasoning'), ['reasoning', 'text']);
    this.cancelled = check.oneOf('cancelled', given(options.cancelled, 'outcome'), ['outcome', 'error']);
    this.answerText = check.fn('answerText', given<NonNullable<AguiMapperOptions['answerText']>>(options.answerText, defaultAnswerText));
  }

  /** The mapping state (to restore when the frames of an event could not be written). */
  save(): unknown {
    return { openReasoning: this.openReasoning, openText: this.openText, streamed: this.streamed };
  }

  /**
   * The errors user hooks threw while mapping the last event (cleared): the event's frames were
   * still written, without what the hook would have given (see `ANSWER_HOOK_FAILED`).
   */
  takeFaults(): unknown[] {
    const faults = this.faults;
    this.faults = [];
    return faults;
  }

  restore(state: unknown): void {
    this.faults = [];
    const saved = state as { openReasoning: string | undefined; openText: { key: string; messageId: string } | undefined; streamed: boolean };
    this.openReasoning = saved.openReasoning;
    this.openText = saved.openText;
    this.streamed = saved.streamed;
  }

  map(event: AgentEvent): AguiEvent[] {
    switch (event.type) {
      case 'agent_started':
        return [{ type: EventType.RUN_STARTED, threadId: event.threadId, runId: event.runId, protocolVersion: PROTOCOL_VERSION, timestamp: event.ts }];
      case 'agent_thinking':
        if (event.data.channel === 'answer') return this.answerDelta(event);
        return this.thinking === 'reasoning'
          ? this.closeText(event.ts).concat(this.reasoning(event))
          : this.closeOpen(event.ts).concat(this.textMessage(`msg_${event.id}`, event.data.text, event.ts));
      case 'tool_executing':
        return this.closeOpen(event.ts).concat(this.toolCall(event));
      case 'user_answered':
        return [];
      case 'tool_completed':
        return this.closeOpen(event.ts).concat(this.toolResult(event));
      case 'agent_completed':
        return this.closeOpen(event.ts).concat(this.terminal(event));
    }
  }

  private reasoning(event: EventOfType<'agent_thinking'>): AguiEvent[] {
    const timestamp = event.ts;
    const out: AguiEvent[] = [];
    if (!this.openReasoning) {
      this.openReasoning = `reasoning_${event.id}`;
      out.push({ type: EventType.REASONING_START, messageId: this.openReasoning, timestamp });
    }
    const messageId = `thought_${event.id}`;
    out.push({ type: EventType.REASONING_MESSAGE_START, messageId, role: 'reasoning', timestamp });
    if (event.data.text.length > 0) out.push({ type: EventType.REASONING_MESSAGE_CONTENT, messageId, delta: event.data.text, timestamp });
    out.push({ type: EventType.REASONING_MESSAGE_END, messageId, timestamp });
    return out;
  }

  /** A delta of a streamed answer message: opens it on its first delta (the message id is that event's). */
  private answerDelta(event: EventOfType<'agent_thinking'>): AguiEvent[] {
    const timestamp = event.ts;
    const key = event.data.messageId ?? '';
    const out = this.closeReasoning(timestamp);
    if (this.openText && this.openText.key !== key) out.push(...this.closeText(timestamp));
    if (!this.openText) {
      this.openText = { key, messageId: `msg_${event.id}` };
      out.push({ type: EventType.TEXT_MESSAGE_START, messageId: this.openText.messageId, role: 'assistant', timestamp });
    }
    this.streamed = true;
    if (event.data.text.length > 0) out.push({ type: EventType.TEXT_MESSAGE_CONTENT, messageId: this.openText.messageId, delta: event.data.text, timestamp });
    return out;
  }

  private closeText(timestamp: number): AguiEvent[] {
    if (!this.openText) return [];
    const { messageId } = this.openText;
    this.openText = undefined;
    return [{ type: EventType.TEXT_MESSAGE_END, messageId, timestamp }];
  }

  /** Closes the open reasoning span or streamed message (at most one is open). */
  private closeOpen(timestamp: number): AguiEvent[] {
    return this.openText ? this.closeText(timestamp) : this.closeReasoning(timestamp);
  }

  private closeReasoning(timestamp: number): AguiEvent[] {
    if (!this.openReasoning) return [];
    const messageId = this.openReasoning;
    this.openReasoning = undefined;
    return [{ type: EventType.REASONING_END, messageId, timestamp }];
  }

  private textMessage(messageId: string, text: string, timestamp: number): AguiEvent[] {
    const out: AguiEvent[] = [{ type: EventType.TEXT_MESSAGE_START, messageId, role: 'assistant', timestamp }];
    if (text.length > 0) out.push({ type: EventType.TEXT_MESSAGE_CONTENT, messageId, delta: text, timestamp });
    out.push({ type: EventType.TEXT_MESSAGE_END, messageId, timestamp });
    return out;
  }

  private toolCall(event: EventOfType<'tool_executing'>): AguiEvent[] {
    const { toolCallId, tool, args } = event.data;
    const timestamp = event.ts;
    return [
      { type: EventType.TOOL_CALL_START, toolCallId, toolCallName: tool, timestamp },
      { type: EventType.TOOL_CALL_ARGS, toolCallId, delta: toJson(args ?? {}), timestamp },
      { type: EventType.TOOL_CALL_END, toolCallId, timestamp },
    ];
  }

  private toolResult(event: EventOfType<'tool_completed'>): AguiEvent {
    const data = event.data;
    const content = data.status === 'succeeded' ? resultText(data.result) : toJson({ error: data.error });
    return {
      type: EventType.TOOL_CALL_RESULT,
      messageId: `msg_${event.id}`,
      toolCallId: data.toolCallId,
      role: 'tool',
      content,
      metadata: { agentwire: { status: data.status, durationMs: data.durationMs } },
      timestamp: event.ts,
    };
  }

  private terminal(event: EventOfType<'agent_completed'>): AguiEvent[] {
    const data = event.data;
    const timestamp = event.ts;
    const usage = data.usage ? { usage: [tokenUsage(data.usage)] } : {};
    const ids = { threadId: event.threadId, runId: event.runId };
    if (data.status === 'succeeded') {
      let answer: string | undefined;
      try {
        answer = this.streamed ? undefined : hookText(this.answerText(data.result), 'answerText', true);
      } catch (error) {
        // A hook that throws costs its frames, not the stream's grammar: open messages were closed
        // (closeOpen, in map), and the stream still ends, with a RUN_ERROR that withholds the error.
        this.faults.push(error);
        return [{ type: EventType.RUN_ERROR, message: ANSWER_HOOK_FAILED, code: 'INTERNAL_ERROR', ...usage, timestamp }];
      }
      const message = answer === undefined ? [] : this.textMessage(`msg_${event.id}`, answer, timestamp);
      // A result JSON cannot carry (cycles, BigInt) is left out rather than losing RUN_FINISHED.
      const result = data.result === undefined || !jsonOf(data.result).ok ? {} : { result: data.result };
      return [...message, { type: EventType.RUN_FINISHED, ...ids, ...result, outcome: { type: 'success' }, ...usage, timestamp }];
    }
    if (data.status === 'cancelled' && this.cancelled === 'outcome') {
      return [{ type: EventType.RUN_FINISHED, ...ids, outcome: { type: 'cancelled' }, ...usage, timestamp }];
    }
    return [{ type: EventType.RUN_ERROR, message: data.error.message, code: errorCode(data.error), ...usage, timestamp }];
  }
}

function errorCode(error: ErrorInfo): string {
  return error.code ?? error.name;
}

function tokenUsage(usage: Usage): TokenUsage {
  return { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, totalTokens: usage.inputTokens + usage.outputTokens };
}

/** A tool result as a tool message's text: strings as they are, anything else as JSON. */
function resultText(result: unknown): string {
  if (typeof result === 'string') return result;
  return result === undefined ? '' : toJson(result);
}

/**
 * A value's JSON with the event limits (events/json.ts). The event it comes from was JSON when it
 * was written (the codec checks `eventJson` first), so this holds; `"null"` otherwise.
 */
function toJson(value: unknown): string {
  const outcome = jsonOf(value);
  return outcome.ok ? outcome.json : 'null';
}
