/**
 * What one idle connection holds: heap snapshots of a memory-suite server (a fresh process, after
 * full collections) before and after the client opens N authenticated, subscribed connections,
 * summed by constructor per connection. Run it compiled (under tsx every closure carries a
 * `__name` property store): after `npm run bench` has built bench/.build,
 * `AGENTWIRE_BENCH_BUILD=1 node bench/.build/heap-per-connection.js [N=2000] [gateway|raw]` (snapshots in /tmp).
 */
import { readFileSync } from 'node:fs';
import { BenchChild } from './lib/child.js';
import { sleep } from './lib/clock.js';

const count = Number(process.argv[2] ?? 2000);
const kind = (process.argv[3] ?? 'gateway') as 'gateway' | 'raw';
/** `spaces`: no snapshot; RSS and each V8 space's committed and used bytes per connection instead (where the RSS goes). */
const spacesOnly = process.argv[4] === 'spaces';

interface Measured {
  rss: number;
  heapUsed: number;
  spaces: Record<string, { committed: number; used: number }>;
  status: Record<string, number>;
}

function printSpaces(before: Measured, after: Measured): void {
  const kib = (bytes: number): string => (bytes / count / 1024).toFixed(3).padStart(8);
  console.log(`${kind}: per idle connection (${count} connections), KiB`);
  console.log(`  rss ${kib(after.rss - before.rss)}   heapUsed ${kib(after.heapUsed - before.heapUsed)}`);
  for (const key of Object.keys(after.status)) console.log(`  ${key.padEnd(8)} ${kib(after.status[key]! - (before.status[key] ?? 0))}`);
  let committed = 0;
  for (const [name, space] of Object.entries(after.spaces)) {
    const was = before.spaces[name] ?? { committed: 0, used: 0 };
    committed += space.committed - was.committed;
    console.log(`  ${name.padEnd(28)} committed ${kib(space.committed - was.committed)}  used ${kib(space.used - was.used)}`);
  }
  console.log(`  V8 committed ${kib(committed)}; RssAnon − V8 committed ${kib((after.status.RssAnon ?? 0) - (before.status.RssAnon ?? 0) - committed)}`);
}

function byConstructor(file: string): Map<string, [number, number]> {
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as { snapshot: { meta: { node_fields: string[]; node_types: string[][] } }; nodes: number[]; strings: string[] };
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0]!;
  const [ti, ni, si] = ['type', 'name', 'self_size'].map((name) => fields.indexOf(name)) as [number, number, number];
  const totals = new Map<string, [number, number]>();
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    const type = types[snapshot.nodes[i + ti]!]!;
    const name = type.includes('string') ? '(string)' : type === 'code' ? '(code)' : snapshot.strings[snapshot.nodes[i + ni]!]!.slice(0, 60);
    const key = `${type}: ${name}`;
    const total = totals.get(key) ?? [0, 0];
    total[0]++;
    total[1] += snapshot.nodes[i + si]!;
    totals.set(key, total);
  }
  return totals;
}

const client = await BenchChild.start('bench/clients/ws-clients.ts', { name: 'clients', files: count + 512 });
const server = await BenchChild.start('bench/servers/memory-server.ts', { name: 'server', execArgv: ['--expose-gc'], files: count + 512 });
try {
  const { url } = await server.call<{ url: string }>('start', { kind, maxConnections: count + 100 });
  await client.call('open', { name: 'warm', kind, url, prefix: 'warm', count: 50, parallel: Number(process.env.WARM_PARALLEL ?? 100) });
  await client.call('close', { name: 'warm' });
  await sleep(200);
  if (spacesOnly) {
    const before = await server.call<Measured>('spaces');
    await client.call('open', { name: 'idle', kind, url, prefix: 'idle', count, parallel: 200 }, 300_000);
    await sleep(300);
    printSpaces(before, await server.call<Measured>('spaces'));
    await server.call('stop');
    await server.stop();
    await client.stop();
    process.exit(0);
  }
  const before = (await server.call<{ file: string }>('snapshot', { file: `/tmp/heap-${kind}-before.heapsnapshot` })).file;
  await client.call('open', { name: 'idle', kind, url, prefix: 'idle', count, parallel: 200 }, 300_000);
  await sleep(300);
  const after = (await server.call<{ file: string }>('snapshot', { file: `/tmp/heap-${kind}-after.heapsnapshot` })).file;
  const a = byConstructor(before);
  const rows = [...byConstructor(after)].map(([key, [n, size]]) => {
    const [n0, size0] = a.get(key) ?? [0, 0];
    return { key, count: (n - n0) / count, bytes: (size - size0) / count };
  });
  rows.sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((sum, row) => sum + row.bytes, 0);
  console.log(`${kind}: ${total.toFixed(0)} B of heap per idle connection (${count} connections)`);
  for (const row of rows.slice(0, 45)) console.log(`${row.bytes.toFixed(1).padStart(8)} B  ${row.count.toFixed(2).padStart(6)} ×  ${row.key}`);
  await server.call('stop');
} finally {
  await server.stop();
  await client.stop();
}
process.exit(0);
