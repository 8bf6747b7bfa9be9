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
  cpuUs?: number;
  target?: string;
}

/**
 * Every row the quick run prints: [suite, case]. The Redis rows may be skipped when no Redis answers.
 * Fan-out rows carry the server's CPU per event (checked below), and the gateway rows a target.
 */
const EXPECTED: Array<[string, string]> = [
  ['in-process', 'BaseAgent → bridge → MemoryTransport, 1 concurrent run'],
  ['in-process', 'BaseAgent → bridge → MemoryTransport, 100 concurrent runs'],
  ['in-process', 'BaseAgent → bridge → MemoryTransport, 1000 concurrent runs'],
  ['log-heap', 'retained MemoryTransport log, heap per event (10,000 events, 10 threads)'],
  ['ws-fanout', 'raw ws, 1 msg/event (pre-serialized), 2,000 connections, 1 event/conn/tick'],
  ['ws-fanout', 'gateway, batching on, 2,000 connections, 1 event/conn/tick'],
  ['ws-fanout', 'raw ws, 1 msg/event (pre-serialized), 1 connection, 10 events/conn/tick'],
  ['ws-fanout', 'raw ws batched per tick (serialized in the loop), 1 connection, 10 events/conn/tick'],
  ['ws-fanout', 'Socket.IO 4 rooms, 1 connection, 10 events/conn/tick'],
  ['ws-fanout', 'gateway, batching on, 1 connection, 10 events/conn/tick'],
  ['ws-fanout', 'gateway, batching off, 1 connection, 10 events/conn/tick'],
  ['ws-fanout', 'raw ws, 1 msg/event (pre-serialized), 1 connection, 1 event/conn/tick'],
  ['ws-fanout', 'raw ws batched per tick (serialized in the loop), 1 connection, 1 event/conn/tick'],
  ['ws-fanout', 'Socket.IO 4 rooms, 1 connection, 1 event/conn/tick'],
  ['ws-fanout', 'gateway, batching on, 1 connection, 1 event/conn/tick'],
  ['ws-fanout', 'raw ws, 1 msg/event (pre-serialized), 100 connections, 10 events/conn/tick'],
  ['ws-fanout', 'raw ws batched per tick (serialized in the loop), 100 connections, 10 events/conn/tick'],
  ['ws-fanout', 'Socket.IO 4 rooms, 100 connections, 10 events/conn/tick'],
  ['ws-fanout', 'gateway, batching on, 100 connections, 10 events/conn/tick'],
  ['ws-fanout', 'gateway, batching off, 100 connections, 10 events/conn/tick'],
  ['ws-fanout', 'raw ws, 1 msg/event (pre-serialized), 100 connections, 1 event/conn/tick'],
  ['ws-fanout', 'raw ws batched per tick (serialized in the loop), 100 connections, 1 event/conn/tick'],
  ['ws-fanout', 'Socket.IO 4 rooms, 100 connections, 1 event/conn/tick'],
  ['ws-fanout', 'gateway, batching on, 100 connections, 1 event/conn/tick'],
  ['ws-fanout', 'raw ws, 1 msg/event (pre-serialized), 1,000 connections, 10 events/conn/tick'],
  ['ws-fanout', 'raw ws batched per tick (serialized in the loop), 1,000 connections, 10 events/conn/tick'],
  ['ws-fanout', 'Socket.IO 4 rooms, 1,000 connections, 10 events/conn/tick'],
  ['ws-fanout', 'gateway, batching on, 1,000 connections, 10 events/conn/tick'],
  ['ws-fanout', 'gateway, batching off, 1,000 connections, 10 events/conn/tick'],
  ['ws-fanout', 'raw ws, 1 msg/event (pre-serialized), 1,000 connections, 1 event/conn/tick'],
  ['ws-fanout', 'raw ws batched per tick (serialized in the loop), 1,000 connections, 1 event/conn/tick'],
  ['ws-fanout', 'Socket.IO 4 rooms, 1,000 connections, 1 event/conn/tick'],
  ['ws-fanout', 'gateway, batching on, 1,000 connections, 1 event/conn/tick'],
  ['ws-fanout', 'gateway, batching on, agentwire/client, 100 connections, 10 events/conn/tick'],
  ['latency', 'emit → receive p50, 10,000 events/s over 1,000 connections'],
  ['latency', 'emit → receive p99, 10,000 events/s over 1,000 connections'],
  ['latency', 'emit → receive max, 10,000 events/s over 1,000 connections'],
  ['memory', 'RSS per connection, 500 idle connections'],
  ['memory', 'RSS per connection, 500 idle connections, vs bare ws that exchanged the same 3 messages'],
  ['memory', 'JS heap per connection, 500 idle connections'],
  ['memory', 'RSS per connection, 1,000 idle connections'],
  ['memory', 'RSS per connection, 1,000 idle connections, vs bare ws that exchanged the same 3 messages'],
  ['memory', 'JS heap per connection, 1,000 idle connections'],
  ['resume', 'replay 10,000 missed events, agentwire/client connect({ after })'],
  ['resume', 'replay 10,000 missed events, minimal ws client, subscribe after cursor'],
  ['resume', 'history length: replay 100 retained events, minimal ws client'],
  ['resume', 'history length: replay 1,000 retained events, minimal ws client'],
  ['resume', 'history length: replay 10,000 retained events, minimal ws client'],
  ['resume', 'history length: slope from 100 to 10,000 retained events (ms per 1,000 more)'],
  ['redis', 'worker → Redis Streams → gateway → client, 1 concurrent run'],
  ['redis', 'write path: RedisStreamsTransport.send, 1 concurrent run'],
  ['redis', 'worker → Redis Streams → gateway → client, 16 concurrent runs'],
  ['redis', 'write path: RedisStreamsTransport.send, 16 concurrent runs'],
  ['redis', 'worker → Redis Streams → gateway → client, 256 concurrent runs'],
  ['redis', 'write path: RedisStreamsTransport.send, 256 concurrent runs'],
  ['runs', 'BullMQRunQueue submit → agent_completed received, 2 worker processes × 16'],
  ['runs', 'BullMQRunQueue submit → agent_started received p50, 2 worker processes × 16'],
  ['runs', 'BullMQRunQueue submit → agent_started received p99, 2 worker processes × 16'],
  ['runs', 'Redis commands per run (2 events; scripts count their calls)'],
  ['runs', 'Redis CPU per run (2 events)'],
  ['runs', 'Redis bytes in + out per run (2 events, one subscriber)'],
  ['runs', 'Redis commands per further event of a run'],
  ['runs', 'Redis CPU per further event of a run'],
  ['runs', 'Redis bytes in + out per further event of a run (one subscriber)'],
  ['runs', 'worker process CPU per run (2 events, trivial agent)'],
  ['runs', 'worker process CPU per further event of a run'],
  ['runs', 'submitting + subscribed process CPU per run (2 events)'],
  ['runs', 'subscribed process CPU per further event of a run (RedisEventLog tail)'],
  ['runs', 'MemoryRunQueue submit → agent_completed received, in process'],
  ['runs', 'MemoryRunQueue submit → agent_started received p99, in process'],
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
        expect(['redis', 'runs']).toContain(suite);
        expect(row.skipped).toBe('no Redis');
        expect(process.env.AGENTWIRE_REQUIRE_REDIS).not.toBe('1');
        expect(printed![2]).toBe('skipped (no Redis)');
        continue;
      }
      expect(Number.isFinite(row.value) && row.value! > 0, `${suite} | ${name}: value ${row.value}`).toBe(true);
      // A bare ws server's RSS per connection at the quick sizes (500) is within the noise of the C
      // allocator (seen at -1.8 KiB once): finite is all that holds there; every other baseline is positive.
      const rssAtQuickSize = suite === 'memory' && name.startsWith('RSS');
      if (row.baseline !== undefined) expect(Number.isFinite(row.baseline) && (rssAtQuickSize || row.baseline! > 0), `${suite} | ${name}: baseline ${row.baseline}`).toBe(true);
      if (suite === 'ws-fanout') expect(Number.isFinite(row.cpuUs) && row.cpuUs! > 0, `${suite} | ${name}: cpuUs ${row.cpuUs}`).toBe(true);
      if (suite === 'ws-fanout' && name.startsWith('gateway') && !name.includes('agentwire/client')) expect(row.target, `${suite} | ${name}: no target`).toBeDefined();
      expect(printed![2]).toMatch(/^\d[\d.]*[kM]? (events\/s|runs\/s|ms|KiB|B|µs|commands)$/);
    }
  });
});
