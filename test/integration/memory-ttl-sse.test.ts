/**
 * `threadTtlMs` with the real clock and no other traffic: the memory log's own timer drops an idle
 * thread, and what an SSE client resuming from its cursor gets is one `history_gap` `trimmed`;
 * a thread that is followed meanwhile keeps streaming.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport } from '../../src/index.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { SseTestClient } from '../helpers/sse-client.js';
import { startGateway, type GatewayFixture } from '../helpers/sse-server.js';
import { until } from '../helpers/wait.js';

let fixture: GatewayFixture | undefined;
let transport: MemoryTransport | undefined;
afterEach(async () => {
  await fixture?.close();
  await transport?.close();
  fixture = undefined;
  transport = undefined;
});

describe('MemoryTransport threadTtlMs, real timer, over SSE', () => {
  it('drops a thread idle past its TTL by itself: a resume gets history_gap trimmed, a followed thread still streams', async () => {
    transport = new MemoryTransport({ threadTtlMs: 100 });
    fixture = await startGateway({ log: transport, heartbeatIntervalMs: 0 });
    const agent = new ScriptedAgent({ bridge: new AgentBridge({ transport }) });

    const watcher = await SseTestClient.open(fixture.url('watched', 'alice'));
    await agent.run([{ think: 'w1' }], { userId: 'alice', threadId: 'watched' });
    await watcher.waitFor((c) => c.events.some((e) => e.type === 'agent_completed'), 'the watched run');

    // Followed while the run writes (so the TTL cannot run out before it is read), then left.
    const reader = await SseTestClient.open(fixture.url('idle', 'alice'));
    await agent.run([{ think: 'i1' }, { think: 'i2' }], { userId: 'alice', threadId: 'idle' });
    await reader.waitFor((c) => c.events.length === 4, 'the idle thread replayed');
    const stale = reader.messages.find((m) => m.id !== undefined)!.id!;
    reader.close();

    // No call into the log while waiting: only its timer can drop the thread.
    const threads = Reflect.get(transport, 'threads') as Map<string, unknown>;
    await until(() => !threads.has('idle'), 'the idle thread dropped by the TTL timer', 5_000);
    expect(threads.has('watched')).toBe(true);

    const resumed = await SseTestClient.open(fixture.url('idle', 'alice'), { lastEventId: stale });
    expect(await resumed.ended).toBe('end');
    expect(resumed.events).toEqual([]);
    const gaps = resumed.messages.filter((m) => m.event === 'history_gap');
    expect(gaps).toHaveLength(1);
    expect(JSON.parse(gaps[0]!.data)).toMatchObject({ type: 'history_gap', threadId: 'idle', requested: stale, reason: 'trimmed' });

    // The followed thread was never dropped: a new run reaches its open stream.
    await agent.run([{ think: 'w2' }], { userId: 'alice', threadId: 'watched' });
    await watcher.waitFor((c) => c.events.filter((e) => e.type === 'agent_completed').length === 2, 'the second watched run');
    expect(watcher.events.map((e) => e.type)).toEqual([
      'agent_started', 'agent_thinking', 'agent_completed',
      'agent_started', 'agent_thinking', 'agent_completed',
    ]);
    watcher.close();
  });
});
