import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryTransport, generateRunId, type AgentEvent, type LogEntry, type SubscribeResult } from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';

/**
 * Property tests of resume on the memory log: whatever string a client sends as its cursor, for
 * whichever of its threads, the answer is either exactly the retained events after a cursor this
 * log issued for that thread's current log, or `history_gap` — never a partial or shifted replay.
 */

interface Issued {
  threadId: string;
  /** Which log of the thread issued it (a thread dropped and recreated gets a new one). */
  incarnation: number;
  entry: LogEntry;
}

function scenario() {
  let now = 0;
  const transport = new MemoryTransport({ maxEventsPerThread: 8, threadTtlMs: 600, now: () => now });
  const issued: Issued[] = [];
  const incarnations = new Map<string, number>();
  const write = (threadId: string, count: number) => {
    const emitter = new RunEmitter({ runId: generateRunId(threadId), threadId, userId: 'alice', agent: 'a' });
    const events: AgentEvent[] = [emitter.emit('agent_started', { metadata: {} }).event];
    for (let i = 1; i < count; i++) events.push(emitter.emit('agent_thinking', { text: `${threadId} ${i}` }).event);
    for (const event of events) issued.push({ threadId, incarnation: incarnations.get(threadId) ?? 0, entry: transport.append(event) });
  };
  write('C', 6);
  now = 500;
  write('A', 20); // trimmed: only the last 8 retained
  write('B', 5);
  write('A.1', 3); // a thread id that differs from A by a suffix
  // C goes idle past its TTL and is dropped (by the next call: the first filler), then is recreated.
  now = 1_000;
  for (let i = 0; i < 64; i++) write(`filler-${i}`, 1);
  incarnations.set('C', 1);
  write('C', 12);
  write('B', 2);
  // Cursors of another incarnation of the whole log (a restart).
  const previous = new MemoryTransport();
  const emitter = new RunEmitter({ runId: generateRunId('A'), threadId: 'A', userId: 'alice', agent: 'a' });
  const foreign = [previous.append(emitter.emit('agent_started', { metadata: {} }).event).cursor, previous.append(emitter.emit('agent_thinking', { text: 'x' }).event).cursor];
  return { transport, issued, incarnations, foreign, threads: ['A', 'B', 'C', 'A.1', 'D-never-written'] };
}

type Scenario = ReturnType<typeof scenario>;

/** What resuming `threadId` after `cursor` must give: the ids replayed, or a gap. */
function expected(s: Scenario, threadId: string, cursor: string): string[] | 'gap' {
  const retained = s.transport.read(threadId, 'alice').map((event) => event.id);
  const current = s.issued.filter((item) => item.threadId === threadId && item.incarnation === (s.incarnations.get(threadId) ?? 0));
  const at = current.findIndex((item) => item.entry.cursor === cursor);
  if (at < 0) return 'gap';
  const after = current.slice(at + 1).map((item) => item.entry.event.id);
  // The log retains a suffix of its entries: the cursor is honoured when everything after it is in that suffix.
  if (after.length > retained.length) return 'gap';
  expect(retained.slice(retained.length - after.length)).toEqual(after);
  return after;
}

function resume(s: Scenario, threadId: string, after: string): SubscribeResult {
  const result = s.transport.subscribeSync({ userId: 'alice', threadId, after }, { onEntries: () => undefined });
  if (result.status === 'subscribed') result.subscription.close();
  return result;
}

function check(s: Scenario, threadId: string, after: string): void {
  const result = resume(s, threadId, after);
  const want = expected(s, threadId, after);
  if (want === 'gap') {
    expect(result.status, `${threadId} after ${JSON.stringify(after)}`).toBe('history_gap');
    if (result.status === 'history_gap') expect(result.gap).toMatchObject({ threadId, requested: after });
  } else {
    expect(result.status, `${threadId} after ${JSON.stringify(after)}`).toBe('subscribed');
    if (result.status === 'subscribed') expect(result.replay.map((entry) => entry.event.id)).toEqual(want);
  }
}

describe('memory log resume is all or nothing (property)', () => {
  const s = scenario();
  const cursors = [...s.issued.map((item) => item.entry.cursor), ...s.foreign];

  it('the scenario has what the properties need: valid, trimmed, recreated and foreign cursors', () => {
    const valid = s.issued.filter((item) => expected(s, item.threadId, item.entry.cursor) !== 'gap');
    expect(valid.length).toBeGreaterThan(20);
    expect(expected(s, 'A', s.issued.find((item) => item.threadId === 'A')!.entry.cursor)).toBe('gap');
    expect(s.transport.read('A', 'alice')).toHaveLength(8);
    expect(s.transport.read('B', 'alice')).toHaveLength(7);
    expect(s.transport.read('C', 'alice')).toHaveLength(8);
    const oldC = s.issued.find((item) => item.threadId === 'C' && item.incarnation === 0)!.entry.cursor;
    expect(resume(s, 'C', oldC)).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
  });

  it('any string: exactly the retained suffix after an issued cursor of this thread, or history_gap', () => {
    const structured = fc
      .tuple(fc.constantFrom(...cursors), fc.nat({ max: 40 }), fc.string({ maxLength: 3 }), fc.nat({ max: 4 }))
      .map(([cursor, at, insert, cut]) => cursor.slice(0, Math.min(at, cursor.length)) + insert + cursor.slice(Math.min(at, cursor.length) + cut));
    fc.assert(
      fc.property(fc.oneof(structured, fc.string({ maxLength: 60 }), fc.constantFrom(...cursors)), fc.constantFrom(...s.threads), (after, threadId) => {
        check(s, threadId, after);
      }),
      { numRuns: 3_000 },
    );
  });

  it('(thread, offset) mutations of real cursors: only the exact thread, log and a retained offset replay', () => {
    fc.assert(
      fc.property(fc.constantFrom(...cursors), fc.constantFrom(...s.threads), fc.integer({ min: -25, max: 25 }), (cursor, threadId, delta) => {
        const colon = cursor.lastIndexOf(':');
        const offset = Number(cursor.slice(colon + 1)) + delta;
        const mutated = `${cursor.slice(0, colon)}:${offset}`;
        check(s, threadId, mutated);
        const result = resume(s, threadId, mutated);
        if (result.status !== 'history_gap') return;
        // The right reason: another thread of this log is unknown, another log's epoch changed, an
        // older (dropped) log of this thread or an offset before the retained window trimmed.
        const source = s.issued.find((item) => item.entry.cursor === cursor);
        if (offset < 1) expect(result.gap.reason).toBe('unknown_cursor'); // not a well-formed cursor at all
        else if (!source) expect(result.gap.reason).toBe('epoch_changed');
        else if (source.threadId !== threadId) expect(result.gap.reason).toBe('unknown_cursor');
        else if (source.incarnation !== (s.incarnations.get(threadId) ?? 0)) expect(result.gap.reason).toBe('trimmed');
        else expect(['trimmed', 'unknown_cursor']).toContain(result.gap.reason);
      }),
      { numRuns: 3_000 },
    );
  });
});
