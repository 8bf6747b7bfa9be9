/** The agent of the runs example (and of the run-queue tests): steps of thinking and an abortable tool call. */
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { BaseAgent, defineTool, type BaseAgentOptions, type RunContext } from '../../src/index.js';

export interface StepInput {
  /** Tool calls, one per step, each waiting `stepMs` (abortable). */
  steps: number;
  stepMs: number;
  /** Busy-blocks the event loop for this long inside step `blockAt` (a slow, not dead, worker). */
  blockMs?: number;
  blockAt?: number;
}

/** Thinks and calls a waiting tool per step; honours the run's signal through the tool's. */
export class StepAgent extends BaseAgent<StepInput, { steps: number }> {
  constructor(options: BaseAgentOptions = {}) {
    super({ name: 'steps', ...options });
    this.addTool(
      defineTool({
        name: 'wait',
        description: 'waits, abortably',
        parameters: z.object({ ms: z.number(), block: z.number().optional() }),
        execute: async ({ ms, block }, ctx) => {
          if (block) {
            const until = Date.now() + block;
            while (Date.now() < until) {
              // Busy: no timer, no I/O runs in this process meanwhile.
            }
          }
          await delay(ms, undefined, { signal: ctx.signal });
          return { waited: ms };
        },
      }),
    );
  }

  protected async execute(input: StepInput, _ctx: RunContext): Promise<{ steps: number }> {
    for (let step = 0; step < input.steps; step++) {
      await this.think(`step ${step}`, step);
      await this.callTool('wait', { ms: input.stepMs, ...(input.blockAt === step && input.blockMs ? { block: input.blockMs } : {}) });
    }
    return { steps: input.steps };
  }
}
