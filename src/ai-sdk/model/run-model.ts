import { stepCountIs, streamText, type FinishReason, type LanguageModelUsage, type TextStreamPart, type ToolSet } from 'ai';
import { abortErrorFrom } from '../../agent/abort.js';
import { isInstance } from '../../errors/guards.js';
import { ValidationError } from '../../errors/index.js';
import type { Usage } from '../../events/schema.js';
import { checkModel, resolveModelSettings, type ModelRunOptions } from './options.js';
import { checker } from '../../errors/options.js';
import { ThinkingCoalescer } from './thinking.js';
import { ToolSequencer } from './tool-sequencer.js';
import { toAiSdkTools, type ModelDriver } from './tools.js';

/** What a model-driven run produced. */
export interface ModelRunResult {
  /** The final step's text: the answer. */
  text: string;
  /** Model calls made. */
  steps: number;
  finishReason: FinishReason | undefined;
  /** Tokens of every step, also reported to the run (`agent_completed.data.usage`). */
  usage: Usage;
}

/** Default `maxSteps`. */
export const DEFAULT_MAX_STEPS = 10;

/**
 * Drives an AI SDK model inside a `BaseAgent` run: call it from `execute(input, ctx)` with
 * `this` as the driver. It runs `streamText` with the agent's tools, the run's signal and the step
 * limit, and turns what the model does into the run's events:
 *
 * - reasoning and text deltas → `agent_thinking` (coalesced, see `ThinkingOptions`), with `step`;
 * - with `textStreaming` on, text deltas → answer deltas (`streamText`: `agent_thinking` `channel: 'answer'`);
 * - every tool call → `callTool` → `tool_executing` / `tool_completed`, including calls with invalid
 *   arguments and calls of unknown tools (failed pairs; the model gets the error as the tool result);
 * - each step's token usage → `reportUsage` (summed into `agent_completed.data.usage`);
 * - a model or provider error → rejects with that error (the run fails with its name and message).
 *
 * Resolves with the final step's text. Events of a step are emitted only from the stream of the
 * call that succeeded, so an AI SDK retry of a failed call never repeats them.
 */
export async function runModel(driver: ModelDriver, options: ModelRunOptions): Promise<ModelRunResult> {
  const { signal } = options;
  if (signal.aborted) throw abortErrorFrom(signal);
  const prompt = promptOf(options);
  // ModelAgent checked its settings at construction; a direct call is checked here, before any event.
  checkModel(checker('runModel()'), options.model);
  const settings = resolveModelSettings(options, 'runModel()');
  const streaming = settings.textStreaming;
  const writeAnswer = driver.streamText;
  if (streaming !== 'off' && !writeAnswer) {
    throw new ValidationError('textStreaming needs a driver with streamText (every BaseAgent has it)', { code: 'INVALID_OPTION', field: 'textStreaming' });
  }
  const thinking = new ThinkingCoalescer(
    settings.thinking,
    (text, step) => driver.think(text, step),
    streaming,
    writeAnswer && ((text, step) => writeAnswer.call(driver, text, { step })),
  );
  const sequencer = new ToolSequencer();
  const offered = options.activeTools ? new Set(options.activeTools) : undefined;
  const tools = toAiSdkTools(
    driver,
    driver.listTools().filter((tool) => !offered || offered.has(tool.name)),
    sequencer,
  );
  const usage: Usage = { inputTokens: 0, outputTokens: 0 };
  let modelError: { error: unknown } | undefined;
  let steps = 0;
  let stepText = '';
  let answer = '';
  let finishReason: FinishReason | undefined;

  const result = streamText({
    ...options.callSettings,
    model: options.model,
    ...(options.system !== undefined && { system: options.system }),
    ...prompt,
    tools,
    ...(options.toolChoice !== undefined && { toolChoice: options.toolChoice }),
    stopWhen: options.stopWhen ?? stepCountIs(options.maxSteps ?? DEFAULT_MAX_STEPS),
    ...(options.maxRetries !== undefined && { maxRetries: options.maxRetries }),
    ...(options.providerOptions !== undefined && { providerOptions: options.providerOptions }),
    ...(options.repairToolCall !== undefined && { experimental_repairToolCall: options.repairToolCall }),
    abortSignal: signal,
    // Errors arrive as `error` parts below; keep the AI SDK from logging them to the console.
    onError: () => undefined,
  });

  const handle = (part: TextStreamPart<ToolSet>): void => {
    switch (part.type) {
      case 'start-step':
        thinking.startStep(steps);
        stepText = '';
        return;
      case 'reasoning-delta':
        thinking.push('reasoning', part.text);
        return;
      case 'text-delta':
        stepText += part.text;
        thinking.push('text', part.text);
        return;
      case 'tool-call':
        thinking.toolCall();
        if (part.invalid) {
          // Unknown tool or unparsable arguments: the AI SDK answers the model with an error result
          // and executes nothing. callTool fails the same call and emits its pair, in its turn.
          const { toolName, input } = part;
          sequencer.run(() => void driver.callTool(toolName, input).catch(() => undefined));
        } else if (!part.providerExecuted) {
          sequencer.expect(part.toolCallId);
        }
        return;
      case 'finish-step':
        thinking.endStep();
        sequencer.releaseAll();
        addUsage(usage, part.usage, driver);
        answer = stepText;
        finishReason = part.finishReason;
        steps++;
        return;
      case 'finish':
        finishReason = part.finishReason;
        return;
      case 'error':
        modelError ??= { error: part.error };
        return;
      case 'abort':
        throw abortErrorFrom(signal);
      default:
        return;
    }
  };

  try {
    for await (const part of result.fullStream) {
      handle(part);
      // Backpressure: once per step, and per text delta when the answer streams (a slow log slows the model loop).
      if (part.type === 'finish-step' || (streaming !== 'off' && part.type === 'text-delta')) await thinking.drain();
    }
    if (signal.aborted) throw abortErrorFrom(signal);
    thinking.finish();
    await thinking.drain();
  } catch (error) {
    thinking.close();
    throw signal.aborted ? abortErrorFrom(signal) : error;
  } finally {
    sequencer.releaseAll();
  }
  if (modelError) throw asError(modelError.error);
  return { text: answer, steps, finishReason, usage };
}

function promptOf(options: ModelRunOptions): { prompt: string } | { messages: NonNullable<ModelRunOptions['messages']> } {
  if (options.messages !== undefined && options.prompt !== undefined) {
    throw new ValidationError('Give either prompt or messages, not both', { field: 'prompt' });
  }
  if (options.messages !== undefined) return { messages: options.messages };
  if (typeof options.prompt === 'string') return { prompt: options.prompt };
  throw new ValidationError('A model run needs a prompt or messages', { field: 'prompt' });
}

function addUsage(total: Usage, step: LanguageModelUsage, driver: ModelDriver): void {
  if (step.inputTokens === undefined && step.outputTokens === undefined) return;
  const reported = { inputTokens: tokens(step.inputTokens), outputTokens: tokens(step.outputTokens) };
  total.inputTokens += reported.inputTokens;
  total.outputTokens += reported.outputTokens;
  driver.reportUsage(reported);
}

function tokens(value: number | undefined): number {
  return value === undefined || !Number.isFinite(value) ? 0 : Math.max(0, Math.round(value));
}

/** Model errors keep their own name and message (e.g. `AI_APICallError`); non-errors are wrapped. */
function asError(error: unknown): Error {
  if (isInstance(error, Error)) return error;
  return new Error(typeof error === 'string' ? error : 'The model call failed', { cause: error });
}
