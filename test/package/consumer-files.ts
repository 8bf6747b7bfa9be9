/**
 * The sources of the consumer app the pack test installs the tarball into. They are strings (not
 * .ts files of this repo) because they import `agentwire` as a user does, through the installed
 * package, which this repo's own typecheck cannot resolve.
 */

/** `import * as` every `exports` subpath, so each one's declarations are loaded and checked. */
export function subpathsSource(specifiers: readonly string[]): string {
  const imports = specifiers.map((spec, i) => `import * as m${i} from ${JSON.stringify(spec)};`);
  const names = specifiers.map((_, i) => `m${i}`).join(', ');
  return `${imports.join('\n')}\n\nexport const modules: object[] = [${names}];\n`;
}

/**
 * The README's agent as an app writes it, with the app's own zod. Run, it prints one JSON line with
 * what the run produced and what a local listener saw.
 */
export const agentSource = `import { z } from 'zod';
import { AgentBridge, BaseAgent, defineTool, type AgentEvent, type RunContext } from 'agentwire';

const search = defineTool({
  name: 'web_search',
  description: 'Search the web',
  parameters: z.object({ query: z.string().min(1) }),
  async execute({ query }, ctx) {
    const upper: string = query.toUpperCase();
    return [\`result for \${upper} in \${ctx.threadId}\`];
  },
});

class ResearchAgent extends BaseAgent<{ question: string }, string> {
  constructor(bridge: AgentBridge) {
    super({ name: 'research', tools: [search], bridge });
  }

  protected async execute({ question }: { question: string }, _ctx: RunContext): Promise<string> {
    await this.think(\`Looking up: \${question}\`);
    const hits = await this.callTool<string[]>('web_search', { query: question });
    let invalid = 'accepted';
    try {
      await this.callTool('web_search', { query: '' });
    } catch (error) {
      invalid = error instanceof Error ? error.message : String(error);
    }
    return \`\${hits[0] ?? 'nothing found'} | \${invalid}\`;
  }
}

const bridge = new AgentBridge();
const agent = new ResearchAgent(bridge);
const seen: string[] = [];
agent.on('event', (event: AgentEvent) => void seen.push(event.type));
const result = await agent.run({ question: 'What is Redis?' }, { userId: 'alice', threadId: 'chat-42' });
console.log(JSON.stringify({ status: result.status, output: result.output, seen }));
`;

/** A browser page's use of the client: what is bundled for the browser and typechecked without Node types. */
export const browserSource = `import { connect, type AgentEvent } from 'agentwire/client';

export function follow(url: string, threadId: string, show: (event: AgentEvent) => void): () => void {
  const client = connect(url, { threadId });
  client.on('event', show);
  return () => void client.close();
}
`;
