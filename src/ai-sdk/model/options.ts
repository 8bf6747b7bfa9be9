import type { TextStreaming } from './thinking.js';
import type { CallSettings, LanguageModel, ModelMessage, StopCondition, streamText, ToolCallRepairFunction, ToolChoice, ToolSet } from 'ai';

/** How model reasoning and text deltas are coalesced into `agent_thinking` events. */
export interface ThinkingOptions {
  /**
   * When buffered deltas are emitted.
   * - `'sentence'`: at the end of a sentence (once `minChars` are buffered), after `maxDelayMs`,
   *   when the kind switches between reasoning and text, before the step's tool calls run, and at the step's end.
   * - `'step'`: only when the kind switches, before the step's tool calls run, and at the step's end.
   *
   * Default `'sentence'`.
   */
  flush?: 'step' | 'sentence';
  /** `'sentence'` mode: a sentence end flushes only once at least this many characters are buffered. Default 60. */
  minChars?: number;
  /** `'sentence'` mode: flush whatever is buffered once the oldest unflushed delta is this old (ms). `0` disables. Default 750. */
  maxDelayMs?: number;
  /** Longest `agent_thinking.text`; longer buffers are split (at whitespace when possible). Default 2,000. */
  maxChars?: number;
  /** Whether the model's reasoning deltas become `agent_thinking`. Default `true`. */
  reasoning?: boolean;
  /**
   * Which of the model's text becomes `agent_thinking`.
   * - `'tool-steps'`: text of steps that call tools (progress such as "Let me look that up"). The final
   *   step's text is the answer: it goes to `agent_completed.result` only.
   * - `'all'`: every step's text, the final answer included (it then also is `agent_completed.result`).
   * - `'none'`: text never becomes thinking.
   *
   * Default `'tool-steps'`.
   */
  text?: 'tool-steps' | 'all' | 'none';
}

export type ResolvedThinkingOptions = Required<ThinkingOptions>;

export function resolveThinking(options: ThinkingOptions = {}): ResolvedThinkingOptions {
  const resolved: ResolvedThinkingOptions = {
    flush: options.flush ?? 'sentence',
    minChars: options.minChars ?? 60,
    maxDelayMs: options.maxDelayMs ?? 750,
    maxChars: options.maxChars ?? 2_000,
    reasoning: options.reasoning ?? true,
    text: options.text ?? 'tool-steps',
  };
  if (!(resolved.maxChars >= 1) || !(resolved.minChars >= 0) || !(resolved.maxDelayMs >= 0)) {
    throw new RangeError('thinking: maxChars must be ≥ 1, minChars and maxDelayMs ≥ 0');
  }
  return resolved;
}

/** AI SDK provider options (`providerOptions` of `streamText`). */
export type ProviderOptions = NonNullable<Parameters<typeof streamText>[0]['providerOptions']>;

/** Sampling and transport settings passed to `streamText` as is (everything but the signal and retries). */
export type ModelCallSettings = Omit<CallSettings, 'abortSignal' | 'maxRetries'>;

/** How a model is driven; shared by `ModelAgent` and `runModel`. */
export interface ModelSettings {
  /** Stop after this many model calls (steps); each step may call tools. Default 10. Ignored when `stopWhen` is set. */
  maxSteps?: number;
  /** AI SDK stop conditions (e.g. `[stepCountIs(5), hasToolCall('done')]`). Default `stepCountIs(maxSteps)`. */
  stopWhen?: StopCondition<ToolSet> | StopCondition<ToolSet>[];
  /** How deltas become `agent_thinking`; see `ThinkingOptions`. */
  thinking?: ThinkingOptions;
  /**
   * Whether the model's text streams to the user as it is written, as answer deltas
   * (`agent_thinking` with `channel: 'answer'`, see `BaseAgent.streamText`).
   * - `'off'`: text becomes thinking per `thinking.text`; the answer arrives in one piece with `agent_completed`.
   * - `'delta'`: one event per model text delta, in order, with the delta as the AI SDK gave it.
   * - `'sentence'`: deltas coalesced by the sentence rules of `thinking` (`minChars`, `maxDelayMs`, `maxChars`).
   *
   * With `'delta'` or `'sentence'` every step's text streams (the text of steps that call tools too,
   * as the AI SDK's own UI streams show it), each step's text one message; `thinking.text` no longer
   * applies, reasoning stays coalesced. The run's output is still the final step's text.
   * Default `'off'`.
   */
  textStreaming?: TextStreaming;
  /**
   * Retries of a model call that failed before it streamed anything (rate limits, overload), done by
   * the AI SDK. A retry never re-emits events: nothing of a step is emitted before its call succeeded.
   * Default 2 (the AI SDK's).
   */
  maxRetries?: number;
  /** Temperature, max output tokens, headers, timeout, … Default none (the provider's defaults). */
  callSettings?: ModelCallSettings;
  /** Provider-specific options, e.g. `{ openai: { reasoningEffort: 'low' } }`. Default none. */
  providerOptions?: ProviderOptions;
  /** Names of the agent's tools the model is offered. Default: every registered tool. */
  activeTools?: string[];
  /** The AI SDK's tool choice. Default `'auto'`. */
  toolChoice?: ToolChoice<ToolSet>;
  /**
   * The AI SDK's `experimental_repairToolCall`, tried for unknown tools and unparsable arguments.
   * A call it cannot repair still yields a failed `tool_completed` and goes back to the model as an error.
   * Default none.
   */
  repairToolCall?: ToolCallRepairFunction<ToolSet>;
}

/** What one model-driven run needs besides the settings. */
export interface ModelRunOptions extends ModelSettings {
  /** Any AI SDK `LanguageModel` (a provider's model, or a gateway model id string). */
  model: LanguageModel;
  /** The system prompt. Default none. */
  system?: string;
  /** A single user prompt; give either `prompt` or `messages`. */
  prompt?: string;
  /** The conversation so far (AI SDK `ModelMessage`s). */
  messages?: ModelMessage[];
  /** The run's signal (`ctx.signal`): aborting it cancels the model call and the tools. */
  signal: AbortSignal;
}
