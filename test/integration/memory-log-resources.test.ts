import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { MemoryTransport, generateRunId, type AgentEvent } from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';

/**
 * The memory log is bounded in bytes, not only in events: a flood of 1 MB events (the largest an
 * event may be) holds at most the configured JSON size, and what it held is released.
 */

const MiB = 1024 * 1024;

function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function heapAfterGc(gc: () => void): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/**
 * An agent_started event whose input is a fresh ~`bytes` string on the JS heap, as a parsed
 * request body would be (a Buffer's string would live outside the heap and hide from heapUsed).
 */
function bigEvent(threadId: string, userId: string, i: number, bytes: number): AgentEvent {
  const emitter = new RunEmitter({ runId: generateRunId(threadId), threadId, userId, agent: 'a' });
  return emitter.emit('agent_started', { metadata: {}, input: JSON.parse(JSON.stringify(Buffer.alloc(bytes, 97 + (i % 26)).toString('latin1'))) as string }).event;
}

describe('MemoryTransport under a flood of 1 MB events', () => {
  it('retains at most maxTotalBytes / maxBytesPerThread of JSON, and the heap returns near its baseline', async () => {
    const gc = collector();
    const baseline = heapAfterGc(gc);
    const transport = new MemoryTransport({ maxTotalBytes: 16 * MiB, maxBytesPerThread: 4 * MiB });
    const eventBytes = MiB - 1024;
    let peak = 0;
    for (let i = 0; i < 150; i++) {
      await transport.send(bigEvent(`thread-${i % 30}`, `user-${i % 10}`, i, eventBytes));
      expect(transport.byteCount).toBeLessThanOrEqual(16 * MiB);
      if (i % 25 === 24) peak = Math.max(peak, heapAfterGc(gc) - baseline);
    }
    // Per thread: 5 events went to each of 30 threads; 4 MiB holds 4 of them.
    for (let t = 0; t < 30; t++) {
      const retained = transport.read(`thread-${t}`, `user-${t % 10}`).reduce((sum, event) => sum + JSON.stringify(event).length, 0);
      expect(retained).toBeLessThanOrEqual(4 * MiB);
    }
    expect(transport.eventCount).toBeLessThanOrEqual(16);
    // What stays is the retained events (their JSON and their data: about twice the JSON), not the 150 MB sent.
    expect(peak).toBeLessThan(2 * 16 * MiB + 12 * MiB);
    await transport.close();
    const released = heapAfterGc(gc) - baseline;
    expect(released).toBeLessThan(4 * MiB);
    console.log(`memory log flood: peak +${(peak / MiB).toFixed(1)} MiB for 16 MiB of retained JSON, +${(released / MiB).toFixed(1)} MiB after close`);
  });

  it('with its defaults holds at most 64 MiB of JSON however many 1 MB events arrive', async () => {
    const gc = collector();
    const baseline = heapAfterGc(gc);
    const transport = new MemoryTransport();
    for (let i = 0; i < 120; i++) await transport.send(bigEvent(`t${i}`, `u${i % 7}`, i, MiB - 1024));
    const retainedBytes = transport.byteCount;
    expect(retainedBytes).toBeLessThanOrEqual(64 * MiB);
    expect(transport.eventCount).toBeLessThanOrEqual(64);
    const held = heapAfterGc(gc) - baseline;
    expect(held).toBeLessThan(2 * 64 * MiB + 16 * MiB);
    // Threads that lost their history to the total bound can be resumed only with a gap.
    const first = transport.subscribeSync({ userId: 'u0', threadId: 't0', after: 'x' }, { onEntries: () => undefined });
    expect(first.status).toBe('history_gap');
    await transport.close();
    expect(heapAfterGc(gc) - baseline).toBeLessThan(4 * MiB);
    console.log(`memory log defaults: +${(held / MiB).toFixed(1)} MiB heap for ${(retainedBytes / MiB).toFixed(1)} MiB retained of 120 MiB sent`);
  });
});
