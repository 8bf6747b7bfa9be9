import { z } from 'zod';
import { BaseAgent, defineTool, type AgentEvent, type BaseAgentOptions } from '../../src/index.js';

/** What a test run does: call `transfer` (needs approval), or ask a question, then finish. */
export type InteractiveInput = { transfer?: number; ask?: string; approvalTimeoutMs?: number };

/** An agent with one tool that needs approval (for amounts over 100) and a question path. */
export class BankAgent extends BaseAgent<InteractiveInput, unknown> {
  /** Transfers the tool actually executed (what approval protects). */
  readonly executed: number[] = [];
  constructor(options: BaseAgentOptions & { approvalTimeoutMs?: number } = {}) {
    super({ name: 'bank', ...options });
    this.addTool(
      defineTool({
        name: 'transfer',
        description: 'moves money',
        parameters: z.object({ amount: z.number() }),
        needsApproval: ({ amount }) => amount > 100,
        ...(options.approvalTimeoutMs !== undefined && { approvalTimeoutMs: options.approvalTimeoutMs }),
        execute: ({ amount }) => {
          this.executed.push(amount);
          return { sent: amount };
        },
      }),
    );
  }

  protected async execute(input: InteractiveInput): Promise<unknown> {
    if (input.ask !== undefined) return this.ask(input.ask, z.object({ color: z.enum(['red', 'blue']) }), { timeoutMs: input.approvalTimeoutMs ?? 10_000 });
    try {
      return await this.callTool('transfer', { amount: input.transfer ?? 0 });
    } catch (error) {
      return { failed: (error as { code?: string }).code };
    }
  }
}

/** The pending request of the first waiting `tool_executing` among `events`. */
export function pendingOf(events: readonly AgentEvent[]): { requestId: string; runId: string; toolCallId: string; seq: number } | undefined {
  for (const event of events) {
    if (event.type === 'tool_executing' && event.data.pending) {
      return { requestId: event.data.pending.requestId, runId: event.runId, toolCallId: event.data.toolCallId, seq: event.seq };
    }
  }
  return undefined;
}
