/**
 * `npm run bench`: every figure measured against a raw baseline of the same machine in the same run.
 * `--quick` runs a smoke-sized version (used by the test suite to check that every row prints).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, renderTable, type BenchRow } from './lib/report.js';
import { inProcessSuite } from './suites/in-process.js';

const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const wanted = (suite: string) => !only || only.includes(suite);

async function main(): Promise<void> {
  const info = machine();
  console.log(`agentwire bench${quick ? ' (quick)' : ''}: ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, Node ${info.node}, ${info.platform}`);
  const rows: BenchRow[] = [];
  if (wanted('in-process')) {
    rows.push(
      ...(await inProcessSuite(
        quick ? { eventsPerIteration: 2_000, concurrency: [1, 100], timeMs: 50 } : { eventsPerIteration: 100_000, concurrency: [1, 100, 1000], timeMs: 3_000 },
      )),
    );
  }
  console.log('');
  console.log(renderTable(rows));
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, quick ? 'quick.json' : 'latest.json');
  writeFileSync(file, JSON.stringify({ machine: info, quick, rows }, null, 2) + '\n');
  console.log(`\nresults: ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
