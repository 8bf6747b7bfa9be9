import type { LanguageModelV3StreamPart } from '@ai-sdk/provider';
import { MockLanguageModelV3, convertArrayToReadableStream } from 'ai/test';
import { finish, text, toolCall } from '../helpers/ai-models.js';

/**
 * A model for many concurrent runs: a call whose prompt ends with a user message calls `tool`
 * (a fresh tool call id each time); a call that already has a tool result answers "Done.".
 */
export function approvalModel(tool = 'transfer', args: unknown = { amount: 250 }): MockLanguageModelV3 {
  let n = 0;
  return new MockLanguageModelV3({
    provider: 'attack',
    modelId: 'approval',
    doStream: async (options) => {
      const last = options.prompt.at(-1);
      const parts: LanguageModelV3StreamPart[] =
        last?.role === 'tool' ? [...text('Done.'), finish('stop')] : [toolCall(`call${++n}`, tool, args), finish('tool-calls')];
      return { stream: convertArrayToReadableStream<LanguageModelV3StreamPart>([{ type: 'stream-start', warnings: [] }, ...parts]) };
    },
  });
}

/** Reads an SSE (UI message stream) response body into its `data:` JSON chunks. */
export async function sseChunks(response: Response): Promise<Array<Record<string, unknown>>> {
  const body = await response.text();
  return body
    .split('\n\n')
    .map((block) => block.split('\n').find((line) => line.startsWith('data: '))?.slice(6))
    .filter((data): data is string => data !== undefined && data !== '[DONE]')
    .map((data) => JSON.parse(data) as Record<string, unknown>);
}

/** A value nested `depth` levels deep. */
export function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}
