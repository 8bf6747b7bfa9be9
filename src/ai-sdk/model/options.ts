import { MAX_TIMER_MS, checker, given, shown, type OptionChecker } from '../../errors/options.js';
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

const THINKING_OPTIONS = ['flush', 'minChars', 'maxDelayMs', 'maxChars', 'reasoning', 'text'] as const;

/**
 * The thinking options with their defaults; a wrong value throws `ValidationError`
 * `INVALID_OPTION` (`<owner> option thinking.minChars must be …`). Only `undefined` is the default.
 */
export function resolveThinking(options: ThinkingOptions | undefined, owner = 'runModel()'): ResolvedThinkingOptions {
  const check = checker(owner);
  if (options === undefined) options = {};
  else if (!isPlainObject(options)) throw check.fail('thinking', `must be an object of ${THINKING_OPTIONS.join(', ')} (got ${shown(options)})`);
  return {
    flush: check.oneOf('thinking.flush', given(options.flush, 'sentence'), ['sentence', 'step']),
    minChars: check.integer('thinking.minChars', given(options.minChars, 60), 0),
    // A timer waits for it: at most 2^31 - 1 ms (Node fires a longer one after 1 ms).
    maxDelayMs: check.duration('thinking.maxDelayMs', given(options.maxDelayMs, 750), { min: 0, max: MAX_TIMER_MS }),
    maxChars: check.integer('thinking.maxChars', given(options.maxChars, 2_000)),
    reasoning: check.boolean('thinking.reasoning', given(options.reasoning, true)),
    text: check.oneOf('thinking.text', given(options.text, 'tool-steps'), ['tool-steps', 'all', 'none']),
  };
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

/** `ModelSettings` after `resolveModelSettings`: every option checked, the defaults of `thinking` and `textStreaming` filled in. */
export interface ResolvedModelSettings extends Omit<ModelSettings, 'thinking' | 'textStreaming'> {
  thinking: ResolvedThinkingOptions;
  textStreaming: TextStreaming;
}

const CALL_NUMBERS = ['temperature', 'topP', 'topK', 'presencePenalty', 'frequencyPenalty'] as const;
const TOOL_CHOICES = ['auto', 'none', 'required'] as const;

/**
 * Checks the settings of a model run (`ModelAgent`'s constructor, each `runModel` call): a wrong
 * value throws `ValidationError` `INVALID_OPTION` naming it (`ModelAgent option maxRetries must be
 * a non-negative integer (got -3)`) instead of failing every run later. Only `undefined` is the default.
 */
export function resolveModelSettings(settings: ModelSettings, owner: string): ResolvedModelSettings {
  const check = checker(owner);
  const { maxSteps, stopWhen, maxRetries, callSettings, providerOptions, activeTools, toolChoice, repairToolCall } = settings;
  if (maxSteps !== undefined) check.integer('maxSteps', maxSteps);
  if (stopWhen !== undefined && typeof stopWhen !== 'function' && !(Array.isArray(stopWhen) && stopWhen.length > 0 && stopWhen.every((c) => typeof c === 'function'))) {
    throw check.fail('stopWhen', `must be a stop condition or a non-empty array of them (got ${shown(stopWhen)})`);
  }
  if (maxRetries !== undefined) check.integer('maxRetries', maxRetries, 0);
  if (callSettings !== undefined) checkCallSettings(check, callSettings);
  if (providerOptions !== undefined && !isPlainObject(providerOptions)) {
    throw check.fail('providerOptions', `must be an object of provider options (got ${shown(providerOptions)})`);
  }
  if (activeTools !== undefined && !(Array.isArray(activeTools) && activeTools.every((name) => typeof name === 'string'))) {
    throw check.fail('activeTools', `must be an array of tool names (got ${shown(activeTools)})`);
  }
  if (toolChoice !== undefined && !isToolChoice(toolChoice)) {
    throw check.fail('toolChoice', `must be "auto", "none", "required" or { type: "tool", toolName } (got ${shown(toolChoice)})`);
  }
  if (repairToolCall !== undefined) check.fn('repairToolCall', repairToolCall);
  return {
    ...settings,
    thinking: resolveThinking(settings.thinking, owner),
    textStreaming: check.oneOf('textStreaming', given(settings.textStreaming, 'off'), ['off', 'sentence', 'delta']),
  };
}

/** The settings the AI SDK would refuse at every call (`AI_InvalidArgumentError`), refused once here. */
function checkCallSettings(check: OptionChecker, callSettings: ModelCallSettings): void {
  if (!isPlainObject(callSettings)) throw check.fail('callSettings', `must be an object of AI SDK call settings (got ${shown(callSettings)})`);
  const { maxOutputTokens, seed, stopSequences, headers, timeout } = callSettings;
  if (maxOutputTokens !== undefined) check.integer('callSettings.maxOutputTokens', maxOutputTokens);
  for (const name of CALL_NUMBERS) if (callSettings[name] !== undefined) check.number(`callSettings.${name}`, callSettings[name]);
  if (seed !== undefined) check.number('callSettings.seed', seed, { integer: true });
  if (stopSequences !== undefined && !(Array.isArray(stopSequences) && stopSequences.every((s) => typeof s === 'string'))) {
    throw check.fail('callSettings.stopSequences', `must be an array of strings (got ${shown(stopSequences)})`);
  }
  if (headers !== undefined && !isPlainObject(headers)) throw check.fail('callSettings.headers', `must be an object of header values (got ${shown(headers)})`);
  if (timeout !== undefined) {
    if (typeof timeout === 'number') check.duration('callSettings.timeout', timeout, { max: MAX_TIMER_MS });
    else if (isPlainObject(timeout)) {
      for (const name of ['totalMs', 'stepMs', 'chunkMs'] as const) {
        if (timeout[name] !== undefined) check.duration(`callSettings.timeout.${name}`, timeout[name], { max: MAX_TIMER_MS });
      }
    } else throw check.fail('callSettings.timeout', `must be a number of milliseconds or { totalMs, stepMs, chunkMs } (got ${shown(timeout)})`);
  }
}

function isToolChoice(value: unknown): boolean {
  if (typeof value === 'string') return (TOOL_CHOICES as readonly string[]).includes(value);
  return isPlainObject(value) && value.type === 'tool' && typeof value.toolName === 'string' && value.toolName.length > 0;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The model of a run: a model id string (the AI SDK gateway resolves it) or a model object (`LanguageModelV2`/`V3`: `doStream`). */
export function checkModel(check: OptionChecker, model: unknown): LanguageModel {
  const ok = typeof model === 'string' ? model.length > 0 : typeof model === 'object' && model !== null && typeof (model as { doStream?: unknown }).doStream === 'function';
  if (!ok) throw check.fail('model', `must be an AI SDK LanguageModel: a model object with doStream, or a model id string (got ${shown(model)})`);
  return model as LanguageModel;
}
