/**
 * Soak: `npm run soak` (node --expose-gc --import tsx scripts/soak.ts), options:
 *
 *   --users 1000          users, each with a WebSocket client following its own thread
 *   --events 100          events per run in the load phase (interleaved and parallel tool calls)
 *   --paced-seconds 10    one more run per user spread over this long: latency at a steady rate (0 skips)
 *   --runs-total 100000   runs in the memory phase (waves of one run per user)
 *   --memory-run-events 8 events per run in the memory phase
 *   --sample-every 10000  runs between heap samples (after a full GC)
 *   --heap-bound-mib 20   largest heap growth allowed from the second sample to the last
 *   --log-events-per-thread 100 --log-total-events 50000 --registry-ttl-ms 1000   retention
 *   --client-dedupe-window 256   ids each (in-process) client remembers for dedupe
 *   --json                print the report as JSON (one line) instead of the table
 *
 * Prints the figures and exits 1 on any violation (lost, duplicated after dedupe, out of order,
 * cross-user, heap growth past the bound, state left behind by finished runs).
 * The logic lives in test/helpers/reliability-soak.ts (shared with test/integration/soak.test.ts).
 */
import { SOAK_DEFAULTS, formatSoak, runSoak, type SoakOptions } from '../test/helpers/reliability-soak.js';

const flags: Record<string, keyof SoakOptions> = {
  '--users': 'users',
  '--events': 'events',
  '--paced-seconds': 'pacedSeconds',
  '--runs-total': 'runsTotal',
  '--memory-run-events': 'memoryRunEvents',
  '--sample-every': 'sampleEvery',
  '--heap-bound-mib': 'heapBoundMiB',
  '--log-events-per-thread': 'logEventsPerThread',
  '--log-total-events': 'logTotalEvents',
  '--registry-ttl-ms': 'registryTtlMs',
  '--client-dedupe-window': 'clientDedupeWindow',
  '--stall-ms': 'stallMs',
};

const options: Partial<SoakOptions> = {};
let json = false;
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const arg = args[i]!;
  if (arg === '--json') {
    json = true;
    continue;
  }
  if (arg === '--help' || arg === '-h') {
    console.log(`usage: npm run soak -- [${Object.keys(flags).map((f) => `${f} N`).join('] [')}] [--json]\ndefaults: ${JSON.stringify(SOAK_DEFAULTS)}`);
    process.exit(0);
  }
  const [flag, inline] = arg.split('=', 2) as [string, string | undefined];
  const key = flags[flag];
  const value = Number(inline ?? args[++i]);
  if (!key || !Number.isFinite(value) || value < 0) {
    console.error(`soak: bad option ${arg} (see --help)`);
    process.exit(2);
  }
  options[key] = value;
}

const report = await runSoak(options, json ? undefined : (line) => console.log(line));
console.log(json ? JSON.stringify(report) : `\n${formatSoak(report)}`);
process.exitCode = report.violations.length === 0 ? 0 : 1;
