import { AgentBridge, BaseAgent, type RunContext } from '../../src/index.js';

/** The runs suite's agent (in process and in its worker children): emits `thinks` thoughts and returns, so a run costs what the queue and the log cost, not the agent. */
export class BenchAgent extends BaseAgent<{ thinks?: number }, { ok: true }> {
  constructor(bridge: AgentBridge) {
    super({ name: 'bench', bridge });
  }
  protected async execute(input: { thinks?: number }, _ctx: RunContext): Promise<{ ok: true }> {
    for (let i = 0; i < (input.thinks ?? 0); i++) await this.think(`step ${i}`, i);
    return { ok: true };
  }
}
