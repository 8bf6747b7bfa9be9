/**
 * The bench runner (started compiled by bench/run.ts, i.e. `npm run bench`): every figure measured
 * against a raw baseline of the same machine in the same run, printed as a table and written to
 * bench/results/. `--quick` runs a smoke-sized version of every suite (used by the test suite to
 * check that every row prints; its figures are not meant to be quoted). `--only=suite1,suite2`
 * runs some suites.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './lib/root.js';
import { machine, renderTable, type BenchRow } from './lib/report.js';
import { inProcessSuite } from './suites/in-process.js';
import { latencySuite } from './suites/latency.js';
import { logHeapSuite } from './suites/log-heap.js';
import { memorySuite } from './suites/memory.js';
import { redisSuite, type RedisOptions } from './suites/redis.js';
import { resumeSuite } from './suites/resume.js';
import { runsSuite } from './suites/runs.js';
import { wsFanoutSuite, type FanoutOptions } from './suites/ws-fanout.js';

const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');

/** Suites in the order they run; each has a quick (smoke) and a full configuration. */
const suites: Array<{ name: string; run: () => Promise<BenchRow[]> }> = [
  {
    name: 'in-process',
    run: () =>
      inProcessSuite(
        quick ? { eventsPerIteration: 2_000, concurrency: [1, 100, 1000], timeMs: 50, iterations: 5 } : { eventsPerIteration: 100_000, concurrency: [1, 100, 1000], timeMs: 3_000, iterations: 10 },
      ),
  },
  {
    name: 'log-heap',
    run: async () => logHeapSuite(quick ? { events: 10_000, threads: 10 } : { events: 100_000, threads: 10 }),
  },
  {
    name: 'ws-fanout',
    run: () =>
      wsFanoutSuite(
        quick
          ? { connections: [1, 100, 1000], perTick: [10, 1], eventsPerRun: 5_000, iterations: 1, warmupIterations: 0, sdkConnections: 100, wideConnections: 2_000, wideEventsPerRun: 4_000 }
          : { connections: [1, 100, 1000], perTick: [10, 1], eventsPerRun: 100_000, iterations: 3, warmupIterations: 1, sdkConnections: 1000, wideConnections: 10_000, wideEventsPerRun: 100_000 },
        fanoutOverrides(),
      ),
  },
  {
    name: 'latency',
    run: () =>
      latencySuite(
        quick
          ? { connections: 1000, eventsPerSecond: 10_000, warmupMs: 300, measureMs: 1_000, repetitions: 1 }
          : { connections: 1000, eventsPerSecond: 10_000, warmupMs: 1_000, measureMs: 2_000, repetitions: 5 },
      ),
  },
  {
    name: 'memory',
    run: () => memorySuite(quick ? { connections: [500, 1000] } : { connections: [1000, 10_000] }),
  },
  {
    name: 'resume',
    run: () =>
      resumeSuite(
        quick
          ? { events: 10_000, iterations: 2, warmupIterations: 1, histories: [100, 1_000, 10_000], historyIterations: 1 }
          : { events: 10_000, iterations: 9, warmupIterations: 3, histories: [1_000, 10_000, 100_000], historyIterations: 5 },
      ),
  },
  {
    name: 'redis',
    run: () =>
      redisSuite({
        ...(quick
          ? { concurrency: [1, 16, 256], events: { 1: 500, 16: 2_000, 256: 5_000 }, iterations: 1, warmupIterations: 1, connections: 100 }
          : { concurrency: [1, 16, 256], events: { 1: 10_000, 16: 50_000, 256: 100_000 }, iterations: 3, warmupIterations: 1, connections: 100 }),
        ...redisOverrides(),
      }),
  },
  {
    name: 'runs',
    run: () =>
      runsSuite(
        quick
          ? { runs: 64, workers: 2, concurrency: 16, thinks: 30, threads: 16, iterations: 1, warmupIterations: 1 }
          : { runs: 1_000, workers: 2, concurrency: 16, thinks: 20, threads: 100, iterations: 3, warmupIterations: 1 },
      ),
  },
];

/**
 * Profiling one fan-out case without the rest: `BENCH_FANOUT=connections:perTick:variants`, e.g.
 * `BENCH_FANOUT=1000:1:raw,on` (variants: raw, rawb, sio, on, off; fewer than raw+rawb+on prints
 * plain lines instead of rows).
 */
function fanoutOverrides(): Partial<FanoutOptions> {
  const spec = process.env.BENCH_FANOUT;
  if (!spec) return {};
  const [connections, perTick, variants] = spec.split(':');
  return {
    ...(connections && { connections: connections.split(',').map(Number) }),
    ...(perTick && { perTick: perTick.split(',').map(Number) }),
    ...(variants && { variants: variants.split(',') }),
    sdkConnections: 0,
    wideConnections: Number(process.env.BENCH_WIDE ?? 0),
  };
}

/**
 * Profiling or A/B-timing some Redis rows without the rest: `BENCH_REDIS=runs[:iterations]`, e.g.
 * `BENCH_REDIS=1` (the 1-run rows only) or `BENCH_REDIS=1,16:5` (5 measured runs each).
 */
function redisOverrides(): Partial<RedisOptions> {
  const spec = process.env.BENCH_REDIS;
  if (!spec) return {};
  const [runs, iterations] = spec.split(':');
  return {
    ...(runs && { concurrency: runs.split(',').map(Number) }),
    ...(iterations && { iterations: Number(iterations) }),
  };
}

/** Rows of an earlier results file for the suites not run now, each marked with the date it was measured. */
function keptRows(file: string, ran: Set<string>): BenchRow[] {
  if (!existsSync(file)) return [];
  const earlier = JSON.parse(readFileSync(file, 'utf8')) as { machine?: { date?: string }; rows?: Array<BenchRow & { measured?: string }> };
  return (earlier.rows ?? []).filter((row) => !ran.has(row.suite)).map((row) => ({ ...row, measured: row.measured ?? earlier.machine?.date }));
}

async function main(): Promise<void> {
  const unknown = only?.filter((name) => !suites.some((suite) => suite.name === name)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown suite(s) ${unknown.join(', ')}; known: ${suites.map((s) => s.name).join(', ')}`);
  const info = machine();
  const compiled = process.env.AGENTWIRE_BENCH_BUILD !== undefined;
  const load = loadavg().map((l) => l.toFixed(2));
  console.log(
    `agentwire bench${quick ? ' (quick)' : ''}${compiled ? '' : ' (under tsx)'}: ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, Node ${info.node}, ${info.platform}; load average ${load.join(' ')}`,
  );
  const rows: BenchRow[] = [];
  const timings: Record<string, number> = {};
  for (const suite of suites) {
    if (only && !only.includes(suite.name)) continue;
    const started = performance.now();
    process.stdout.write(`… ${suite.name}`);
    rows.push(...(await suite.run()));
    timings[suite.name] = Math.round(performance.now() - started);
    process.stdout.write(` (${(timings[suite.name]! / 1000).toFixed(1)} s)\n`);
  }
  const loadAfter = loadavg().map((l) => l.toFixed(2));
  console.log('');
  console.log(renderTable(rows));
  console.log(`\nload average at the end: ${loadAfter.join(' ')}`);
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, quick ? 'quick.json' : 'latest.json');
  // `--only` replaces the rows of the suites it ran and keeps the others' (with when they were measured).
  const kept = only ? keptRows(file, new Set(only)) : [];
  const output = { machine: info, quick, compiled, loadAverage: { start: load.map(Number), end: loadAfter.map(Number) }, suiteMs: timings, rows: [...kept, ...rows] };
  writeFileSync(file, JSON.stringify(output, null, 2) + '\n');
  console.log(`results: ${file}`);
}

main().then(
  // Suites close what they open; exit anyway so that nothing left behind can hold the bench open.
  () => process.exit(process.exitCode ?? 0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
