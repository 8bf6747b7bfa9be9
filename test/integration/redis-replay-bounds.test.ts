import { beforeAll, expect, it } from 'vitest';
import { nanoid } from 'nanoid';
import type { AgentEvent } from '../../src/index.js';
import { Collector, describeWithRedis, probeRedis, useRedisLogs } from '../helpers/redis-env.js';

/**
 * What a replay from the Redis log may cost (real Redis): a refused subscribe transfers no entry
 * of the other user's thread.
 */

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
  const { transport, gateway } = useRedisLogs(() => prefix);

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
});
