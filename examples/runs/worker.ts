/**
 * A worker process of the runs example: takes runs from the BullMQ run queue on Redis and runs
 * them through an AgentBridge on the Redis Streams log. SIGTERM or SIGINT shut it down gracefully
 * (stop taking runs, let active ones finish up to CLOSE_TIMEOUT_MS, cancel the rest).
 *
 * Env: REDIS_URL (or REDIS_CLUSTER_NODES: comma-separated node URLs of a Redis Cluster), AGENTWIRE_KEY_PREFIX, CONCURRENCY (4), LEASE_MS (15000), REAP_INTERVAL_MS
 * (1000), CLOSE_TIMEOUT_MS (10000). Prints one JSON object per line: ready, run_started, fenced, closed.
 */
import { AgentBridge } from '../../src/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { StepAgent } from './agents.js';

const env = process.env;
const url = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const keyPrefix = env.AGENTWIRE_KEY_PREFIX ?? 'agentwire-example:';
const cluster = env.REDIS_CLUSTER_NODES ? { rootNodes: env.REDIS_CLUSTER_NODES.split(',') } : undefined;
const say = (message: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(message)}\n`);

const transport = new RedisStreamsTransport({ url, keyPrefix, cluster });
const bridge = new AgentBridge({ transport });
await bridge.initialize();
const agent = new StepAgent({ bridge });
agent.on('agent_started', (event) => say({ type: 'run_started', runId: event.runId, pid: process.pid }));

const queue = new BullMQRunQueue({
  url,
  keyPrefix,
  cluster,
  leaseMs: Number(env.LEASE_MS ?? 15_000),
  reapIntervalMs: Number(env.REAP_INTERVAL_MS ?? 1_000),
  maxRunsPerUser: Number(env.MAX_RUNS_PER_USER ?? 10),
});
await queue.connect();
const worker = queue.serve({ agents: [agent] }, { concurrency: Number(env.CONCURRENCY ?? 4) });
worker.on('fenced', (error, runId) => say({ type: 'fenced', runId, code: error.code, refused: transport.stats().refused }));
worker.on('error', (error) => process.stderr.write(`worker error: ${error.message}\n`));

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  say({ type: 'stopping', active: worker.active });
  await queue.close({ timeoutMs: Number(env.CLOSE_TIMEOUT_MS ?? 10_000) });
  await bridge.close();
  await transport.close();
  say({ type: 'closed' });
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
say({ type: 'ready', pid: process.pid, worker: worker.id });
