import { describe, expect, it } from 'vitest';
import { AuthError, MemoryTransport, RunEmitter, TransportError, generateRunId, type AgentEvent, type LogEntry } from '../../src/index.js';

function emitterFor(userId: string, threadId: string) {
  return new RunEmitter({ runId: generateRunId(threadId), threadId, userId, agent: 'a' });
}

function thoughts(count: number, userId = 'alice', threadId = 't1'): AgentEvent[] {
  const emitter = emitterFor(userId, threadId);
  const events: AgentEvent[] = [emitter.emit('agent_started', { metadata: {} }).event];
  for (let i = 1; i < count; i++) events.push(emitter.emit('agent_thinking', { text: `n${i}` }).event);
  return events;
}

describe('MemoryTransport', () => {
  it('replays from a cursor and then follows live, with no gap and no duplicate', async () => {
    const transport = new MemoryTransport();
    const events = thoughts(10);
    const entries = events.slice(0, 6).map((event) => transport.append(event));
    const live: LogEntry[] = [];
    const result = transport.subscribeSync({ userId: 'alice', threadId: 't1', after: entries[2]!.cursor }, { onEntries: (e) => live.push(...e) });
    expect(result.status).toBe('subscribed');
    if (result.status !== 'subscribed') return;
    expect(result.cursor).toBe(entries[5]!.cursor);
    for (const event of events.slice(6)) await transport.send(event);
    const seen = [...result.replay, ...live].map((entry) => entry.event.seq);
    expect(seen).toEqual([4, 5, 6, 7, 8, 9, 10]);
  });

  it('without a cursor replays everything retained', () => {
    const transport = new MemoryTransport();
    thoughts(5).forEach((event) => transport.append(event));
    const result = transport.subscribeSync({ userId: 'alice', threadId: 't1' }, { onEntries: () => undefined });
    expect(result.status === 'subscribed' && result.replay.map((e) => e.event.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('answers history_gap (never a partial replay) for trimmed, foreign-epoch and forged cursors', () => {
    const transport = new MemoryTransport({ maxEventsPerThread: 5 });
    const entries = thoughts(20).map((event) => transport.append(event));
    const listener = { onEntries: () => undefined };
    const gap = (after: string) => transport.subscribeSync({ userId: 'alice', threadId: 't1', after }, listener);
    expect(gap(entries[3]!.cursor)).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
    expect(gap(new MemoryTransport().epoch + ':3')).toMatchObject({ status: 'history_gap', gap: { reason: 'epoch_changed' } });
    expect(gap(`${transport.epoch}:999`)).toMatchObject({ status: 'history_gap', gap: { reason: 'unknown_cursor' } });
    expect(gap('not a cursor')).toMatchObject({ status: 'history_gap', gap: { reason: 'unknown_cursor' } });
    // The oldest cursor still honoured: the one just before the first retained entry.
    const ok = gap(entries[14]!.cursor);
    expect(ok.status === 'subscribed' && ok.replay.map((e) => e.event.seq)).toEqual([16, 17, 18, 19, 20]);
  });

  it('refuses another user subscribing to an owned thread and another user writing to it', async () => {
    const transport = new MemoryTransport();
    transport.append(thoughts(1)[0]!);
    expect(() => transport.subscribeSync({ userId: 'mallory', threadId: 't1' }, { onEntries: () => undefined })).toThrow(AuthError);
    await expect(transport.send(thoughts(1, 'mallory', 't1')[0]!)).rejects.toMatchObject({
      code: 'THREAD_OWNER_MISMATCH',
      retryable: false,
    });
    expect(transport.read('t1', 'mallory')).toEqual([]);
  });

  it('a subscriber that opened a thread before its owner wrote gets none of its events and is told it is refused', () => {
    const transport = new MemoryTransport();
    const got: AgentEvent[] = [];
    const closed: unknown[] = [];
    transport.subscribeSync(
      { userId: 'mallory', threadId: 'early' },
      { onEntries: (e) => got.push(...e.map((x) => x.event)), onClose: (reason) => closed.push(reason) },
    );
    const mine: AgentEvent[] = [];
    transport.subscribeSync({ userId: 'alice', threadId: 'early' }, { onEntries: (e) => mine.push(...e.map((x) => x.event)) });
    for (const event of thoughts(3, 'alice', 'early')) transport.append(event);
    expect(got).toEqual([]);
    expect(mine).toHaveLength(3);
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ code: 'THREAD_FORBIDDEN' });
  });

  it('bounds threads: idle threads past their TTL are dropped', () => {
    let now = 0;
    const transport = new MemoryTransport({ maxThreads: 64, threadTtlMs: 10, now: () => now });
    for (let i = 0; i < 500; i++) {
      now += 1;
      transport.append(thoughts(1, 'u', `t${i}`)[0]!);
    }
    expect(transport.threadCount).toBeLessThanOrEqual(64);
  });

  it('close() ends subscriptions and refuses further sends', async () => {
    const transport = new MemoryTransport();
    let closed = 0;
    transport.subscribeSync({ userId: 'alice', threadId: 't1' }, { onEntries: () => undefined, onClose: () => closed++ });
    await transport.close();
    expect(closed).toBe(1);
    await expect(transport.send(thoughts(1)[0]!)).rejects.toBeInstanceOf(TransportError);
  });
});

describe('MemoryTransport total bound', () => {
  it('keeps at most maxTotalEvents across threads by dropping the least recently active history', () => {
    let now = 0;
    const transport = new MemoryTransport({ maxTotalEvents: 100, maxEventsPerThread: 50, now: () => ++now });
    const firstEntries = thoughts(40, 'alice', 'old').map((event) => transport.append(event));
    for (let i = 0; i < 20; i++) thoughts(30, 'bob', `t${i}`).forEach((event) => transport.append(event));
    expect(transport.eventCount).toBeLessThanOrEqual(100);
    // The oldest thread lost its history: resuming into it is a gap, never a partial replay.
    const result = transport.subscribeSync({ userId: 'alice', threadId: 'old', after: firstEntries[10]!.cursor }, { onEntries: () => undefined });
    expect(result).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
    // Its offsets continue: a new event gets the next cursor, not a reused one.
    const next = transport.append(emitterFor('alice', 'old').emit('agent_started', { metadata: {} }).event);
    expect(next.cursor).toBe(`${transport.epoch}:41`);
  });
});

describe('MemoryTransport thread bound against subscriptions', () => {
  it('refuses to follow a new thread when every retained thread has subscribers, and still accepts events', () => {
    const transport = new MemoryTransport({ maxThreads: 10 });
    const listener = { onEntries: () => undefined };
    for (let i = 0; i < 10; i++) transport.subscribeSync({ userId: 'u', threadId: `t${i}` }, listener);
    expect(() => transport.subscribeSync({ userId: 'u', threadId: 'one-too-many' }, listener)).toThrow(/Too many threads/);
    expect(transport.threadCount).toBe(10);
    transport.append(thoughts(1, 'u', 'new-thread')[0]!);
    expect(transport.read('new-thread', 'u')).toHaveLength(1);
  });
});
