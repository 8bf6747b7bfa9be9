import { nanoid } from 'nanoid';
import { Bench } from 'tinybench';
import { z } from 'zod';
import { AgentBridge, BaseAgent, MemoryTransport, defineTool, generateRunId } from '../../src/index.js';
import type { BenchRow } from '../lib/report.js';

export interface InProcessOptions {
  /** Events per measured iteration (split across the concurrent runs). */
  eventsPerIteration: number;
  concurrency: number[];
  /** tinybench time budget per task, ms. */
  timeMs: number;
  /** Minimum measured iterations per task (tinybench's default 64; fewer for the smoke run). */
  iterations?: number;
}

/** think() nine times, then one tool call (two events): the shape of a chatty agent. */
class PipelineAgent extends BaseAgent<number, void> {
  constructor(bridge: AgentBridge) {
    super({
      name: 'bench',
      bridge,
      tools: [defineTool({ name: 'noop', description: 'returns its input', parameters: z.object({ i: z.number() }), execute: ({ i }) => i })],
    });
  }

  protected async execute(steps: number): Promise<void> {
    for (let i = 0; i < steps; i++) {
      if (i % 10 === 9) await this.callTool('noop', { i });
      else await this.think('step');
    }
  }
}

/** Events a run of `steps` steps emits: started + completed + one per think + two per tool call. */
function eventsPerRun(steps: number): number {
  const tools = Math.floor(steps / 10);
  return 2 + (steps - tools) + 2 * tools;
}

export async function inProcessSuite(options: InProcessOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const bench = new Bench({ time: options.timeMs, iterations: options.iterations ?? 64, warmupIterations: 5, warmup: true, retainSamples: false });

  // Floor: the least work an event needs: envelope, id, one JSON.stringify, append to an array.
  // The id is the cheapest a real event has, the scheme `RunEmitter` uses (a random prefix per run,
  // here per iteration, and the seq): unique, and no slower than what the agent pays,
  // so the floor stays a floor (a nanoid() per event made it slower than the agent at 1 run).
  // The array is cleared between iterations (a log that retains nothing), so only the work is timed.
  const runId = generateRunId('bench');
  const floorLog: string[] = [];
  let floorSeq = 0;
  bench.add('floor', () => {
    floorLog.length = 0;
    const idPrefix = nanoid(16);
    for (let i = 0; i < options.eventsPerIteration; i++) {
      const seq = ++floorSeq;
      const event = { v: 1, id: idPrefix + seq, type: 'agent_thinking', runId, threadId: 'bench', userId: 'u', agent: 'bench', seq, ts: Date.now(), data: { text: 'step' } };
      floorLog.push(JSON.stringify(event));
    }
  });

  const fixtures: Array<{ runs: number; steps: number; events: number; close(): Promise<void> }> = [];
  for (const runs of options.concurrency) {
    const steps = Math.max(10, Math.round(options.eventsPerIteration / runs / 1.1));
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    await bridge.initialize();
    const agent = new PipelineAgent(bridge);
    const events = runs * eventsPerRun(steps);
    fixtures.push({ runs, steps, events, close: () => bridge.close() });
    bench.add(`runs=${runs}`, async () => {
      const all = [];
      for (let r = 0; r < runs; r++) all.push(agent.run(steps, { userId: `user-${r}`, threadId: `t-${r}` }));
      await Promise.all(all);
    });
  }

  await bench.run();
  const baselineTask = bench.tasks.find((t) => t.name === 'floor')!;
  const baselineMs = (baselineTask.result as { latency: { p50: number } }).latency.p50;
  const baselineRate = options.eventsPerIteration / (baselineMs / 1000);
  for (const fixture of fixtures) {
    const task = bench.tasks.find((t) => t.name === `runs=${fixture.runs}`)!;
    const ms = (task.result as { latency: { p50: number } }).latency.p50;
    const rate = fixture.events / (ms / 1000);
    rows.push({
      suite: 'in-process',
      case: `BaseAgent → bridge → MemoryTransport, ${fixture.runs} concurrent run${fixture.runs > 1 ? 's' : ''}`,
      value: rate,
      unit: 'events/s',
      baseline: baselineRate,
      baselineName: 'floor: envelope + per-run prefix + seq id + JSON.stringify + push',
      ratio: rate / baselineRate,
      // Issue 15: ≥ 1M events/s and ≥ 0.5× the floor at 1 and 100 runs (1,000 runs: shown, no target).
      ...(fixture.runs <= 100 ? { target: '≥ 1M events/s and ≥ 0.5× floor', met: rate >= 1_000_000 && rate / baselineRate >= 0.5 } : {}),
      notes: `default options (schema validation on); ${fixture.events} events per iteration, median of ${task.result && 'latency' in task.result ? task.result.latency.samplesCount : '?'} iterations`,
    });
    await fixture.close();
  }
  if (floorSeq === 0) throw new Error('the floor task never ran');
  return rows;
}
