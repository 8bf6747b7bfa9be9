/**
 * AG-UI question interrupts with a zod 3 and a zod 4 schema: the `RUN_FINISHED` interrupt a real
 * `HttpAgent` received carries the question's JSON Schema as `responseSchema`, and the resume
 * payload is checked by the same schema.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpAgent, type BaseEvent } from '@ag-ui/client';
import { afterEach, describe, expect, it } from 'vitest';
import { z as z4 } from 'zod';
import { createAguiHandler } from '../../src/agui/index.js';
import { AgentBridge, BaseAgent, MemoryTransport } from '../../src/index.js';
import { z3 } from '../helpers/zod3.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const COLOR_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  properties: { color: { type: 'string', enum: ['red', 'blue'] } },
  required: ['color'],
};

async function serve(schema: unknown) {
  class Asker extends BaseAgent<unknown, unknown> {
    protected async execute() {
      return this.ask('Which card color?', schema as never, { timeoutMs: 20_000 });
    }
  }
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  await bridge.initialize();
  const handler = createAguiHandler({ agent: new Asker({ name: 'asker', bridge }), log: transport, authenticate: () => ({ userId: 'alice' }), heartbeatIntervalMs: 0, toInput: () => ({}) });
  const server = createServer((req, res) => {
    if (!handler.handle(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => bridge.close());
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  cleanups.push(() => server.closeAllConnections());
  cleanups.push(() => handler.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/agui`;
  return new HttpAgent({ url, threadId: 'ask', initialMessages: [{ id: 'u1', role: 'user', content: 'pick' }] });
}

async function run(agent: HttpAgent, params: Parameters<HttpAgent['runAgent']>[0]) {
  const seen: BaseEvent[] = [];
  await agent.runAgent(params, { onEvent: ({ event }) => void seen.push(event) });
  return seen.find((event) => event.type === 'RUN_FINISHED') as unknown as { outcome?: { type: string; interrupts?: Array<{ id: string; responseSchema?: unknown }> }; result?: unknown };
}

describe('AG-UI question interrupt: responseSchema with zod 3 and zod 4', () => {
  for (const [name, z] of [['zod 3 classic', z3], ['zod 4', z4]] as const) {
    it(`${name}: the interrupt carries the JSON Schema; the resumed answer is checked and becomes the result`, async () => {
      const anyZ = z as typeof z4;
      const agent = await serve(anyZ.object({ color: anyZ.enum(['red', 'blue']) }));
      const first = await run(agent, {});
      expect(first.outcome?.type).toBe('interrupt');
      const interrupt = first.outcome!.interrupts![0]!;
      expect(interrupt).toMatchObject({ reason: 'question', message: 'Which card color?', responseSchema: COLOR_SCHEMA });
      const second = await run(agent, { resume: [{ interruptId: interrupt.id, status: 'resolved', payload: { color: 'blue' } }] });
      expect(second).toMatchObject({ outcome: { type: 'success' }, result: { color: 'blue' } });
    });
  }
});
