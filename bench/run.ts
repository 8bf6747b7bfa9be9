/**
 * `npm run bench` (`tsx bench/run.ts`): compiles the bench and the library to plain ES modules
 * (see ./lib/build.ts for why it does not measure under tsx) and runs bench/main.ts compiled, in
 * a child `node`, with the same arguments: `--quick`, `--only=suite1,suite2`.
 * `--tsx` runs main.ts under tsx instead (no build step; figures carry tsx's overhead).
 * `BENCH_NODE_OPTIONS` / `BENCH_CHILD_NODE_OPTIONS`: extra node flags for the bench process
 * (the producer side) / its child processes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
 */
import { spawn } from 'node:child_process';
import { buildBench, compiledScript } from './lib/build.js';
import { fileLimits } from './lib/child.js';

/** Open files the producer side wants (servers of the fan-out and latency suites). */
const WANTED_FILES = 16_384;

async function launch(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--tsx')) {
    await import('./main.js');
    return new Promise<number>(() => undefined); // main.ts exits the process itself
  }
  const dir = await buildBench();
  const nodeArgs = [
    ...(process.env.BENCH_NODE_OPTIONS?.split(' ').filter(Boolean) ?? []),
    // Lets the suites start every measured run from a collected heap (lib/measure.ts).
    '--expose-gc',
    '--enable-source-maps',
    compiledScript('bench/main.ts'),
    ...args,
  ];
  let command = process.execPath;
  let commandArgs = nodeArgs;
  const limits = fileLimits();
  if (limits.soft < WANTED_FILES && limits.hard > limits.soft) {
    // Node cannot raise its own soft limit on open files: start the bench from a shell that does.
    command = '/bin/sh';
    commandArgs = ['-c', `ulimit -Sn ${Math.min(WANTED_FILES, limits.hard)} && exec "$0" "$@"`, process.execPath, ...nodeArgs];
  }
  const child = spawn(command, commandArgs, { stdio: 'inherit', env: { ...process.env, AGENTWIRE_BENCH_BUILD: dir } });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  return new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

launch().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
