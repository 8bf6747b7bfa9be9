import { beforeAll, expect, it } from 'vitest';
import { nanoid } from 'nanoid';
import type { AgentEvent, LogEntry } from '../../src/index.js';
import { RedisEventLog, type RedisEventLogOptions } from '../../src/transport/redis/index.js';
import { Collector, REDIS_URL, describeWithRedis, probeRedis, useRedisLogs } from '../helpers/redis-env.js';
import { until } from '../helpers/wait.js';

/**
 * What a replay from the Redis log may cost (real Redis): a refused subscribe transfers no entry
 * of the other user's thread; a replay holds at most `maxReplayBytes` of entry JSON, the newest
 * (a cursor whose successors do not fit gets `history_gap` `trimmed`).
 */

/** The newest entries of `all` whose JSON (UTF-8) fits `budget` together: what a replay may hold. */
function newestWithin(all: readonly LogEntry[], budget: number): LogEntry[] {
  let total = 0;
  let from = all.length;
  while (from > 0) {
    total += Buffer.byteLength(all[from - 1]!.json!);
    if (total > budget) break;
    from--;
  }
  return all.slice(from);
}

const availability = await probeRedis();

/** An `agent_thinking` event of `runId` whose text is `size` characters. */
function thinking(userId: string, threadId: string, runId: string, seq: number, size = 16): AgentEvent {
  return {
    v: 1,
    id: `t-${nanoid(10)}`,
    type: 'agent_thinking',
    runId,
    threadId,
    userId,
    agent: 'a',
    seq,
    ts: Date.now(),
    data: { text: `${seq}:`.padEnd(size, 'x') },
  } as AgentEvent;
}

describeWithRedis('Redis log: bounded replays (real Redis)', availability, () => {
  let prefix: string;
  beforeAll(() => {
    prefix = `aw-rr-${Date.now()}-${nanoid(6)}:`;
  });
  const { closers, transport, gateway } = useRedisLogs(() => prefix);

  function log(options: RedisEventLogOptions = {}): RedisEventLog {
    const made = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix, ...options });
    closers.push(() => made.close());
    return made;
  }

  /** Every entry the thread retains, read with a budget larger than it. */
  async function everything(threadId: string, userId = 'alice'): Promise<LogEntry[]> {
    const result = await log({ maxReplayBytes: 1 << 30 }).subscribe({ userId, threadId }, new Collector());
    if (result.status !== 'subscribed') throw new Error(result.status);
    result.subscription.close();
    return result.replay;
  }

  /** Appends `count` thinking events of one run to the thread; returns them in order. */
  async function fill(userId: string, threadId: string, count: number, size = 16): Promise<AgentEvent[]> {
    const writer = transport();
    const runId = `thread_${threadId}_run_${Date.now()}_${nanoid(6)}`;
    const events = Array.from({ length: count }, (_, i) => thinking(userId, threadId, runId, i + 1, size));
    for (let i = 0; i < events.length; i += 200) await Promise.all(events.slice(i, i + 200).map((event) => writer.send(event)));
    return events;
  }

  it("a subscribe to another user's thread is refused before any of its entries is read", async () => {
    const threadId = `victim-${nanoid(6)}`;
    await fill('alice', threadId, 600);
    const log = gateway();
    const listener = new Collector();
    await expect(log.subscribe({ userId: 'mallory', threadId }, listener)).rejects.toMatchObject({ name: 'AuthError', code: 'THREAD_FORBIDDEN' });
    await expect(log.subscribe({ userId: 'mallory', threadId, after: undefined }, listener)).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
    expect(log.stats().replayEntriesRead).toBe(0);
    expect(listener.entries).toEqual([]);
    // The owner's own subscribe reads (and counts) them: the counter is the one that would show a transfer.
    const own = await log.subscribe({ userId: 'alice', threadId }, new Collector());
    if (own.status !== 'subscribed') throw new Error(own.status);
    own.subscription.close();
    expect(own.replay).toHaveLength(600);
    expect(log.stats().replayEntriesRead).toBe(600);
  });

  it('a subscribe without a cursor replays the newest entries within maxReplayBytes, in order, up to the newest; live ones follow', async () => {
    const threadId = `fat-${nanoid(6)}`;
    // Sizes vary (64 B to 3 KB) so that the window's edge falls inside a page of the script's walk back.
    const writer = transport();
    const runId = `thread_${threadId}_run_${Date.now()}_${nanoid(6)}`;
    for (let i = 0; i < 400; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => writer.send(thinking('alice', threadId, runId, i + j + 1, 64 + (((i + j) * 7919) % 3000)))));
    }
    const all = await everything(threadId);
    expect(all).toHaveLength(400);
    const total = all.reduce((sum, entry) => sum + Buffer.byteLength(entry.json!), 0);
    for (const budget of [1, 3_000, 20_000, 100_000, total - 1, total]) {
      const reader = log({ maxReplayBytes: budget, readCount: 7 });
      const listener = new Collector();
      const result = await reader.subscribe({ userId: 'alice', threadId }, listener);
      if (result.status !== 'subscribed') throw new Error(result.status);
      const expected = newestWithin(all, budget);
      expect(result.replay.map((entry) => entry.event.id), `budget ${budget}`).toEqual(expected.map((entry) => entry.event.id));
      expect(result.replay.reduce((sum, entry) => sum + Buffer.byteLength(entry.json!), 0)).toBeLessThanOrEqual(budget);
      // The cursor is the newest entry's, whether or not it was replayed (an entry larger than the budget is not).
      expect(result.cursor).toBe(all.at(-1)!.cursor);
      expect(reader.stats().replayEntriesRead).toBe(expected.length);
      result.subscription.close();
    }
    // Live events after a bounded replay reach the listener, once each, in order.
    const reader = log({ maxReplayBytes: 5_000 });
    const listener = new Collector();
    const result = await reader.subscribe({ userId: 'alice', threadId }, listener);
    if (result.status !== 'subscribed') throw new Error(result.status);
    listener.takeReplay(result.replay);
    const live = Array.from({ length: 5 }, (_, i) => thinking('alice', threadId, runId, 1000 + i));
    for (const event of live) await writer.send(event);
    await until(() => listener.entries.length >= result.replay.length + 5);
    expect(listener.events.map((event) => event.id)).toEqual([...newestWithin(all, 5_000), ...live.map((event) => ({ event }))].map((entry) => entry.event.id));
    result.subscription.close();
  });

  it('a cursor whose successors exceed maxReplayBytes gets history_gap trimmed; one whose successors fit replays them all', async () => {
    const threadId = `cursor-${nanoid(6)}`;
    await fill('alice', threadId, 100, 500);
    const all = await everything(threadId);
    const budget = 10_000;
    const window = newestWithin(all, budget);
    expect(window.length).toBeGreaterThan(3);
    expect(window.length).toBeLessThan(all.length - 3);
    const reader = log({ maxReplayBytes: budget });
    // The entry just before the window: its successors are exactly the window.
    const edge = all.length - window.length - 1;
    const fits = await reader.subscribe({ userId: 'alice', threadId, after: all[edge]!.cursor }, new Collector());
    if (fits.status !== 'subscribed') throw new Error(JSON.stringify(fits));
    fits.subscription.close();
    expect(fits.replay.map((entry) => entry.event.id)).toEqual(window.map((entry) => entry.event.id));
    for (const older of [edge - 1, 0]) {
      const result = await reader.subscribe({ userId: 'alice', threadId, after: all[older]!.cursor }, new Collector());
      expect(result).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
    }
    // The other checks still come first: a cursor of another thread is unknown, not trimmed.
    const foreign = await reader.subscribe({ userId: 'alice', threadId: `${threadId}-x`, after: all[0]!.cursor }, new Collector());
    expect(foreign).toMatchObject({ status: 'history_gap', gap: { reason: 'unknown_cursor' } });
  });

  it('an entry larger than maxReplayBytes alone is delivered live but not replayed; a cursor before it gets trimmed', async () => {
    const threadId = `huge-${nanoid(6)}`;
    const [first] = await fill('alice', threadId, 1, 100);
    const budget = 4_000;
    const reader = log({ maxReplayBytes: budget });
    const listener = new Collector();
    const sub = await reader.subscribe({ userId: 'alice', threadId }, listener);
    if (sub.status !== 'subscribed') throw new Error(sub.status);
    expect(sub.replay.map((entry) => entry.event.id)).toEqual([first!.id]);
    const huge = thinking('alice', threadId, first!.runId, 2, 10_000);
    await transport().send(huge);
    await until(() => listener.entries.length === 1);
    expect(listener.events.map((event) => event.id)).toEqual([huge.id]);
    sub.subscription.close();
    const fresh = await reader.subscribe({ userId: 'alice', threadId }, new Collector());
    if (fresh.status !== 'subscribed') throw new Error(fresh.status);
    fresh.subscription.close();
    expect(fresh.replay).toEqual([]);
    expect(fresh.cursor).toBe(listener.entries[0]!.cursor);
    const before = await reader.subscribe({ userId: 'alice', threadId, after: sub.replay[0]!.cursor }, new Collector());
    expect(before).toMatchObject({ status: 'history_gap', gap: { reason: 'trimmed' } });
  });
});
