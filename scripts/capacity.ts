/**
 * Capacity model: `npm run capacity` (tsx scripts/capacity.ts). Reads the per-unit costs the
 * bench measured (bench/results/latest.json, or `--results FILE`) and extrapolates them to
 * 10k / 100k / 1M concurrent users at a stated event rate: gateway and worker processes, Redis
 * shards for the log, the run queue's one shard, bytes on the wire, and the first bottleneck.
 * docs/scaling.md explains the model; its tables are this script's `--markdown` output.
 *
 *   --results FILE     bench results (default bench/results/latest.json)
 *   --users 10000,100000,1000000
 *   --active 0.1       fraction of connected users with a run in progress
 *   --rate 5           events per second of a run in progress
 *   --run-seconds 30   mean run duration
 *   --slots 50         runs one worker process holds at once (agents waiting on a model)
 *   --redis-util 0.5   target utilization of one Redis (single-threaded) core
 *   --node-util 0.6    target utilization of one gateway or worker core
 *   --rss-budget-gib 4 RSS one gateway process may use for its connections
 *   --markdown         print Markdown tables (docs/scaling.md) instead of plain text
 *   --update-docs      write the Markdown tables into docs/scaling.md (between its capacity markers)
 *
 * Exits 1 when a figure it needs is missing from the results (run `npm run bench` first).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Row {
  suite: string;
  case: string;
  value: number;
  unit: string;
  baseline?: number;
  cpuUs?: number;
  skipped?: string;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const num = (name: string, fallback: number): number => {
  const value = flag(name);
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`--${name} must be a positive number, got ${value}`);
  return parsed;
};

const file = flag('results') ?? join(ROOT, 'bench', 'results', 'latest.json');
const results = JSON.parse(readFileSync(file, 'utf8')) as { rows: Row[]; machine?: { cpu?: string; date?: string }; quick?: boolean };
const missing: string[] = [];
/** A measured figure: the row's value (or its `cpuUs` / `baseline`), by suite and case. */
function measured(suite: string, name: string, field: 'value' | 'cpuUs' | 'baseline' = 'value'): number {
  const row = results.rows.find((r) => r.suite === suite && r.case === name);
  const value = row?.[field];
  if (!row || row.skipped !== undefined || typeof value !== 'number' || !Number.isFinite(value)) {
    missing.push(`${suite} | ${name}${field === 'value' ? '' : ` (${field})`}`);
    return NaN;
  }
  return value;
}

const assume = {
  users: (flag('users') ?? '10000,100000,1000000').split(',').map(Number),
  active: num('active', 0.1),
  rate: num('rate', 5),
  runSeconds: num('run-seconds', 30),
  slots: num('slots', 50),
  redisUtil: num('redis-util', 0.5),
  nodeUtil: num('node-util', 0.6),
  rssBudgetGiB: num('rss-budget-gib', 4),
};

const costs = {
  /** Gateway CPU per delivered event, one event per connection per tick (the common case at a few events/s per user). */
  gatewayUsPerEvent: measured('ws-fanout', 'gateway, batching on, 1,000 connections, 1 event/conn/tick', 'cpuUs'),
  /** The gateway's Redis tail: reading and parsing one event for its subscribers. */
  tailUsPerEvent: measured('runs', 'subscribed process CPU per further event of a run (RedisEventLog tail)'),
  rssKiBPerConnection: measured('memory', 'RSS per connection, 10,000 idle connections'),
  redisUsPerEvent: measured('runs', 'Redis CPU per further event of a run'),
  redisBytesPerEvent: measured('runs', 'Redis bytes in + out per further event of a run (one subscriber)'),
  redisCommandsPerEvent: measured('runs', 'Redis commands per further event of a run'),
  redisUsPerRun: measured('runs', 'Redis CPU per run (2 events)'),
  redisUsPerBareJob: measured('runs', 'Redis CPU per run (2 events)', 'baseline'),
  redisBytesPerRun: measured('runs', 'Redis bytes in + out per run (2 events, one subscriber)'),
  redisCommandsPerRun: measured('runs', 'Redis commands per run (2 events; scripts count their calls)'),
  workerUsPerRun: measured('runs', 'worker process CPU per run (2 events, trivial agent)'),
  workerUsPerEvent: measured('runs', 'worker process CPU per further event of a run'),
  submitUsPerRun: measured('runs', 'submitting + subscribed process CPU per run (2 events)'),
  runsPerSecond: measured('runs', 'BullMQRunQueue submit → agent_completed received, 2 worker processes × 16'),
  bareJobsPerSecond: measured('runs', 'BullMQRunQueue submit → agent_completed received, 2 worker processes × 16', 'baseline'),
};
if (missing.length > 0) {
  console.error(`capacity: ${file} lacks figures (run \`npm run bench\`):\n  ${missing.join('\n  ')}`);
  process.exit(1);
}

/** The queue's own Redis cost per run: a run's cost without its two events (they are the log's). */
const queueUsPerRun = costs.redisUsPerRun - 2 * costs.redisUsPerEvent;
const queueBytesPerRun = costs.redisBytesPerRun - 2 * costs.redisBytesPerEvent;

interface Scale {
  users: number;
  eventsPerSecond: number;
  runsPerSecond: number;
  activeRuns: number;
  gateways: number;
  gatewayBound: 'cpu' | 'memory';
  workers: number;
  workerBound: 'slots' | 'cpu';
  logShards: number;
  queueUtil: number;
  queuePartitions: number;
  redisMBps: number;
  gatewayRssGiB: number;
}

function scale(users: number): Scale {
  const activeRuns = users * assume.active;
  const eventsPerSecond = activeRuns * assume.rate;
  const runsPerSecond = activeRuns / assume.runSeconds;
  // Gateways: one core each; each event is read from Redis once per gateway holding a subscriber
  // of its thread (one here) and written to that subscriber's connection.
  const gatewayCores = (eventsPerSecond * (costs.gatewayUsPerEvent + costs.tailUsPerEvent) + runsPerSecond * costs.submitUsPerRun) / (1e6 * assume.nodeUtil);
  const perGatewayByMemory = (assume.rssBudgetGiB * 1024 * 1024) / costs.rssKiBPerConnection;
  const byMemory = users / perGatewayByMemory;
  const gateways = Math.max(1, Math.ceil(Math.max(gatewayCores, byMemory)));
  // Workers: slots (runs waiting on a model) or the machinery's CPU, whichever needs more.
  const bySlots = activeRuns / assume.slots;
  const workerCores = (eventsPerSecond * costs.workerUsPerEvent + runsPerSecond * costs.workerUsPerRun) / (1e6 * assume.nodeUtil);
  const workers = Math.max(1, Math.ceil(Math.max(bySlots, workerCores)));
  // Redis: the log shards by thread (slot groups); the queue is one hash tag, so one shard.
  const logShards = Math.max(1, Math.ceil((eventsPerSecond * costs.redisUsPerEvent) / (1e6 * assume.redisUtil)));
  const queueUtil = (runsPerSecond * queueUsPerRun) / 1e6;
  return {
    users,
    eventsPerSecond,
    runsPerSecond,
    activeRuns,
    gateways,
    gatewayBound: byMemory > gatewayCores ? 'memory' : 'cpu',
    workers,
    workerBound: bySlots >= workerCores ? 'slots' : 'cpu',
    logShards,
    queueUtil,
    queuePartitions: Math.max(1, Math.ceil(queueUtil / assume.redisUtil)),
    redisMBps: (eventsPerSecond * costs.redisBytesPerEvent + runsPerSecond * queueBytesPerRun) / 1e6,
    gatewayRssGiB: (users * costs.rssKiBPerConnection) / (1024 * 1024),
  };
}

/** Where one instance of each part saturates (concurrent users), under the same assumptions. */
function saturation(): Array<{ part: string; users: number }> {
  const perUserEvents = assume.active * assume.rate;
  const perUserRuns = assume.active / assume.runSeconds;
  return [
    { part: 'one gateway core (CPU)', users: (1e6 * assume.nodeUtil) / (perUserEvents * (costs.gatewayUsPerEvent + costs.tailUsPerEvent) + perUserRuns * costs.submitUsPerRun) },
    { part: `one gateway process (${assume.rssBudgetGiB} GiB RSS)`, users: (assume.rssBudgetGiB * 1024 * 1024) / costs.rssKiBPerConnection },
    { part: `one worker process (${assume.slots} slots)`, users: assume.slots / assume.active },
    { part: 'one Redis for log + queue', users: (1e6 * assume.redisUtil) / (perUserEvents * costs.redisUsPerEvent + perUserRuns * queueUsPerRun) },
    { part: 'the run queue (one hash tag = one shard)', users: (1e6 * assume.redisUtil) / (perUserRuns * queueUsPerRun) },
  ].sort((a, b) => a.users - b.users);
}

const updateDocs = args.includes('--update-docs');
const markdown = updateDocs || args.includes('--markdown');
const out: string[] = [];
const print = (text: string): void => void out.push(text);
const fmt = (value: number, digits = 0): string => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const table = (header: string[], rows: string[][]): string =>
  markdown
    ? [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n')
    : [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(Math.max(header[i]!.length, ...rows.map((r) => r[i]!.length)))).join('  ')).join('\n');

const source = `${file.startsWith(ROOT) ? file.slice(ROOT.length) : file}${results.machine?.date ? ` (${results.machine.date}${results.machine.cpu ? `, ${results.machine.cpu}` : ''})` : ''}${results.quick ? ' — a --quick run: figures are not meant to be quoted' : ''}`;
print(`Measured per-unit costs, from ${source}:\n`);
print(
  table(
    ['cost', 'measured'],
    [
      ['gateway CPU per delivered event (WebSocket, 1,000 connections, 1 event/conn/tick)', `${fmt(costs.gatewayUsPerEvent, 1)} µs`],
      ['gateway CPU per event read from Redis (RedisEventLog tail)', `${fmt(costs.tailUsPerEvent, 1)} µs`],
      ['gateway RSS per idle connection (10,000 connections)', `${fmt(costs.rssKiBPerConnection, 1)} KiB`],
      ['Redis CPU / commands / bytes per event (append + one subscriber)', `${fmt(costs.redisUsPerEvent, 1)} µs / ${fmt(costs.redisCommandsPerEvent, 1)} / ${fmt(costs.redisBytesPerEvent)} B`],
      ['Redis CPU / commands / bytes per run (queue + its 2 events)', `${fmt(costs.redisUsPerRun)} µs / ${fmt(costs.redisCommandsPerRun)} / ${fmt(costs.redisBytesPerRun)} B`],
      ['queue overhead per run in Redis (run − its 2 events; bare BullMQ job)', `${fmt(queueUsPerRun)} µs, ${fmt(queueBytesPerRun)} B (bare BullMQ: ${fmt(costs.redisUsPerBareJob)} µs)`],
      ['worker CPU per run / per further event (agentwire + BullMQ, trivial agent)', `${fmt(costs.workerUsPerRun)} µs / ${fmt(costs.workerUsPerEvent, 1)} µs`],
      ['gateway CPU per submitted run (submit + receiving its 2 events)', `${fmt(costs.submitUsPerRun)} µs`],
      ['runs/s end to end, 2 workers × 16 slots (bare BullMQ jobs/s)', `${fmt(costs.runsPerSecond)} (${fmt(costs.bareJobsPerSecond)})`],
    ],
  ),
);
print(
  `\nAssumed: ${fmt(assume.active * 100)} % of connected users have a run in progress, ${fmt(assume.rate)} events/s each, runs last ${fmt(assume.runSeconds)} s ` +
    `(${fmt(assume.active * assume.rate, 2)} events/s and ${fmt(assume.active / assume.runSeconds, 4)} runs/s per connected user); one connection per user and one subscriber per thread; ` +
    `${fmt(assume.slots)} runs per worker process; Redis at ≤ ${fmt(assume.redisUtil * 100)} % of its core, gateways and workers at ≤ ${fmt(assume.nodeUtil * 100)} %, ` +
    `${fmt(assume.rssBudgetGiB)} GiB RSS per gateway for connections. The agents' own CPU (model calls, tools) is not in the worker figures.\n`,
);
const scales = assume.users.map(scale);
print(
  table(
    ['concurrent users', 'events/s', 'runs/s', 'runs in progress', 'gateway processes', 'worker processes', 'Redis shards (log)', 'queue shard load', 'Redis traffic', 'gateway RSS'],
    scales.map((s) => [
      fmt(s.users),
      fmt(s.eventsPerSecond),
      fmt(s.runsPerSecond),
      fmt(s.activeRuns),
      `${fmt(s.gateways)} (${s.gatewayBound})`,
      `${fmt(s.workers)} (${s.workerBound})`,
      fmt(s.logShards),
      `${fmt(s.queueUtil * 100)} %${s.queuePartitions > 1 ? ` → ${fmt(s.queuePartitions)} queues` : ''}`,
      `${fmt(s.redisMBps, 1)} MB/s`,
      `${fmt(s.gatewayRssGiB, 1)} GiB`,
    ]),
  ),
);
print('\nWhere one instance of each part saturates (concurrent users), smallest first:\n');
print(table(['part', 'saturates at'], saturation().map((s) => [s.part, `${fmt(s.users)} users`])));

if (updateDocs) {
  const doc = join(ROOT, 'docs', 'scaling.md');
  const text = readFileSync(doc, 'utf8');
  const begin = '<!-- capacity:begin (npm run capacity -- --update-docs) -->';
  const end = '<!-- capacity:end -->';
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${doc} has no capacity markers`);
  writeFileSync(doc, `${text.slice(0, from + begin.length)}\n${out.join('\n')}\n${text.slice(to)}`);
  console.log(`capacity: wrote ${doc}`);
} else {
  console.log(out.join('\n'));
}
