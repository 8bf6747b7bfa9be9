import type { LanguageModelV3StreamPart } from '@ai-sdk/provider';
import { MockLanguageModelV3, convertArrayToReadableStream } from 'ai/test';
import { z } from 'zod';
import { defineTool, type AgentEvent } from '../../src/index.js';
import { finish, reasoning, text, toolCall } from './ai-models.js';

/** The model's text deltas of the tool step (progress) and of the final step (the answer), as the model streams them. */
export const PROGRESS = ['Checking', ' the ', 'weather…'];
export const ANSWER = ['In ', 'Paris', ' it', ' is', ' ', 'sunny', ', ', '21', ' °C', '.', '\n', 'Enjoy', ' the', ' walk', ' 🌞', ' — ', 'à', ' bientôt', '!', ' ', 'Bye', '.'];
/** Reasoning of each step, streamed as several deltas (agentwire coalesces it). */
export const REASONING_0 = ['The user ', 'wants ', 'the weather.'];
export const REASONING_1 = ['Got ', 'it.'];

export const getWeather = defineTool({
  name: 'get_weather',
  description: 'Current weather of a city',
  parameters: z.object({ city: z.string().min(1) }),
  execute: async ({ city }) => ({ city, sky: 'sunny', celsius: 21 }),
});

/**
 * The AI SDK's own test model, stateless so one agent serves concurrent runs: a prompt whose last
 * message is a tool result gets the answer step, any other the tool step.
 */
export function streamingModel(options: { beforeDelta?: () => Promise<void> } = {}): MockLanguageModelV3 {
  const { beforeDelta } = options;
  return new MockLanguageModelV3({
    provider: 'agentwire-test',
    modelId: 'streaming',
    doStream: async (options) => {
      const last = options.prompt.at(-1);
      const parts: LanguageModelV3StreamPart[] =
        last?.role === 'tool'
          ? [...reasoning(...REASONING_1), ...text(...ANSWER), finish('stop', [20, ANSWER.length])]
          : [...reasoning(...REASONING_0), ...text(...PROGRESS), toolCall('call-1', 'get_weather', { city: 'Paris' }), finish('tool-calls', [10, 3])];
      const all: LanguageModelV3StreamPart[] = [{ type: 'stream-start', warnings: [] }, ...parts];
      if (!beforeDelta) return { stream: convertArrayToReadableStream<LanguageModelV3StreamPart>(all) };
      // Paced by the test: each text delta waits for its gate (e.g. "the client reconnected").
      let next = 0;
      const stream = new ReadableStream<LanguageModelV3StreamPart>({
        async pull(controller) {
          const part = all[next++];
          if (!part) return controller.close();
          if (part.type === 'text-delta') await beforeDelta();
          controller.enqueue(part);
        },
      });
      return { stream };
    },
  });
}

/** Answer deltas of a run's events: `[messageId, text]` in order. */
export function answerDeltas(events: readonly AgentEvent[]): Array<[string, string]> {
  return events.flatMap((event) => (event.type === 'agent_thinking' && event.data.channel === 'answer' ? [[event.data.messageId ?? '', event.data.text] as [string, string]] : []));
}
