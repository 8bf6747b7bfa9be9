import type { WebSocket } from 'ws';
import { BenchChild } from '../lib/child.js';
import { nowMs } from '../lib/clock.js';
import { EVENT_BYTES, groupFeeds } from '../lib/events.js';
import { repeatRuns } from '../lib/measure.js';
import type { BenchRow } from '../lib/report.js';
import { startGateway, startRawServer, type GatewayFixture } from '../lib/servers.js';

export interface FanoutOptions {
  /** Connection counts, one set of rows each. */
  connections: number[];
  /** Events delivered per measured run (across all connections). */
  eventsPerRun: number;
  /** Measured runs per case (the median is reported) and unmeasured warm-up runs before them. */
  iterations: number;
  warmupIterations: number;
  /** Events appended per connection per tick (DESIGN: batching pays from 10 per tick). */
  perTick: number;
  /** Connection count of the extra row with the real `agentwire/client` (0: no such row). */
  sdkConnections: number;
  /** Only these targets (profiling): 'raw', 'on', 'off'. Default all; rows need 'raw'. */
  variants?: string[];
}

/** Size of a gateway event frame (the event plus its envelope), for the flow-control estimate. */
const FRAME_BYTES = EVENT_BYTES + 80;

/** One server under test (raw ws, gateway with batching on or off) and how to feed it. */
interface Target {
  name: string;
  /** The client-side group that receives this target's events. */
  group: string;
  produce(total: number): Promise<void>;
}

/**
 * The producer loop: appends `total` events, `perTick` per connection per tick, yielding to the
 * event loop between ticks (so the gateway's per-tick flush runs between them). Flow control keeps
 * the producer from running ahead of the client without bound: a tick is skipped while more than
 * `limit` bytes wait in user-space socket buffers and queues (1 ms poll).
 */
function paced(connections: number, perTick: number, total: number, limit: number, buffered: () => number, emit: (connection: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    // Reading the buffers costs O(connections): do it about every 1,000 events, well within the limit.
    const checkEvery = Math.max(1, Math.ceil(1_000 / (connections * perTick)));
    let ticks = 0;
    const tick = (): void => {
      try {
        if (ticks++ % checkEvery === 0 && buffered() > limit) {
          setTimeout(tick, 1);
          return;
        }
        for (let c = 0; c < connections && sent < total; c++) {
          for (let k = 0; k < perTick && sent < total; k++, sent++) emit(c);
        }
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      // Scheduled after this tick's sends, so the gateway's flush (scheduled by the first send) runs first.
      if (sent < total) setImmediate(tick);
      else resolve();
    };
    setImmediate(tick);
  });
}

function bufferLimit(connections: number): number {
  return Math.min(16 * 2 ** 20, connections * 2 * 2 ** 20);
}

function gatewayTarget(name: string, fixture: GatewayFixture, group: string, connections: number, perTick: number): Target {
  const feeds = groupFeeds(group, connections);
  const { gateway } = fixture;
  const buffered = (): number => {
    const stats = gateway.stats();
    return stats.bufferedBytes + stats.queuedFrames * FRAME_BYTES;
  };
  return {
    name,
    group,
    async produce(total) {
      await paced(connections, perTick, total, bufferLimit(connections), buffered, (c) => {
        // MemoryTransport accepts synchronously and returns one shared settled promise; a
        // rejection would be unhandled and end the bench loudly (Node's default), so no
        // per-event handler is attached here: that would be the bench's cost, not the gateway's.
        void gateway.send(feeds[c]!.next());
      });
    },
  };
}

function rawTarget(name: string, sockets: WebSocket[], group: string, perTick: number): Target {
  // The same kind of events, serialized once before the run: the raw server only sends.
  const feeds = groupFeeds(group, sockets.length);
  const payloads = feeds.map((feed) => Array.from({ length: perTick }, () => JSON.stringify(feed.next())));
  const slot = new Array<number>(sockets.length).fill(0);
  const buffered = (): number => {
    let sum = 0;
    for (const socket of sockets) sum += socket.bufferedAmount;
    return sum;
  };
  return {
    name,
    group,
    produce(total) {
      return paced(sockets.length, perTick, total, bufferLimit(sockets.length), buffered, (c) => {
        const i = slot[c]!;
        slot[c] = (i + 1) % perTick;
        sockets[c]!.send(payloads[c]![i]!);
      });
    },
  };
}

/**
 * WebSocket fan-out: this process is the server, the client process (bench/clients/ws-clients.ts)
 * holds the connections, one user and thread each, and counts the events it parses. Per
 * connection count, three servers run side by side with the same number of connections: a bare
 * `ws` server sending the same events, serialized before the run, one message per event (the
 * raw floor); the gateway with batching on (its default); the gateway with batching off. Events
 * go to the gateway through `send()` (append to its MemoryTransport, then fan-out). A run is timed
 * from the first send to the client's receipt of the last event (client clock, corrected by the
 * measured offset); runs are repeated in rounds over the three servers and each one's median is
 * reported.
 */
export async function wsFanoutSuite(options: FanoutOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const most = Math.max(1, ...options.connections, options.sdkConnections);
  const client = await BenchChild.start('bench/clients/ws-clients.ts', { name: 'ws-fanout clients', files: 3 * most + 256 });
  const open: Array<() => Promise<void>> = [];
  try {
    const clock = await client.clockOffset();
    /** One measured run: arm the client, produce, and time it from the first send to the last receipt (client clock, corrected). */
    const runOnce = async (target: Target, total: number): Promise<number> => {
      await client.call('arm', { name: target.group, target: total });
      const done = client.next<{ endMs: number; messages: number }>('done', 120_000);
      const started = nowMs();
      await target.produce(total);
      const { endMs, messages } = await done;
      messagesPerRun.set(target.name, messages);
      return endMs - clock.offsetMs - started;
    };
    const messagesPerRun = new Map<string, number>();

    const cases = options.connections.map((count) => ({ count, sdk: false }));
    if (options.sdkConnections > 0) cases.push({ count: options.sdkConnections, sdk: true });
    for (const { count, sdk } of cases) {
      const raw = await startRawServer();
      open.push(() => raw.close());
      const batched = await startGateway({ maxConnections: count + 16 }, { maxThreads: count + 16 });
      open.push(() => batched.close());
      const unbatched = sdk ? undefined : await startGateway({ maxConnections: count + 16, batching: false }, { maxThreads: count + 16 });
      if (unbatched) open.push(() => unbatched.close());

      const tag = `${sdk ? 's' : 'c'}${count}`;
      await client.call('open', { name: `raw-${tag}`, kind: 'raw', url: raw.url, prefix: `raw-${tag}`, count });
      await client.call('open', { name: `on-${tag}`, kind: sdk ? 'sdk' : 'gateway', url: batched.url, prefix: `on-${tag}`, count });
      if (unbatched) await client.call('open', { name: `off-${tag}`, kind: 'gateway', url: unbatched.url, prefix: `off-${tag}`, count });
      if (raw.sockets.size !== count) throw new Error(`raw server has ${raw.sockets.size} connections, expected ${count}`);

      const targets = [
        rawTarget('raw', [...raw.sockets], `raw-${tag}`, options.perTick),
        gatewayTarget('on', batched, `on-${tag}`, count, options.perTick),
        ...(unbatched ? [gatewayTarget('off', unbatched, `off-${tag}`, count, options.perTick)] : []),
      ].filter((target) => !options.variants || options.variants.includes(target.name));
      const total = Math.max(options.eventsPerRun, count * options.perTick);
      const results = await repeatRuns(
        targets.map((target) => ({ name: target.name, run: () => runOnce(target, total) })),
        { iterations: options.iterations, warmupIterations: options.warmupIterations },
      );
      for (const target of targets) {
        const counts = await client.call<{ errors: number; firstError?: string }>('counts', { name: target.group });
        if (counts.errors > 0) throw new Error(`${target.name} (${count} connections): client errors, first: ${counts.firstError}`);
      }

      const rate = (name: string): number => total / (results.get(name)!.medianMs / 1000);
      if (!results.has('raw')) {
        for (const [name, result] of results) console.log(`${name}, ${count} connections: ${Math.round(rate(name))} events/s (${result.samples.map((ms) => Math.round(ms)).join(" ")} ms)`);
        continue;
      }
      const rawRate = rate('raw');
      const rawSpread = results.get('raw')!.spread;
      const plural = `${count.toLocaleString('en-US')} connection${count > 1 ? 's' : ''}`;
      for (const target of targets.slice(1)) {
        const result = results.get(target.name)!;
        const value = rate(target.name);
        const ratio = value / rawRate;
        const batching = target.name === 'on';
        const framesPerMessage = total / (messagesPerRun.get(target.name) ?? total);
        rows.push({
          suite: 'ws-fanout',
          case: `${batching ? 'batching on' : 'batching off'}${sdk ? ', agentwire/client' : ''}, ${plural}`,
          value,
          unit: 'events/s',
          baseline: rawRate,
          baselineName: 'raw ws, 1 msg/event',
          ratio,
          target: batching ? '≥ 1.5× raw' : '≥ 0.8× raw',
          met: batching ? ratio >= 1.5 : ratio >= 0.8,
          notes:
            `${total} events of ${EVENT_BYTES} B per run, ${options.perTick}/connection/tick, median of ${result.runs} runs ` +
            `(${result.spread}; raw ${rawSpread})${sdk ? '' : `, ${framesPerMessage.toFixed(1)} events/message`}` +
            `${sdk ? '; client: connect() with dedupe + lifecycle check' : '; client: ws + JSON.parse + count'}`,
        });
      }

      for (const target of targets) await client.call('close', { name: target.group });
      while (open.length > 0) await open.pop()!();
    }
    return rows;
  } finally {
    while (open.length > 0) await open.pop()!().catch(() => undefined);
    await client.stop();
  }
}
