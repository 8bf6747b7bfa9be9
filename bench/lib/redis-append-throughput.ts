import { nanoid } from 'nanoid';
import type { AgentEvent } from '../../src/events/schema.js';
import { RedisConnection } from '../../src/transport/redis/connection.js';
import { RedisKeys } from '../../src/transport/redis/keys.js';
import { resolveConnectionOptions } from '../../src/transport/redis/options.js';
import { RedisStreamsTransport } from '../../src/transport/redis/transport.js';

export interface AppendThroughputOptions {
  /** Redis URL. Default `'redis://127.0.0.1:6379'`. */
  url?: string;
  /** Key prefix of the keys written (deleted afterwards). Default a fresh `agentwire-bench:<id>:`. */
  keyPrefix?: string;
  /** Events appended per measurement. Default 50,000. */
  events?: number;
  /** Concurrent runs, each sending its events one at a time like the bridge does. Default 256. */
  runs?: number;
  /** Threads the runs write to. Default 64. */
  threads?: number;
  /** Characters of `agent_thinking` text per event (about 190 more bytes of envelope). Default 60. */
  textLength?: number;
}

export interface AppendThroughput {
  events: number;
  /** Serialized size of one event. */
  eventBytes: number;
  /** Plain `XADD … MAXLEN ~` of the same JSON, same concurrency, pipelined by node-redis. */
  rawXaddPerSecond: number;
  /** `RedisStreamsTransport.send` (owner check, epoch, TTL, batching). */
  transportPerSecond: number;
  /** transportPerSecond / rawXaddPerSecond; the target is ≥ 0.7. */
  ratio: number;
  /** Mean events per script call during the transport measurement. */
  meanBatchSize: number;
}

/**
 * Measures the write path against a plain pipelined `XADD` of the same payloads in the same run:
 * `runs` concurrent loops, each awaiting one append at a time (the bridge's pattern per run).
 * Writes only keys under its own prefix and deletes them afterwards.
 */
export async function measureAppendThroughput(options: AppendThroughputOptions = {}): Promise<AppendThroughput> {
  const events = options.events ?? 50_000;
  const runs = options.runs ?? 256;
  const threads = options.threads ?? 64;
  const keyPrefix = options.keyPrefix ?? `agentwire-bench:${nanoid(8)}:`;
  const text = 'x'.repeat(options.textLength ?? 60);
  const payloads: AgentEvent[] = [];
  const started = Date.now();
  for (let i = 0; i < events; i++) {
    const run = i % runs;
    const threadId = `bench-${run % threads}`;
    payloads.push({
      v: 1,
      id: nanoid(),
      type: 'agent_thinking',
      runId: `thread_${threadId}_run_${started}_r${run}`,
      threadId,
      userId: `user-${run % threads}`,
      agent: 'bench',
      seq: Math.floor(i / runs) + 1,
      ts: started,
      data: { text },
    });
  }
  const connectionOptions = resolveConnectionOptions({ url: options.url, keyPrefix }, 'measureAppendThroughput');
  const raw = new RedisConnection(connectionOptions, 'agentwire-bench');
  const keys = new RedisKeys(keyPrefix);
  const transport = new RedisStreamsTransport({ url: options.url, keyPrefix });
  try {
    const rawSeconds = await timeRuns(runs, payloads, (event) =>
      raw.send(['XADD', keys.stream(event.threadId), 'MAXLEN', '~', '10000', '*', 'e', JSON.stringify(event)]),
    );
    await deleteKeys(raw, keyPrefix);
    await transport.connect(10_000);
    const before = transport.stats();
    const transportSeconds = await timeRuns(runs, payloads, (event) => transport.send(event));
    const after = transport.stats();
    const rawXaddPerSecond = events / rawSeconds;
    const transportPerSecond = events / transportSeconds;
    return {
      events,
      eventBytes: JSON.stringify(payloads[0]).length,
      rawXaddPerSecond: Math.round(rawXaddPerSecond),
      transportPerSecond: Math.round(transportPerSecond),
      ratio: Math.round((transportPerSecond / rawXaddPerSecond) * 100) / 100,
      meanBatchSize: Math.round(((after.appended - before.appended) / Math.max(1, after.batches - before.batches)) * 10) / 10,
    };
  } finally {
    await transport.close();
    await deleteKeys(raw, keyPrefix).catch(() => undefined);
    await raw.close();
  }
}

async function timeRuns(runs: number, payloads: AgentEvent[], append: (event: AgentEvent) => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await Promise.all(
    Array.from({ length: runs }, async (_, run) => {
      for (let i = run; i < payloads.length; i += runs) await append(payloads[i]!);
    }),
  );
  return (performance.now() - start) / 1000;
}

async function deleteKeys(connection: RedisConnection, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, found] = await connection.send<[string, string[]]>(['SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000']);
    cursor = next;
    if (found.length > 0) await connection.send(['UNLINK', ...found]);
  } while (cursor !== '0');
}
