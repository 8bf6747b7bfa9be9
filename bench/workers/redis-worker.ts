/**
 * Worker process of the Redis suite: the agent side. `send` appends events through
 * `RedisStreamsTransport` the way bridges do (`runs` concurrent runs, each awaiting one send at a
 * time); `xadd` appends the same payloads with plain `XADD`s (node-redis), pipelined or with the
 * same number in flight: the raw floor of the same machine. Both answer with their duration (ms).
 */
import { createClient } from 'redis';
import { RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { nowMs } from '../lib/clock.js';
import { groupFeeds } from '../lib/events.js';
import { notify, serve } from '../lib/ipc.js';

interface SendArgs {
  url: string;
  keyPrefix: string;
  /** Events, spread round-robin over the threads `<group>-t<i>` of users `<group>-u<i>`. */
  count: number;
  group: string;
  threads: number;
  /** Sends in flight at once. */
  runs: number;
}

const transports = new Map<string, RedisStreamsTransport>();

/** Runs `runs` loops, each awaiting `append` for every `runs`-th item: the bridge's pattern, one send in flight per run. */
async function inFlight(count: number, runs: number, append: (i: number) => Promise<unknown>): Promise<number> {
  const started = nowMs();
  await Promise.all(
    Array.from({ length: Math.min(runs, count) }, async (_, run) => {
      for (let i = run; i < count; i += runs) await append(i);
    }),
  );
  return nowMs() - started;
}

serve({
  async send(args) {
    const { url, keyPrefix, count, group, threads, runs } = args as unknown as SendArgs;
    let transport = transports.get(keyPrefix);
    if (!transport) {
      transport = new RedisStreamsTransport({ url, keyPrefix });
      if (!(await transport.connect(5_000))) throw new Error(`worker: Redis at ${url} did not answer`);
      transports.set(keyPrefix, transport);
    }
    const feeds = groupFeeds(group, threads);
    // Events are built before timing, as an agent would have them ready to send.
    const events = Array.from({ length: count }, (_, i) => feeds[i % threads]!.next());
    const sender = transport;
    return { ms: await inFlight(count, runs, (i) => sender.send(events[i]!)) };
  },

  /**
   * Plain `XADD`s of the same payloads, `MAXLEN ~ 10000` like the transport, to keys of their own.
   * `pipeline` > 0: redis-benchmark style, `pipeline` commands written at once and their replies
   * awaited together (node-redis `execAsPipeline`). Otherwise `runs` loops each await one XADD
   * at a time, like the transport's senders (node-redis still pipelines what is in flight).
   */
  async xadd(args) {
    const { url, keyPrefix, count, group, threads, runs } = args as unknown as SendArgs;
    const pipeline = Number(args.pipeline ?? 0);
    const client = createClient({ url, socket: { reconnectStrategy: false } });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const feeds = groupFeeds(group, threads);
      const commands = Array.from({ length: count }, (_, i) => {
        const event = feeds[i % threads]!.next();
        return ['XADD', `${keyPrefix}raw:${event.threadId}`, 'MAXLEN', '~', '10000', '*', 'e', JSON.stringify(event)];
      });
      if (pipeline <= 0) return { ms: await inFlight(count, runs, (i) => client.sendCommand(commands[i]!)) };
      const started = nowMs();
      for (let from = 0; from < count; from += pipeline) {
        const multi = client.multi();
        for (let i = from; i < Math.min(count, from + pipeline); i++) multi.addCommand(commands[i]!);
        await multi.execAsPipeline();
      }
      return { ms: nowMs() - started };
    } finally {
      client.destroy();
    }
  },

  async close() {
    for (const transport of transports.values()) await transport.close();
    transports.clear();
    return {};
  },
});

notify('ready');
