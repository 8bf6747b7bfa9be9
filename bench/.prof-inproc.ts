import { z } from 'zod';
import { AgentBridge, BaseAgent, MemoryTransport, defineTool } from '../src/index.js';
class PipelineAgent extends BaseAgent<number, void> {
  constructor(bridge: AgentBridge) {
    super({ name: 'bench', bridge, tools: [defineTool({ name: 'noop', description: 'x', parameters: z.object({ i: z.number() }), execute: ({ i }) => i })] });
  }
  protected async execute(steps: number): Promise<void> {
    for (let i = 0; i < steps; i++) { if (i % 10 === 9) await this.callTool('noop', { i }); else await this.think('step'); }
  }
}
const runs = Number(process.argv[2] ?? 100);
const transport = new MemoryTransport();
const bridge = new AgentBridge({ transport });
await bridge.initialize();
const agent = new PipelineAgent(bridge);
const steps = Math.max(10, Math.round(100_000 / runs / 1.1));
const events = runs * (2 + (steps - Math.floor(steps/10)) + 2*Math.floor(steps/10));
for (let round = 0; round < 12; round++) {
  const t0 = performance.now();
  const all = [];
  for (let r = 0; r < runs; r++) all.push(agent.run(steps, { userId: `user-${r}`, threadId: `t-${r}` }));
  await Promise.all(all);
  const ms = performance.now() - t0;
  if (round > 2) console.log(`runs=${runs} ${(events / ms * 1000 / 1000).toFixed(0)}k ev/s`);
}
await bridge.close();
