import type { WebSocket } from 'ws';
import type { MemoryTransportOptions } from '../../src/index.js';
import { BenchChild } from '../lib/child.js';
import { nowMs, sleep } from '../lib/clock.js';
import { groupFeeds } from '../lib/events.js';
import { median, type BenchRow } from '../lib/report.js';
import { startGateway, startRawServer, type GatewayFixture } from '../lib/servers.js';

export interface LatencyOptions {
  connections: number;
  /** Offered load, spread round-robin over the connections. */
  eventsPerSecond: number;
  /** Unrecorded paced load before each measurement. */
  warmupMs: number;
  measureMs: number;
  /** Measurements per target (gateway, raw), alternating; medians are reported. */
  repetitions: number;
  /** MemoryTransport options of the gateway (default: its defaults, 10,000 events per thread, 200,000 in all). */
  memory?: MemoryTransportOptions;
}

interface Percentiles {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * Emits at a fixed offered load: every ~1 ms timer tick sends the events that are due by then
 * (due = elapsed × rate), each to the next connection round-robin. Returns how many were sent and
 * the worst lateness of the schedule, so that a stalled producer cannot hide behind the figures
 * (each event is stamped when it is actually emitted).
 */
function pacedLoad(durationMs: number, eventsPerSecond: number, emit: (index: number) => void): Promise<{ sent: number; maxLagMs: number }> {
  return new Promise((resolve, reject) => {
    const start = nowMs();
    const total = Math.floor((durationMs * eventsPerSecond) / 1000);
    let sent = 0;
    let maxLagMs = 0;
    const tick = (): void => {
      const now = nowMs();
      const due = Math.min(total, Math.floor(((now - start) * eventsPerSecond) / 1000));
      if (due > sent) maxLagMs = Math.max(maxLagMs, now - (start + ((sent + 1) * 1000) / eventsPerSecond));
      try {
        while (sent < due) emit(sent++);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      if (sent < total) setTimeout(tick, 1);
      else resolve({ sent, maxLagMs });
    };
    setTimeout(tick, 1);
  });
}

/**
 * emit → client receive latency at a fixed offered load, for the gateway (defaults: batching on)
 * and for a raw `ws` server that serializes and sends each event as it is emitted.
 *
 * Clock: each event carries its emit time in `ts` (`performance.timeOrigin + performance.now()`
 * in the producer, sub-millisecond). The client process reads the same formula on receipt. Both
 * processes run on this machine, and the remaining offset between the two clocks is measured
 * before the run by echoing timestamps over IPC (shortest of 40 round trips; the estimate is good
 * to half that round trip, printed in the notes) and subtracted by the client.
 */
export async function latencySuite(options: LatencyOptions): Promise<BenchRow[]> {
  const { connections } = options;
  const client = await BenchChild.start('bench/clients/ws-clients.ts', { name: 'latency clients', files: 2 * connections + 256 });
  let gateway: GatewayFixture | undefined;
  let raw: Awaited<ReturnType<typeof startRawServer>> | undefined;
  try {
    gateway = await startGateway({ maxConnections: connections + 16 }, { ...options.memory, maxThreads: connections + 16 });
    raw = await startRawServer();
    await client.call('open', { name: 'gw', kind: 'gateway', url: gateway.url, prefix: 'lat-gw', count: connections });
    await client.call('open', { name: 'raw', kind: 'raw', url: raw.url, prefix: 'lat-raw', count: connections });
    const clock = await client.clockOffset();

    const gwFeeds = groupFeeds('lat-gw', connections);
    const fixture = gateway;
    let failure: unknown;
    const emitGateway = (i: number): void => {
      fixture.gateway.send(gwFeeds[i % connections]!.next(nowMs())).catch((error: unknown) => (failure ??= error));
    };
    const rawFeeds = groupFeeds('lat-raw', connections);
    const rawSockets: WebSocket[] = [...raw.sockets];
    const emitRaw = (i: number): void => {
      rawSockets[i % connections]!.send(JSON.stringify(rawFeeds[i % connections]!.next(nowMs())));
    };

    const measure = async (group: string, emit: (i: number) => void): Promise<Percentiles & { lagMs: number }> => {
      await client.call('arm', { name: group });
      await pacedLoad(options.warmupMs, options.eventsPerSecond, emit);
      const capacity = Math.ceil((options.measureMs * options.eventsPerSecond) / 1000) + 1_000;
      await client.call('arm', { name: group, latencyCapacity: capacity, offsetMs: clock.offsetMs });
      const { sent, maxLagMs } = await pacedLoad(options.measureMs, options.eventsPerSecond, emit);
      // Let the last events arrive, then check that every one did.
      let counts = await client.call<{ received: number; errors: number; firstError?: string }>('counts', { name: group });
      for (let i = 0; i < 100 && counts.received < sent; i++) {
        await sleep(20);
        counts = await client.call('counts', { name: group });
      }
      if (failure) throw failure;
      if (counts.errors > 0) throw new Error(`latency ${group}: client errors, first: ${counts.firstError}`);
      if (counts.received < sent) throw new Error(`latency ${group}: ${counts.received} of ${sent} events arrived`);
      return { ...(await client.call<Percentiles>('latency', { name: group })), lagMs: maxLagMs };
    };

    const gw: Array<Percentiles & { lagMs: number }> = [];
    const rw: Array<Percentiles & { lagMs: number }> = [];
    for (let rep = 0; rep < options.repetitions; rep++) {
      gw.push(await measure('gw', emitGateway));
      rw.push(await measure('raw', emitRaw));
    }

    const pick = (list: Percentiles[], key: 'p50' | 'p99' | 'max'): number => median(list.map((p) => p[key]));
    const samples = gw.reduce((sum, p) => sum + p.count, 0);
    const lag = Math.max(...gw.map((p) => p.lagMs), ...rw.map((p) => p.lagMs));
    const load = `${options.eventsPerSecond.toLocaleString('en-US')} events/s over ${connections.toLocaleString('en-US')} connections`;
    const common =
      `${options.repetitions} × ${options.measureMs / 1000} s after ${options.warmupMs / 1000} s warm-up, ${samples} samples; ` +
      `clock offset ${(clock.offsetMs * 1000).toFixed(0)} µs ± ${(clock.uncertaintyMs * 1000).toFixed(0)} µs; worst producer lag ${lag.toFixed(2)} ms`;
    const row = (key: 'p50' | 'p99' | 'max', target?: string, limit?: number): BenchRow => {
      const value = pick(gw, key);
      const baseline = pick(rw, key);
      return {
        suite: 'latency',
        case: `emit → receive ${key}, ${load}`,
        value,
        unit: 'ms',
        baseline,
        baselineName: 'raw ws',
        ratio: value / baseline,
        ...(target && limit !== undefined ? { target, met: value <= limit } : {}),
        notes: `${key === 'max' ? 'median of the repetitions\' maxima; ' : `median of the repetitions' ${key}; `}${common}`,
      };
    };
    return [row('p50'), row('p99', '≤ 2 ms', 2), row('max')];
  } finally {
    await client.stop();
    await gateway?.close();
    await raw?.close();
  }
}
