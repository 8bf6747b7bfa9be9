import { BenchChild } from '../lib/child.js';
import { sleep } from '../lib/clock.js';
import type { BenchRow } from '../lib/report.js';

export interface MemoryOptions {
  /** Idle connection counts, one pair of rows (RSS, heap) each. */
  connections: number[];
}

interface Usage {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  connections: number;
}

interface PerConnection {
  rssKiB: number;
  heapKiB: number;
  externalKiB: number;
}

/** Connections opened and closed before the baseline reading, so that lazily built code and pools are not billed to the idle ones. */
const WARM_CONNECTIONS = 50;

/**
 * Memory per idle connection: a server process (fresh per case, `--expose-gc`) is read after full
 * collections before and after the client process opens N idle connections; per connection =
 * difference / N. Gateway connections are authenticated (token → user, one user per connection)
 * and subscribed to their own (empty) thread; the baseline is a bare `ws` server with the same
 * number of plain connections (silent), and beside it one whose connections exchanged the same
 * three opening messages (what ws and Node keep per socket after one message each way is not the
 * gateway's). Kernel socket buffers are not in RSS and not counted.
 */
export async function memorySuite(options: MemoryOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const most = Math.max(...options.connections);
  const client = await BenchChild.start('bench/clients/ws-clients.ts', { name: 'memory clients', files: most + WARM_CONNECTIONS + 256 });
  try {
    for (const count of options.connections) {
      const raw = await perConnection(client, 'raw', count);
      const handshake = await perConnection(client, 'raw-handshake', count);
      const gateway = await perConnection(client, 'gateway', count);
      const label = `${count.toLocaleString('en-US')} idle connections`;
      rows.push({
        suite: 'memory',
        case: `RSS per connection, ${label}`,
        value: gateway.rssKiB,
        unit: 'KiB',
        baseline: raw.rssKiB,
        baselineName: 'bare ws server',
        ratio: gateway.rssKiB / raw.rssKiB,
        target: '≤ 1.2× bare ws and ≤ 15 KiB',
        met: gateway.rssKiB / raw.rssKiB <= 1.2 && gateway.rssKiB <= 15,
        notes: `authenticated, subscribed, one user each; process RSS after GC, (after − before) / ${count}`,
      });
      rows.push({
        suite: 'memory',
        case: `RSS per connection, ${label}, vs bare ws that exchanged the same 3 messages`,
        value: gateway.rssKiB,
        unit: 'KiB',
        baseline: handshake.rssKiB,
        baselineName: 'bare ws server, hello / subscribe / subscribed exchanged',
        ratio: gateway.rssKiB / handshake.rssKiB,
        notes: `what receiving and sending one message each way costs ws and Node per socket: ${(handshake.rssKiB - raw.rssKiB).toFixed(2)} KiB RSS, ${(handshake.heapKiB - raw.heapKiB).toFixed(2)} KiB heap`,
      });
      rows.push({
        suite: 'memory',
        case: `JS heap per connection, ${label}`,
        value: gateway.heapKiB,
        unit: 'KiB',
        baseline: raw.heapKiB,
        baselineName: 'bare ws server',
        ratio: gateway.heapKiB / raw.heapKiB,
        target: '≤ 15 KiB',
        met: gateway.heapKiB <= 15,
        notes: `V8 heapUsed after GC; external (Buffers etc.): ${gateway.externalKiB.toFixed(2)} KiB (bare ws ${raw.externalKiB.toFixed(2)} KiB)`,
      });
    }
    return rows;
  } finally {
    await client.stop();
  }
}

async function perConnection(client: BenchChild, kind: 'gateway' | 'raw' | 'raw-handshake', count: number): Promise<PerConnection> {
  const server = await BenchChild.start('bench/servers/memory-server.ts', {
    name: `memory ${kind} server`,
    execArgv: ['--expose-gc'],
    files: count + WARM_CONNECTIONS + 256,
  });
  try {
    const { url } = await server.call<{ url: string }>('start', { kind, maxConnections: count + WARM_CONNECTIONS + 16 });
    await client.call('open', { name: 'warm', kind, url, prefix: `warm-${kind}`, count: WARM_CONNECTIONS });
    await client.call('close', { name: 'warm' });
    await sleep(200);
    const before = await server.call<Usage>('measure');
    await client.call('open', { name: 'idle', kind, url, prefix: `idle-${kind}`, count, parallel: 200 }, 300_000);
    await sleep(300);
    const after = await server.call<Usage>('measure');
    await client.call('close', { name: 'idle' }, 300_000);
    if (after.connections !== count) throw new Error(`memory ${kind}: the server holds ${after.connections} connections, expected ${count}`);
    await server.call('stop');
    const kib = (bytes: number): number => bytes / count / 1024;
    return {
      rssKiB: kib(after.rss - before.rss),
      heapKiB: kib(after.heapUsed - before.heapUsed),
      externalKiB: kib(after.external - before.external),
    };
  } finally {
    await server.stop();
  }
}
