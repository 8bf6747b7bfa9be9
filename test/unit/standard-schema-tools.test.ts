/**
 * Tool parameters are taken through the Standard Schema interface: zod 4, classic zod 3 (here the
 * v3 API zod ships at `zod/v3`; the pack test installs a real zod 3.25 app) and any other library
 * (a hand-written vendor below, with an async validator and path segments as valibot has them).
 * What a tool receives is the schema's output; a refusal names the field, through the real agent.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { z as z3 } from 'zod/v3';
import { AgentBridge, BaseAgent, ToolError, defineTool, type AnyTool, type AgentEvent, type StandardSchemaV1 } from '../../src/index.js';

/** A library that is not zod: an async validator, issues with `{ key }` path segments. */
function positiveCount(): StandardSchemaV1<{ count: unknown }, { count: number }> {
  return {
    '~standard': {
      version: 1,
      vendor: 'handmade',
      async validate(value) {
        const count = typeof value === 'object' && value !== null ? (value as { count?: unknown }).count : undefined;
        if (typeof count === 'number' && count > 0) return { value: { count: count * 10 } };
        return { issues: [{ message: 'must be a positive number', path: [{ key: 'count' }] }] };
      },
    },
  };
}

const zod4 = defineTool({
  name: 'zod4',
  description: 'zod 4',
  parameters: z.object({ query: z.string().min(1).transform((text) => text.toUpperCase()) }),
  execute: ({ query }) => query satisfies string,
});
const zod3 = defineTool({
  name: 'zod3',
  description: 'classic zod 3',
  parameters: z3.object({ items: z3.array(z3.object({ id: z3.number().int() })) }),
  execute: ({ items }) => items.map((item) => item.id satisfies number),
});
const handmade = defineTool({
  name: 'handmade',
  description: 'another library',
  parameters: positiveCount(),
  execute: ({ count }) => count satisfies number,
});

class Caller extends BaseAgent<{ tool: string; args: unknown }, unknown> {
  constructor(tools: AnyTool[]) {
    super({ name: 'caller', tools, bridge: new AgentBridge() });
  }
  protected async execute(input: { tool: string; args: unknown }): Promise<unknown> {
    return this.callTool(input.tool, input.args);
  }
}

async function call(tool: string, args: unknown) {
  const agent = new Caller([zod4, zod3, handmade]);
  const completed: AgentEvent[] = [];
  agent.on('tool_completed', (event) => void completed.push(event));
  const result = await agent.run({ tool, args }, { userId: 'u', threadId: 'standard-schema' });
  return { result, completed };
}

describe('tool parameters through Standard Schema', () => {
  it.each([
    ['zod4', { query: 'redis' }, 'REDIS'],
    ['zod3', { items: [{ id: 1 }, { id: 2 }] }, [1, 2]],
    ['handmade', { count: 4 }, 40],
  ])('%s: execute receives the validated output', async (tool, args, output) => {
    const { result, completed } = await call(tool, args);
    expect(result.status).toBe('succeeded');
    expect(result.output).toEqual(output);
    expect(completed.map((event) => event.data)).toMatchObject([{ tool, status: 'succeeded' }]);
  });

  it.each([
    ['zod4', { query: '' }, 'args.query', /at least 1|>=1/],
    ['zod3', { items: [{ id: 1 }, { id: 1.5 }] }, 'args.items.1.id', /integer/],
    ['handmade', { count: -1 }, 'args.count', /must be a positive number/],
    ['handmade', 'not an object', 'args.count', /must be a positive number/],
  ])('%s: invalid arguments are a TOOL_INVALID_ARGS naming the field, and the call is closed as failed', async (tool, args, field, message) => {
    const { result, completed } = await call(tool, args);
    expect(result.status).toBe('failed');
    expect(result.error).toBeInstanceOf(ToolError);
    expect(result.error).toMatchObject({ code: 'TOOL_INVALID_ARGS', details: { field } });
    expect(result.error?.message).toContain(`${field}: `);
    expect(result.error?.message).toMatch(message);
    expect(completed.map((event) => event.data)).toMatchObject([{ tool, status: 'failed', error: { code: 'TOOL_INVALID_ARGS' } }]);
  });
});
