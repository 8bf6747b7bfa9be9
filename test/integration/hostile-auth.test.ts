/**
 * Authentication and isolation against hostile clients, with real gateways and real sockets:
 * missing, malformed, forged and expired tokens (HMAC-signed, with an expiry) are refused at the
 * handshake of both gateways, and a user cannot read another user's thread by any message
 * (property test over frames built from other users' real thread ids and cursors, while those
 * users' runs go on).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SseGateway } from '../../src/transport/sse/index.js';
import { TokenIssuer, checkStream, figures, pause, perfect, startStack, type Stack } from '../helpers/reliability-harness.js';
import { SseTestClient } from '../helpers/sse-client.js';
import { RawClient, follow, refusedStatus, until } from '../helpers/ws-harness.js';

const issuer = new TokenIssuer();
let s: Stack;
let sse: SseGateway;
let sseServer: Server;
let sseBase: string;

beforeAll(async () => {
  s = await startStack({ authenticate: issuer.authenticate });
  sse = new SseGateway({ log: s.transport, authenticate: issuer.authenticate, heartbeatIntervalMs: 0 });
  sseServer = createServer((req, res) => {
    if (!sse.handle(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => sseServer.listen(0, '127.0.0.1', resolve));
  sseBase = `http://127.0.0.1:${(sseServer.address() as AddressInfo).port}${sse.path}`;
});

afterAll(async () => {
  await sse.close();
  await new Promise<void>((resolve) => {
    sseServer.close(() => resolve());
    sseServer.closeAllConnections();
  });
  await s.stop();
});

const wsUrl = (token?: string): string => (token === undefined ? s.url : `${s.url}?token=${encodeURIComponent(token)}`);

describe('tokens at the handshake', () => {
  it('refuses missing, malformed, forged, tampered and expired tokens with 401 on both gateways, and accepts valid ones', async () => {
    const valid = issuer.issue('alice');
    const [payload] = valid.split('.');
    const tampered = `${Buffer.from(JSON.stringify({ sub: 'bob', exp: Date.now() + 60_000 })).toString('base64url')}.${valid.split('.')[1]}`;
    const expired = issuer.issue('alice', Date.now() - 1);
    const shortLived = issuer.issue('alice', Date.now() + 40);
    await pause(60); // it expires between issue and use
    const refused = {
      missing: undefined,
      empty: '',
      malformed: 'not-a-token',
      'no signature': `${payload}.`,
      'two dots': `${valid}.x`,
      'garbage payload': `!!!.${valid.split('.')[1]}`,
      forged: issuer.forge('alice'),
      tampered,
      expired,
      'expired meanwhile': shortLived,
    };
    const before = { ...issuer.refusals };
    for (const [name, token] of Object.entries(refused)) {
      expect([name, await refusedStatus(wsUrl(token))]).toEqual([name, 401]);
      // The same token in the Authorization header (what non-browser clients should use).
      if (token) expect([name, await refusedStatus(s.url, { Authorization: `Bearer ${token}` })]).toEqual([name, 401]);
      const stream = await SseTestClient.open(`${sseBase}?threadId=alice-thread${token === undefined ? '' : `&token=${encodeURIComponent(token)}`}`);
      expect([name, stream.status, stream.error.code]).toEqual([name, 401, 'AUTH_FAILED']);
    }
    // Each refusal went through the path it was meant to exercise.
    expect({
      expired: issuer.refusals.expired - before.expired,
      bad_signature: issuer.refusals.bad_signature - before.bad_signature,
    }).toEqual({ expired: 2 * 3, bad_signature: 4 * 3 }); // × (query, header, SSE)
    expect(s.gateway.stats().connections).toBe(0);

    // A valid token opens a socket; the server says who it is.
    for (const options of [{ url: wsUrl(valid) }, { url: s.url, headers: { Authorization: `Bearer ${valid}` } }]) {
      const ws = new WebSocket(options.url, { headers: options.headers ?? {} });
      const hello = await new Promise<unknown>((resolve, reject) => {
        ws.once('message', (data) => resolve(JSON.parse(String(data))));
        ws.once('error', reject);
      });
      expect(hello).toMatchObject({ type: 'hello', userId: 'alice' });
      ws.close();
    }

    // The real client with an expired token: AUTH_FAILED, closed, and it does not hammer the server.
    const client = follow(s.url, 'alice', 'alice-thread', { token: expired });
    await until(() => client.client.status === 'closed', 'client closed');
    expect(client.errors.map((e) => e.code)).toEqual(['AUTH_FAILED']);
    expect(client.client.stats.reconnects).toBe(0);
  });
});

describe('a user cannot read another user\'s thread by any message (property)', () => {
  it('no frame the attacker receives carries anything of another user, while the victims\' runs go on', async () => {
    const victims = ['alice', 'bob', 'carol'];
    const threads = victims.map((v) => `${v}-thread`);
    // Victims' real history and real cursors (every event's cursor, as their own clients saw them).
    const cursors: string[] = [];
    for (const victim of victims) {
      await s.load.run({ thoughts: 10, tools: 3, marker: `secret-of-${victim}` }, { userId: victim, threadId: `${victim}-thread` });
      const own = await RawClient.open(wsUrl(issuer.issue(victim)), undefined);
      own.subscribe(`${victim}-thread`);
      await own.waitFor(() => own.events().length === 18, 'victim replay');
      cursors.push(...own.ofType('event').map((f) => f.cursor));
      own.close();
    }
    const watchers = victims.map((v) => follow(s.url, v, `${v}-thread`, { token: issuer.issue(v) }));
    await until(() => watchers.every((w) => w.client.status === 'open'), 'victims watching');
    await s.scripted.run([{ think: 'mallory-own' }], { userId: 'mallory', threadId: 'mallory-thread' });
    // Victims keep running while the attack goes on (live events flow past the attacker's subscriptions).
    let stop = false;
    const live = (async () => {
      let runs = 0;
      for (let i = 0; i < 10_000 && !stop; i++) {
        await Promise.all(victims.map((v) => s.load.run({ thoughts: 6, tools: 2, marker: `secret-of-${v}` }, { userId: v, threadId: `${v}-thread` })));
        runs += victims.length;
        await pause(2);
      }
      return runs;
    })();

    const cursor = fc.oneof(fc.constantFrom(...cursors), fc.nat({ max: 200 }).map((n) => `${s.transport.epoch}:${n}`));
    const victimThread = fc.constantFrom(...threads);
    const frame = fc.oneof(
      fc.record({ type: fc.constant('subscribe'), threadId: victimThread }),
      fc.record({ type: fc.constant('subscribe'), threadId: victimThread, after: cursor }),
      fc.record({ type: fc.constant('unsubscribe'), threadId: victimThread }),
      fc.record({ type: fc.constant('ack'), threadId: victimThread, cursor }),
      // Other users' cursors applied to the attacker's own (and made-up) threads.
      fc.record({ type: fc.constant('subscribe'), threadId: fc.constantFrom('mallory-thread', 'mallory-new', ...threads.map((t) => t.toUpperCase()), ...threads.map((t) => `${t}.`)), after: cursor }),
      fc.record({ type: fc.constant('unsubscribe'), threadId: fc.constantFrom('mallory-thread', 'mallory-new') }),
    );
    let frames = 0;
    let forbidden = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 5, maxLength: 25 }), async (script) => {
        const mallory = await RawClient.open(wsUrl(issuer.issue('mallory')), undefined);
        try {
          for (const f of script) mallory.send(f);
          frames += script.length;
          const wanted = script.filter((f) => f.type !== 'ack').length;
          await mallory.waitFor(() => mallory.frames.filter((f) => f.type !== 'hello' && f.type !== 'event').length >= wanted, 'answers');
          await pause(2); // live victim events get a chance to (wrongly) arrive
          const text = JSON.stringify(mallory.messages);
          expect(text).not.toMatch(/secret-of-/);
          expect(mallory.events().every((e) => e.userId === 'mallory')).toBe(true);
          for (const f of mallory.frames) {
            if (f.type === 'subscribed') expect(threads).not.toContain(f.threadId);
          }
          forbidden += mallory.frames.filter((f) => f.type === 'error' && f.code === 'THREAD_FORBIDDEN').length;
        } finally {
          mallory.ws.terminate();
          await mallory.waitForClose();
        }
      }),
      { numRuns: 200 },
    );

    // The same over SSE: another user's thread is 403 with or without their cursors.
    const mallorySse = issuer.issue('mallory');
    for (const threadId of threads) {
      for (const lastEventId of [undefined, cursors[0]!, cursors.at(-1)!]) {
        const stream = await SseTestClient.open(`${sseBase}?threadId=${threadId}&token=${mallorySse}`, lastEventId === undefined ? {} : { lastEventId });
        expect([stream.status, stream.error.code]).toEqual([403, 'THREAD_FORBIDDEN']);
        expect(stream.raw).not.toMatch(/secret-of-/);
      }
    }

    stop = true;
    const runs = await live;
    await until(() => watchers.every((w) => w.events.length === s.emitted.expected(w.userId, w.threadId).length), 'victims got everything');
    for (const w of watchers) {
      const expected = s.emitted.expected(w.userId, w.threadId);
      const report = checkStream(w, expected); // subscribed after their first run: replayed, then live
      expect(report).toEqual(perfect(report, report.runs));
      expect(w.errors).toEqual([]);
    }
    expect(s.gateway.stats().isolationDrops).toBe(0);
    expect(s.transport.isolationDrops).toBe(0);
    expect(sse.stats().isolationDrops).toBe(0);
    expect(forbidden).toBeGreaterThan(100);
    watchers.forEach((w) => w.client.close());
    figures('cross-user property', { frames, forbidden, victimRunsDuringAttack: runs });
  });
});
