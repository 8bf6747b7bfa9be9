import { z } from 'zod';
import { BaseAgent, ToolError, defineTool, type BaseAgentOptions, type RunContext } from '../src/index.js';

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });

/** A search tool backed by a tiny corpus. The first call per thread fails, like a flaky API. */
function searchTool(failedOnce: Set<string>, extraDelayMs: number) {
  return defineTool({
    name: 'web_search',
    description: 'Search the web and return the top snippets',
    parameters: z.object({ query: z.string().min(1), limit: z.number().int().min(1).max(5).default(3) }),
    timeoutMs: 5_000,
    async execute({ query, limit }, ctx) {
      await sleep(120 + Math.random() * 80 + extraDelayMs, ctx.signal);
      if (!failedOnce.has(ctx.threadId)) {
        failedOnce.add(ctx.threadId);
        // A ToolError's message is meant for the user: it reaches clients (a plain Error's would not).
        throw new ToolError('web_search', 'search backend returned 503 (rate limited)');
      }
      return Array.from({ length: limit }, (_, i) => `Result ${i + 1} for "${query}"`);
    },
  });
}

const summarizeTool = (extraDelayMs: number) => defineTool({
  name: 'summarize',
  description: 'Summarize a list of snippets into one paragraph',
  parameters: z.object({ snippets: z.array(z.string()).min(1) }),
  async execute({ snippets }, ctx) {
    await sleep(80 + Math.random() * 60 + extraDelayMs, ctx.signal);
    return `Summary of ${snippets.length} sources: ${snippets.map((s) => s.split(' for ')[0]).join(', ')}.`;
  },
});

/** Publishing needs the user's approval: the run waits for Allow or Deny on the page. */
const publishTool = defineTool({
  name: 'publish_answer',
  description: 'Publishes the answer to the team page',
  parameters: z.object({ answer: z.string() }),
  needsApproval: true,
  approvalTimeoutMs: 120_000,
  execute: ({ answer }) => ({ published: true, length: answer.length }),
});

export interface ResearchInput {
  question: string;
}

export interface ResearchAgentOptions extends BaseAgentOptions {
  /** Extra latency added to every tool call (demos and browser tests use it to act mid-run). Default 0. */
  toolDelayMs?: number;
}

/** A small research agent: plans, searches (retrying a failed search once), summarizes, answers. */
export class ResearchAgent extends BaseAgent<ResearchInput, string> {
  constructor({ toolDelayMs = 0, ...options }: ResearchAgentOptions = {}) {
    super({ name: 'research-agent', ...options });
    this.addTool(searchTool(new Set(), toolDelayMs));
    this.addTool(summarizeTool(toolDelayMs));
    this.addTool(publishTool);
  }

  protected async execute({ question }: ResearchInput, ctx: RunContext): Promise<string> {
    await this.think(`Planning how to answer: ${question}`, 1);
    let snippets: string[];
    try {
      snippets = await this.callTool<string[]>('web_search', { query: question });
    } catch (error) {
      await this.think(`Search failed (${(error as Error).message}); retrying once.`, 2);
      await sleep(50, ctx.signal);
      snippets = await this.callTool<string[]>('web_search', { query: question, limit: 2 });
    }
    await this.think(`Found ${snippets.length} sources; summarizing.`, 3);
    const summary = await this.callTool<string>('summarize', { snippets });
    const answer = `Answer to "${question}": ${summary}`;
    // Questions that ask to publish wait for the user's approval (docs/interactive.md).
    if (!/\bpublish\b/i.test(question)) return answer;
    try {
      await this.callTool('publish_answer', { answer });
      return `${answer} (published)`;
    } catch (error) {
      return `${answer} (not published: ${(error as { code?: string }).code ?? 'failed'})`;
    }
  }
}
