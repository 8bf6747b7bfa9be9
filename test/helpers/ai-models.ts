import type { LanguageModelV3CallOptions, LanguageModelV3StreamPart, LanguageModelV3Usage } from '@ai-sdk/provider';
import { APICallError } from 'ai';
import { MockLanguageModelV3, convertArrayToReadableStream } from 'ai/test';

/**
 * Scripts for the AI SDK's own test model (`MockLanguageModelV3` from `ai/test`): each model call
 * streams the next step's parts. Only the script is ours; streaming, tool parsing, execution,
 * retries and the step loop are the real AI SDK.
 */
export type StepScript = LanguageModelV3StreamPart[] | ((options: LanguageModelV3CallOptions) => ReadableStream<LanguageModelV3StreamPart>) | Error;

export function usage(input: number, output: number): LanguageModelV3Usage {
  return {
    inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: output, text: output, reasoning: undefined },
  };
}

let block = 0;

/** Reasoning streamed as the given deltas. */
export function reasoning(...deltas: string[]): LanguageModelV3StreamPart[] {
  const id = `r${++block}`;
  return [{ type: 'reasoning-start', id }, ...deltas.map((delta) => ({ type: 'reasoning-delta' as const, id, delta })), { type: 'reasoning-end', id }];
}

/** Text streamed as the given deltas. */
export function text(...deltas: string[]): LanguageModelV3StreamPart[] {
  const id = `t${++block}`;
  return [{ type: 'text-start', id }, ...deltas.map((delta) => ({ type: 'text-delta' as const, id, delta })), { type: 'text-end', id }];
}

/** A tool call; `input` is sent as is when a string (e.g. broken JSON), else JSON-encoded. */
export function toolCall(toolCallId: string, toolName: string, input: unknown): LanguageModelV3StreamPart {
  return { type: 'tool-call', toolCallId, toolName, input: typeof input === 'string' ? input : JSON.stringify(input) };
}

export function finish(reason: 'stop' | 'tool-calls', tokens: [number, number] = [10, 5]): LanguageModelV3StreamPart {
  return { type: 'finish', finishReason: { unified: reason, raw: reason }, usage: usage(...tokens) };
}

/** A step that calls tools: optional leading parts, then the calls, then `finish('tool-calls')`. */
export function toolStep(lead: LanguageModelV3StreamPart[], ...calls: LanguageModelV3StreamPart[]): LanguageModelV3StreamPart[] {
  return [...lead, ...calls, finish('tool-calls')];
}

/** A final step: optional leading parts, then `finish('stop')`. */
export function answerStep(...parts: LanguageModelV3StreamPart[][]): LanguageModelV3StreamPart[] {
  return [...parts.flat(), finish('stop')];
}

/** A model whose n-th call plays the n-th script (an `Error` script makes that call throw). */
export function scriptedModel(steps: StepScript[]): MockLanguageModelV3 {
  let call = 0;
  return new MockLanguageModelV3({
    provider: 'agentwire-test',
    modelId: 'scripted',
    doStream: async (options) => {
      const script = steps[call++];
      if (script === undefined) throw new Error(`scripted model: no step ${call}`);
      if (script instanceof Error) throw script;
      const stream = typeof script === 'function' ? script(options) : convertArrayToReadableStream<LanguageModelV3StreamPart>([{ type: 'stream-start', warnings: [] }, ...script]);
      return { stream };
    },
  });
}

/** Streams `lead`, then hangs until the call's abort signal fires (then errors like fetch does). */
export function hangAfter(lead: LanguageModelV3StreamPart[]): (options: LanguageModelV3CallOptions) => ReadableStream<LanguageModelV3StreamPart> {
  return ({ abortSignal }) =>
    new ReadableStream<LanguageModelV3StreamPart>({
      start(controller) {
        for (const part of lead) controller.enqueue(part);
        const fail = () => controller.error(new DOMException('The operation was aborted.', 'AbortError'));
        if (abortSignal?.aborted) fail();
        else abortSignal?.addEventListener('abort', fail, { once: true });
      },
    });
}

export function overloaded(): APICallError {
  return new APICallError({
    message: 'Overloaded',
    url: 'https://model.invalid/v1',
    requestBodyValues: {},
    statusCode: 529,
    isRetryable: true,
    responseHeaders: { 'retry-after-ms': '1' },
  });
}

export function unauthorized(): APICallError {
  return new APICallError({ message: 'Invalid API key', url: 'https://model.invalid/v1', requestBodyValues: {}, statusCode: 401, isRetryable: false });
}

/** The tool results (or error texts) the model was sent in a call's prompt. */
export function toolResultsSent(options: LanguageModelV3CallOptions | undefined): Array<{ toolName: string; output: unknown }> {
  const results: Array<{ toolName: string; output: unknown }> = [];
  for (const message of options?.prompt ?? []) {
    if (message.role !== 'tool') continue;
    for (const part of message.content) if (part.type === 'tool-result') results.push({ toolName: part.toolName, output: part.output });
  }
  return results;
}
