import type { LanguageModel, ModelMessage } from 'ai';
import { BaseAgent, type BaseAgentOptions } from '../../agent/base-agent.js';
import type { RunContext } from '../../agent/run-context.js';
import { ValidationError } from '../../errors/index.js';
import { checker, shown } from '../../errors/options.js';
import { checkModel, resolveModelSettings, type ModelSettings } from './options.js';
import { runModel } from './run-model.js';

/** What a `ModelAgent` run takes: a user prompt, or the conversation so far. */
export type ModelAgentInput = string | { messages: ModelMessage[] };

export interface ModelAgentOptions extends BaseAgentOptions, ModelSettings {
  /** Any AI SDK `LanguageModel`, e.g. `openai('gpt-4.1-mini')`, or a gateway model id string. */
  model: LanguageModel;
  /** The system prompt, fixed or per run. Default none. */
  system?: string | ((ctx: RunContext) => string | undefined);
}

/**
 * An agent driven by an AI SDK model: name a model, a system prompt and the agent's zod-declared
 * tools; each run streams the model (`streamText`) and emits the same five events a hand-written
 * agent does. The run's output is the model's final answer text.
 *
 * For a custom loop (several models, post-processing, structured input) subclass `BaseAgent` and
 * call `runModel(this, { model, signal: ctx.signal, ... })` from `execute` instead.
 */
export class ModelAgent extends BaseAgent<ModelAgentInput, string> {
  private readonly model: LanguageModel;
  private readonly system: ModelAgentOptions['system'];
  private readonly settings: ModelSettings;

  constructor(options: ModelAgentOptions) {
    if (typeof options !== 'object' || options === null) throw checker('ModelAgent').fail('options', `must be an object (got ${shown(options)})`);
    const { model, system, maxSteps, stopWhen, thinking, textStreaming, maxRetries, callSettings, providerOptions, toolChoice, repairToolCall, activeTools, ...base } =
      options;
    super(base);
    const check = checker('ModelAgent');
    checkModel(check, model);
    if (system !== undefined && typeof system !== 'string' && typeof system !== 'function') {
      throw check.fail('system', `must be a string or a function of the run context returning one (got ${shown(system)})`);
    }
    this.model = model;
    this.system = system;
    // Checked now: a wrong setting would fail (or be ignored by) every run.
    this.settings = resolveModelSettings(
      { maxSteps, stopWhen, thinking, textStreaming, maxRetries, callSettings, providerOptions, toolChoice, repairToolCall, activeTools },
      'ModelAgent',
    );
  }

  protected async execute(input: ModelAgentInput, ctx: RunContext): Promise<string> {
    const system = typeof this.system === 'function' ? this.system(ctx) : this.system;
    const result = await runModel(this, {
      ...this.settings,
      model: this.model,
      ...(system !== undefined && { system }),
      ...promptOf(input),
      signal: ctx.signal,
    });
    return result.text;
  }
}

function promptOf(input: ModelAgentInput): { prompt: string } | { messages: ModelMessage[] } {
  if (typeof input === 'string') return { prompt: input };
  if (input !== null && typeof input === 'object' && Array.isArray(input.messages)) return { messages: input.messages };
  throw new ValidationError('ModelAgent input must be a prompt string or { messages }', { field: 'input' });
}
