/**
 * A user who floods the memory log with threads of their own (attack round: 102,000 threads
 * through AG-UI with the defaults) must not take over another user's thread: the log drops the
 * other thread's history for room but keeps its owner until its TTL, and the owners it keeps
 * past their bound are the flooder's, never those of a user who holds fewer. Nor may many accounts
 * with one thread each (second attack round: 1,000 of them took alice's thread when the bound was
 * 4 × maxThreads): past the bound, the new thread is refused instead of an owner forgotten.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport, ThreadRegistry, type AgentEvent } from '../../src/index.js';
import { ScriptedAgent } from '../helpers/agents.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function setup(now: () => number = Date.now) {
  // Small bounds, same rules: 10 threads retained, 10,000 former owners (the least), a registry of 50 threads.
  const transport = new MemoryTransport({ maxThreads: 10, threadTtlMs: 60_000, now });
  const bridge = new AgentBridge({ transport, registry: new ThreadRegistry({ maxThreads: 50 }) });
  const agent = new ScriptedAgent({ bridge });
  closers.push(async () => {
    await bridge.close();
    await transport.close();
  });
  return { transport, agent };
}

async function flood(agent: ScriptedAgent, users: string[], threadsEach: number): Promise<void> {
  for (let i = 0; i < threadsEach; i++) {
    await Promise.all(users.map((user) => agent.run([{ think: 'mine' }], { userId: user, threadId: `${user}-t${i}` })));
  }
}

describe('memory log: a flood of threads does not take another user’s thread over', () => {
  it.each([
    ['one flooder, 500 threads', ['mallory'], 500],
    ['ten flooders, 60 threads each', Array.from({ length: 10 }, (_, i) => `mallory-${i}`), 60],
  ])('%s: the owner stays, the intruder is refused, the owner goes on and receives her events', async (_name, flooders, threadsEach) => {
    const { transport, agent } = setup();
    expect((await agent.run([{ think: 'alice 1' }], { userId: 'alice', threadId: 'alice-thread' })).status).toBe('succeeded');
    await flood(agent, flooders, threadsEach);

    expect(await transport.ownerOf('alice-thread')).toBe('alice');
    await expect(agent.run([{ think: 'taken' }], { userId: flooders[0]!, threadId: 'alice-thread' })).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
    expect(await transport.ownerOf('alice-thread')).toBe('alice');

    // What alice's subscriber receives: her new run, only hers.
    const received: AgentEvent[] = [];
    const subscribed = await transport.subscribe({ userId: 'alice', threadId: 'alice-thread' }, { onEntries: (entries) => received.push(...entries.map((entry) => entry.event)) });
    expect(subscribed.status).toBe('subscribed');
    const again = await agent.run([{ think: 'alice 2' }], { userId: 'alice', threadId: 'alice-thread' });
    expect(again.status).toBe('succeeded');
    expect(received.map((event) => event.type)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
    expect(received.every((event) => event.userId === 'alice' && event.runId === again.runId)).toBe(true);
  });

  it('10,050 accounts with one thread each: the owners kept fill up, new threads are refused (typed), alice keeps her thread, and threads open again once kept owners expire', async () => {
    let now = 1_000_000;
    const { transport, agent } = setup(() => now);
    expect((await agent.run([{ think: 'alice 1' }], { userId: 'alice', threadId: 'alice-thread' })).status).toBe('succeeded');
    const refusals: unknown[] = [];
    let refusedRuns = 0;
    for (let i = 0; i < 10_050; i += 50) {
      now++;
      const batch = Array.from({ length: 50 }, (_, k) => agent.run([{ think: 'mine' }], { userId: `sybil-${i + k}`, threadId: `sybil-${i + k}-t` }));
      // A refused event reaches the run's result as a delivery error (the run itself goes on).
      for (const result of await Promise.all(batch)) {
        if (result.deliveryErrors.length > 0) refusedRuns++;
        refusals.push(...result.deliveryErrors.map((error) => error.cause));
      }
    }
    // 10 threads retained, 10,000 owners kept (alice's among them): the last ~50 accounts were refused.
    expect(refusedRuns).toBeGreaterThan(0);
    expect(refusedRuns).toBeLessThanOrEqual(60);
    for (const refusal of refusals) expect(refusal).toMatchObject({ code: 'TOO_MANY_THREADS' });
    expect(await transport.ownerOf('alice-thread')).toBe('alice');
    await expect(agent.run([{ think: 'taken' }], { userId: 'sybil-0', threadId: 'alice-thread' })).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN' });
    expect(await transport.ownerOf('alice-thread')).toBe('alice');

    // Alice goes on in her thread (it comes back with its owner; no room is needed for her).
    const received: AgentEvent[] = [];
    expect((await transport.subscribe({ userId: 'alice', threadId: 'alice-thread' }, { onEntries: (entries) => received.push(...entries.map((entry) => entry.event)) })).status).toBe('subscribed');
    const again = await agent.run([{ think: 'alice 2' }], { userId: 'alice', threadId: 'alice-thread' });
    expect(again.status).toBe('succeeded');
    expect(received.map((event) => event.type)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
    expect(received.every((event) => event.userId === 'alice' && event.runId === again.runId)).toBe(true);

    // Once the kept owners' TTL has run out, new threads open again.
    now += 60_001;
    expect((await agent.run([{ think: 'later' }], { userId: 'newcomer', threadId: 'newcomer-t' })).status).toBe('succeeded');
  });
});
