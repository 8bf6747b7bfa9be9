import { Bench } from 'tinybench';
import { median } from './report.js';

export interface Repeated {
  /** Median duration of the measured runs, ms. */
  medianMs: number;
  /** Every measured duration, ms, in run order. */
  samples: number[];
  runs: number;
  /** The spread of the measured runs, for the notes: "range 812–840 ms". */
  spread: string;
}

const gc = (globalThis as { gc?: () => void }).gc;

/** A full garbage collection, when node runs with `--expose-gc` (bench/run.ts starts it so). */
export function collectGarbage(): void {
  gc?.();
}

/**
 * Repeats whole runs of several variants and reports each one's median: `warmupIterations`
 * unmeasured rounds, then `iterations` measured ones. A round runs every variant once, in
 * order, so that a burst of load from elsewhere on this shared machine lands on all variants
 * alike instead of on whichever one tinybench happened to be running (the variants' ratio is
 * the figure that matters). Each run returns its own duration, measured where the work
 * completes (e.g. the client process's receipt of the last event), so there is no timing loop
 * here; the in-process suite, whose iterations are short and local, uses tinybench.
 */
export async function repeatRuns(
  tasks: Array<{ name: string; run: () => Promise<number> }>,
  options: { iterations: number; warmupIterations: number },
): Promise<Map<string, Repeated>> {
  const samples = new Map<string, number[]>(tasks.map((task) => [task.name, []]));
  for (let round = 0; round < options.warmupIterations + options.iterations; round++) {
    for (const task of tasks) {
      // Start every run from a collected heap (the bench runs with --expose-gc): a major
      // collection left over from the previous run, whose garbage it is, is not billed to this one.
      collectGarbage();
      const ms = await task.run();
      if (!(Number.isFinite(ms) && ms > 0)) throw new Error(`${task.name}: a run measured ${ms} ms`);
      if (round >= options.warmupIterations) samples.get(task.name)!.push(ms);
    }
  }
  const results = new Map<string, Repeated>();
  for (const [name, list] of samples) {
    const sorted = [...list].sort((a, b) => a - b);
    results.set(name, {
      medianMs: median(list),
      samples: list,
      runs: list.length,
      spread: `range ${sorted[0]!.toFixed(1)}–${sorted[sorted.length - 1]!.toFixed(1)} ms`,
    });
  }
  return results;
}

/**
 * tinybench for short runs repeated many times (the resume suite): warm-up, then `iterations`
 * runs per task, one task after the other; each run reports its own duration (measured in the
 * client process) through tinybench's `overriddenDuration`. Median and relative margin of error.
 */
export async function tinybenchRuns(
  tasks: Array<{ name: string; run: () => Promise<number> }>,
  options: { iterations: number; warmupIterations: number },
): Promise<Map<string, { medianMs: number; runs: number; rme: number }>> {
  const bench = new Bench({
    iterations: options.iterations,
    time: 0,
    warmup: options.warmupIterations > 0,
    warmupIterations: options.warmupIterations,
    warmupTime: 0,
    throws: true,
  });
  for (const task of tasks) bench.add(task.name, async () => ({ overriddenDuration: await task.run() }));
  await bench.run();
  const results = new Map<string, { medianMs: number; runs: number; rme: number }>();
  for (const task of bench.tasks) {
    const result = task.result;
    if (result.state !== 'completed') throw new Error(`bench task ${task.name} did not complete (${result.state})`);
    results.set(task.name, { medianMs: result.latency.p50, runs: result.latency.samplesCount, rme: result.latency.rme });
  }
  return results;
}
