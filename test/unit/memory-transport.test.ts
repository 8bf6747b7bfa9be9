import { describe, expect, it } from 'vitest';
import {
  AgentBridge,
  AuthError,
  DeliveryError,
  MemoryTransport,
  StateError,
  TransportError,
  ValidationError,
  generateRunId,
  validateLifecycle,
  type AgentEvent,
  type LogEntry,
} from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { eventJson } from '../../src/events/json.js';
import { Follower } from '../../src/gateway/follower.js';
import { eventFrameJson } from '../../src/gateway/websocket/server-frames.js';

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

  it('TTL drops idle threads: a thread idle past threadTtlMs is forgotten, a younger or followed one is kept', () => {
    let now = 0;
    // maxThreads far above what is created: only the TTL can drop anything here.
    const transport = new MemoryTransport({ maxThreads: 10_000, threadTtlMs: 1_000, now: () => now });
    const old = transport.append(thoughts(1, 'u', 'old')[0]!);
    const watchedLive: AgentEvent[] = [];
    transport.subscribeSync({ userId: 'u', threadId: 'watched' }, { onEntries: (e) => watchedLive.push(...e.map((x) => x.event)) });
    transport.append(thoughts(1, 'u', 'watched')[0]!);
    now = 1_500;
    const recent = transport.append(thoughts(1, 'u', 'recent')[0]!);
    now = 2_000; // old and watched are idle for 2 s (past the TTL), recent for 0.5 s
    // Any call sees the TTL: the first of these appends drops the expired threads.
    for (let i = 0; i < 64; i++) transport.append(thoughts(1, 'u', `t${i}`)[0]!);
    expect(transport.threadCount).toBe(64 + 2);

    const listener = { onEntries: () => undefined };
    // The idle thread is gone: resuming into it is a gap, never a silent replay of nothing.
    expect(transport.subscribeSync({ userId: 'u', threadId: 'old', after: old.cursor }, listener)).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
    // The younger one is kept whole, the followed one still delivers live.
    expect(transport.subscribeSync({ userId: 'u', threadId: 'recent' }, listener)).toMatchObject({ status: 'subscribed', cursor: recent.cursor });
    transport.append(thoughts(1, 'u', 'watched')[0]!);
    expect(watchedLive).toHaveLength(2);
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
    expect(next.cursor).toBe(firstEntries[0]!.cursor.replace(/:1$/, ':41'));
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

describe('MemoryTransport: a thread dropped for room keeps its owner until its TTL (outside attack: evict, then take over)', () => {
  it("another user flooding the log with threads evicts alice's thread but cannot take it; its TTL still frees it", async () => {
    let now = 1_000;
    const transport = new MemoryTransport({ maxThreads: 20, threadTtlMs: 60_000, now: () => now });
    transport.append(thoughts(1, 'alice', 'alice-t')[0]!);
    for (let i = 0; i < 40; i++) {
      now++;
      transport.append(thoughts(1, 'mallory', `mal-${i}`)[0]!);
    }
    expect(transport.threadCount).toBe(20);
    expect(transport.read('alice-t', 'alice')).toEqual([]); // its history went for room
    expect(await transport.ownerOf('alice-t')).toBe('alice');
    expect(() => transport.append(thoughts(1, 'mallory', 'alice-t')[0]!)).toThrow(expect.objectContaining({ code: 'THREAD_OWNER_MISMATCH' }));
    expect(() => transport.subscribeSync({ userId: 'mallory', threadId: 'alice-t' }, listener)).toThrow(AuthError);
    // Alice gets her thread back (empty: what was dropped is gone).
    const subscribed = transport.subscribeSync({ userId: 'alice', threadId: 'alice-t' }, listener);
    expect(subscribed.status).toBe('subscribed');
    transport.append(thoughts(1, 'alice', 'alice-t')[0]!);
    expect(transport.read('alice-t', 'alice')).toHaveLength(1);
    // A thread idle past its TTL is free, dropped for room or not.
    const other = new MemoryTransport({ maxThreads: 20, threadTtlMs: 60_000, now: () => now });
    other.append(thoughts(1, 'alice', 'alice-t')[0]!);
    for (let i = 0; i < 40; i++) other.append(thoughts(1, 'mallory', `mal-${i}`)[0]!);
    now += 60_001;
    expect(await other.ownerOf('alice-t')).toBeUndefined();
    expect(() => other.append(thoughts(1, 'mallory', 'alice-t')[0]!)).not.toThrow();
  });
});

describe('MemoryTransport: a followed thread is in use (third attack round: watched past its TTL, left, pushed out, taken)', () => {
  it('counts the TTL from when the last subscriber left: a thread watched for 2 h and left keeps its owner when dropped for room, until its TTL from then', async () => {
    let now = 1_000_000;
    const hour = 3_600_000;
    const transport = new MemoryTransport({ maxThreads: 10, now: () => now });
    transport.append(thoughts(1, 'alice', 'alice-t')[0]!);
    const first = transport.subscribeSync({ userId: 'alice', threadId: 'alice-t' }, listener);
    const second = transport.subscribeSync({ userId: 'alice', threadId: 'alice-t' }, listener);
    if (first.status !== 'subscribed' || second.status !== 'subscribed') throw new Error('not subscribed');
    now += 2 * hour;
    first.subscription.close();
    now += hour; // one subscriber left: still followed
    second.subscription.close();
    now += 1_000;
    // One account opens 12 threads: alice's goes for room.
    for (let i = 0; i < 12; i++) {
      now++;
      transport.append(thoughts(1, 'mallory', `mal-${i}`)[0]!);
    }
    expect(transport.read('alice-t', 'alice')).toEqual([]);
    expect(await transport.ownerOf('alice-t')).toBe('alice');
    expect(() => transport.append(thoughts(1, 'mallory', 'alice-t')[0]!)).toThrow(expect.objectContaining({ code: 'THREAD_OWNER_MISMATCH' }));
    expect(() => transport.subscribeSync({ userId: 'mallory', threadId: 'alice-t' }, listener)).toThrow(expect.objectContaining({ code: 'THREAD_FORBIDDEN' }));
    // An hour after she left (not after her last event), the thread is free.
    now += hour;
    expect(await transport.ownerOf('alice-t')).toBeUndefined();
  });
});

/** A raw event (no emitter): full control over run id, event id, type and size. */
function raw(type: AgentEvent['type'], runId: string, overrides: Partial<AgentEvent> & { text?: string } = {}): AgentEvent {
  const { text, ...rest } = overrides;
  const data =
    type === 'agent_started'
      ? { metadata: {}, input: text ?? '' }
      : type === 'agent_completed'
        ? { status: 'succeeded', result: text ?? null, durationMs: 1 }
        : { text: text ?? '' };
  return { v: 1, id: `${runId}-${type}-${Math.random().toString(36).slice(2)}`, type, runId, threadId: 't1', userId: 'alice', agent: 'a', seq: 1, ts: 1, data, ...rest } as AgentEvent;
}

const listener = { onEntries: () => undefined };

describe('MemoryTransport serialization', () => {
  it('gives every entry, live and replayed, the JSON made once by eventJson', () => {
    const transport = new MemoryTransport();
    const live: LogEntry[] = [];
    transport.subscribeSync({ userId: 'alice', threadId: 't1' }, { onEntries: (e) => live.push(...e) });
    const events = thoughts(5);
    const appended = events.map((event) => transport.append(event));
    const replay = transport.subscribeSync({ userId: 'alice', threadId: 't1' }, listener);
    if (replay.status !== 'subscribed') throw new Error('expected subscribed');
    for (const entries of [appended, live, replay.replay]) {
      expect(entries.map((entry) => entry.json)).toEqual(events.map((event) => eventJson(event)));
      expect(entries.map((entry) => JSON.parse(entry.json))).toEqual(events);
    }
    // The same string object eventJson remembers for the event: serialized once, not per reader.
    expect(appended[0]!.json).toBe(eventJson(events[0]!));
  });

  it('names each entry’s user, thread, run and id as its event does, and a replay is routed without parsing one event', async () => {
    const transport = new MemoryTransport();
    const events = thoughts(4);
    // Events built elsewhere: another key order, and an id JSON has to escape.
    const base = events[3]!;
    const reordered = { id: `${base.id}-x`, v: 1, type: 'agent_thinking', runId: base.runId, threadId: 't1', userId: 'alice', agent: 'a', seq: 5, ts: 1, data: { text: 'r' } } as AgentEvent;
    const escaped = { ...base, id: `${base.id}-"q"\\`, seq: 6, data: { text: 'e' } } as AgentEvent;
    const all = [...events, reordered, escaped];
    const appended = all.map((event) => transport.append(event));
    const result = transport.subscribeSync({ userId: 'alice', threadId: 't1' }, listener);
    if (result.status !== 'subscribed') throw new Error('expected subscribed');
    const identity = (entry: LogEntry) => [entry.userId, entry.threadId, entry.runId, entry.eventId, entry.eventType];
    const parsed = (entry: LogEntry) => (entry as unknown as { parsed?: unknown }).parsed;
    // A reader that checks, routes and writes a replay (the WebSocket gateway's Follower and frames).
    const follower = new Follower({ userId: 'alice', threadId: 't1' }, { maxQueuedEntries: 10, maxQueuedChars: 1e6, readable: () => undefined, ended: () => undefined });
    expect(await follower.start(transport)).toMatchObject({ status: 'following', replayed: all.length });
    const taken: LogEntry[] = [];
    for (let entry = follower.next(); entry !== undefined; entry = follower.next()) taken.push(entry);
    const frames = taken.map((entry) => eventFrameJson(entry, entry.json));
    expect(taken.slice(0, 5).map(parsed)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(frames.map((frame) => JSON.parse(frame).event)).toEqual(all);
    for (const entries of [appended, result.replay, taken]) {
      expect(entries.map(identity)).toEqual(all.map((event) => [event.userId, event.threadId, event.runId, event.id, event.type]));
    }
  });

  it("a live entry's event is its JSON parsed back, never the appended object (a getter read again is not seen); subscribers share one parse", () => {
    const transport = new MemoryTransport();
    const emitter = emitterFor('alice', 't1');
    const seen: LogEntry[][] = [[], []];
    for (const into of seen) transport.subscribeSync({ userId: 'alice', threadId: 't1' }, { onEntries: (e) => into.push(...e) });
    let reads = 0;
    const result = {
      get v(): unknown {
        return ++reads === 1 ? 'ok' : 10n;
      },
    };
    const events = [
      emitter.emit('agent_started', { metadata: {} }).event,
      emitter.emit('tool_executing', { toolCallId: 'c1', tool: 't', args: {} }).event,
      emitter.emit('tool_completed', { toolCallId: 'c1', tool: 't', status: 'succeeded', result, durationMs: 1 }).event,
    ];
    const appended = events.map((event) => transport.append(event));
    expect(reads).toBe(1); // serialized once, where it was built
    const [first, second] = seen;
    for (const entries of [appended, first!, second!]) {
      expect(entries.map((entry) => entry.eventType)).toEqual(['agent_started', 'tool_executing', 'tool_completed']);
      expect(entries[2]!.event === events[2]).toBe(false); // (not `not.toBe`: its diff would read the getter)
      expect(entries[2]!.event).toEqual(JSON.parse(entries[2]!.json));
      expect(entries[2]!.event).toMatchObject({ type: 'tool_completed', data: { result: { v: 'ok' } } });
    }
    expect(reads).toBe(1);
    // The live entry is one object for every subscriber: one parse per event, not per reader.
    expect(first![2]).toBe(second![2]);
    expect(first![2]!.event).toBe(second![2]!.event);
  });

  it('refuses an event that is not JSON alone (TRANSPORT_REFUSED, not retryable) and stores nothing of it', async () => {
    const transport = new MemoryTransport();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const poisons = [
      raw('agent_thinking', 'r1', { text: 'x', data: { text: 'x', big: 10n } } as never),
      raw('agent_thinking', 'r1', { data: { text: 'x', cyclic } } as never),
      raw('agent_thinking', 'r1', { data: { text: 'x'.repeat(1024 * 1024 + 1) } } as never),
    ];
    transport.append(raw('agent_started', 'r1'));
    for (const poison of poisons) {
      const refusal = transport.send(poison);
      await expect(refusal).rejects.toBeInstanceOf(TransportError);
      await expect(refusal).rejects.toMatchObject({ code: 'TRANSPORT_REFUSED', retryable: false, cause: { name: 'ValidationError' } });
      expect(() => transport.sendSync(poison)).toThrow(/refused/);
    }
    await expect(transport.send(poisons[0]!)).rejects.toMatchObject({ cause: { code: 'EVENT_NOT_SERIALIZABLE' } });
    await expect(transport.send(poisons[2]!)).rejects.toMatchObject({ cause: { code: 'EVENT_TOO_LARGE' } });
    // Nothing of them is retained, the run goes on.
    await transport.send(raw('agent_thinking', 'r1', { text: 'after' }));
    expect(transport.read('t1', 'alice').map((event) => event.type)).toEqual(['agent_started', 'agent_thinking']);
    expect(transport.eventCount).toBe(2);
  });
});

describe('MemoryTransport byte bounds', () => {
  it('trims a thread by the JSON size of its events, not only by their number', () => {
    const transport = new MemoryTransport({ maxBytesPerThread: 10_000 });
    const entries = Array.from({ length: 30 }, (_, i) => transport.append(raw(i === 0 ? 'agent_started' : 'agent_thinking', 'r1', { text: 'x'.repeat(900) })));
    const size = entries[1]!.json.length;
    expect(transport.byteCount).toBeLessThanOrEqual(10_000);
    expect(transport.byteCount).toBeGreaterThan(10_000 - size);
    const retained = transport.read('t1', 'alice');
    expect(retained.length).toBe(Math.floor(10_000 / size));
    expect(transport.eventCount).toBe(retained.length);
    // The cursor before the oldest retained one still replays everything after it; one further back is a gap.
    const firstKept = entries.length - retained.length;
    const ok = transport.subscribeSync({ userId: 'alice', threadId: 't1', after: entries[firstKept - 1]!.cursor }, listener);
    expect(ok.status === 'subscribed' && ok.replay.map((entry) => entry.event.id)).toEqual(retained.map((event) => event.id));
    const trimmed = transport.subscribeSync({ userId: 'alice', threadId: 't1', after: entries[firstKept - 2]!.cursor }, listener);
    expect(trimmed).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
  });

  it('delivers an event larger than maxBytesPerThread live but does not retain it', () => {
    const transport = new MemoryTransport({ maxBytesPerThread: 5_000 });
    const live: LogEntry[] = [];
    transport.subscribeSync({ userId: 'alice', threadId: 't1' }, { onEntries: (e) => live.push(...e) });
    const small = transport.append(raw('agent_started', 'r1'));
    const big = transport.append(raw('agent_thinking', 'r1', { text: 'y'.repeat(6_000) }));
    expect(live.map((entry) => entry.event.id)).toEqual([small.event.id, big.event.id]);
    expect(transport.read('t1', 'alice')).toEqual([]);
    expect(transport.byteCount).toBe(0);
    // Resuming from before it is a gap; from it, an empty replay.
    expect(transport.subscribeSync({ userId: 'alice', threadId: 't1', after: small.cursor }, listener)).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
    const after = transport.subscribeSync({ userId: 'alice', threadId: 't1', after: big.cursor }, listener);
    expect(after.status === 'subscribed' && after.replay).toEqual([]);
  });

  it('keeps the total JSON size within maxTotalBytes by dropping the least recently active history', () => {
    let now = 0;
    const transport = new MemoryTransport({ maxTotalBytes: 50_000, maxBytesPerThread: 20_000, now: () => ++now });
    const old = Array.from({ length: 10 }, (_, i) => transport.append(raw(i ? 'agent_thinking' : 'agent_started', 'old-run', { threadId: 'old', text: 'o'.repeat(1_000) })));
    for (let t = 0; t < 20; t++) {
      for (let i = 0; i < 10; i++) transport.append(raw(i ? 'agent_thinking' : 'agent_started', `run-${t}`, { threadId: `t${t}`, userId: 'bob', text: 'b'.repeat(1_000) }));
      expect(transport.byteCount).toBeLessThanOrEqual(50_000);
    }
    expect(transport.read('old', 'alice')).toEqual([]);
    expect(transport.hasRun('old-run')).toBe(false);
    expect(transport.subscribeSync({ userId: 'alice', threadId: 'old', after: old[3]!.cursor }, listener)).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
    // The newest threads are whole.
    expect(transport.read('t19', 'bob')).toHaveLength(10);
  });

  it('refuses options that are not positive numbers', () => {
    expect(() => new MemoryTransport({ maxTotalBytes: 0 })).toThrow(/maxTotalBytes/);
    expect(() => new MemoryTransport({ maxBytesPerThread: Number.NaN })).toThrow(/maxBytesPerThread/);
  });
});

describe('MemoryTransport cursors name their log and thread', () => {
  it('answers history_gap for a valid cursor of another thread of the same user (never a partial replay)', () => {
    const transport = new MemoryTransport();
    const a = thoughts(10, 'alice', 'A').map((event) => transport.append(event));
    thoughts(20, 'alice', 'C').forEach((event) => transport.append(event));
    const result = transport.subscribeSync({ userId: 'alice', threadId: 'C', after: a[4]!.cursor }, listener);
    expect(result).toMatchObject({ status: 'history_gap', gap: { reason: 'unknown_cursor', threadId: 'C', requested: a[4]!.cursor } });
  });

  it('answers trimmed for a cursor of a thread log that was dropped, also once the thread is recreated', () => {
    let now = 0;
    const transport = new MemoryTransport({ threadTtlMs: 10, now: () => now });
    const first = thoughts(5, 'alice', 'T').map((event) => transport.append(event));
    now = 1_000;
    // Any call sees the TTL: the first filler drops T.
    for (let i = 0; i < 64; i++) transport.append(thoughts(1, 'bob', `filler-${i}`)[0]!);
    expect(transport.read('T', 'alice')).toEqual([]);
    const dropped = transport.subscribeSync({ userId: 'alice', threadId: 'T', after: first[2]!.cursor }, listener);
    expect(dropped).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
    // Recreated with more events than the old one had: the old cursor still names the dropped log.
    thoughts(10, 'alice', 'T').forEach((event) => transport.append(event));
    const recreated = transport.subscribeSync({ userId: 'alice', threadId: 'T', after: first[2]!.cursor }, listener);
    expect(recreated).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
  });

  it('answers unknown_cursor for forged variants of a real cursor', () => {
    const transport = new MemoryTransport();
    const entries = thoughts(5).map((event) => transport.append(event));
    const real = entries[1]!.cursor;
    const [prefix, offset] = real.split(':') as [string, string];
    const [epoch, logId, tag] = prefix.split('.') as [string, string, string];
    const forged = [
      `${prefix}:0${offset}`, // leading zero
      `${prefix}:0`,
      `${epoch}.0${logId}.${tag}:${offset}`,
      `${epoch}.${logId}.${tag}x:${offset}`,
      `${epoch}.zzzz.${tag}:${offset}`, // a log id never issued
      `${epoch}:${offset}`, // the old format, this epoch
      `${real} `,
      real.toUpperCase(),
      '',
    ];
    for (const after of forged) {
      expect(transport.subscribeSync({ userId: 'alice', threadId: 't1', after }, listener), after).toMatchObject({
        status: 'history_gap',
        gap: { reason: 'unknown_cursor' },
      });
    }
  });
});

describe('MemoryTransport run ids are used once, and nothing follows a run’s end', () => {
  it('refuses agent_started for a run id with retained events (RUN_ID_CONFLICT, not retryable)', async () => {
    const transport = new MemoryTransport();
    expect(transport.hasRun('r1')).toBe(false);
    transport.append(raw('agent_started', 'r1'));
    expect(transport.hasRun('r1')).toBe(true);
    const again = transport.send(raw('agent_started', 'r1'));
    await expect(again).rejects.toBeInstanceOf(ValidationError);
    await expect(again).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT', retryable: false });
    // Also while the run is closed but retained, and from another thread.
    transport.append(raw('agent_completed', 'r1'));
    await expect(transport.send(raw('agent_started', 'r1', { threadId: 'other' }))).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
    expect(transport.read('t1', 'alice').map((event) => event.type)).toEqual(['agent_started', 'agent_completed']);
    expect(transport.read('other', 'alice')).toEqual([]);
  });

  it('refuses every event of a run after its retained agent_completed (RUN_CLOSED, not retryable)', async () => {
    const transport = new MemoryTransport();
    transport.append(raw('agent_started', 'r1'));
    transport.append(raw('agent_completed', 'r1'));
    for (const type of ['agent_thinking', 'tool_executing', 'agent_completed'] as const) {
      const late = transport.send(raw(type, 'r1', type === 'tool_executing' ? ({ data: { toolCallId: 'c', tool: 't', args: {} } } as never) : {}));
      await expect(late).rejects.toBeInstanceOf(StateError);
      await expect(late).rejects.toMatchObject({ code: 'RUN_CLOSED', retryable: false });
    }
    expect(transport.read('t1', 'alice')).toHaveLength(2);
  });

  it('accepts a repeat of the same agent_started or agent_completed without storing it twice', () => {
    const transport = new MemoryTransport();
    const live: LogEntry[] = [];
    transport.subscribeSync({ userId: 'alice', threadId: 't1' }, { onEntries: (e) => live.push(...e) });
    const start = raw('agent_started', 'r1');
    const end = raw('agent_completed', 'r1');
    const first = transport.append(start);
    expect(transport.append({ ...start })).toBe(first);
    const last = transport.append(end);
    expect(transport.append(end)).toBe(last);
    expect(live).toHaveLength(2);
    expect(transport.eventCount).toBe(2);
  });

  it('forgets a run with its last retained event: the id is free again and the record is gone', () => {
    const transport = new MemoryTransport({ maxEventsPerThread: 3 });
    transport.append(raw('agent_started', 'r1'));
    transport.append(raw('agent_completed', 'r1'));
    transport.append(raw('agent_started', 'r2'));
    expect(transport.hasRun('r1')).toBe(true);
    transport.append(raw('agent_thinking', 'r2'));
    // r1's agent_started is trimmed: r1 is still retained by its agent_completed.
    expect(transport.hasRun('r1')).toBe(true);
    expect(() => transport.append(raw('agent_thinking', 'r1'))).toThrow(/has completed/);
    transport.append(raw('agent_thinking', 'r2'));
    expect(transport.hasRun('r1')).toBe(false);
    expect(transport.runCount).toBe(1);
    // A new run may use the id now.
    transport.append(raw('agent_started', 'r1'));
    expect(transport.hasRun('r1')).toBe(true);
  });

  it('keeps run records bounded by the retained events, across many runs, threads and evictions', () => {
    let now = 0;
    const transport = new MemoryTransport({ maxTotalEvents: 500, maxEventsPerThread: 50, maxThreads: 20, threadTtlMs: 50, now: () => ++now });
    for (let r = 0; r < 2_000; r++) {
      const threadId = `t${r % 37}`;
      transport.append(raw('agent_started', `run-${r}`, { threadId }));
      transport.append(raw('agent_thinking', `run-${r}`, { threadId }));
      transport.append(raw('agent_completed', `run-${r}`, { threadId }));
      expect(transport.runCount).toBeLessThanOrEqual(transport.eventCount);
    }
    expect(transport.eventCount).toBeLessThanOrEqual(500);
    expect(transport.hasRun('run-0')).toBe(false);
    expect(transport.hasRun('run-1999')).toBe(true);
  });

  it('forgets the runs of a dropped thread', () => {
    let now = 0;
    const transport = new MemoryTransport({ threadTtlMs: 10, now: () => now });
    transport.append(raw('agent_started', 'r-dropped', { threadId: 'gone' }));
    now = 1_000;
    for (let i = 0; i < 64; i++) transport.append(raw('agent_started', `filler-${i}`, { threadId: `f${i}` }));
    expect(transport.read('gone', 'alice')).toEqual([]);
    expect(transport.hasRun('r-dropped')).toBe(false);
  });
});

describe('MemoryTransport behind an AgentBridge: a poisoned event costs that event only', () => {
  it('stays active, delivers a bystander’s run, and reports a DeliveryError for the poisoned event alone', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport, retry: { minTimeoutMs: 1, maxTimeoutMs: 5, randomize: false } });
    const states: string[] = [];
    bridge.on('state', (next) => states.push(next));
    const errors: Array<{ error: DeliveryError; event: AgentEvent }> = [];
    bridge.on('delivery_error', (error, event) => errors.push({ error, event }));
    await bridge.initialize();

    const bystander: AgentEvent[] = [];
    transport.subscribeSync({ userId: 'bob', threadId: 'bob-thread' }, { onEntries: (e) => bystander.push(...e.map((entry) => entry.event)) });
    const poisonedRun = new RunEmitter({ runId: generateRunId('eve-thread'), threadId: 'eve-thread', userId: 'eve', agent: 'a' });
    const start = poisonedRun.emit('agent_started', { metadata: {} }).event;
    const poisoned = { ...poisonedRun.emit('tool_executing', { toolCallId: 'c1', tool: 'x', args: {} }).event, data: { toolCallId: 'c1', tool: 'x', args: { n: 1n } } };
    const after = poisonedRun.emit('agent_thinking', { text: 'still here' }).event;

    const bob = new RunEmitter({ runId: generateRunId('bob-thread'), threadId: 'bob-thread', userId: 'bob', agent: 'a', }, { bridge });
    const bobDeliveries: Array<Promise<unknown>> = [bob.emit('agent_started', { metadata: {} }).delivery];
    const eveDeliveries = [bridge.send(start), bridge.send(poisoned as AgentEvent), bridge.send(after)];
    for (let i = 0; i < 5; i++) bobDeliveries.push(bob.emit('agent_thinking', { text: `bob ${i}` }).delivery);
    bobDeliveries.push(bob.emit('agent_completed', { status: 'succeeded', result: 1, durationMs: 1 }).delivery);

    await Promise.all(bobDeliveries);
    const outcomes = await Promise.allSettled(eveDeliveries);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(bystander.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(validateLifecycle(bystander)).toEqual({ ok: true, runs: 1 });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.event.id).toBe(poisoned.id);
    expect(errors[0]!.error).toBeInstanceOf(DeliveryError);
    // The bridge serializes integrators' events itself and refuses this one before the transport sees it.
    expect(errors[0]!.error.causeCode).toBe('EVENT_NOT_SERIALIZABLE');
    expect(states).not.toContain('degraded');
    expect(bridge.state).toBe('active');
    expect(bridge.metrics().retried).toBe(0);
    expect(transport.read('eve-thread', 'eve').map((event) => event.id)).toEqual([start.id, after.id]);
    await bridge.close();
  });
});
