/**
 * Worker process of the runs suite. `start` serves either an agentwire `BullMQRunQueue` worker
 * (a trivial agent: `thinks` agent_thinking events, then it returns, through an `AgentBridge`
 * on `RedisStreamsTransport`) or a bare BullMQ `Worker` on the same Redis whose processor
 * returns at once: the floor of the same queue with no run semantics. `stop` closes either.
 */
import { Worker } from 'bullmq';
import { createClient } from 'redis';
import { AgentBridge } from '../../src/index.js';
import { BenchAgent } from '../lib/bench-agent.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { notify, serve } from '../lib/ipc.js';

interface StartArgs {
  mode: 'agentwire' | 'bare';
  url: string;
  keyPrefix: string;
  queueName: string;
  concurrency: number;
}


let close: (() => Promise<void>) | undefined;

serve({
  async start(args) {
    const { mode, url, keyPrefix, queueName, concurrency } = args as unknown as StartArgs;
    if (close) throw new Error('already started');
    if (mode === 'agentwire') {
      const transport = new RedisStreamsTransport({ url, keyPrefix });
      if (!(await transport.connect(5_000))) throw new Error(`runs worker: Redis at ${url} did not answer`);
      const bridge = new AgentBridge({ transport });
      await bridge.initialize();
      const queue = new BullMQRunQueue({ url, keyPrefix, queueName, maxRunsPerUser: 1_000_000, maxQueued: 1_000_000 });
      await queue.connect();
      const worker = queue.serve({ agents: [new BenchAgent(bridge)] }, { concurrency });
      worker.on('error', (error) => process.stderr.write(`runs worker: ${error.message}\n`));
      close = async () => {
        await queue.close({ timeoutMs: 1_000 });
        await bridge.close();
        await transport.close();
      };
    } else {
      const client = createClient({ url, name: 'bench-bare-worker' });
      client.on('error', () => undefined);
      const worker = new Worker(queueName, async () => 'ok', { connection: client as never, prefix: keyPrefix, concurrency });
      worker.on('error', (error) => process.stderr.write(`bare worker: ${error.message}\n`));
      await worker.waitUntilReady();
      close = async () => {
        await worker.close();
        if (client.isOpen) await client.quit().catch(() => undefined);
      };
    }
    return { pid: process.pid };
  },
  /** This process's CPU time so far (user + system), µs. */
  cpu() {
    const usage = process.cpuUsage();
    return { us: usage.user + usage.system };
  },
  async stop() {
    const done = close;
    close = undefined;
    await done?.();
    return {};
  },
});
notify('ready');
