/**
 * `threadTtlMs` of the memory log (docs/gateways.md): a thread with no subscriber and no new event
 * for this long is dropped, with no other traffic needed; its owner is forgotten, and a cursor of
 * it gets `history_gap` `trimmed`. Injected clock: every call sees the TTL as of `now`.
 */
import { describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport, generateRunId, type AgentEvent, type LogEntry } from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { ScriptedAgent } from '../helpers/agents.js';

function thoughts(count: number, userId: string, threadId: string): AgentEvent[] {
  const emitter = new RunEmitter({ runId: generateRunId(threadId), threadId, userId, agent: 'a' });
  const events: AgentEvent[] = [emitter.emit('agent_started', { metadata: {} }).event];
  for (let i = 1; i < count; i++) events.push(emitter.emit('agent_thinking', { text: `n${i}` }).event);
  return events;
}

const quiet = { onEntries: () => undefined };

describe('MemoryTransport threadTtlMs with an injected clock', () => {
  it('drops a thread that never had a subscriber once its TTL ran out, with no other traffic: a resume from its cursor is history_gap trimmed', async () => {
    let now = 1_800_000_000_000;
    const transport = new MemoryTransport({ threadTtlMs: 1_000, now: () => now });
    const agent = new ScriptedAgent({ bridge: new AgentBridge({ transport }) });
    await agent.run([{ think: 'x' }], { userId: 'u', threadId: 'A' });
    const replayed = transport.subscribeSync({ userId: 'u', threadId: 'A' }, quiet);
    if (replayed.status !== 'subscribed') throw new Error('expected a subscription');
    expect(replayed.replay.map((entry) => entry.event.type)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
    const cursor = replayed.replay[0]!.cursor;
    replayed.subscription.close(); // the TTL counts from now
    now += 999;
    expect(transport.threadCount).toBe(1);
    expect(transport.subscribeSync({ userId: 'u', threadId: 'A', after: cursor }, quiet)).toMatchObject({ status: 'subscribed' });
  });

  it('the same, a second past the TTL and an hour past it', () => {
    let now = 0;
    const transport = new MemoryTransport({ threadTtlMs: 1_000, now: () => now });
    const entries = thoughts(3, 'u', 'A').map((event) => transport.append(event));
    now = 1_000;
    // Nothing else happened in the log: the next call sees A expired.
    expect(transport.threadCount).toBe(0);
    expect(transport.eventCount).toBe(0);
    expect(transport.hasRun(entries[0]!.event.runId)).toBe(false);
    const resumed = transport.subscribeSync({ userId: 'u', threadId: 'A', after: entries[0]!.cursor }, quiet);
    expect(resumed).toMatchObject({ status: 'history_gap', gap: { threadId: 'A', requested: entries[0]!.cursor, reason: 'trimmed' } });

    const later = new MemoryTransport({ threadTtlMs: 1_000, now: () => now });
    const first = thoughts(3, 'u', 'A').map((event) => later.append(event));
    now += 3_600_000;
    thoughts(3, 'u', 'B').forEach((event) => later.append(event));
    const fresh = later.subscribeSync({ userId: 'u', threadId: 'A' }, quiet);
    expect(fresh).toMatchObject({ status: 'subscribed', replay: [], cursor: null });
    expect(later.subscribeSync({ userId: 'u', threadId: 'A', after: first[2]!.cursor }, quiet)).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
  });

  it("forgets a dropped thread's owner: another user may then open it, and sees none of the old events", async () => {
    let now = 0;
    const transport = new MemoryTransport({ threadTtlMs: 1_000, now: () => now });
    thoughts(3, 'alice', 'T').forEach((event) => transport.append(event));
    expect(await transport.ownerOf('T')).toBe('alice');
    now = 1_000;
    expect(await transport.ownerOf('T')).toBeUndefined();
    const bobs = transport.subscribeSync({ userId: 'bob', threadId: 'T' }, quiet);
    expect(bobs).toMatchObject({ status: 'subscribed', replay: [] });
    transport.append(thoughts(1, 'bob', 'T')[0]!);
    expect(transport.read('T', 'bob')).toHaveLength(1);
    expect(transport.read('T', 'alice')).toEqual([]);
  });

  it('keeps a followed thread however long it is followed, and counts its TTL from when its last subscriber left', () => {
    let now = 0;
    const transport = new MemoryTransport({ threadTtlMs: 1_000, now: () => now });
    const live: AgentEvent[] = [];
    const followed = transport.subscribeSync({ userId: 'u', threadId: 'W' }, { onEntries: (entries) => live.push(...entries.map((e) => e.event)) });
    if (followed.status !== 'subscribed') throw new Error('expected a subscription');
    const entries = thoughts(2, 'u', 'W').map((event) => transport.append(event));
    now = 7_200_000; // two hours, followed throughout
    expect(transport.threadCount).toBe(1);
    transport.append(thoughts(1, 'u', 'W')[0]!);
    expect(live).toHaveLength(3);
    now = 7_300_000;
    followed.subscription.close();
    now += 999;
    expect(transport.subscribeSync({ userId: 'u', threadId: 'W', after: entries[0]!.cursor }, quiet)).toMatchObject({ status: 'subscribed' });
  });

  it('drops exactly the threads whose TTL ran out, in any order of activity (a new event renews a thread)', () => {
    let now = 0;
    const transport = new MemoryTransport({ threadTtlMs: 100, now: () => now });
    const cursors = new Map<string, LogEntry>();
    for (const id of ['a', 'b', 'c', 'd']) {
      cursors.set(id, transport.append(thoughts(1, 'u', id)[0]!));
      now += 10;
    }
    // a at 0, b at 10, c at 20, d at 30; b renewed at 40, c left by a subscriber at 50.
    transport.append(thoughts(1, 'u', 'b')[0]!);
    now = 45;
    const c = transport.subscribeSync({ userId: 'u', threadId: 'c' }, quiet);
    if (c.status !== 'subscribed') throw new Error('expected a subscription');
    now = 50;
    c.subscription.close();
    const alive = () => ['a', 'b', 'c', 'd'].filter((id) => transport.read(id, 'u').length > 0);
    now = 99;
    expect(alive()).toEqual(['a', 'b', 'c', 'd']);
    now = 100;
    expect(alive()).toEqual(['b', 'c', 'd']);
    now = 130;
    expect(alive()).toEqual(['b', 'c']);
    now = 140;
    expect(alive()).toEqual(['c']);
    now = 150;
    expect(alive()).toEqual([]);
    expect(transport.threadCount).toBe(0);
    for (const [id, entry] of cursors) {
      expect(transport.subscribeSync({ userId: 'u', threadId: id, after: entry.cursor }, quiet)).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
    }
  });

  it('close() stops the sweep timer', async () => {
    const transport = new MemoryTransport({ threadTtlMs: 60_000 });
    transport.append(thoughts(1, 'u', 'A')[0]!);
    expect(Reflect.get(transport, 'sweepTimer')).toBeDefined();
    await transport.close();
    expect(Reflect.get(transport, 'sweepTimer')).toBeUndefined();
  });
});
