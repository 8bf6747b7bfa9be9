/**
 * The agent → bridge → gateway emit path under concurrency, judged by real clients: many runs at
 * once (several sharing one thread), streamed answer deltas, tool calls, a small `highWaterMark`;
 * every run's events reach its owner's connections with a gapless seq, a valid lifecycle and the
 * exact text streamed, and a resume from the middle of the interleaved thread gets exactly the rest.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AgentBridge, BaseAgent, MemoryTransport, defineTool, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { WebSocketGateway } from '../../src/gateway/websocket/index.js';
import { connect } from '../../src/client/node.js';
import { NASTY, Peer, authenticate, bridgedGateway } from './hotpath-peer.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const lookup = defineTool({
  name: 'lookup',
  description: 'looks up',
  parameters: z.object({ q: z.string() }),
  execute: async ({ q }: { q: string }) => ({ q, hits: [q.length, '😀', '\u2028'] }),
});

class Streamer extends BaseAgent<{ n: number; tag: string }, string> {
  constructor(bridge: AgentBridge) {
    super({ name: 'streamer', bridge, tools: [lookup] });
  }
  protected async execute({ n, tag }: { n: number; tag: string }): Promise<string> {
    let answer = '';
    for (let i = 0; i < n; i++) {
      await this.think(`${tag} thinking ${i}`);
      const delta = `${tag}:${i} ${NASTY[i % NASTY.length]} `;
      answer += delta;
      await this.streamText(delta);
      if (i % 10 === 0) await this.callTool('lookup', { q: `${tag}-${i}` });
    }
    return answer;
  }
}

describe('attack: the emit path under concurrency', () => {
  it('60 concurrent runs (6 users × 2 threads × 5 runs sharing each thread), highWaterMark 4: every connection gets its threads’ runs complete, gapless, valid, with the exact streamed text; a mid-thread resume gets exactly the rest', async () => {
    const gateway = new WebSocketGateway({ authenticate, log: new MemoryTransport({ maxEventsPerThread: 50_000 }) });
    const { url } = await gateway.listen(0);
    cleanups.push(() => gateway.close());
    const bridge = new AgentBridge({ transport: gateway, highWaterMark: 4 });
    await bridge.initialize();
    cleanups.push(() => bridge.close());
    const agent = new Streamer(bridge);
    const users = Array.from({ length: 6 }, (_, i) => `emit${i}`);
    const threads = users.flatMap((user) => [`${user}-a`, `${user}-b`].map((threadId) => ({ user, threadId })));
    const peers = new Map<string, Peer>();
    for (const { user, threadId } of threads) {
      const p = await Peer.open(url, user);
      cleanups.push(() => p.ws.terminate());
      await p.subscribe(threadId);
      peers.set(threadId, p);
    }
    const jobs = threads.flatMap(({ user, threadId }) => Array.from({ length: 5 }, (_, r) => ({ user, threadId, tag: `${threadId}#${r}` })));
    const results = await Promise.all(jobs.map((job) => agent.run({ n: 30, tag: job.tag }, { userId: job.user, threadId: job.threadId })));
    expect(results.every((r) => r.status === 'succeeded' && r.deliveryErrors.length === 0)).toBe(true);
    for (const { user, threadId } of threads) {
      const p = peers.get(threadId)!;
      const mine = results.filter((_, i) => jobs[i]!.threadId === threadId);
      const total = mine.reduce((n, r) => n + r.events, 0);
      await p.until(() => p.events().length >= total, 20_000, threadId);
      const events = p.events().map((f) => f.event!);
      expect(events.length).toBe(total);
      expect(events.every((e) => e.userId === user && e.threadId === threadId)).toBe(true);
      expect(validateLifecycle(events)).toMatchObject({ ok: true, runs: 5 });
      for (const result of mine) {
        const run = events.filter((e) => e.runId === result.runId);
        expect(run.map((e) => e.seq)).toEqual(run.map((_, k) => k + 1));
        const streamed = run.filter((e): e is Extract<AgentEvent, { type: 'agent_thinking' }> => e.type === 'agent_thinking' && (e.data as { channel?: string }).channel === 'answer').map((e) => e.data.text).join('');
        expect(streamed).toBe(result.output);
      }
    }
    // Resume thread 0 from the middle of its interleaved history: exactly the rest.
    const { user, threadId } = threads[0]!;
    const all = peers.get(threadId)!.events();
    const cut = Math.floor(all.length / 2);
    const again = await Peer.open(url, user);
    cleanups.push(() => again.ws.terminate());
    await again.subscribe(threadId, all[cut - 1]!.cursor);
    await again.until(() => again.events().length >= all.length - cut);
    expect(again.events().map((f) => f.event!.id)).toEqual(all.slice(cut).map((f) => f.event!.id));
    expect(gateway.stats().isolationDrops).toBe(0);
  });

  it('agentwire/client following a thread of 5 concurrent streaming runs shows every event once, with no error, and the same cursor as a raw peer', async () => {
    const { gateway, url, bridge } = await bridgedGateway(cleanups);
    const client = connect(url, { token: 'u-cleo', threadId: 'cleo-t' });
    cleanups.push(() => client.close());
    const got: AgentEvent[] = [];
    const errors: string[] = [];
    client.on('error', (error) => errors.push(error.code));
    client.on('event', (event) => got.push(event));
    await new Promise<void>((resolve) => client.on('status', (status) => (status === 'open' ? resolve() : undefined)));
    const agent = new Streamer(bridge);
    const results = await Promise.all(Array.from({ length: 5 }, (_, r) => agent.run({ n: 40, tag: `cleo${r}` }, { userId: 'cleo', threadId: 'cleo-t' })));
    const total = results.reduce((n, r) => n + r.events, 0);
    const raw = await Peer.open(url, 'cleo');
    cleanups.push(() => raw.ws.terminate());
    await raw.subscribe('cleo-t');
    await raw.until(() => raw.events().length >= total);
    await new Promise<void>((resolve) => {
      const check = () => (got.length >= total ? resolve() : undefined);
      client.on('event', check);
      check();
    });
    expect(got.map((e) => e.id)).toEqual(raw.events().map((f) => f.event!.id));
    expect(errors).toEqual([]);
    expect(client.stats.duplicates).toBe(0);
    expect(client.cursor).toBe(raw.events().at(-1)!.cursor);
  });
});
