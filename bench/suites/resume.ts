import { BenchChild } from '../lib/child.js';
import { ThreadFeed } from '../lib/events.js';
import { tinybenchRuns } from '../lib/measure.js';
import type { BenchRow } from '../lib/report.js';
import { startGateway, startRawServer, type GatewayFixture } from '../lib/servers.js';

export interface ResumeOptions {
  /** Missed events to replay (the MemoryTransport retains 10,000 per thread by default). */
  events: number;
  iterations: number;
  warmupIterations: number;
  /**
   * How resume time grows with history: each of these numbers of retained events after the
   * cursor, minimal client against raw ws pushing as many (one thread each), with the slope
   * between the smallest and the largest. Runs `historyIterations` times each (default `iterations`).
   */
  histories?: number[];
  historyIterations?: number;
}

/**
 * Time for a reconnecting client to get every missed event: a thread holds `events` events
 * after the client's last cursor; the client process opens a connection resuming after that
 * cursor, and the time from opening the socket until the last replayed event has arrived is
 * measured there (tinybench repeats it; median reported). Baseline: a bare `ws` server that
 * sends the same events, pre-serialized, one message each, to every new connection.
 */
export async function resumeSuite(options: ResumeOptions): Promise<BenchRow[]> {
  const client = await BenchChild.start('bench/clients/ws-clients.ts', { name: 'resume clients', files: 512 });
  const histories = options.histories ?? [];
  const largest = Math.max(10_000, options.events, ...histories);
  const retained = options.events + histories.reduce((sum, n) => sum + n + 1, 0) + 1;
  // Gateway defaults (a replay longer than maxQueuedFrames is fine: it does not count toward it).
  const gateway = await startGateway(
    {},
    {
      maxEventsPerThread: largest + 1,
      maxBytesPerThread: Math.max(8 * 2 ** 20, (largest + 1) * 400),
      maxTotalEvents: Math.max(200_000, retained),
      maxTotalBytes: Math.max(64 * 2 ** 20, retained * 400),
    },
  );
  const feed = new ThreadFeed('resume-u', 'resume-t');
  const first = gateway.transport.append(feed.next());
  const missed = Array.from({ length: options.events }, () => feed.next());
  for (const event of missed) await gateway.gateway.send(event);
  const payloads = missed.map((event) => JSON.stringify(event));
  const raw = await startRawServer((socket) => {
    for (const payload of payloads) socket.send(payload);
  });
  try {
    const resume = (kind: 'sdk' | 'gateway' | 'raw'): (() => Promise<number>) => async () => {
      const url = kind === 'raw' ? raw.url : gateway.url;
      const { ms } = await client.call<{ ms: number }>('resume', {
        kind,
        url,
        userId: feed.userId,
        threadId: feed.threadId,
        after: kind === 'raw' ? undefined : first.cursor,
        expected: options.events,
      });
      return ms;
    };
    const results = await tinybenchRuns(
      [
        { name: 'raw', run: resume('raw') },
        { name: 'sdk', run: resume('sdk') },
        { name: 'gateway', run: resume('gateway') },
      ],
      options,
    );
    const rawMs = results.get('raw')!.medianMs;
    const events = options.events.toLocaleString('en-US');
    const growth = await historyRows(client, gateway, histories, { iterations: options.historyIterations ?? options.iterations, warmupIterations: options.warmupIterations });
    const main = (['sdk', 'gateway'] as const).map((name): BenchRow => {
      const result = results.get(name)!;
      const ms = result.medianMs;
      return {
        suite: 'resume',
        case: `replay ${events} missed events, ${name === 'sdk' ? 'agentwire/client connect({ after })' : 'minimal ws client, subscribe after cursor'}`,
        value: ms,
        unit: 'ms',
        baseline: rawMs,
        baselineName: `raw ws, ${events} msgs`,
        ratio: ms / rawMs,
        target: '≤ 0.5× raw ws',
        met: ms / rawMs <= 0.5,
        notes:
          `socket open → last event received, in the client process; median of ${result.runs} (±${result.rme.toFixed(1)}%); ` +
          `${Math.round(options.events / (ms / 1000)).toLocaleString('en-US')} events/s`,
      };
    });
    return [...main, ...growth];
  } finally {
    await client.stop();
    await raw.close();
    await gateway.close();
  }
}

/**
 * Resume time against history length: one thread per length, filled through the gateway; the
 * minimal client resumes after the thread's first event; a raw ws server per length pushes as
 * many pre-serialized events. Rows per length, then the slope (ms per 1,000 more events) between
 * the smallest and largest.
 */
async function historyRows(
  client: BenchChild,
  gateway: GatewayFixture,
  histories: number[],
  options: { iterations: number; warmupIterations: number },
): Promise<BenchRow[]> {
  if (histories.length === 0) return [];
  const measured: Array<{ events: number; ms: number; rawMs: number }> = [];
  for (const events of histories) {
    const feed = new ThreadFeed(`resume-h${events}-u`, `resume-h${events}-t`);
    const first = gateway.transport.append(feed.next());
    const missed = Array.from({ length: events }, () => feed.next());
    for (const event of missed) await gateway.gateway.send(event);
    const payloads = missed.map((event) => JSON.stringify(event));
    const raw = await startRawServer((socket) => {
      for (const payload of payloads) socket.send(payload);
    });
    try {
      const resume = (kind: 'gateway' | 'raw') => async (): Promise<number> => {
        const { ms } = await client.call<{ ms: number }>(
          'resume',
          { kind, url: kind === 'raw' ? raw.url : gateway.url, userId: feed.userId, threadId: feed.threadId, after: kind === 'raw' ? undefined : first.cursor, expected: events },
          120_000,
        );
        return ms;
      };
      const results = await tinybenchRuns(
        [
          { name: 'raw', run: resume('raw') },
          { name: 'gateway', run: resume('gateway') },
        ],
        options,
      );
      measured.push({ events, ms: results.get('gateway')!.medianMs, rawMs: results.get('raw')!.medianMs });
    } finally {
      await raw.close();
    }
  }
  const rows: BenchRow[] = measured.map(({ events, ms, rawMs }) => ({
    suite: 'resume',
    case: `history length: replay ${events.toLocaleString('en-US')} retained events, minimal ws client`,
    value: ms,
    unit: 'ms',
    baseline: rawMs,
    baselineName: `raw ws, ${events.toLocaleString('en-US')} msgs`,
    ratio: ms / rawMs,
    notes: `median of ${options.iterations}; ${((ms * 1000) / events).toFixed(2)} µs per replayed event (raw ${((rawMs * 1000) / events).toFixed(2)})`,
  }));
  if (measured.length >= 2) {
    const a = measured[0]!;
    const b = measured[measured.length - 1]!;
    const slope = ((b.ms - a.ms) / (b.events - a.events)) * 1000;
    const rawSlope = ((b.rawMs - a.rawMs) / (b.events - a.events)) * 1000;
    rows.push({
      suite: 'resume',
      case: `history length: slope from ${a.events.toLocaleString('en-US')} to ${b.events.toLocaleString('en-US')} retained events (ms per 1,000 more)`,
      value: slope,
      unit: 'ms',
      baseline: rawSlope,
      baselineName: 'raw ws slope',
      ratio: slope / rawSlope,
      notes: 'linear in the events replayed: the log hands the retained tail as it is (no parse, no filter), the gateway writes it in batches of up to 256 Ki characters',
    });
  }
  return rows;
}
