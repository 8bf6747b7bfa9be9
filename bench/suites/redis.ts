import { deleteKeysWithPrefix, probeRedis } from '../../src/transport/redis/admin.js';
import { nanoid } from 'nanoid';
import { RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { WebSocketGateway } from '../../src/transport/websocket/index.js';
import { BenchChild } from '../lib/child.js';
import { nowMs } from '../lib/clock.js';
import { EVENT_BYTES } from '../lib/events.js';
import { repeatRuns } from '../lib/measure.js';
import { median, type BenchRow } from '../lib/report.js';
import { authenticate } from '../lib/servers.js';

export interface RedisOptions {
  /** Events per measured run. */
  events: number;
  iterations: number;
  warmupIterations: number;
  /** Client connections (one thread and user each) the events are spread over. */
  connections: number;
  /** Sends in flight in the worker (concurrent runs, each awaiting its send), and raw XADDs in flight. */
  inFlight?: number;
}

const CASE = 'worker → Redis Streams → gateway → client';
/** Commands per pipeline of the raw baseline (redis-benchmark style). */
const PIPELINE = 1_000;


/**
 * Events/s through Redis Streams, end to end: a worker process sends through
 * `RedisStreamsTransport` (concurrent runs, each awaiting its send, as bridges do); this process
 * is the gateway (`WebSocketGateway` over `RedisStreamsTransport`, which tails the streams); the
 * client process counts what its connections receive. Timed from the worker's first send to the
 * client's last receipt. Baseline, same run, same worker process: plain `XADD` of the same
 * payloads through node-redis, redis-benchmark style (1,000 commands per pipeline), which only
 * writes; the notes also give plain XADD with as many in flight as the worker has sends. Uses keys under a
 * prefix of its own (`agentwire-bench:<random>:`) and deletes them. No Redis on REDIS_URL
 * (default 127.0.0.1:6379): the rows print "skipped (no Redis)".
 */
export async function redisSuite(options: RedisOptions): Promise<BenchRow[]> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const connections = options.connections;
  const label = `${connections.toLocaleString('en-US')} connections`;
  if (!(await probeRedis(url, 1_000)).ok) {
    return [
      { suite: 'redis', case: `${CASE}, ${label}`, value: NaN, unit: 'events/s', skipped: 'no Redis', target: '≥ 0.7× raw XADD' },
      { suite: 'redis', case: 'write path: RedisStreamsTransport.send', value: NaN, unit: 'events/s', skipped: 'no Redis' },
    ];
  }
  const keyPrefix = `agentwire-bench:${nanoid(8)}:`;
  const inFlight = options.inFlight ?? 256;
  const group = 'redis';
  const client = await BenchChild.start('bench/clients/ws-clients.ts', { name: 'redis clients', files: connections + 256 });
  const worker = await BenchChild.start('bench/workers/redis-worker.ts', { name: 'redis worker' });
  const transport = new RedisStreamsTransport({ url, keyPrefix });
  const gateway = new WebSocketGateway({ authenticate, transport, maxConnections: connections + 16 });
  try {
    const { url: gatewayUrl } = await gateway.listen(0, '127.0.0.1');
    await client.call('open', { name: group, kind: 'gateway', url: gatewayUrl, prefix: group, count: connections });
    const clock = await client.clockOffset();
    const sendArgs = { url, keyPrefix, count: options.events, group, threads: connections, runs: inFlight };
    const writeMs: number[] = [];
    const endToEnd = async (): Promise<number> => {
      await client.call('arm', { name: group, target: options.events });
      const done = client.next<{ endMs: number }>('done', 120_000);
      const started = nowMs();
      const { ms } = await worker.call<{ ms: number }>('send', sendArgs);
      writeMs.push(ms);
      const { endMs } = await done;
      return endMs - clock.offsetMs - started;
    };
    const pipelined = async (): Promise<number> => (await worker.call<{ ms: number }>('xadd', { ...sendArgs, pipeline: PIPELINE })).ms;
    const sameConcurrency = async (): Promise<number> => (await worker.call<{ ms: number }>('xadd', sendArgs)).ms;
    const results = await repeatRuns(
      [
        { name: 'raw', run: pipelined },
        { name: 'raw-in-flight', run: sameConcurrency },
        { name: 'e2e', run: endToEnd },
      ],
      options,
    );
    const counts = await client.call<{ errors: number; firstError?: string }>('counts', { name: group });
    if (counts.errors > 0) throw new Error(`redis: client errors, first: ${counts.firstError}`);
    const rate = (ms: number): number => options.events / (ms / 1000);
    const rawRate = rate(results.get('raw')!.medianMs);
    const inFlightRate = rate(results.get('raw-in-flight')!.medianMs);
    const e2e = results.get('e2e')!;
    const e2eRate = rate(e2e.medianMs);
    const measuredWrites = writeMs.slice(-e2e.runs);
    const writeRate = rate(median(measuredWrites));
    const common =
      `${options.events} events of ${EVENT_BYTES} B per run, ${inFlight} sends in flight, median of ${e2e.runs} runs; ` +
      `baseline: XADD pipelined ${PIPELINE} at a time (XADD with the same ${inFlight} in flight: ${Math.round(inFlightRate).toLocaleString('en-US')}/s)`;
    return [
      {
        suite: 'redis',
        case: `${CASE}, ${label}`,
        value: e2eRate,
        unit: 'events/s',
        baseline: rawRate,
        baselineName: 'pipelined XADD',
        ratio: e2eRate / rawRate,
        target: '≥ 0.7× raw XADD',
        met: e2eRate / rawRate >= 0.7,
        notes: `${common}; first send → last receipt at the client (${e2e.spread})`,
      },
      {
        suite: 'redis',
        case: 'write path: RedisStreamsTransport.send',
        value: writeRate,
        unit: 'events/s',
        baseline: rawRate,
        baselineName: 'pipelined XADD',
        ratio: writeRate / rawRate,
        notes: `${common}; time for the worker's sends to be stored (owner check, epoch, trim, TTL), during the end-to-end runs`,
      },
    ];
  } finally {
    await client.stop();
    await worker.call('close').catch(() => undefined);
    await worker.stop();
    await gateway.close();
    await transport.close();
    await deleteKeysWithPrefix(url, keyPrefix).catch(() => undefined);
  }
}
