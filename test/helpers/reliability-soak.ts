/**
 * The soak behind `npm run soak` (scripts/soak.ts) and test/integration/soak.test.ts.
 *
 * Load phase: `users` users, each with a real WebSocket client (`agentwire/client/node`) following
 * its own thread on a real WebSocketGateway over loopback; every user runs an agent emitting
 * `events` events with interleaved and parallel tool calls (some failing), all at once. Each
 * client's stream is checked as it arrives (constant memory): lost, repeated after the client's
 * dedupe, dropped by dedupe, out of order (the lifecycle validator per run), other users' events,
 * and emit → receive latency.
 *
 * Memory phase: `runsTotal` small runs in waves (every user one run per wave, all clients still
 * following and checked). After every `sampleEvery` runs: a full GC, then heapUsed, RSS and the
 * size of every map a run touches (bridge queues, registry, log, gateway). Finished runs must leave
 * nothing behind but what the configured retention keeps: the heap is flat once that retention is
 * full.
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AgentBridge, LifecycleChecker, MemoryTransport, ThreadRegistry, type AgentEvent } from '../../src/index.js';
import { connect, type AgentwireClient } from '../../src/client/node.js';
import { WebSocketGateway } from '../../src/transport/websocket/index.js';
import { LoadAgent, type LoadInput } from './reliability-harness.js';
import { authenticate, tokenOf } from './ws-harness.js';

export interface SoakOptions {
  /** Users, each with one WebSocket client and one thread. Default 1,000. */
  users: number;
  /** Events per run in the load phase (at least 100 in the soak). Default 100. */
  events: number;
  /** Runs in the memory phase. Default 100,000. */
  runsTotal: number;
  /**
   * Paced phase: every user runs one `events`-event run spread over this many seconds (thoughts
   * paced, users staggered), so the whole gateway carries users × events / pacedSeconds events/s:
   * emit → receive latency at a steady rate instead of inside a burst. 0 skips it. Default 10.
   */
  pacedSeconds: number;
  /** Events per run in the memory phase. Default 8. */
  memoryRunEvents: number;
  /** Heap sample interval, in runs. Default 10,000. */
  sampleEvery: number;
  /** Largest heap growth allowed from the second sample to the last. Default 20 MiB. */
  heapBoundMiB: number;
  /** MemoryTransport retention (per thread, total) and ThreadRegistry TTL of finished runs. */
  logEventsPerThread: number;
  logTotalEvents: number;
  registryTtlMs: number;
  /**
   * Event ids each client remembers for dedupe. The clients live in this process, so their
   * windows are part of the measured heap: a small one is full early and then stays flat (the
   * soak counts repeats itself, per run, so a small window hides nothing). Default 256.
   */
  clientDedupeWindow: number;
  /** Give up waiting for a wave's delivery after this long without progress. Default 30 s. */
  stallMs: number;
}

export const SOAK_DEFAULTS: SoakOptions = {
  users: 1_000,
  events: 100,
  pacedSeconds: 10,
  runsTotal: 100_000,
  memoryRunEvents: 8,
  sampleEvery: 10_000,
  heapBoundMiB: 20,
  logEventsPerThread: 100,
  logTotalEvents: 50_000,
  registryTtlMs: 1_000,
  clientDedupeWindow: 256,
  stallMs: 30_000,
};

export interface MemorySample {
  runs: number;
  heapUsedMiB: number;
  rssMiB: number;
  bridgeQueues: number;
  activeRuns: number;
  registryRuns: number;
  registryThreads: number;
  logThreads: number;
  logEvents: number;
  connections: number;
  subscriptions: number;
  queuedFrames: number;
}

export interface SoakReport {
  options: SoakOptions;
  load: {
    users: number;
    runs: number;
    eventsPerRun: number;
    emitted: number;
    delivered: number;
    lost: number;
    repeatedAfterDedupe: number;
    droppedByDedupe: number;
    outOfOrder: number;
    crossUser: number;
    clientErrors: number;
    latencyMs: { p50: number; p99: number; max: number };
    seconds: number;
    eventsPerSecond: number;
  };
  paced: {
    runs: number;
    emitted: number;
    delivered: number;
    lost: number;
    repeatedAfterDedupe: number;
    outOfOrder: number;
    crossUser: number;
    seconds: number;
    eventsPerSecond: number;
    latencyMs: { p50: number; p99: number; max: number };
  };
  memory: {
    runs: number;
    events: number;
    delivered: number;
    lost: number;
    repeatedAfterDedupe: number;
    outOfOrder: number;
    crossUser: number;
    seconds: number;
    samples: MemorySample[];
    /** Last sample minus the second one (the first is taken before retention fills up). */
    heapGrowthMiB: number;
    /** Least-squares slope over samples 2..n, MiB per `sampleEvery` runs. */
    heapSlopeMiB: number;
  };
  violations: string[];
}

/** Per-client incremental check: constant memory however long it runs. */
class StreamCheck {
  received = 0;
  expected = 0;
  repeated = 0;
  outOfOrder = 0;
  crossUser = 0;
  errors = 0;
  private readonly lifecycle = new LifecycleChecker();
  /** Ids seen per run still open (forgotten when its agent_completed arrives). */
  private readonly seen = new Map<string, Set<string>>();

  constructor(
    readonly userId: string,
    readonly threadId: string,
    readonly client: AgentwireClient,
    onEvent: (event: AgentEvent) => void,
  ) {
    client.on('event', (event) => {
      this.received++;
      onEvent(event);
      if (event.userId !== userId || event.threadId !== threadId) this.crossUser++;
      let ids = this.seen.get(event.runId);
      if (!ids) this.seen.set(event.runId, (ids = new Set()));
      if (ids.has(event.id)) this.repeated++;
      ids.add(event.id);
      if (this.lifecycle.push(event)) this.outOfOrder++;
      if (event.type === 'agent_completed') {
        this.seen.delete(event.runId);
        this.lifecycle.forget(event.runId);
      }
    });
    client.on('error', () => this.errors++);
  }
}

/** Latency samples in a fixed log-scale histogram (10 µs … ~100 s). */
class Latency {
  private readonly counts = new Float64Array(800);
  private total = 0;
  max = 0;
  record(ms: number): void {
    const bucket = Math.min(this.counts.length - 1, Math.max(0, Math.floor(Math.log10(Math.max(ms, 0.01) / 0.01) * 100)));
    this.counts[bucket]!++;
    this.total++;
    if (ms > this.max) this.max = ms;
  }
  /** Upper bound of the bucket holding the q-quantile (never above the largest sample). */
  quantile(q: number): number {
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= q * this.total) return round(Math.min(this.max, 0.01 * 10 ** ((i + 1) / 100)));
    }
    return round(this.max);
  }
  summary(): { p50: number; p99: number; max: number } {
    return { p50: this.quantile(0.5), p99: this.quantile(0.99), max: round(this.max) };
  }
  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.max = 0;
  }
}

function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

const MiB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Thoughts and tool calls for a run of about `events` events (2 + thoughts + 2 × tools). */
function shape(events: number, extra: Partial<LoadInput> = {}): LoadInput {
  const tools = Math.max(1, Math.floor(events / 10));
  return { thoughts: Math.max(0, events - 2 - 2 * tools), tools, ...extra };
}

export async function runSoak(partial: Partial<SoakOptions> = {}, print: (line: string) => void = () => undefined): Promise<SoakReport> {
  const options: SoakOptions = { ...SOAK_DEFAULTS, ...partial };
  const gc = collector();
  const transport = new MemoryTransport({ maxEventsPerThread: options.logEventsPerThread, maxTotalEvents: options.logTotalEvents });
  const gateway = new WebSocketGateway({ authenticate, transport, maxConnections: options.users + 100, heartbeatIntervalMs: 0, subscribeTimeoutMs: 0 });
  const { url } = await gateway.listen(0, '127.0.0.1');
  const registry = new ThreadRegistry({ finishedRunTtlMs: options.registryTtlMs });
  const bridge = new AgentBridge({ transport: gateway, registry });
  await bridge.initialize();
  const agent = new LoadAgent({ bridge });
  const emittedAt = new Map<string, number>();
  let measuring = true;
  agent.on('event', (event) => {
    if (measuring) emittedAt.set(event.id, performance.now());
  });
  const latency = new Latency();
  const onEvent = (event: AgentEvent): void => {
    const at = emittedAt.get(event.id);
    if (at === undefined) return;
    latency.record(performance.now() - at);
    emittedAt.delete(event.id);
  };

  // Clients, opened in batches (the listen backlog is finite), all subscribed before anything runs.
  const checks: StreamCheck[] = [];
  for (let i = 0; i < options.users; i += 100) {
    const batch: StreamCheck[] = [];
    for (let j = i; j < Math.min(options.users, i + 100); j++) {
      const userId = `soak-user-${j}`;
      const threadId = `soak-thread-${j}`;
      const client = connect(url, {
        token: tokenOf(userId),
        threadId,
        reconnect: { initialDelayMs: 50, maxDelayMs: 1_000 },
        dedupeWindow: options.clientDedupeWindow,
      });
      batch.push(new StreamCheck(userId, threadId, client, onEvent));
    }
    await waitUntil(() => batch.every((c) => c.client.status === 'open'), options.stallMs, () => batch.filter((c) => c.client.status === 'open').length);
    checks.push(...batch);
  }
  print(`${checks.length} clients subscribed`);

  const waitDelivered = async (): Promise<boolean> =>
    waitUntil(
      () => checks.every((c) => c.received >= c.expected),
      options.stallMs,
      () => checks.reduce((sum, c) => sum + c.received, 0),
    );
  const totals = () =>
    checks.reduce(
      (sum, c) => ({
        received: sum.received + c.received,
        expected: sum.expected + c.expected,
        lost: sum.lost + Math.max(0, c.expected - c.received),
        repeated: sum.repeated + c.repeated,
        dropped: sum.dropped + c.client.stats.duplicates,
        outOfOrder: sum.outOfOrder + c.outOfOrder,
        crossUser: sum.crossUser + c.crossUser + c.client.stats.foreign,
        errors: sum.errors + c.errors,
      }),
      { received: 0, expected: 0, lost: 0, repeated: 0, dropped: 0, outOfOrder: 0, crossUser: 0, errors: 0 },
    );

  // ---- load phase
  const loadInput = shape(options.events, { parallel: true, failEvery: 7 });
  const startedAt = performance.now();
  const results = await Promise.all(checks.map((c) => agent.run(loadInput, { userId: c.userId, threadId: c.threadId })));
  results.forEach((result, i) => (checks[i]!.expected += result.events));
  await waitDelivered();
  const loadSeconds = (performance.now() - startedAt) / 1000;
  const afterLoad = totals();
  const load: SoakReport['load'] = {
    users: checks.length,
    runs: results.length,
    eventsPerRun: results[0]?.events ?? 0,
    emitted: afterLoad.expected,
    delivered: afterLoad.received,
    lost: afterLoad.lost,
    repeatedAfterDedupe: afterLoad.repeated,
    droppedByDedupe: afterLoad.dropped,
    outOfOrder: afterLoad.outOfOrder,
    crossUser: afterLoad.crossUser,
    clientErrors: afterLoad.errors,
    latencyMs: latency.summary(),
    seconds: round(loadSeconds),
    eventsPerSecond: Math.round(afterLoad.received / loadSeconds),
  };
  print(`load: ${load.runs} runs, ${load.delivered}/${load.emitted} events in ${load.seconds} s`);

  // ---- paced phase
  latency.reset();
  let paced: SoakReport['paced'] = { runs: 0, emitted: 0, delivered: 0, lost: 0, repeatedAfterDedupe: 0, outOfOrder: 0, crossUser: 0, seconds: 0, eventsPerSecond: 0, latencyMs: latency.summary() };
  if (options.pacedSeconds > 0) {
    const delay = (options.pacedSeconds * 1000) / options.events;
    const pacedInput = shape(options.events, { thoughtDelayMs: delay });
    const pacedStart = performance.now();
    const pacedResults = await Promise.all(
      checks.map(async (c) => {
        await sleep(Math.random() * delay); // users do not think in lockstep
        return agent.run(pacedInput, { userId: c.userId, threadId: c.threadId });
      }),
    );
    pacedResults.forEach((result, i) => (checks[i]!.expected += result.events));
    await waitDelivered();
    const seconds = (performance.now() - pacedStart) / 1000;
    const afterPaced = totals();
    paced = {
      runs: pacedResults.length,
      emitted: afterPaced.expected - afterLoad.expected,
      delivered: afterPaced.received - afterLoad.received,
      lost: afterPaced.lost - afterLoad.lost,
      repeatedAfterDedupe: afterPaced.repeated - afterLoad.repeated,
      outOfOrder: afterPaced.outOfOrder - afterLoad.outOfOrder,
      crossUser: afterPaced.crossUser - afterLoad.crossUser,
      seconds: round(seconds),
      eventsPerSecond: Math.round((afterPaced.received - afterLoad.received) / seconds),
      latencyMs: latency.summary(),
    };
    print(`paced: ${paced.runs} runs, ${paced.delivered}/${paced.emitted} events in ${paced.seconds} s (${paced.eventsPerSecond}/s)`);
  }
  measuring = false;
  emittedAt.clear();

  // ---- memory phase
  const small = shape(options.memoryRunEvents);
  const samples: MemorySample[] = [];
  const sample = async (runs: number): Promise<void> => {
    // Let finished runs age out of the registry (its TTL), then collect everything collectable.
    await sleep(options.registryTtlMs + 50);
    registry.sweep();
    for (let i = 0; i < 3; i++) {
      gc();
      await sleep(10);
    }
    const memory = process.memoryUsage();
    const stats = gateway.stats();
    const metrics = bridge.metrics();
    const bridgeQueues = (bridge as unknown as { queues: Map<string, unknown> }).queues.size;
    samples.push({
      runs,
      heapUsedMiB: round(memory.heapUsed / MiB),
      rssMiB: round(memory.rss / MiB),
      bridgeQueues,
      activeRuns: metrics.activeRuns,
      registryRuns: registry.size.runs,
      registryThreads: registry.size.threads,
      logThreads: transport.threadCount,
      logEvents: transport.eventCount,
      connections: stats.connections,
      subscriptions: stats.subscriptions,
      queuedFrames: stats.queuedFrames,
    });
    const s = samples.at(-1)!;
    print(`  after ${runs} runs: heap ${s.heapUsedMiB} MiB, rss ${s.rssMiB} MiB, registry ${s.registryRuns} runs, log ${s.logEvents} events`);
  };
  const memoryStart = performance.now();
  const before = totals();
  let runs = 0;
  let nextSample = options.sampleEvery;
  await sample(0);
  for (let wave = 0; runs < options.runsTotal && wave < 1_000_000; wave++) {
    const batch = checks.slice(0, Math.min(checks.length, options.runsTotal - runs));
    const waveResults = await Promise.all(batch.map((c) => agent.run(small, { userId: c.userId, threadId: c.threadId })));
    waveResults.forEach((result, i) => (batch[i]!.expected += result.events));
    runs += batch.length;
    if (!(await waitDelivered())) break;
    if (runs >= nextSample || runs >= options.runsTotal) {
      await sample(runs);
      nextSample += options.sampleEvery;
    }
  }
  const after = totals();
  const heap = samples.map((s) => s.heapUsedMiB);
  const steady = samples.slice(2); // from the second sample after 0 runs on
  const memory: SoakReport['memory'] = {
    runs,
    events: after.expected - before.expected,
    delivered: after.received - before.received,
    lost: after.lost,
    repeatedAfterDedupe: after.repeated - before.repeated,
    outOfOrder: after.outOfOrder - before.outOfOrder,
    crossUser: after.crossUser - before.crossUser,
    seconds: round((performance.now() - memoryStart) / 1000),
    samples,
    heapGrowthMiB: round((heap.at(-1) ?? 0) - (heap[2] ?? heap.at(-1) ?? 0)),
    heapSlopeMiB: round(slope(steady.map((s) => s.heapUsedMiB)), 3),
  };

  // ---- verdict
  const violations: string[] = [];
  const zero = (name: string, value: number): void => void (value !== 0 && violations.push(`${name}: ${value}`));
  zero('load: lost', load.lost);
  zero('load: repeated after dedupe', load.repeatedAfterDedupe);
  zero('load: out of order', load.outOfOrder);
  zero('load: cross-user', load.crossUser);
  zero('load: client errors', load.clientErrors);
  zero('paced: lost', paced.lost);
  zero('paced: repeated after dedupe', paced.repeatedAfterDedupe);
  zero('paced: out of order', paced.outOfOrder);
  zero('paced: cross-user', paced.crossUser);
  zero('memory: lost', memory.lost);
  zero('memory: repeated after dedupe', memory.repeatedAfterDedupe);
  zero('memory: out of order', memory.outOfOrder);
  zero('memory: cross-user', memory.crossUser);
  if (load.eventsPerRun < options.events) violations.push(`load: ${load.eventsPerRun} events per run < ${options.events}`);
  if (memory.runs < options.runsTotal) violations.push(`memory: only ${memory.runs} of ${options.runsTotal} runs completed`);
  if (samples.length >= 3 && memory.heapGrowthMiB > options.heapBoundMiB) {
    violations.push(`memory: heap grew ${memory.heapGrowthMiB} MiB from the second sample to the last (bound ${options.heapBoundMiB} MiB)`);
  }
  for (const s of samples) {
    if (s.activeRuns !== 0 || s.bridgeQueues !== 0) violations.push(`memory: ${s.activeRuns} active runs / ${s.bridgeQueues} bridge queues left after ${s.runs} runs`);
    if (s.registryRuns > options.users * 2) violations.push(`memory: registry still holds ${s.registryRuns} runs after ${s.runs} runs (TTL ${options.registryTtlMs} ms)`);
    if (s.logEvents > options.logTotalEvents || s.logThreads > options.users) violations.push(`memory: log holds ${s.logEvents} events in ${s.logThreads} threads`);
    if (s.connections !== options.users || s.subscriptions !== options.users || s.queuedFrames !== 0) {
      violations.push(`memory: gateway has ${s.connections} connections, ${s.subscriptions} subscriptions, ${s.queuedFrames} queued frames`);
    }
  }

  for (const c of checks) c.client.close();
  await bridge.close();
  await gateway.close();
  await transport.close();
  return { options, load, paced, memory, violations };
}

/** Polls `done` until it holds; false once `progress` has not changed for `stallMs`. */
async function waitUntil(done: () => boolean, stallMs: number, progress: () => number): Promise<boolean> {
  let last = progress();
  let lastChange = performance.now();
  for (let i = 0; i < 10_000_000; i++) {
    if (done()) return true;
    await sleep(i < 100 ? 1 : 10);
    const now = progress();
    if (now !== last) {
      last = now;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > stallMs) {
      return false;
    }
  }
  return false;
}

function slope(values: number[]): number {
  const n = values.length;
  if (n < 2) return 0;
  const meanX = (n - 1) / 2;
  const meanY = values.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  values.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  return num / den;
}

/** The figures as a plain-text table. */
export function formatSoak(report: SoakReport): string {
  const { load, memory, options } = report;
  const rows: Array<[string, string | number]> = [
    ['users (WebSocket clients)', load.users],
    ['load: runs × events per run', `${load.runs} × ${load.eventsPerRun}`],
    ['load: events emitted / delivered', `${load.emitted} / ${load.delivered}`],
    ['load: lost', load.lost],
    ['load: duplicated before dedupe (dropped by the client)', load.droppedByDedupe],
    ['load: duplicated after dedupe', load.repeatedAfterDedupe],
    ['load: out of order (lifecycle violations)', load.outOfOrder],
    ['load: cross-user events', load.crossUser],
    ['load: emit → receive p50 / p99 / max (ms), one burst', `${load.latencyMs.p50} / ${load.latencyMs.p99} / ${load.latencyMs.max}`],
    ['load: wall time (s) / events per second', `${load.seconds} / ${load.eventsPerSecond}`],
    ['paced: runs / events delivered of emitted', `${report.paced.runs} / ${report.paced.delivered} of ${report.paced.emitted}`],
    ['paced: lost / dup after dedupe / out of order / cross-user', `${report.paced.lost} / ${report.paced.repeatedAfterDedupe} / ${report.paced.outOfOrder} / ${report.paced.crossUser}`],
    ['paced: events per second (steady)', report.paced.eventsPerSecond],
    ['paced: emit → receive p50 / p99 / max (ms)', `${report.paced.latencyMs.p50} / ${report.paced.latencyMs.p99} / ${report.paced.latencyMs.max}`],
    ['memory: runs / events delivered', `${memory.runs} / ${memory.delivered} of ${memory.events}`],
    ['memory: lost / dup after dedupe / out of order / cross-user', `${memory.lost} / ${memory.repeatedAfterDedupe} / ${memory.outOfOrder} / ${memory.crossUser}`],
    ['memory: wall time (s)', memory.seconds],
    [`memory: heap growth, sample 2 → last (bound ${options.heapBoundMiB} MiB)`, `${memory.heapGrowthMiB} MiB`],
    [`memory: heap slope (MiB per ${options.sampleEvery} runs)`, memory.heapSlopeMiB],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`);
  lines.push('', 'runs      heapUsed MiB  rss MiB  bridge queues  registry runs  log threads  log events  connections  queued frames');
  for (const s of memory.samples) {
    lines.push(
      [s.runs, s.heapUsedMiB, s.rssMiB, `${s.bridgeQueues}/${s.activeRuns}`, s.registryRuns, s.logThreads, s.logEvents, s.connections, s.queuedFrames]
        .map((v, i) => String(v).padEnd([10, 14, 9, 15, 15, 13, 12, 13, 13][i]!))
        .join('')
        .trimEnd(),
    );
  }
  lines.push('', report.violations.length === 0 ? 'verdict: OK (no violation)' : `verdict: ${report.violations.length} violation(s)`);
  for (const violation of report.violations) lines.push(`  - ${violation}`);
  return lines.join('\n');
}
