/**
 * How connections and subscriptions end while the hot path is busy, as documented: `close()`
 * writes what is queued and then closes with 1001; `revoke()` closes with 4403 and writes nothing
 * queued; `expiresAt` closes with 4401; `unsubscribe` stops a thread at once while another keeps
 * its order; forged cursors get `history_gap`, never a partial replay; and the SSE gateway reading
 * the WebSocket gateway's log gets the same bytes. Real clients over loopback.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { MemoryTransport, type AgentEvent } from '../../src/index.js';
import { WebSocketGateway, type WebSocketGatewayOptions } from '../../src/gateway/websocket/index.js';
import { SseGateway } from '../../src/gateway/sse/index.js';
import { NASTY, Peer, RunBuilder, authenticate, openPeer } from './hotpath-peer.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startGateway(options: Partial<WebSocketGatewayOptions> = {}) {
  const gateway = new WebSocketGateway({ authenticate, log: new MemoryTransport(), ...options });
  const { url } = await gateway.listen(0);
  cleanups.push(() => gateway.close());
  return { gateway, url };
}

const peer = (url: string, userId: string, options?: WebSocket.ClientOptions): Promise<Peer> => openPeer(cleanups, url, userId, options);

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('attack: endings on a busy hot path', () => {
  it('gateway.close() in the tick of a 2 MB burst to 10 connections: every queued event is written first, then close 1001', async () => {
    const { gateway, url } = await startGateway();
    const peers = await Promise.all(Array.from({ length: 10 }, (_, i) => peer(url, `c${i}`)));
    const runs = peers.map((_, i) => new RunBuilder(`c${i}`, `close-${i}`));
    const sent = runs.map((run) => [run.started()]);
    for (const list of sent) await gateway.send(list[0]!);
    await Promise.all(peers.map((p, i) => p.subscribe(`close-${i}`)));
    for (let k = 0; k < 200; k++) {
      for (let i = 0; i < runs.length; i++) {
        const event = runs[i]!.thinking(`${k} ${NASTY[k % NASTY.length]} ${'c'.repeat(1_000)}`);
        sent[i]!.push(event);
        void gateway.send(event);
      }
    }
    const closing = gateway.close();
    const closes = await Promise.all(peers.map((p) => p.closed()));
    await closing;
    expect(closes.map((c) => c.code)).toEqual(peers.map(() => 1001));
    for (let i = 0; i < peers.length; i++) expect(peers[i]!.events().map((f) => f.event!.id)).toEqual(sent[i]!.map((e) => e.id));
  });

  it('revoke(userId) in the tick of a burst: close 4403 and nothing queued is written; another user’s burst of the same tick arrives whole', async () => {
    const { gateway, url } = await startGateway();
    const victim = await peer(url, 'revoked');
    const other = await peer(url, 'kept');
    const rv = new RunBuilder('revoked', 'rv');
    const rk = new RunBuilder('kept', 'rk');
    const sentK = [rk.started()];
    await gateway.send(rv.started());
    await gateway.send(sentK[0]!);
    await victim.subscribe('rv');
    await other.subscribe('rk');
    await victim.until(() => victim.events().length >= 1);
    for (let i = 0; i < 100; i++) {
      void gateway.send(rv.thinking(`secret ${i}`));
      const event = rk.thinking(`kept ${i}`);
      sentK.push(event);
      void gateway.send(event);
    }
    gateway.revoke('revoked');
    expect((await victim.closed()).code).toBe(4403);
    await other.until(() => other.events().length >= sentK.length);
    expect(victim.events().map((f) => f.event!.seq)).toEqual([1]);
    expect(other.events().map((f) => f.event!.id)).toEqual(sentK.map((e) => e.id));
    expect(other.close).toBeUndefined();
  });

  it('on a socket stuck mid-replay, revoke (4403), close-oldest (4029) and expiry (4401) still reach the peer as close frames after the data; what it got is a gapless prefix', async () => {
    const { gateway, url } = await startGateway({
      maxBufferedBytes: 16 * 1024,
      closeTimeoutMs: 2_000,
      authenticate: (request) => {
        const principal = authenticate(request);
        return principal && (principal as { userId: string }).userId === 'exp' ? { userId: 'exp', expiresAt: Date.now() + 300 } : principal;
      },
    });
    const expected = { rev: 4403, old: 4029, exp: 4401 } as const;
    for (const user of ['rev', 'old', 'exp'] as const) {
      const run = new RunBuilder(user, `stuck-${user}`);
      const sent: AgentEvent[] = [run.started()];
      for (let i = 0; i < 3_000; i++) sent.push(run.thinking(`${'x'.repeat(500)} ${i}`));
      for (const event of sent) void gateway.send(event);
      const p = await peer(url, user);
      p.send({ type: 'subscribe', threadId: `stuck-${user}` });
      await p.until(() => p.events().length > 10);
      p.ws.pause();
      if (user === 'rev') gateway.revoke('rev');
      if (user === 'old') for (let i = 0; i < 3; i++) await peer(url, 'old');
      if (user === 'exp') {
        const end = Date.now() + 5_000;
        while (!(gateway.stats().disconnects.token_expired ?? 0) && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      p.ws.resume();
      const closed = await p.closed();
      expect({ user, code: closed.code }).toEqual({ user, code: expected[user] });
      const got = p.events().map((f) => f.event!.id);
      expect(got).toEqual(sent.slice(0, got.length).map((e) => e.id));
      if (user === 'rev') expect(got.length).toBeLessThan(sent.length);
    }
  });

  it('a principal whose expiresAt passes during a stream is closed with 4401; what it received is a gapless prefix', async () => {
    const { gateway, url } = await startGateway({
      authenticate: (request) => {
        const principal = authenticate(request);
        return principal && (principal as { userId: string }).userId === 'brief' ? { userId: 'brief', expiresAt: Date.now() + 150 } : principal;
      },
    });
    const brief = await peer(url, 'brief');
    const run = new RunBuilder('brief', 'exp');
    const sent: AgentEvent[] = [run.started()];
    await gateway.send(sent[0]!);
    await brief.subscribe('exp');
    while (brief.close === undefined) {
      for (let k = 0; k < 10; k++) {
        const event = run.thinking(`e ${sent.length}`);
        sent.push(event);
        void gateway.send(event);
      }
      await turn();
    }
    expect(brief.close.code).toBe(4401);
    const got = brief.events().map((f) => f.event!.id);
    expect(got.length).toBeGreaterThan(1);
    expect(got).toEqual(sent.slice(0, got.length).map((e) => e.id));
  });

  it('unsubscribe from one of two threads during a live burst on both: nothing of it after `unsubscribed`, the other keeps a gapless order', async () => {
    const { gateway, url } = await startGateway();
    const p = await peer(url, 'duo');
    const r1 = new RunBuilder('duo', 'duo-1');
    const r2 = new RunBuilder('duo', 'duo-2');
    await gateway.send(r1.started());
    await gateway.send(r2.started());
    await p.subscribe('duo-1');
    await p.subscribe('duo-2');
    let producing = true;
    const producer = (async () => {
      while (producing) {
        for (let k = 0; k < 20; k++) {
          void gateway.send(r1.thinking(`one ${k}`));
          void gateway.send(r2.thinking(`two ${k}`));
        }
        await turn();
      }
    })();
    await p.until(() => p.events('duo-1').length > 200);
    p.send({ type: 'unsubscribe', threadId: 'duo-1' });
    await p.until(() => p.frames.some((f) => f.type === 'unsubscribed'));
    const at = p.frames.findIndex((f) => f.type === 'unsubscribed');
    const seen = p.events('duo-2').length;
    await p.until(() => p.events('duo-2').length > seen + 400);
    producing = false;
    await producer;
    expect(p.frames.slice(at).filter((f) => f.type === 'event' && f.threadId === 'duo-1')).toEqual([]);
    expect(p.events('duo-1').map((f) => f.event!.seq)).toEqual(p.events('duo-1').map((_, i) => i + 1));
    expect(p.events('duo-2').map((f) => f.event!.seq)).toEqual(p.events('duo-2').map((_, i) => i + 1));
    expect(gateway.stats().subscriptions).toBe(1);
  });

  it('forged cursors (signs, exponents, hex, padding, past the end, another thread’s) get history_gap (space-padded ones error INVALID_CURSOR), never a partial replay', async () => {
    const { gateway, url } = await startGateway();
    const p = await peer(url, 'forger');
    const run = new RunBuilder('forger', 'fc');
    const otherRun = new RunBuilder('forger', 'fc-other');
    const sent: AgentEvent[] = [run.started()];
    for (let i = 0; i < 30; i++) sent.push(run.thinking(`e${i}`));
    for (const event of sent) await gateway.send(event);
    await gateway.send(otherRun.started());
    await p.subscribe('fc');
    await p.subscribe('fc-other');
    await p.until(() => p.events('fc').length >= 31 && p.events('fc-other').length >= 1);
    const real = p.events('fc')[10]!.cursor!;
    const colon = real.lastIndexOf(':');
    const prefix = real.slice(0, colon + 1);
    expect(real.slice(colon + 1)).toBe('11');
    const forged = ['-5', '-1', '1e1', '0x0b', '11.5', ' 11', '+11', '011', 'Infinity', 'NaN', '', '9007199254740993', '32', '1000', '11 ', '0b1011'].map((v) => prefix + v);
    forged.push(p.events('fc-other')[0]!.cursor!);
    for (const cursor of forged) {
      const q = await peer(url, 'forger');
      const answer = await q.subscribe('fc', cursor);
      // Padded with a space: refused by the cursor format before the log is asked.
      if (cursor.includes(' ')) expect({ cursor, type: answer.type, code: (answer as { code?: string }).code }).toEqual({ cursor, type: 'error', code: 'INVALID_CURSOR' });
      else expect({ cursor, type: answer.type }).toEqual({ cursor, type: 'history_gap' });
      q.ws.terminate();
    }
    // The real cursor replays exactly the suffix.
    const q = await peer(url, 'forger');
    const answer = await q.subscribe('fc', real);
    expect(answer).toMatchObject({ type: 'subscribed', replayed: 20 });
    await q.until(() => q.events().length >= 20);
    expect(q.events().map((f) => f.event!.id)).toEqual(sent.slice(11).map((e) => e.id));
  });

  it('resume at the trim boundary: after the last trimmed event replays everything retained; one before it is history_gap trimmed (never partial)', async () => {
    const { gateway, url } = await startGateway({ log: new MemoryTransport({ maxEventsPerThread: 100 }) });
    const p = await peer(url, 'trim');
    const run = new RunBuilder('trim', 'tb');
    await gateway.send(run.started());
    await p.subscribe('tb');
    for (let i = 0; i < 149; i++) void gateway.send(run.thinking(`e${i}`));
    await p.until(() => p.events().length >= 150);
    // Retained: seq 51..150.
    const outcome = async (afterSeq: number) => {
      const q = await peer(url, 'trim');
      const answer = await q.subscribe('tb', p.events()[afterSeq - 1]!.cursor);
      if (answer.type === 'subscribed') await q.until(() => q.events().length >= answer.replayed!);
      q.ws.terminate();
      return answer.type === 'subscribed' ? q.events().map((f) => f.event!.seq) : `${answer.type}:${String(answer.reason)}`;
    };
    expect(await outcome(49)).toBe('history_gap:trimmed');
    expect(await outcome(50)).toEqual(Array.from({ length: 100 }, (_, i) => 51 + i));
    expect(await outcome(51)).toEqual(Array.from({ length: 99 }, (_, i) => 52 + i));
    expect(await outcome(150)).toEqual([]);
  });

  it('an event larger than maxBytesPerThread is delivered live and not retained; a resume from before it gets history_gap, and no replay has a hole where it was', async () => {
    const { gateway, url } = await startGateway({ log: new MemoryTransport({ maxBytesPerThread: 20_000 }) });
    const live = await peer(url, 'olga');
    const run = new RunBuilder('olga', 'oversize');
    const before: AgentEvent[] = [run.started(), run.thinking('small')];
    for (const event of before) await gateway.send(event);
    await live.subscribe('oversize');
    await live.until(() => live.events().length >= 2);
    const cursorBefore = live.events()[1]!.cursor!;
    const huge = run.thinking('z'.repeat(30_000));
    await gateway.send(huge);
    const after = run.thinking('after');
    await gateway.send(after);
    await live.until(() => live.events().some((f) => f.event!.id === after.id));
    expect(live.events().map((f) => f.event!.seq)).toEqual([1, 2, 3, 4]);
    const resumed = await peer(url, 'olga');
    expect(await resumed.subscribe('oversize', cursorBefore)).toMatchObject({ type: 'history_gap', reason: 'trimmed' });
    const fresh = await peer(url, 'olga');
    const answer = await fresh.subscribe('oversize');
    await fresh.until(() => fresh.events().length >= answer.replayed!);
    const seqs = fresh.events().map((f) => f.event!.seq);
    expect(seqs).not.toContain(3);
    // Whatever is retained is a gapless tail: never [1, 2, 4].
    expect(seqs).toEqual(seqs.length ? Array.from({ length: seqs.length }, (_, i) => 5 - seqs.length + i) : []);
  });

  it('the SSE gateway reading the WebSocket gateway’s log gets the same burst byte-exact, in order', async () => {
    const { gateway } = await startGateway();
    const sse = new SseGateway({ log: gateway.log, authenticate });
    const { port } = await sse.listen(0);
    cleanups.push(() => sse.close());
    const run = new RunBuilder('sia', 'sse-t');
    const sent: AgentEvent[] = [run.started()];
    await gateway.send(sent[0]!);
    const response = await fetch(`http://127.0.0.1:${port}/events?threadId=sse-t`, { headers: { authorization: 'Bearer u-sia' } });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    cleanups.push(() => reader.cancel().catch(() => undefined));
    const decoder = new TextDecoder('utf-8', { fatal: true });
    let text = '';
    // Counts whole frames only (the blank line ends one): a chunk can end inside an event's data line.
    const completeEvents = () => text.slice(0, text.lastIndexOf('\n\n') + 1).match(/(^|\n)event: agent_/g)?.length ?? 0;
    const readUntil = async (n: number) => {
      while (completeEvents() < n) {
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        text += decoder.decode(value, { stream: true });
      }
    };
    await readUntil(1);
    for (let i = 0; i < 500; i++) {
      const event = run.thinking(`${i} ${NASTY[i % NASTY.length]} ${'s'.repeat(i % 7 === 0 ? 5_000 : 10)}`);
      sent.push(event);
      void gateway.send(event);
    }
    await readUntil(sent.length);
    const events = text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => line.slice(6))
      .filter((data) => data.startsWith('{"v":1') || (JSON.parse(data) as { v?: number }).v === 1);
    expect(events).toEqual(sent.map((e) => JSON.stringify(e)));
  });

  it('after churn (30 peers subscribing to a 5,000-event replay and leaving mid-replay, by close or reset, live events in between) the gateway holds nothing: 0 connections, subscriptions, queued frames, buffered bytes; no onError', async () => {
    const errors: unknown[] = [];
    const { gateway, url } = await startGateway({ maxBufferedBytes: 32 * 1024, onError: (error) => errors.push(error) });
    const run = new RunBuilder('churn', 'churn-t');
    await gateway.send(run.started());
    for (let i = 0; i < 5_000; i++) await gateway.send(run.thinking(`${'x'.repeat(300)} ${i}`));
    for (let round = 0; round < 10; round++) {
      const peers = await Promise.all([0, 1, 2].map(() => peer(url, 'churn')));
      for (const p of peers) p.send({ type: 'subscribe', threadId: 'churn-t' });
      await peers[0]!.until(() => peers[0]!.events().length > round * 400, 10_000, 'some replay');
      peers.forEach((p, i) => (i % 2 ? p.ws.terminate() : p.ws.close()));
      for (let i = 0; i < 20; i++) void gateway.send(run.thinking(`live ${round}.${i}`));
    }
    const drained = () => {
      const s = gateway.stats();
      return s.connections.open === 0 && s.connections.authenticating === 0 && s.subscriptions === 0 && s.queuedFrames === 0 && s.bufferedBytes === 0 && s.users === 0;
    };
    const end = Date.now() + 5_000;
    while (!drained() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 10));
    const s = gateway.stats();
    expect({ open: s.connections.open, authenticating: s.connections.authenticating, subscriptions: s.subscriptions, queuedFrames: s.queuedFrames, bufferedBytes: s.bufferedBytes, users: s.users }).toEqual({ open: 0, authenticating: 0, subscriptions: 0, queuedFrames: 0, bufferedBytes: 0, users: 0 });
    expect(errors).toEqual([]);
    expect(s.internalErrors).toBe(0);
  });
});
