import { deleteKeysWithPrefix, probeRedis } from '../../src/transport/redis/admin.js';
import { nanoid } from 'nanoid';
import { RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { WebSocketGateway } from '../../src/gateway/websocket/index.js';
import { BenchChild } from '../lib/child.js';
import { nowMs } from '../lib/clock.js';
import { EVENT_BYTES } from '../lib/events.js';
import { repeatRuns } from '../lib/measure.js';
import { median, type BenchRow } from '../lib/report.js';
import { authenticate } from '../lib/servers.js';

export interface RedisOptions {
  /** Concurrent runs (sends in flight in the worker, each run awaiting its send), one pair of rows each. */
  concurrency: number[];
  /** Events per measured run, per concurrency. */
  events: Record<number, number>;
  iterations: number;
  warmupIterations: number;
  /** Client connections (one thread and user each) the events are spread over. */
  connections: number;
}

const CASE = 'worker → Redis Streams → gateway → client';
/** Commands per pipeline of the ceiling in the notes (redis-benchmark style). */
const PIPELINE = 1_000;

/**
 * Events/s through Redis Streams, end to end: a worker process sends through
 * `RedisStreamsTransport` (N concurrent runs, each awaiting its send, as bridges do); this process
 * is the gateway (`WebSocketGateway` over `RedisStreamsTransport`, which tails the streams); the
 * client process counts what its connections receive. Timed from the worker's first send to the
 * client's last receipt. Baseline, same run, same worker process, same concurrency: plain `XADD`
 * of the same payloads through node-redis with N loops each awaiting one XADD (node-redis
 * pipelines what is in flight on its socket): what Redis does at that concurrency with no log
 * semantics. The notes give XADD pipelined 1,000 at a time (the write ceiling). Keys live under a
 * prefix of their own (`agentwire-bench:<random>:`) and are deleted. No Redis on REDIS_URL
 * (default 127.0.0.1:6379): the rows print "skipped (no Redis)".
 */
export async function redisSuite(options: RedisOptions): Promise<BenchRow[]> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const connections = options.connections;
  const runsLabel = (n: number): string => `${n} concurrent run${n > 1 ? 's' : ''}`;
  const needed = (n: number): number => (n === 1 ? 0.5 : 0.7);
  if (!(await probeRedis(url, 1_000)).ok) {
    return options.concurrency.flatMap((n): BenchRow[] => [
      { suite: 'redis', case: `${CASE}, ${runsLabel(n)}`, value: NaN, unit: 'events/s', skipped: 'no Redis', target: `≥ ${needed(n)}× XADD` },
      { suite: 'redis', case: `write path: RedisStreamsTransport.send, ${runsLabel(n)}`, value: NaN, unit: 'events/s', skipped: 'no Redis' },
    ]);
  }
  const keyPrefix = `agentwire-bench:${nanoid(8)}:`;
  const group = 'redis';
  const client = await BenchChild.start('bench/clients/ws-clients.ts', { name: 'redis clients', files: connections + 256 });
  const worker = await BenchChild.start('bench/workers/redis-worker.ts', { name: 'redis worker' });
  const transport = new RedisStreamsTransport({ url, keyPrefix });
  const gateway = new WebSocketGateway({ authenticate, transport, maxConnections: connections + 16 });
  const rows: BenchRow[] = [];
  try {
    const { url: gatewayUrl } = await gateway.listen(0, '127.0.0.1');
    await client.call('open', { name: group, kind: 'gateway', url: gatewayUrl, prefix: group, count: connections });
    const clock = await client.clockOffset();
    for (const runs of options.concurrency) {
      const events = options.events[runs] ?? 10_000;
      const sendArgs = { url, keyPrefix, count: events, group, threads: connections, runs };
      const writeMs: number[] = [];
      const endToEnd = async (): Promise<number> => {
        await client.call('arm', { name: group, target: events });
        const done = client.next<{ endMs: number }>('done', 120_000);
        const started = nowMs();
        const { ms } = await worker.call<{ ms: number }>('send', sendArgs);
        writeMs.push(ms);
        const { endMs } = await done;
        return endMs - clock.offsetMs - started;
      };
      const sameConcurrency = async (): Promise<number> => (await worker.call<{ ms: number }>('xadd', sendArgs)).ms;
      const pipelined = async (): Promise<number> => (await worker.call<{ ms: number }>('xadd', { ...sendArgs, pipeline: PIPELINE })).ms;
      const results = await repeatRuns(
        [
          { name: 'xadd', run: sameConcurrency },
          { name: 'pipelined', run: pipelined },
          { name: 'e2e', run: endToEnd },
        ],
        options,
      );
      const counts = await client.call<{ errors: number; firstError?: string }>('counts', { name: group });
      if (counts.errors > 0) throw new Error(`redis: client errors, first: ${counts.firstError}`);
      const rate = (ms: number): number => events / (ms / 1000);
      const xaddRate = rate(results.get('xadd')!.medianMs);
      const pipelinedRate = rate(results.get('pipelined')!.medianMs);
      const e2e = results.get('e2e')!;
      const e2eRate = rate(e2e.medianMs);
      const writeRate = rate(median(writeMs.slice(-e2e.runs)));
      const common =
        `${events} events of ${EVENT_BYTES} B per run over ${connections} threads, ${runs} send${runs > 1 ? 's' : ''} in flight, median of ${e2e.runs} runs; ` +
        `baseline: XADD with the same ${runs} in flight (XADD pipelined ${PIPELINE} at a time: ${Math.round(pipelinedRate).toLocaleString('en-US')}/s)`;
      rows.push(
        {
          suite: 'redis',
          case: `${CASE}, ${runsLabel(runs)}`,
          value: e2eRate,
          unit: 'events/s',
          baseline: xaddRate,
          baselineName: `XADD, ${runs} in flight`,
          ratio: e2eRate / xaddRate,
          target: `≥ ${needed(runs)}× XADD`,
          met: e2eRate / xaddRate >= needed(runs),
          notes: `${common}; first send → last receipt at the client (${e2e.spread})`,
        },
        {
          suite: 'redis',
          case: `write path: RedisStreamsTransport.send, ${runsLabel(runs)}`,
          value: writeRate,
          unit: 'events/s',
          baseline: xaddRate,
          baselineName: `XADD, ${runs} in flight`,
          ratio: writeRate / xaddRate,
          notes: `${common}; time for the worker's sends to be stored (owner check, epoch, trim, TTL), during the end-to-end runs`,
        },
      );
    }
    return rows;
  } finally {
    await client.stop();
    await worker.call('close').catch(() => undefined);
    await worker.stop();
    await gateway.close();
    await transport.close();
    await deleteKeysWithPrefix(url, keyPrefix).catch(() => undefined);
  }
}
