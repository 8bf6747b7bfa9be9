import { QueueEvents, Queue } from 'bullmq';
import { nanoid } from 'nanoid';
import { createClient } from 'redis';
import { AgentBridge, MemoryTransport, generateRunId, type LogEntry, type LogListener } from '../../src/index.js';
import { BenchAgent } from '../lib/bench-agent.js';
import { MemoryRunQueue } from '../../src/runs/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { deleteKeysWithPrefix, probeRedis } from '../../src/transport/redis/admin.js';
import { RedisEventLog } from '../../src/transport/redis/index.js';
import { BenchChild } from '../lib/child.js';
import { nowMs } from '../lib/clock.js';
import { collectGarbage } from '../lib/measure.js';
import { median, type BenchRow } from '../lib/report.js';

export interface RunsOptions {
  /** Runs per measured loop. */
  runs: number;
  /** Worker processes, and runs each executes at once. */
  workers: number;
  concurrency: number;
  /** Thoughts per run of the per-event cost loop (its runs have `thinks + 2` events). */
  thinks: number;
  /** Threads (one user each) the runs are spread over. */
  threads: number;
  iterations: number;
  warmupIterations: number;
}

const SUITE = 'runs';

/** One run (or job) of a closed loop: when it was submitted, its first event and its end arrived. */
interface Sample {
  startedMs: number;
  endedMs: number;
}

/**
 * A closed loop: `window` runs outstanding, a new one submitted as soon as one ends, `total` in
 * all. Returns the loop's duration (first submit → last end received) and each run's submit →
 * first event. `submit(i, first, end)` submits run i and calls `first()` / `end()` when the
 * receiving side got its first and its last event.
 */
async function closedLoop(total: number, window: number, submit: (i: number, first: () => void, end: () => void) => Promise<void>): Promise<{ ms: number; firstMs: number[] }> {
  const firstMs: number[] = [];
  let next = 0;
  const t0 = nowMs();
  const one = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      const sent = nowMs();
      let resolveEnd!: () => void;
      const ended = new Promise<void>((resolve) => (resolveEnd = resolve));
      await submit(
        i,
        () => firstMs.push(nowMs() - sent),
        () => resolveEnd(),
      );
      await ended;
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, total) }, one));
  return { ms: nowMs() - t0, firstMs };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** What Redis did between two `INFO` snapshots: commands (those inside scripts included), CPU µs, bytes in + out. */
interface RedisCost {
  commands: number;
  cpuUs: number;
  bytes: number;
}

async function redisCounters(client: { sendCommand(args: string[]): Promise<unknown> }): Promise<RedisCost> {
  const info = String(await client.sendCommand(['INFO', 'ALL']));
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return {
    commands: field('total_commands_processed'),
    cpuUs: (field('used_cpu_sys') + field('used_cpu_user')) * 1e6,
    bytes: field('total_net_input_bytes') + field('total_net_output_bytes'),
  };
}

class Entries implements LogListener {
  constructor(private readonly onEntry: (entry: LogEntry) => void) {}
  onEntries(entries: readonly LogEntry[]): void {
    for (const entry of entries) this.onEntry(entry);
  }
}


/**
 * Runs through the run queue, end to end, against bare BullMQ on the same Redis in the same run.
 *
 * - agentwire: this process is the gateway: `BullMQRunQueue.submit` (admission, run state, the
 *   BullMQ job), and a `RedisEventLog` subscriber per thread receives the events. Worker child
 *   processes (`BullMQRunQueue.serve`, lease, claim, finish) run a trivial agent through an
 *   `AgentBridge` on `RedisStreamsTransport`: `agent_started`, then `agent_completed`.
 * - bare BullMQ: `Queue.add` here, `Worker` child processes whose processor returns at once,
 *   and `QueueEvents` here receives `active` and `completed` (BullMQ's own notification path).
 *
 * Both as a closed loop with as many runs outstanding as the workers' slots (workers ×
 * concurrency), so the figures are the machinery's, not a backlog's: runs/s = runs / (first
 * submit → last end received); latency = submit → first event received (agent_started /
 * `active`). Redis's own counters (`INFO`) around each loop give commands, CPU and bytes per run;
 * a second agentwire loop with `thinks` more events per run gives the cost of one more event.
 * The in-memory queue runs the same loop in this process (MemoryTransport subscriber).
 */
export async function runsSuite(options: RunsOptions): Promise<BenchRow[]> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const shape = `${options.workers} worker processes × ${options.concurrency}`;
  const window = options.workers * options.concurrency;
  const rows: BenchRow[] = [];
  const memory = await memoryRows(options, window);
  const names = {
    e2e: `BullMQRunQueue submit → agent_completed received, ${shape}`,
    p50: `BullMQRunQueue submit → agent_started received p50, ${shape}`,
    p99: `BullMQRunQueue submit → agent_started received p99, ${shape}`,
    commands: 'Redis commands per run (2 events; scripts count their calls)',
    cpu: 'Redis CPU per run (2 events)',
    bytes: 'Redis bytes in + out per run (2 events, one subscriber)',
    eventCommands: 'Redis commands per further event of a run',
    eventCpu: 'Redis CPU per further event of a run',
    eventBytes: 'Redis bytes in + out per further event of a run (one subscriber)',
    workerCpu: 'worker process CPU per run (2 events, trivial agent)',
    workerEventCpu: 'worker process CPU per further event of a run',
    gatewayCpu: 'submitting + subscribed process CPU per run (2 events)',
    gatewayEventCpu: 'subscribed process CPU per further event of a run (RedisEventLog tail)',
  };
  const units: Record<keyof typeof names, string> = {
    e2e: 'runs/s',
    p50: 'ms',
    p99: 'ms',
    commands: 'commands',
    cpu: 'µs',
    bytes: 'B',
    eventCommands: 'commands',
    eventCpu: 'µs',
    eventBytes: 'B',
    workerCpu: 'µs',
    workerEventCpu: 'µs',
    gatewayCpu: 'µs',
    gatewayEventCpu: 'µs',
  };
  if (!(await probeRedis(url, 1_000)).ok) {
    return [...(Object.keys(names) as Array<keyof typeof names>).map((key) => ({ suite: SUITE, case: names[key], value: NaN, unit: units[key], skipped: 'no Redis' })), ...memory];
  }
  const keyPrefix = `agentwire-bench:${nanoid(8)}:`;
  const queueName = 'bench';
  const bullPrefix = `${keyPrefix}bare`;
  const children: BenchChild[] = [];
  const info = createClient({ url, name: 'bench-runs-info' });
  info.on('error', () => undefined);
  const queue = new BullMQRunQueue({ url, keyPrefix, queueName, maxRunsPerUser: 1_000_000, maxQueued: 1_000_000 });
  const log = new RedisEventLog({ url, keyPrefix });
  const bareClient = createClient({ url, name: 'bench-bare-queue' });
  bareClient.on('error', () => undefined);
  const bare = new Queue('bare', { connection: bareClient as never, prefix: bullPrefix });
  const eventsClient = createClient({ url, name: 'bench-bare-events' });
  eventsClient.on('error', () => undefined);
  const bareEvents = new QueueEvents('bare', { connection: eventsClient as never, prefix: bullPrefix });
  const subscriptions: Array<{ close(): void }> = [];
  try {
    await info.connect();
    if (!(await queue.connect(5_000))) throw new Error('runs: the queue did not connect');
    for (let i = 0; i < options.workers; i++) {
      for (const mode of ['agentwire', 'bare'] as const) {
        const child = await BenchChild.start('bench/workers/runs-worker.ts', { name: `runs ${mode} worker ${i}` });
        children.push(child);
        await child.call('start', { mode, url, keyPrefix: mode === 'bare' ? bullPrefix : keyPrefix, queueName: mode === 'bare' ? 'bare' : queueName, concurrency: options.concurrency });
      }
    }
    await bareEvents.waitUntilReady();

    // agentwire: one subscriber per thread; a run's waiters by run id.
    const waiting = new Map<string, { first: () => void; end: () => void }>();
    const onEntry = (entry: LogEntry): void => {
      const event = entry.event;
      const waiter = waiting.get(event.runId);
      if (!waiter) return;
      if (event.type === 'agent_started') waiter.first();
      else if (event.type === 'agent_completed') {
        waiting.delete(event.runId);
        waiter.end();
      }
    };
    for (let t = 0; t < options.threads; t++) {
      const result = await log.subscribe({ userId: `u${t}`, threadId: `t${t}` }, new Entries(onEntry));
      if (result.status !== 'subscribed') throw new Error(`runs: subscribe t${t}: ${result.status}`);
      subscriptions.push(result.subscription);
    }
    const agentwireLoop = (thinks: number) =>
      closedLoop(options.runs, window, async (i, first, end) => {
        const t = i % options.threads;
        const runId = generateRunId(`t${t}`);
        waiting.set(runId, { first, end });
        await queue.submit('bench', { thinks }, { userId: `u${t}`, threadId: `t${t}`, runId });
      });

    // bare BullMQ: its QueueEvents, by job id (ids chosen here, so a waiter exists before the job).
    const bareWaiting = new Map<string, { first: () => void; end: () => void }>();
    bareEvents.on('active', ({ jobId }) => bareWaiting.get(jobId)?.first());
    bareEvents.on('completed', ({ jobId }) => {
      const waiter = bareWaiting.get(jobId);
      bareWaiting.delete(jobId);
      waiter?.end();
    });
    let jobCounter = 0;
    const bareLoop = () =>
      closedLoop(options.runs, window, async (_i, first, end) => {
        const jobId = `j${jobCounter++}`;
        bareWaiting.set(jobId, { first, end });
        await bare.add('bench', { thinks: 0 }, { jobId, attempts: 1, removeOnComplete: true, removeOnFail: true });
      });

    // Children alternate: agentwire worker, bare worker, … (started in that order above).
    const cpuOf = async (list: BenchChild[]) => (await Promise.all(list.map((child) => child.call<{ us: number }>('cpu')))).reduce((sum, { us }) => sum + us, 0);
    const ourWorkers = children.filter((_, i) => i % 2 === 0);
    const bareWorkers = children.filter((_, i) => i % 2 === 1);
    const ownCpu = () => {
      const usage = process.cpuUsage();
      return usage.user + usage.system;
    };
    const measured = async (loop: () => Promise<{ ms: number; firstMs: number[] }>) => {
      collectGarbage();
      const before = await redisCounters(info);
      const workersBefore = await cpuOf(ourWorkers);
      const bareBefore = await cpuOf(bareWorkers);
      const selfBefore = ownCpu();
      const result = await loop();
      const self = ownCpu() - selfBefore;
      const workers = (await cpuOf(ourWorkers)) - workersBefore;
      const bareWorkersUs = (await cpuOf(bareWorkers)) - bareBefore;
      const after = await redisCounters(info);
      const per = (key: keyof RedisCost) => (after[key] - before[key]) / options.runs;
      return { ...result, cost: { commands: per('commands'), cpuUs: per('cpuUs'), bytes: per('bytes') }, workerUs: workers / options.runs, bareWorkerUs: bareWorkersUs / options.runs, selfUs: self / options.runs };
    };
    type Round = Awaited<ReturnType<typeof measured>>;
    const results: Record<'bare' | 'agentwire' | 'events', Round[]> = { bare: [], agentwire: [], events: [] };
    for (let round = 0; round < options.warmupIterations + options.iterations; round++) {
      const bareRound = await measured(bareLoop);
      const ours = await measured(() => agentwireLoop(0));
      const more = await measured(() => agentwireLoop(options.thinks));
      if (round < options.warmupIterations) continue;
      results.bare.push(bareRound);
      results.agentwire.push(ours);
      results.events.push(more);
    }
    const rate = (list: Round[]) => median(list.map((r) => options.runs / (r.ms / 1000)));
    const firsts = (list: Round[]) => list.flatMap((r) => r.firstMs);
    const cost = (list: Round[], key: keyof RedisCost) => median(list.map((r) => r.cost[key]));
    const ours = rate(results.agentwire);
    const bareRate = rate(results.bare);
    const loopNote = `closed loop of ${options.runs} runs, ${window} outstanding (= worker slots), ${options.threads} threads, median of ${options.iterations} rounds`;
    const bareName = 'bare BullMQ';
    rows.push({
      suite: SUITE,
      case: names.e2e,
      value: ours,
      unit: 'runs/s',
      baseline: bareRate,
      baselineName: `${bareName} add → completed`,
      ratio: ours / bareRate,
      notes: `${loopNote}; baseline: Queue.add → QueueEvents completed, workers returning at once, same processes and slots`,
    });
    for (const p of [50, 99] as const) {
      const value = percentile(firsts(results.agentwire), p);
      const baseline = percentile(firsts(results.bare), p);
      rows.push({
        suite: SUITE,
        case: p === 50 ? names.p50 : names.p99,
        value,
        unit: 'ms',
        baseline,
        baselineName: `${bareName} add → active`,
        ratio: value / baseline,
        notes: `${loopNote}; every run of the measured rounds; submit() called → agent_started at a RedisEventLog subscriber (baseline: add() called → QueueEvents active)`,
      });
    }
    const extra = options.thinks;
    const perEvent = (key: keyof RedisCost) => (cost(results.events, key) - cost(results.agentwire, key)) / extra;
    const costRows: Array<[keyof typeof names, keyof RedisCost, number, number | undefined]> = [
      ['commands', 'commands', cost(results.agentwire, 'commands'), cost(results.bare, 'commands')],
      ['cpu', 'cpuUs', cost(results.agentwire, 'cpuUs'), cost(results.bare, 'cpuUs')],
      ['bytes', 'bytes', cost(results.agentwire, 'bytes'), cost(results.bare, 'bytes')],
      ['eventCommands', 'commands', perEvent('commands'), undefined],
      ['eventCpu', 'cpuUs', perEvent('cpuUs'), undefined],
      ['eventBytes', 'bytes', perEvent('bytes'), undefined],
    ];
    for (const [key, , value, baseline] of costRows) {
      rows.push({
        suite: SUITE,
        case: names[key],
        value,
        unit: units[key],
        ...(baseline !== undefined && { baseline, baselineName: `${bareName} per job`, ratio: value / baseline }),
        notes:
          baseline !== undefined
            ? `Redis INFO (total_commands_processed, used_cpu_sys + used_cpu_user, total_net_input/output_bytes) around the loop / runs; includes idle polling of every client of the run (blocking reads, lease renewals)`
            : `(loop with ${extra + 2} events per run − loop with 2) / ${extra}`,
      });
    }
    const workerPerRun = median(results.agentwire.map((r) => r.workerUs));
    const workerPerEvent = (median(results.events.map((r) => r.workerUs)) - workerPerRun) / extra;
    const cpuNote = 'process.cpuUsage() (user + system) around the loop / runs, of both agentwire worker processes';
    rows.push(
      {
        suite: SUITE,
        case: names.workerCpu,
        value: workerPerRun,
        unit: 'µs',
        baseline: median(results.bare.map((r) => r.bareWorkerUs)),
        baselineName: 'bare BullMQ worker per job',
        ratio: workerPerRun / median(results.bare.map((r) => r.bareWorkerUs)),
        notes: `${cpuNote}: BullMQ worker, claim, lease renewals, bridge, RedisStreamsTransport, finish; baseline: the bare workers during the bare loop`,
      },
      { suite: SUITE, case: names.workerEventCpu, value: workerPerEvent, unit: 'µs', notes: `(loop with ${extra + 2} events per run − loop with 2) / ${extra}, ${cpuNote}` },
      {
        suite: SUITE,
        case: names.gatewayCpu,
        value: median(results.agentwire.map((r) => r.selfUs)),
        unit: 'µs',
        notes: 'process.cpuUsage() of this process around the loop / runs: submit() and a RedisEventLog subscriber receiving the run\'s events (with the loop\'s own bookkeeping)',
      },
      {
        suite: SUITE,
        case: names.gatewayEventCpu,
        value: (median(results.events.map((r) => r.selfUs)) - median(results.agentwire.map((r) => r.selfUs))) / extra,
        unit: 'µs',
        notes: `(loop with ${extra + 2} events per run − loop with 2) / ${extra}, process.cpuUsage() of this process: reading and parsing one more event from Redis for its subscriber`,
      },
    );
    return [...rows, ...memory];
  } finally {
    for (const subscription of subscriptions) subscription.close();
    for (const child of children) await child.call('stop', {}, 10_000).catch(() => undefined);
    await Promise.all(children.map((child) => child.stop()));
    await bareEvents.close().catch(() => undefined);
    await bare.close().catch(() => undefined);
    for (const client of [bareClient, eventsClient, info]) if (client.isOpen) await client.quit().catch(() => undefined);
    await queue.close({ timeoutMs: 1_000 });
    await log.close();
    await deleteKeysWithPrefix(url, keyPrefix).catch(() => undefined);
  }
}

/** The embedded queue, same loop, one process: MemoryRunQueue → worker → AgentBridge → MemoryTransport → subscriber. */
async function memoryRows(options: RunsOptions, window: number): Promise<BenchRow[]> {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  const queue = new MemoryRunQueue({ maxRunsPerUser: 1_000_000, maxQueued: 1_000_000, maxFinished: 1_000 });
  queue.serve({ agents: [new BenchAgent(bridge)] }, { concurrency: window });
  const waiting = new Map<string, { first: () => void; end: () => void }>();
  const subscriptions: Array<{ close(): void }> = [];
  try {
    for (let t = 0; t < options.threads; t++) {
      const result = await transport.subscribe(
        { userId: `u${t}`, threadId: `t${t}` },
        new Entries((entry) => {
          const waiter = waiting.get(entry.event.runId);
          if (entry.event.type === 'agent_started') waiter?.first();
          else if (entry.event.type === 'agent_completed') {
            waiting.delete(entry.event.runId);
            waiter?.end();
          }
        }),
      );
      if (result.status !== 'subscribed') throw new Error('runs: memory subscribe failed');
      subscriptions.push(result.subscription);
    }
    const loop = () =>
      closedLoop(options.runs * 4, window, async (i, first, end) => {
        const t = i % options.threads;
        const runId = generateRunId(`t${t}`);
        waiting.set(runId, { first, end });
        await queue.submit('bench', { thinks: 0 }, { userId: `u${t}`, threadId: `t${t}`, runId });
      });
    const rounds: Array<{ ms: number; firstMs: number[] }> = [];
    for (let round = 0; round < options.warmupIterations + options.iterations; round++) {
      collectGarbage();
      const result = await loop();
      if (round >= options.warmupIterations) rounds.push(result);
    }
    const runs = options.runs * 4;
    const note = `closed loop of ${runs} runs, ${window} outstanding, one worker of concurrency ${window}, ${options.threads} threads, median of ${options.iterations} rounds`;
    return [
      { suite: SUITE, case: 'MemoryRunQueue submit → agent_completed received, in process', value: median(rounds.map((r) => runs / (r.ms / 1000))), unit: 'runs/s', notes: note },
      {
        suite: SUITE,
        case: 'MemoryRunQueue submit → agent_started received p99, in process',
        value: percentile(rounds.flatMap((r) => r.firstMs), 99),
        unit: 'ms',
        notes: note,
      },
    ];
  } finally {
    for (const subscription of subscriptions) subscription.close();
    await queue.close({ timeoutMs: 1_000 });
    await bridge.close();
  }
}
