/**
 * Smoke test of the benchmark: `npm run bench -- --quick` runs every suite at a tiny size and
 * must print every row of the table, each with a finite positive figure, and write the same rows
 * to bench/results/quick.json. No timing or ratio is asserted: the figures of a smoke run on a
 * busy test machine mean nothing, only that the bench still measures everything it claims to.
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RESULTS = join(ROOT, 'bench', 'results', 'quick.json');

interface Row {
  suite: string;
  case: string;
  value: number | null;
  unit: string;
  baseline?: number | null;
  skipped?: string;
}

/** Every row the quick run prints: [suite, case]. The Redis rows may be skipped when no Redis answers. */
const EXPECTED: Array<[string, string]> = [
  ['in-process', 'BaseAgent → bridge → MemoryTransport, 1 concurrent run'],
  ['in-process', 'BaseAgent → bridge → MemoryTransport, 100 concurrent runs'],
  ['in-process', 'BaseAgent → bridge → MemoryTransport, 1000 concurrent runs'],
  ['ws-fanout', 'batching on, 1 connection'],
  ['ws-fanout', 'batching off, 1 connection'],
  ['ws-fanout', 'batching on, 100 connections'],
  ['ws-fanout', 'batching off, 100 connections'],
  ['ws-fanout', 'batching on, 1,000 connections'],
  ['ws-fanout', 'batching off, 1,000 connections'],
  ['ws-fanout', 'batching on, agentwire/client, 100 connections'],
  ['latency', 'emit → receive p50, 10,000 events/s over 1,000 connections'],
  ['latency', 'emit → receive p99, 10,000 events/s over 1,000 connections'],
  ['latency', 'emit → receive max, 10,000 events/s over 1,000 connections'],
  ['memory', 'RSS per connection, 500 idle connections'],
  ['memory', 'JS heap per connection, 500 idle connections'],
  ['memory', 'RSS per connection, 1,000 idle connections'],
  ['memory', 'JS heap per connection, 1,000 idle connections'],
  ['resume', 'replay 10,000 missed events, agentwire/client connect({ after })'],
  ['resume', 'replay 10,000 missed events, minimal ws client, subscribe after cursor'],
  ['redis', 'worker → Redis Streams → gateway → client, 100 connections'],
  ['redis', 'write path: RedisStreamsTransport.send'],
];

function runQuickBench(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', 'bench', '--', '--quick'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // The bench kills its own child processes on every exit path; this bounds the whole run.
    const timer = setTimeout(() => child.kill('SIGTERM'), 170_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A printed table row: `| suite | case | result | baseline | ratio | target |`. */
function printedRow(stdout: string, suite: string, name: string): string[] | undefined {
  for (const line of stdout.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    if (cells[1] === suite && cells[2] === name) return cells.slice(1, -1);
  }
  return undefined;
}

describe('npm run bench -- --quick', () => {
  it('runs every suite and prints every row with a finite positive figure', { timeout: 180_000 }, async () => {
    const started = Date.now();
    const { code, stdout, stderr } = await runQuickBench();
    expect(code, `bench failed:\n${stdout}\n${stderr}`).toBe(0);
    // The header names the machine: CPU, cores, Node version.
    expect(stdout).toMatch(/agentwire bench \(quick\): .+, \d+ cores, .*Node v\d+/);

    // The JSON written by this run (not one left from an earlier run).
    expect(statSync(RESULTS).mtimeMs).toBeGreaterThanOrEqual(started - 1_000);
    const { rows, quick } = JSON.parse(readFileSync(RESULTS, 'utf8')) as { rows: Row[]; quick: boolean };
    expect(quick).toBe(true);
    expect(rows.map((row) => [row.suite, row.case])).toEqual(EXPECTED);

    for (const [suite, name] of EXPECTED) {
      const row = rows.find((r) => r.suite === suite && r.case === name)!;
      const printed = printedRow(stdout, suite, name);
      expect(printed, `row "${suite} | ${name}" is not in the printed table`).toBeDefined();
      if (row.skipped !== undefined) {
        // Only the Redis rows may be skipped, and only for want of a Redis (CI requires one).
        expect(suite).toBe('redis');
        expect(row.skipped).toBe('no Redis');
        expect(process.env.AGENTWIRE_REQUIRE_REDIS).not.toBe('1');
        expect(printed![2]).toBe('skipped (no Redis)');
        continue;
      }
      expect(Number.isFinite(row.value) && row.value! > 0, `${suite} | ${name}: value ${row.value}`).toBe(true);
      if (row.baseline !== undefined) expect(Number.isFinite(row.baseline) && row.baseline! > 0, `${suite} | ${name}: baseline ${row.baseline}`).toBe(true);
      expect(printed![2]).toMatch(/^\d[\d.]*[kM]? (events\/s|ms|KiB)$/);
    }
  });
});
