import { z } from 'zod';
import { BaseAgent, defineTool, type BaseAgentOptions, type RunContext } from '../../src/index.js';

/** A scripted step of `ScriptedAgent`. */
export type Step =
  | { think: string }
  | { tool: string; args: unknown; catchError?: boolean }
  | { throw: string }
  | { wait: 'abort' };

/** Runs a script of thoughts and tool calls; the real BaseAgent does everything else. */
export class ScriptedAgent extends BaseAgent<Step[], string> {
  constructor(options: BaseAgentOptions = {}) {
    super({ name: 'scripted', ...options });
    this.addTool(
      defineTool({
        name: 'echo',
        description: 'returns its text',
        parameters: z.object({ text: z.string() }),
        execute: ({ text }) => text,
      }),
    );
    this.addTool(
      defineTool({
        name: 'boom',
        description: 'always throws',
        parameters: z.object({}),
        execute: () => {
          throw new RangeError('boom failed');
        },
      }),
    );
    this.addTool(
      defineTool({
        name: 'hang',
        description: 'never finishes unless aborted',
        parameters: z.object({}),
        timeoutMs: 50,
        execute: (_args, ctx) =>
          new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
      }),
    );
    this.addTool(
      defineTool({
        name: 'slow',
        description: 'waits until aborted (no timeout)',
        parameters: z.object({}),
        execute: (_args, ctx) =>
          new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
      }),
    );
  }

  protected async execute(steps: Step[], ctx: RunContext): Promise<string> {
    const results: string[] = [];
    for (const step of steps) {
      if ('think' in step) await this.think(step.think);
      else if ('throw' in step) throw new Error(step.throw);
      else if ('wait' in step) {
        await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
      } else {
        try {
          results.push(String(await this.callTool(step.tool, step.args)));
        } catch (error) {
          if (!step.catchError) throw error;
          results.push(`error:${(error as Error).name}`);
        }
      }
    }
    return results.join(',');
  }
}
