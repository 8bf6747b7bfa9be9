import type { WebSocket } from 'ws';
import { BenchChild } from '../lib/child.js';
import { nowMs } from '../lib/clock.js';
import { EVENT_BYTES, groupFeeds } from '../lib/events.js';
import { repeatRuns } from '../lib/measure.js';
import type { BenchRow } from '../lib/report.js';
import { startGateway, startRawServer, startSocketIoServer, type GatewayFixture, type SocketIoFixture } from '../lib/servers.js';

export interface FanoutOptions {
  /** Connection counts, one set of rows each. */
  connections: number[];
  /** Events appended per connection per tick, one set of rows each (DESIGN: batching pays from 10 per tick; chat is ~1). */
  perTick: number[];
  /** Events delivered per measured run (across all connections). */
  eventsPerRun: number;
  /** Measured runs per case (the median is reported) and unmeasured warm-up runs before them. */
  iterations: number;
  warmupIterations: number;
  /** Connection count of the extra row with the real `agentwire/client` (0: no such row), at the first `perTick`. */
  sdkConnections: number;
  /** Only these targets (profiling): 'raw', 'rawb', 'sio', 'on', 'off'. Default all; rows need all. */
  variants?: string[];
  /**
   * The wide case (how cost grows with connections): this many connections (0: none) at 1
   * event/conn/tick, `wideEventsPerRun` events per run, raw ws one message per event against the
   * gateway. The servers run one after the other (one process may not hold two sets of them).
   */
  wideConnections?: number;
  wideEventsPerRun?: number;
}

/** Size of a gateway event frame (the event plus its envelope), for the flow-control estimate. */
const FRAME_BYTES = EVENT_BYTES + 80;

/** One server under test and how to feed it. */
interface Target {
  name: string;
  /** The client-side group that receives this target's events. */
  group: string;
  produce(total: number, perTick: number): Promise<void>;
}

/**
 * The producer loop: appends `total` events, `perTick` per connection per tick, yielding to the
 * event loop between ticks (so the servers' per-tick flushes run between them). Flow control keeps
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
      // Scheduled after this tick's sends, so a flush scheduled by the first send runs first.
      if (sent < total) setImmediate(tick);
      else resolve();
    };
    setImmediate(tick);
  });
}

function bufferLimit(connections: number): number {
  return Math.min(16 * 2 ** 20, connections * 2 * 2 ** 20);
}

function gatewayTarget(name: string, fixture: GatewayFixture, group: string, connections: number): Target {
  const feeds = groupFeeds(group, connections);
  const { gateway } = fixture;
  const buffered = (): number => {
    const stats = gateway.stats();
    return stats.bufferedBytes + stats.queuedFrames * FRAME_BYTES;
  };
  return {
    name,
    group,
    async produce(total, perTick) {
      await paced(connections, perTick, total, bufferLimit(connections), buffered, (c) => {
        // MemoryTransport accepts synchronously and returns one shared settled promise; a
        // rejection would be unhandled and end the bench loudly (Node's default), so no
        // per-event handler is attached here: that would be the bench's cost, not the gateway's.
        void gateway.send(feeds[c]!.next());
      });
    },
  };
}

function socketsBuffered(sockets: WebSocket[]): () => number {
  return () => {
    let sum = 0;
    for (const socket of sockets) sum += socket.bufferedAmount;
    return sum;
  };
}

/** Raw `ws`, one message per event, serialized before the run: the raw server only sends. */
function rawTarget(sockets: WebSocket[], group: string, perTickMax: number): Target {
  const feeds = groupFeeds(group, sockets.length);
  const payloads = feeds.map((feed) => Array.from({ length: perTickMax }, () => JSON.stringify(feed.next())));
  const slot = new Array<number>(sockets.length).fill(0);
  const buffered = socketsBuffered(sockets);
  return {
    name: 'raw',
    group,
    produce(total, perTick) {
      return paced(sockets.length, perTick, total, bufferLimit(sockets.length), buffered, (c) => {
        const i = slot[c]!;
        slot[c] = (i + 1) % perTickMax;
        sockets[c]!.send(payloads[c]![i]!);
      });
    },
  };
}

/**
 * The honest batching ceiling: raw `ws` with a queue per connection, each event serialized in the
 * loop (`JSON.stringify`, as a server must), every queue flushed once per tick (one `setImmediate`
 * for all connections) as one frame: a JSON array of the tick's events (one event: the event alone).
 */
function rawBatchedTarget(sockets: WebSocket[], group: string): Target {
  const feeds = groupFeeds(group, sockets.length);
  const queues: string[][] = sockets.map(() => []);
  let dirty: number[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const list = dirty;
    dirty = [];
    for (const c of list) {
      const queue = queues[c]!;
      sockets[c]!.send(queue.length === 1 ? queue[0]! : `[${queue.join(',')}]`);
      queue.length = 0;
    }
  };
  const buffered = socketsBuffered(sockets);
  return {
    name: 'rawb',
    group,
    produce(total, perTick) {
      return paced(sockets.length, perTick, total, bufferLimit(sockets.length), buffered, (c) => {
        const queue = queues[c]!;
        if (queue.length === 0) dirty.push(c);
        queue.push(JSON.stringify(feeds[c]!.next()));
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
  };
}

/** Socket.IO 4 rooms: one room per thread, `io.to(room).emit('event', event)` per event (Socket.IO serializes). */
function socketIoTarget(fixture: SocketIoFixture, group: string, connections: number): Target {
  const feeds = groupFeeds(group, connections);
  const rooms = feeds.map((feed) => feed.threadId);
  const buffered = (): number => fixture.buffered(FRAME_BYTES);
  return {
    name: 'sio',
    group,
    produce(total, perTick) {
      return paced(connections, perTick, total, bufferLimit(connections), buffered, (c) => {
        fixture.io.to(rooms[c]!).emit('event', feeds[c]!.next());
      });
    },
  };
}

const LABELS: Record<string, string> = {
  raw: 'raw ws, 1 msg/event (pre-serialized)',
  rawb: 'raw ws batched per tick (serialized in the loop)',
  sio: 'Socket.IO 4 rooms',
  on: 'gateway, batching on',
  off: 'gateway, batching off',
};

/**
 * WebSocket fan-out: this process is the server, the client process (bench/clients/ws-clients.ts)
 * holds the connections, one user and thread each, and counts the events it parses. Per
 * connection count, five servers run side by side with the same number of connections and the
 * same kind of events: raw `ws` one message per event (pre-serialized), raw `ws` batched per tick
 * (serializing in the loop: the honest ceiling), Socket.IO 4 rooms (the peer), and the gateway fed
 * with `send()` (append to its MemoryTransport, then fan-out; no agent pipeline) with batching on
 * (its default) and off. A run is timed from the first send to the client's receipt of the last
 * event (client clock, corrected by the measured offset); the server process's CPU time
 * (`process.cpuUsage`, user + system) over the same span, divided by the events, is the
 * "server CPU µs/event". Runs are repeated in rounds over the servers; medians are reported.
 */
export async function wsFanoutSuite(defaults: FanoutOptions, overrides: Partial<FanoutOptions> = {}): Promise<BenchRow[]> {
  const options = { ...defaults, ...overrides };
  const rows: BenchRow[] = [];
  const most = Math.max(1, ...options.connections, options.sdkConnections);
  const client = await BenchChild.start('bench/clients/ws-clients.ts', { name: 'ws-fanout clients', files: Math.max(5 * most, options.wideConnections ?? 0) + 256 });
  const open: Array<() => Promise<void>> = [];
  const perTickMax = Math.max(...options.perTick);
  try {
    const clock = await client.clockOffset();
    const cpu = new Map<string, number[]>();
    const messagesPerRun = new Map<string, number>();
    /** One measured run: arm the client, produce, and time it from the first send to the last receipt (client clock, corrected). */
    const runOnce = async (target: Target, total: number, perTick: number): Promise<number> => {
      await client.call('arm', { name: target.group, target: total });
      const done = client.next<{ endMs: number; messages: number }>('done', 120_000);
      const started = nowMs();
      const cpuBefore = process.cpuUsage();
      await target.produce(total, perTick);
      const { endMs, messages } = await done;
      const used = process.cpuUsage(cpuBefore);
      cpu.get(target.name)!.push((used.user + used.system) / total);
      messagesPerRun.set(target.name, messages);
      return endMs - clock.offsetMs - started;
    };

    const wide = options.wideConnections ?? 0;
    if (wide > 0) rows.push(...(await wideCase(wide, options.wideEventsPerRun ?? 10 * wide)));

    const cases = options.connections.map((count) => ({ count, sdk: false }));
    if (options.sdkConnections > 0) cases.push({ count: options.sdkConnections, sdk: true });
    /**
     * Many connections, paced at 1 event/conn/tick and bounded (each run `total` events, flow
     * controlled like the others): raw ws first, then the gateway, each with its own warm-up run.
     */
    async function wideCase(count: number, total: number): Promise<BenchRow[]> {
      const perTick = 1;
      const measured = new Map<string, { ms: number[]; cpu: number[] }>();
      for (const name of ['raw', 'on'] as const) {
        const server = name === 'raw' ? await startRawServer() : await startGateway({ maxConnections: count + 16 }, { maxThreads: count + 16 });
        try {
          const group = `${name}-w${count}`;
          await client.call('open', { name: group, kind: name === 'raw' ? 'raw' : 'gateway', url: server.url, prefix: group, count, parallel: 200 }, 300_000);
          const target =
            name === 'raw'
              ? rawTarget([...(server as Awaited<ReturnType<typeof startRawServer>>).sockets], group, 1)
              : gatewayTarget('on', server as GatewayFixture, group, count);
          cpu.set(target.name, []);
          const result = (await repeatRuns([{ name, run: () => runOnce(target, total, perTick) }], { iterations: options.iterations, warmupIterations: options.warmupIterations })).get(name)!;
          const counts = await client.call<{ errors: number; firstError?: string }>('counts', { name: group });
          if (counts.errors > 0) throw new Error(`${name} (${count} connections): client errors, first: ${counts.firstError}`);
          measured.set(name, { ms: result.samples, cpu: cpu.get(target.name)!.slice(-result.runs) });
          await client.call('close', { name: group }, 300_000);
        } finally {
          await server.close();
        }
      }
      const med = (list: number[]): number => [...list].sort((a, b) => a - b)[list.length >> 1]!;
      const rateOf = (name: string): number => total / (med(measured.get(name)!.ms) / 1000);
      const cpuOf = (name: string): number => med(measured.get(name)!.cpu);
      const raw = rateOf('raw');
      const value = rateOf('on');
      const where = `${count.toLocaleString('en-US')} connections, 1 event/conn/tick`;
      const notes = `${total} events of ${EVENT_BYTES} B per run (${total / count} per connection), median of ${options.iterations} runs; servers one after the other, not interleaved`;
      return [
        { suite: 'ws-fanout', case: `${LABELS.raw}, ${where}`, value: raw, unit: 'events/s', cpuUs: cpuOf('raw'), notes },
        {
          suite: 'ws-fanout',
          case: `${LABELS.on}, ${where}`,
          value,
          unit: 'events/s',
          baseline: raw,
          baselineName: 'raw ws, 1 msg/event',
          ratio: value / raw,
          cpuUs: cpuOf('on'),
          baselineCpuUs: cpuOf('raw'),
          // The 1 event/conn/tick target, at ten times the connections.
          target: '≥ 1.0× raw',
          met: value / raw >= 1,
          notes,
        },
      ];
    }

    for (const { count, sdk } of cases) {
      const want = (name: string): boolean => !options.variants || options.variants.includes(name);
      const raw = await startRawServer();
      open.push(() => raw.close());
      const sio = sdk || !want('sio') ? undefined : await startSocketIoServer();
      if (sio) open.push(() => sio.close());
      const batched = await startGateway({ maxConnections: count + 16 }, { maxThreads: count + 16 });
      open.push(() => batched.close());
      const unbatched = sdk || !want('off') ? undefined : await startGateway({ maxConnections: count + 16, batching: false }, { maxThreads: count + 16 });
      if (unbatched) open.push(() => unbatched.close());

      const tag = `${sdk ? 's' : 'c'}${count}`;
      await client.call('open', { name: `raw-${tag}`, kind: 'raw', url: raw.url, prefix: `raw-${tag}`, count });
      if (raw.sockets.size !== count) throw new Error(`raw server has ${raw.sockets.size} connections, expected ${count}`);
      const rawSockets = [...raw.sockets];
      // The batched raw target has its own connections (the same server): its frames are arrays.
      await client.call('open', { name: `rawb-${tag}`, kind: 'raw', url: raw.url, prefix: `rawb-${tag}`, count });
      const rawbSockets = [...raw.sockets].filter((socket) => !rawSockets.includes(socket));
      if (sio) await client.call('open', { name: `sio-${tag}`, kind: 'sio', url: sio.url, prefix: `sio-${tag}`, count });
      await client.call('open', { name: `on-${tag}`, kind: sdk ? 'sdk' : 'gateway', url: batched.url, prefix: `on-${tag}`, count });
      if (unbatched) await client.call('open', { name: `off-${tag}`, kind: 'gateway', url: unbatched.url, prefix: `off-${tag}`, count });

      const all: Target[] = [
        rawTarget(rawSockets, `raw-${tag}`, perTickMax),
        rawBatchedTarget(rawbSockets, `rawb-${tag}`),
        ...(sio ? [socketIoTarget(sio, `sio-${tag}`, count)] : []),
        gatewayTarget('on', batched, `on-${tag}`, count),
        ...(unbatched ? [gatewayTarget('off', unbatched, `off-${tag}`, count)] : []),
      ];
      const targets = all.filter((target) => want(target.name));
      for (const perTick of sdk ? options.perTick.slice(0, 1) : options.perTick) {
        for (const target of targets) cpu.set(target.name, []);
        const total = Math.max(options.eventsPerRun, count * perTick);
        // At one event per connection per tick batching cannot pay: the unbatched gateway adds nothing there.
        const tickTargets = targets.filter((target) => !(perTick === 1 && target.name === 'off'));
        const results = await repeatRuns(
          tickTargets.map((target) => ({ name: target.name, run: () => runOnce(target, total, perTick) })),
          { iterations: options.iterations, warmupIterations: options.warmupIterations },
        );
        for (const target of tickTargets) {
          const counts = await client.call<{ errors: number; firstError?: string }>('counts', { name: target.group });
          if (counts.errors > 0) throw new Error(`${target.name} (${count} connections): client errors, first: ${counts.firstError}`);
        }
        const rate = (name: string): number => total / (results.get(name)!.medianMs / 1000);
        const cpuOf = (name: string): number => {
          // The runs measured (warm-ups excluded), their median.
          const list = cpu.get(name)!.slice(-results.get(name)!.runs).sort((a, b) => a - b);
          return list[list.length >> 1]!;
        };
        if (!['raw', 'rawb', 'on'].every((name) => results.has(name))) {
          for (const [name, result] of results) console.log(`${name}, ${count} connections, ${perTick}/tick: ${Math.round(rate(name))} events/s, ${cpuOf(name).toFixed(2)} µs/event (${result.samples.map((ms) => Math.round(ms)).join(' ')} ms)`);
          continue;
        }
        const plural = `${count.toLocaleString('en-US')} connection${count > 1 ? 's' : ''}`;
        const where = `${plural}, ${perTick} event${perTick > 1 ? 's' : ''}/conn/tick`;
        const common = `${total} events of ${EVENT_BYTES} B per run, median of ${options.iterations} runs`;
        const rawRate = rate('raw');
        const ceiling = rate('rawb');
        const sioRate = results.has('sio') ? rate('sio') : undefined;
        const spread = (name: string): string => results.get(name)!.spread;
        const perMessage = (name: string): string => `${(total / (messagesPerRun.get(name) ?? total)).toFixed(1)} events/message`;
        const baselineRow = (name: 'raw' | 'rawb' | 'sio'): BenchRow => ({
          suite: 'ws-fanout',
          case: `${LABELS[name]}, ${where}`,
          value: rate(name),
          unit: 'events/s',
          cpuUs: cpuOf(name),
          ...(name === 'raw' ? {} : { baseline: rawRate, baselineName: 'raw ws, 1 msg/event', ratio: rate(name) / rawRate, baselineCpuUs: cpuOf('raw') }),
          notes: `${common} (${spread(name)})${name === 'sio' ? '; client: socket.io-client, websocket transport' : `, ${perMessage(name)}; client: ws + JSON.parse + count`}`,
        });
        if (!sdk) {
          rows.push(baselineRow('raw'), baselineRow('rawb'));
          if (sioRate !== undefined) rows.push(baselineRow('sio'));
        }
        for (const name of ['on', 'off'] as const) {
          if (!results.has(name)) continue;
          const value = rate(name);
          // Batching against the batched ceiling (where batching can pay); otherwise against raw one message per event.
          const vsCeiling = name === 'on' && perTick >= 10;
          const baseline = vsCeiling ? ceiling : rawRate;
          const needed = vsCeiling ? 0.7 : 1.0;
          const sioNeeded = perTick >= 10 ? 2 : 1.5;
          const sioRatio = sioRate === undefined ? undefined : value / sioRate;
          const ratio = value / baseline;
          rows.push({
            suite: 'ws-fanout',
            case: `${LABELS[name]}${sdk ? ', agentwire/client' : ''}, ${where}`,
            value,
            unit: 'events/s',
            baseline,
            baselineName: vsCeiling ? 'raw ws batched' : 'raw ws, 1 msg/event',
            ratio,
            cpuUs: cpuOf(name),
            baselineCpuUs: cpuOf(vsCeiling ? 'rawb' : 'raw'),
            ...(sdk
              ? {}
              : {
                  target: `≥ ${needed.toFixed(1)}× ${vsCeiling ? 'raw batched' : 'raw'}${sioRatio === undefined ? '' : `; ≥ ${sioNeeded}× Socket.IO (${sioRatio.toFixed(2)}×)`}`,
                  met: ratio >= needed && (sioRatio === undefined || sioRatio >= sioNeeded),
                }),
            ...(sioRatio === undefined ? {} : { vsSocketIo: sioRatio }),
            notes:
              `${common} (${spread(name)}; raw ${spread('raw')}; raw batched ${spread('rawb')})` +
              `${sdk ? '; client: connect() with dedupe + lifecycle check' : `, ${perMessage(name)}; client: ws + JSON.parse + count`}` +
              `; raw ws batched ${Math.round(ceiling)}/s, raw 1 msg/event ${Math.round(rawRate)}/s`,
          });
        }
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
