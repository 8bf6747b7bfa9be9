/**
 * Requests whose event cannot be built: a tool needing approval called with arguments that are not
 * JSON (shown with a placeholder and no request: the call fails, nobody approves blind), a call
 * whose arguments are invalid (no request), and
 * a question whose JSON Schema is larger than the event limit (the run fails at once, validly).
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AgentBridge, BaseAgent, MemoryTransport, defineTool, validateLifecycle, type RunContext } from '../../src/index.js';

class Odd extends BaseAgent<{ mode: 'bigint' | 'cycle' | 'schema' }, unknown> {
  constructor(bridge: AgentBridge) {
    super({
      name: 'odd',
      bridge,
      limits: { maxEventBytes: 16_384 },
      tools: [
        defineTool({
          name: 'pay',
          description: 'pays',
          parameters: z.object({ v: z.any() }),
          needsApproval: true,
          approvalTimeoutMs: 20_000,
          execute: () => 'paid',
        }),
      ],
    });
  }
  protected async execute({ mode }: { mode: 'bigint' | 'cycle' | 'schema' }, _ctx: RunContext): Promise<unknown> {
    if (mode === 'schema') {
      const shape = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`field_${i}`, z.string().describe('d'.repeat(100))]));
      return this.ask('Fill this in', z.object(shape), { timeoutMs: 20_000 });
    }
    const v: unknown = mode === 'bigint' ? 10n : (() => { const o: Record<string, unknown> = {}; o.self = o; return o; })();
    return this.callTool('pay', { v });
  }
}

describe('attack: requests whose event cannot be built', () => {
  for (const mode of ['bigint', 'cycle'] as const) {
    it(`${mode} arguments on a tool that needs approval: the call is shown without a request and fails APPROVAL_ARGS_NOT_SHOWN (nobody approves blind)`, async () => {
      const transport = new MemoryTransport();
      const bridge = new AgentBridge({ transport });
      await bridge.initialize();
      const threadId = `odd-${mode}`;
      const result = await new Odd(bridge).run({ mode }, { userId: 'alice', threadId });
      const events = transport.read(threadId, 'alice');
      expect(events.map((event) => event.type)).toEqual(['agent_started', 'tool_executing', 'tool_completed', 'agent_completed']);
      const [, executing, completed] = events;
      expect(executing!.type === 'tool_executing' && executing!.data).toMatchObject({ args: { $agentwire: 'not_serializable', reason: mode } });
      expect(executing!.type === 'tool_executing' && executing!.data.pending).toBeUndefined();
      expect(completed).toMatchObject({ data: { status: 'failed', error: { code: 'APPROVAL_ARGS_NOT_SHOWN' } } });
      expect(result.status).toBe('failed');
      expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
      await bridge.close();
    });
  }

  it('invalid arguments on a tool that needs approval: no request is shown, the call fails TOOL_INVALID_ARGS', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    await bridge.initialize();
    class Invalid extends BaseAgent<void, string> {
      constructor() {
        super({
          name: 'invalid',
          bridge,
          tools: [defineTool({ name: 'pay', description: 'pays', parameters: z.object({ v: z.number() }), needsApproval: true, execute: () => 'paid' })],
        });
      }
      protected async execute(): Promise<string> {
        return this.callTool<string>('pay', { v: 'not a number' }).catch((error: { code?: string }) => error.code ?? 'threw');
      }
    }
    const result = await new Invalid().run(undefined, { userId: 'alice', threadId: 'odd-invalid' });
    const events = transport.read('odd-invalid', 'alice');
    const executing = events.find((event) => event.type === 'tool_executing');
    expect(executing?.type === 'tool_executing' && executing.data.pending).toBeUndefined();
    expect(events.find((event) => event.type === 'tool_completed')).toMatchObject({ data: { status: 'failed', error: { code: 'TOOL_INVALID_ARGS' } } });
    expect(result).toMatchObject({ status: 'succeeded', output: 'TOOL_INVALID_ARGS' });
    expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
    await bridge.close();
  });

  it('a question whose JSON Schema exceeds maxEventBytes: the run fails at once (EVENT_TOO_LARGE), no open call, nothing waits', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    await bridge.initialize();
    const result = await new Odd(bridge).run({ mode: 'schema' }, { userId: 'alice', threadId: 'odd-schema' });
    const events = transport.read('odd-schema', 'alice');
    expect(result.status).toBe('failed');
    expect(events.map((event) => event.type)).toEqual(['agent_started', 'agent_completed']);
    expect(events.at(-1)).toMatchObject({ data: { status: 'failed', error: { code: 'EVENT_TOO_LARGE' } } });
    expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
    await bridge.close();
  });
});
