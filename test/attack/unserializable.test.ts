/**
 * Requests whose event cannot be built: a tool needing approval called with arguments that are not
 * JSON (shown with a placeholder, still answerable: the approver decides blind — see the report), and
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
    it(`${mode} arguments on a tool that needs approval: the waiting call is shown with a placeholder and can be answered (approved blind)`, async () => {
      const transport = new MemoryTransport();
      const bridge = new AgentBridge({ transport });
      await bridge.initialize();
      const agent = new Odd(bridge);
      const threadId = `odd-${mode}`;
      const running = agent.run({ mode }, { userId: 'alice', threadId });
      const pending = async () => {
        for (;;) {
          const event = transport.read(threadId, 'alice').find((e) => e.type === 'tool_executing');
          if (event?.type === 'tool_executing') return event;
          await new Promise((resolve) => setImmediate(resolve));
        }
      };
      const waiting = await pending();
      // Current behaviour: the approver sees no arguments at all, only a marker.
      expect(waiting.data.args).toEqual({ $agentwire: 'not_serializable', reason: mode });
      expect(waiting.data.pending).toMatchObject({ kind: 'approval' });
      await transport.answerRequest({ runId: waiting.runId, threadId, requestId: waiting.data.pending!.requestId, userId: 'alice', approved: true });
      const result = await running;
      expect(result.status).toBe('succeeded');
      expect(validateLifecycle(transport.read(threadId, 'alice'))).toEqual({ ok: true, runs: 1 });
      await bridge.close();
    });
  }

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
