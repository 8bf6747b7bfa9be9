/**
 * One JSON Schema conversion for zod 3.25 (classic and `zod/v4`) and zod 4: `ask()`'s
 * `pending.schema` and the tool parameters a model is shown, checked on what the receiving side got.
 */
import { MockLanguageModelV3, convertArrayToReadableStream } from 'ai/test';
import type { LanguageModelV3StreamPart } from '@ai-sdk/provider';
import { describe, expect, it } from 'vitest';
import { z as z4 } from 'zod';
import { AgentBridge, BaseAgent, MemoryTransport, defineTool, type AgentEvent } from '../../src/index.js';
import { jsonSchemaOf, zodKind } from '../../src/agent/json-schema.js';
import { ModelAgent } from '../../src/ai-sdk/index.js';
import { finish, text, toolCall } from '../helpers/ai-models.js';
import { z3, z3v4, zod3Version } from '../helpers/zod3.js';
import { until } from '../helpers/wait.js';

const majors = [
  ['zod 3 classic', z3],
  ['zod 3.25 zod/v4', z3v4],
  ['zod 4', z4],
] as const;

const COLOR_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  properties: { color: { type: 'string', enum: ['red', 'blue'] } },
  required: ['color'],
};

describe('jsonSchemaOf: the same JSON Schema from every zod major', () => {
  it(`recognises each (zod 3 is ${zod3Version})`, () => {
    expect(zodKind(z3.string())).toBe(3);
    expect(zodKind(z3v4.string())).toBe(4);
    expect(zodKind(z4.string())).toBe(4);
    expect(zodKind({ '~standard': { vendor: 'valibot' } })).toBeUndefined();
  });

  for (const [name, z] of majors) {
    it(`${name}: an object, an enum, closed objects for a model, undefined for other libraries`, async () => {
      const anyZ = z as typeof z4;
      expect(await jsonSchemaOf(anyZ.object({ color: anyZ.enum(['red', 'blue']) }))).toEqual(COLOR_SCHEMA);
      expect(await jsonSchemaOf(anyZ.enum(['red', 'blue']))).toEqual({ $schema: COLOR_SCHEMA.$schema, type: 'string', enum: ['red', 'blue'] });
      const nested = await jsonSchemaOf(anyZ.object({ where: anyZ.object({ city: anyZ.string().min(1) }) }), { closeObjects: true });
      expect(nested).toMatchObject({ additionalProperties: false, properties: { where: { additionalProperties: false, properties: { city: { type: 'string', minLength: 1 } } } } });
    });
  }

  it('undefined for what is not a zod schema', async () => {
    expect(await jsonSchemaOf({ '~standard': { vendor: 'valibot', validate: () => ({ value: 1 }) } })).toBeUndefined();
    expect(await jsonSchemaOf(null)).toBeUndefined();
  });
});

class Asker extends BaseAgent<{ schema: unknown }, unknown> {
  protected async execute(input: { schema: unknown }) {
    return this.ask('Which card color?', input.schema as never, { timeoutMs: 10_000 });
  }
}

describe('ask(): pending.schema and the answer check with every zod major', () => {
  for (const [name, z] of majors) {
    it(`${name}: the tool_executing a subscriber got carries the JSON Schema; a refused answer fails, a valid one is the result`, async () => {
      const anyZ = z as typeof z4;
      const transport = new MemoryTransport();
      const agent = new Asker({ name: 'asker', bridge: new AgentBridge({ transport }) });
      const received: AgentEvent[] = [];
      transport.subscribeSync({ userId: 'u', threadId: 't' }, { onEntries: (entries) => received.push(...entries.map((e) => e.event)) });
      const pendingOf = () => received.find((e) => e.type === 'tool_executing')?.data as { pending?: { requestId: string; schema?: unknown } } | undefined;

      const refused = agent.run({ schema: anyZ.object({ color: anyZ.enum(['red', 'blue']) }) }, { userId: 'u', threadId: 't' });
      await until(() => pendingOf() !== undefined, 'the question');
      const first = pendingOf()!.pending!;
      expect(first.schema).toEqual(COLOR_SCHEMA);
      const firstRun = received[0]!.runId;
      await transport.answerRequest({ runId: firstRun, requestId: first.requestId, userId: 'u', value: { color: 'green' } });
      await expect(refused).resolves.toMatchObject({ status: 'failed', error: { code: 'ANSWER_INVALID', field: 'value.color' } });

      received.length = 0;
      const accepted = agent.run({ schema: anyZ.enum(['red', 'blue']) }, { userId: 'u', threadId: 't' });
      await until(() => pendingOf() !== undefined, 'the second question');
      const second = pendingOf()!.pending!;
      expect(second.schema).toEqual({ $schema: COLOR_SCHEMA.$schema, type: 'string', enum: ['red', 'blue'] });
      await transport.answerRequest({ runId: received[0]!.runId, requestId: second.requestId, userId: 'u', value: 'blue' });
      await expect(accepted).resolves.toMatchObject({ status: 'succeeded', output: 'blue' });
      await transport.close();
    });
  }
});

describe('ModelAgent: the tool parameters a model is shown, with every zod major', () => {
  for (const [name, z] of majors) {
    it(`${name}`, async () => {
      const anyZ = z as typeof z4;
      const weather = defineTool({
        name: 'get_weather',
        description: 'Current weather of a city',
        parameters: anyZ.object({ city: anyZ.string().min(1) }),
        execute: async ({ city }) => ({ city, tempC: 21 }),
      });
      let call = 0;
      const model = new MockLanguageModelV3({
        doStream: async () => {
          const parts: LanguageModelV3StreamPart[] =
            call++ === 0 ? [toolCall('m1', 'get_weather', { city: 'Paris' }), finish('tool-calls')] : [...text('Sunny.'), finish('stop')];
          return { stream: convertArrayToReadableStream<LanguageModelV3StreamPart>([{ type: 'stream-start', warnings: [] }, ...parts]) };
        },
      });
      const transport = new MemoryTransport();
      const agent = new ModelAgent({ name: 'weather', model, tools: [weather], bridge: new AgentBridge({ transport }) });
      const received: AgentEvent[] = [];
      transport.subscribeSync({ userId: 'u', threadId: 'w' }, { onEntries: (entries) => received.push(...entries.map((e) => e.event)) });
      await agent.run('Weather in Paris?', { userId: 'u', threadId: 'w' });
      const offered = model.doStreamCalls[0]!.tools?.find((tool) => tool.name === 'get_weather');
      expect(offered).toMatchObject({
        type: 'function',
        inputSchema: { type: 'object', properties: { city: { type: 'string', minLength: 1 } }, required: ['city'], additionalProperties: false },
      });
      expect(received.find((e) => e.type === 'tool_completed')?.data).toMatchObject({ status: 'succeeded', result: { city: 'Paris', tempC: 21 } });
      await transport.close();
    });
  }
});
