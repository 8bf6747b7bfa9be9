import { BenchChild } from '../lib/child.js';
import { ThreadFeed } from '../lib/events.js';
import { tinybenchRuns } from '../lib/measure.js';
import type { BenchRow } from '../lib/report.js';
import { startGateway, startRawServer } from '../lib/servers.js';

export interface ResumeOptions {
  /** Missed events to replay (the MemoryTransport retains 10,000 per thread by default). */
  events: number;
  iterations: number;
  warmupIterations: number;
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
  const gateway = await startGateway({}, { maxEventsPerThread: Math.max(10_000, options.events) });
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
    return (['sdk', 'gateway'] as const).map((name) => {
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
  } finally {
    await client.stop();
    await raw.close();
    await gateway.close();
  }
}
