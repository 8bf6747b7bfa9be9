/**
 * An agent worker process: runs an agent whose events go to Redis Streams, from where any
 * gateway process serves them. While Redis is unreachable the bridge retries, buffers in order
 * and flushes on recovery.
 *
 * Environment: REDIS_URL, AGENTWIRE_KEY_PREFIX (as for the gateway), THREAD_ID (default
 * `scale-out-demo`), USER_ID (default `alice`), STEPS (default 40), STEP_DELAY_MS (default 25).
 * Prints `{"type":"run_started"}`, then `{"type":"run_finished",…}` and exits once every event is
 * in Redis. SIGTERM/SIGINT: the run is cancelled (it still ends with `agent_completed`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { AgentBridge, BaseAgent, defineTool, type RunContext } from '../../src/index.js';
import { RedisStreamsTransport } from '../../src/transport/redis/index.js';

interface ResearchInput {
  topic: string;
  steps: number;
  delayMs: number;
}

/** Reads "sources" one step at a time and searches every fourth step. */
class ResearchAgent extends BaseAgent<ResearchInput, string> {
  constructor(bridge: AgentBridge) {
    super({ name: 'researcher', bridge });
    this.addTool(
      defineTool({
        name: 'search',
        description: 'finds sources about a query',
        parameters: z.object({ query: z.string() }),
        execute: async ({ query }, ctx) => {
          await sleep(5, undefined, { signal: ctx.signal });
          return [`${query}: result A`, `${query}: result B`];
        },
      }),
    );
  }

  protected async execute(input: ResearchInput, ctx: RunContext): Promise<string> {
    for (let step = 1; step <= input.steps; step++) {
      await this.think(`Reading source ${step} about ${input.topic}`, step);
      if (step % 4 === 0) await this.callTool('search', { query: `${input.topic} #${step / 4}` });
      await sleep(input.delayMs, undefined, { signal: ctx.signal });
    }
    return `summary of ${input.steps} sources about ${input.topic}`;
  }
}

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

const transport = new RedisStreamsTransport({ url: process.env.REDIS_URL, keyPrefix: process.env.AGENTWIRE_KEY_PREFIX });
const bridge = new AgentBridge({ transport, drainTimeoutMs: 30_000 });
bridge.on('state', (state) => console.log(JSON.stringify({ type: 'bridge_state', state })));
await bridge.initialize();
const agent = new ResearchAgent(bridge);

const abort = new AbortController();
process.once('SIGTERM', () => abort.abort());
process.once('SIGINT', () => abort.abort());

const threadId = process.env.THREAD_ID ?? 'scale-out-demo';
const userId = process.env.USER_ID ?? 'alice';
console.log(JSON.stringify({ type: 'run_started', threadId, userId, pid: process.pid }));
const result = await agent.run(
  { topic: 'redis streams', steps: envInt('STEPS', 40), delayMs: envInt('STEP_DELAY_MS', 25) },
  { userId, threadId, signal: abort.signal },
);
// close() waits until every queued event is in Redis, then quits the connection.
await bridge.close();
const { delivered, failed } = bridge.metrics();
console.log(JSON.stringify({ type: 'run_finished', runId: result.runId, status: result.status, delivered, failed }));
