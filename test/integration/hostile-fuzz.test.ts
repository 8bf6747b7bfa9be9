/**
 * Hostile client frames against a real WebSocketGateway, while well-behaved users run agents on
 * the same gateway. Extends websocket-fuzz.test.ts (invalid frames only) to every category a
 * hostile client can send: invalid JSON, wrong types, unknown types, binary frames, oversized
 * frames, subscribes to other users' threads with their real or forged cursors, subscribes to its
 * own threads with forged cursors, and floods of subscribe/unsubscribe. Every frame is answered
 * (an answer frame or a close code), the attacker never receives anything of another user, the
 * server stays up, and every well-behaved client gets every event of its runs.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerFrame } from '../../src/protocol/index.js';
import { checkStream, figures, loadEvents, pause, perfect, startStack, type LoadInput, type Stack } from '../helpers/reliability-harness.js';
import { RawClient, follow, until } from '../helpers/ws-harness.js';

type Kind =
  | 'binary'
  | 'invalid_json'
  | 'invalid_frame'
  | 'invalid_cursor'
  | 'unknown_type'
  | 'subscribe_victim'
  | 'subscribe_own'
  | 'unsubscribe'
  | 'ack';
interface Spec {
  kind: Kind;
  data: string | Buffer;
}

/** The error code each invalid kind must be answered with (exactly one error frame per frame). */
const INVALID_CODES: Partial<Record<Kind, string>> = {
  binary: 'BINARY_NOT_SUPPORTED',
  invalid_json: 'INVALID_JSON',
  invalid_frame: 'INVALID_FRAME',
  invalid_cursor: 'INVALID_CURSOR',
  unknown_type: 'UNKNOWN_FRAME_TYPE',
};

const MAX_PAYLOAD = 4096;
const GOOD_USERS = 8;
const RUN: LoadInput = { thoughts: 12, tools: 4, parallel: true, failEvery: 3, toolDelayMs: 1 };

let s: Stack;
let good: Array<ReturnType<typeof follow>>;
let late: Array<ReturnType<typeof follow>>;
let stopLoad = false;
let load: Promise<number>;

beforeAll(async () => {
  s = await startStack({
    gateway: { maxPayload: MAX_PAYLOAD, maxInvalidFrames: 1_000_000, rateLimit: { framesPerSecond: 1_000_000, burst: 1_000_000 } },
  });
  // Well-behaved users: one client each on their own thread; runs go on for the whole test.
  good = Array.from({ length: GOOD_USERS }, (_, i) => follow(s.url, `good${i}`, `good-thread-${i}`));
  // Threads that get their first event only during the attack (ownerless while the attacker may subscribe).
  late = Array.from({ length: 4 }, (_, i) => follow(s.url, `late${i}`, `late-thread-${i}`));
  await until(() => [...good, ...late].every((f) => f.client.status === 'open'), 'well-behaved clients subscribed');
  await Promise.all(good.map((f) => s.load.run({ ...RUN, marker: `secret-${f.userId}` }, { userId: f.userId, threadId: f.threadId })));
  // Their cursors are used below: wait until each client has received its run (not only until it was stored).
  await until(() => good.every((f) => f.events.length === loadEvents(RUN)), 'the first runs received');
  await s.scripted.run([{ think: 'eve-own' }, { tool: 'echo', args: { text: 'eve-own' } }], { userId: 'eve', threadId: 'eve-thread' });
  load = (async () => {
    let runs = 0;
    for (let round = 0; round < 10_000 && !stopLoad; round++) {
      const starting = round % 10 === 5 ? late : [];
      await Promise.all(
        [...good, ...starting].map((f) => s.load.run({ ...RUN, marker: `secret-${f.userId}` }, { userId: f.userId, threadId: f.threadId })),
      );
      runs += good.length + starting.length;
      await pause(2);
    }
    return runs;
  })();
});

afterAll(async () => {
  stopLoad = true;
  await load;
  [...good, ...late].forEach((f) => f.client.close());
  await s.stop();
});

describe('hostile frames (property, thousands of frames) next to well-behaved users', () => {
  it('answers every frame, leaks nothing of another user, stays up, and every well-behaved client gets all its events', async () => {
    const epoch = s.transport.epoch;
    const victimThreads = [...good, ...late].map((f) => f.threadId);
    const lateThreads = new Set(late.map((f) => f.threadId));
    const victimCursors = good.map((f) => f.client.cursor!).filter(Boolean);
    expect(victimCursors).toHaveLength(GOOD_USERS);

    const validThreadId = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/);
    const ownThread = fc.oneof(fc.constant('eve-thread'), fc.stringMatching(/^eve-[a-z0-9]{1,4}$/), fc.constantFrom('__proto__', 'constructor', 'toString'));
    const cursor = fc.oneof(
      fc.constantFrom(...victimCursors), // real cursors of other users' streams
      fc.nat({ max: 5_000 }).map((n) => `${epoch}:${n}`), // this epoch, any offset
      fc.constantFrom('abcdefghij:5', `${epoch}:999999999999999`, `${epoch}:-1`, `${epoch}:`, ':', '1:2:3', 'zzz', `${epoch}:1e3`, `${epoch}:0x10`),
      fc.stringMatching(/^[\x21-\x7e]{1,60}$/), // any cursor of the protocol's format
    );
    const withCursor = (frame: Record<string, unknown>) =>
      fc.option(cursor, { nil: undefined }).map((after) => JSON.stringify(after === undefined ? frame : { ...frame, after }));
    const validFrame = fc.oneof(
      fc.record({ type: fc.constant('subscribe'), threadId: validThreadId, after: cursor }),
      fc.record({ type: fc.constant('unsubscribe'), threadId: validThreadId }),
      fc.record({ type: fc.constant('ack'), threadId: validThreadId, cursor }),
    );
    const wrongValue = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.constant(''), fc.constant({}));
    const spec = (kind: Kind) => (data: string | Buffer): Spec => ({ kind, data });

    const binary = fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => spec('binary')(Buffer.from(bytes)));
    const invalidJson = fc
      .oneof(
        fc.string({ unit: 'binary', maxLength: 100 }).filter((text) => {
          try {
            JSON.parse(text);
            return false;
          } catch {
            return true;
          }
        }),
        // A valid frame cut short (a proper prefix of a JSON object is never JSON).
        fc.tuple(validFrame, fc.nat()).map(([frame, n]) => {
          const text = JSON.stringify(frame);
          return text.slice(0, n % (text.length - 1) + 1);
        }),
      )
      .map(spec('invalid_json'));
    const invalidFrame = fc
      .oneof(
        fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.string({ maxLength: 30 }), fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 })).map((v) => JSON.stringify(v)),
        fc.record({ threadId: validThreadId }).map((v) => JSON.stringify(v)), // no type
        fc.record({ type: fc.oneof(fc.integer(), fc.constant(null), fc.constant(['subscribe'])), threadId: validThreadId }).map((v) => JSON.stringify(v)),
        fc.tuple(validFrame, wrongValue).map(([frame, value]) => {
          const field = Object.keys(frame).find((key) => key !== 'type')!;
          return JSON.stringify({ ...frame, [field]: value });
        }),
        // Thread ids outside the protocol's alphabet or length.
        fc.constantFrom('../etc/passwd', 'a b', 'x'.repeat(129), '', 'é', 'thread\u0000', '<script>').map((threadId) => JSON.stringify({ type: 'subscribe', threadId })),
      )
      .map(spec('invalid_frame'));
    // Cursors outside the protocol's format (1-128 printable ASCII), in a subscribe or an ack: answered INVALID_CURSOR.
    const badCursor = fc.oneof(
      fc.constantFrom('x'.repeat(129), '', 'a b', 'é', '\u0000', '\ud800', 'a\nb', '\u2028'),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).filter((text) => !/^[\x21-\x7e]+$/.test(text)),
    );
    const invalidCursor = fc
      .tuple(fc.oneof(ownThread, fc.constantFrom(...victimThreads)), badCursor, fc.boolean())
      .map(([threadId, c, asAck]) => JSON.stringify(asAck ? { type: 'ack', threadId, cursor: c } : { type: 'subscribe', threadId, after: c }))
      .map(spec('invalid_cursor'));
    const unknownType = fc
      .record({ type: fc.string({ maxLength: 20 }).filter((t) => !['subscribe', 'unsubscribe', 'ack'].includes(t)), threadId: validThreadId })
      .map((v) => spec('unknown_type')(JSON.stringify(v)));
    const subscribeVictim = fc.constantFrom(...victimThreads).chain((threadId) => withCursor({ type: 'subscribe', threadId })).map(spec('subscribe_victim'));
    const subscribeOwn = fc
      .oneof(ownThread.chain((threadId) => withCursor({ type: 'subscribe', threadId })), ownThread.map((threadId) => `{"type":"subscribe","threadId":"${threadId}","__proto__":{"polluted":true}}`))
      .map(spec('subscribe_own'));
    const unsubscribe = fc.oneof(ownThread, fc.constantFrom(...victimThreads), validThreadId).map((threadId) => spec('unsubscribe')(JSON.stringify({ type: 'unsubscribe', threadId })));
    const ack = fc
      .tuple(fc.oneof(ownThread, fc.constantFrom(...victimThreads), validThreadId), cursor)
      .map(([threadId, c]) => spec('ack')(JSON.stringify({ type: 'ack', threadId, cursor: c })));
    // A flood: the same few threads subscribed and unsubscribed over and over.
    const flood = fc
      .tuple(fc.array(fc.oneof(ownThread, fc.constantFrom(...victimThreads)), { minLength: 1, maxLength: 3 }), fc.integer({ min: 5, max: 40 }))
      .map(([threads, rounds]) =>
        Array.from({ length: rounds }, (_, i) => {
          const threadId = threads[i % threads.length]!;
          const subscribe = Math.floor(i / threads.length) % 2 === 0;
          return subscribe
            ? spec(victimThreads.includes(threadId) ? 'subscribe_victim' : 'subscribe_own')(JSON.stringify({ type: 'subscribe', threadId }))
            : spec('unsubscribe')(JSON.stringify({ type: 'unsubscribe', threadId }));
        }),
      );
    const script = fc.tuple(
      fc.array(
        fc.oneof(
          { weight: 6, arbitrary: fc.oneof(binary, invalidJson, invalidFrame, invalidCursor, unknownType).map((one) => [one]) },
          { weight: 3, arbitrary: fc.oneof(subscribeVictim, subscribeOwn, unsubscribe, ack).map((one) => [one]) },
          { weight: 1, arbitrary: flood },
        ),
        { minLength: 1, maxLength: 16 },
      ).map((groups) => groups.flat()),
      // Now and then the script ends with a frame over maxPayload (text or binary).
      fc.oneof({ weight: 7, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.boolean() }),
    );

    const totals: Record<string, number> = { frames: 0, oversized: 0, scripts: 0, answered: 0, forbidden: 0, eventsToAttacker: 0 };
    await fc.assert(
      fc.asyncProperty(script, async ([specs, oversizedBinary]) => {
        totals.scripts!++;
        const eve = await RawClient.open(s.url, 'eve');
        try {
          for (const { data } of specs) eve.ws.send(data, { binary: typeof data !== 'string' });
          totals.frames! += specs.length;
          for (const one of specs) totals[one.kind] = (totals[one.kind] ?? 0) + 1;
          const answersWanted = specs.filter((one) => one.kind !== 'ack').length;
          // A late thread eve subscribed to while it had no owner ends with THREAD_FORBIDDEN when
          // its owner's first event arrives: an answer to no frame, at most one per `subscribed`.
          const endings = (): number => {
            let ended = 0;
            const open = new Set<string>();
            for (const f of eve.frames) {
              if (f.type === 'subscribed' && lateThreads.has(f.threadId)) open.add(f.threadId);
              else if (f.type === 'unsubscribed') open.delete(f.threadId);
              else if (f.type === 'error' && f.code === 'THREAD_FORBIDDEN' && open.delete(f.threadId!)) ended++;
            }
            return ended;
          };
          const answers = (): ServerFrame[] =>
            eve.frames.filter((f) => f.type !== 'hello' && f.type !== 'event' && !(f.type === 'error' && f.code === 'SUBSCRIPTION_ENDED'));
          if (oversizedBinary !== undefined) {
            const big = 'x'.repeat(MAX_PAYLOAD + 1);
            eve.ws.send(oversizedBinary ? Buffer.from(big) : big, { binary: oversizedBinary });
            totals.frames!++;
            totals.oversized!++;
            expect(await eve.waitForClose()).toMatchObject({ code: 1009 });
            expect(answers().length).toBeLessThanOrEqual(answersWanted); // earlier answers may be cut off by the close
          } else {
            await eve.waitFor(() => answers().length - endings() >= answersWanted, `${answersWanted} answers`);
            await pause(1);
            const got = answers();
            // One answer per frame that asks for one, exactly (and the endings of late threads), and the connection stays open.
            expect(got.length - endings()).toBe(answersWanted);
            expect(eve.closed).toBeUndefined();
            for (const [kind, code] of Object.entries(INVALID_CODES)) {
              const sent = specs.filter((one) => one.kind === kind).length;
              expect(got.filter((f) => f.type === 'error' && f.code === code)).toHaveLength(sent);
            }
            // A subscribe to another user's thread is never `subscribed`, unless the thread had no owner yet.
            const forbidden = got.filter((f) => f.type === 'error' && f.code === 'THREAD_FORBIDDEN');
            expect(forbidden.every((f) => f.type === 'error' && victimThreads.includes(f.threadId!))).toBe(true);
            totals.forbidden! += forbidden.length;
            totals.answered! += got.length;
          }
          // Isolation: nothing the attacker received is another user's.
          const events = eve.events();
          totals.eventsToAttacker! += events.length;
          expect(events.every((event) => event.userId === 'eve' && !victimThreads.includes(event.threadId))).toBe(true);
          expect(JSON.stringify(eve.messages)).not.toMatch(/secret-|good\d|late\d/);
        } finally {
          eve.ws.terminate();
          await eve.waitForClose();
        }
      }),
      { numRuns: 250 },
    );

    stopLoad = true;
    const runs = await load;
    // The server is up and kept every well-behaved client whole.
    await until(
      () => [...good, ...late].every((f) => f.events.length === s.emitted.expected(f.userId, f.threadId).length),
      'every well-behaved event',
      4_000,
    );
    await pause(20);
    for (const f of [...good, ...late]) {
      const expected = s.emitted.expected(f.userId, f.threadId);
      const report = checkStream(f, expected);
      expect(report).toEqual(perfect(report, expected.length / loadEvents(RUN)));
      expect(f.errors).toEqual([]);
      expect(f.client.status).toBe('open');
    }
    expect(late.every((f) => f.events.length > 0)).toBe(true); // the late threads did start during the attack
    const stats = s.gateway.stats();
    expect(stats.isolationDrops).toBe(0);
    expect(s.transport.isolationDrops).toBe(0);
    expect(stats.oversizedFrames).toBe(totals.oversized);
    expect(stats.connections).toBe(good.length + late.length);
    expect(await s.gateway.health()).toMatchObject({ ok: true });
    // Subscribe/unsubscribe churn on made-up thread ids left no thread behind in the log.
    expect(s.transport.threadCount).toBe(good.length + late.length + 1);
    expect(totals.frames).toBeGreaterThan(3_000);
    figures('hostile frames', { ...totals, wellBehavedRuns: runs + good.length, invalidFrames: stats.invalidFrames, subscribeFailures: stats.subscribeFailures });
  });
});
