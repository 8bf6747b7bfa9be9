/**
 * Attack 8 findings on the WebSocket gateway, against a real gateway and real `ws` clients over
 * loopback, asserting what the client received (frames, close code and reason) and the counters:
 *
 * 01. A subscribe's `after` (and an ack's `cursor`) outside "1–128 printable ASCII characters"
 *     (SECURITY.md, the SSE gateway's rule) is answered with `error` `INVALID_CURSOR`, never echoed,
 *     never handed to the log, and counted like any invalid frame (`maxInvalidFrames`). A cursor of
 *     the right format the log does not know still gets `history_gap`.
 * 02. A text frame that is not UTF-8 closes with 1007 and a reason, counted in
 *     `stats().disconnects.invalid_utf8`; frames read before it are answered first.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTransport } from '../../src/index.js';
import { WebSocketGateway, type WebSocketGatewayOptions } from '../../src/gateway/websocket/index.js';
import { Peer, RunBuilder, authenticate, type Frame } from './hotpath-peer.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startGateway(options: Partial<WebSocketGatewayOptions> = {}) {
  const errors: unknown[] = [];
  const log = new MemoryTransport();
  const gateway = new WebSocketGateway({ authenticate, log, onError: (error) => errors.push(error), closeTimeoutMs: 2_000, ...options });
  const { url } = await gateway.listen(0);
  cleanups.push(async () => {
    await gateway.close();
    await log.close();
  });
  return { gateway, url, errors, log };
}

async function peer(url: string, userId: string): Promise<Peer> {
  const p = await Peer.open(url, userId);
  cleanups.push(() => {
    p.ws.terminate();
  });
  return p;
}

/** The rule as SECURITY.md states it, written out here (not imported): a string of 1–128 characters, each printable ASCII but the space. */
function wellFormedCursor(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  if (value.length < 1 || value.length > 128) return false;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit < 0x21 || unit > 0x7e) return false;
  }
  return true;
}

const INVALID_SUBSCRIBE_CURSOR = 'invalid subscribe frame: after: expected 1-128 printable ASCII characters';

/**
 * Cursors of every kind: any UTF-16 code unit (lone surrogates, controls, U+2028), any code point,
 * long ones, ones of the right format, and present values that are no string at all (gateways.md:
 * "an `after` that is not 1–128 printable ASCII characters" is INVALID_CURSOR naming the thread).
 */
const anyCursor: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 140 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 20 }),
  fc.stringMatching(/^[\x21-\x7e]{1,160}$/),
  fc.constantFrom('\u0000', '\u0001\u0002', '\u007f', 'é', '\ud800', '\udfff', 'a\nb', 'a\rb', '\u2028', '\u2029', ' ', 'a b', '\t', 'x'.repeat(129), 'x'.repeat(128), '', '\ufeff'),
  fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constantFrom({}, [], ['abc'], { a: 1 }), fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== 'string')),
);

describe('attack 8: WebSocket cursors and UTF-8', () => {
  it('property: every cursor outside 1–128 printable ASCII (a string or any other JSON value) gets error INVALID_CURSOR (not echoed, naming the thread); every other one reaches the log (history_gap for an unknown one)', async () => {
    const { gateway, url } = await startGateway({ maxInvalidFrames: 1_000_000, rateLimit: { framesPerSecond: 1_000_000, burst: 1_000_000 } });
    const eve = await peer(url, 'eve');
    let n = 0;
    let invalid = 0;
    let valid = 0;
    let nonString = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(anyCursor, { minLength: 1, maxLength: 12 }), async (cursors) => {
        const sent = cursors.map((after) => ({ after, threadId: `t${n++}` }));
        const from = eve.frames.length;
        // Raw JSON text: JSON.stringify keeps a lone surrogate as a \ud800 escape, so it reaches the parser as one.
        for (const { after, threadId } of sent) eve.send({ type: 'subscribe', threadId, after });
        const answerOf = (threadId: string): Frame[] => eve.frames.slice(from).filter((f) => f.threadId === threadId);
        await eve.until(() => sent.every(({ threadId }) => answerOf(threadId).length > 0), 10_000, 'one answer per subscribe');
        for (const { after, threadId } of sent) {
          const answers = answerOf(threadId);
          expect(answers).toHaveLength(1);
          if (wellFormedCursor(after)) {
            valid++;
            expect(answers[0]).toMatchObject({ type: 'history_gap', threadId, requested: after });
          } else {
            invalid++;
            if (typeof after !== 'string') nonString++;
            // Exactly this frame: a fixed message, so nothing of the value comes back.
            expect(answers[0]).toEqual({ type: 'error', code: 'INVALID_CURSOR', message: INVALID_SUBSCRIBE_CURSOR, threadId });
          }
        }
      }),
      { numRuns: 60 },
    );
    expect(eve.close).toBeUndefined();
    expect(eve.decodeErrors).toEqual([]);
    expect(invalid).toBeGreaterThan(50);
    expect(nonString).toBeGreaterThan(10);
    expect(valid).toBeGreaterThan(20);
    expect(gateway.stats().invalidFrames).toBe(invalid);
    expect(gateway.stats().disconnects).toEqual({});
  });

  it("the attacker's cursors: INVALID_CURSOR each, and a cursor of the right format is still resumed from (replay after it)", async () => {
    const { gateway, url } = await startGateway();
    const run = new RunBuilder('ann', 'ann-t');
    await gateway.send(run.started());
    await gateway.send(run.thinking('one'));
    const ann = await peer(url, 'ann');
    const first = await ann.subscribe('ann-t');
    expect(first).toMatchObject({ type: 'subscribed', replayed: 2 });
    await ann.until(() => ann.events('ann-t').length === 2, 5_000, 'the replay');
    const cursor = ann.events('ann-t')[0]!.cursor!;
    for (const [i, after] of ['\u0000', '\u0001\u0002', '\u007f', 'é', '\ud800', 'a\nb', '\u2028'].entries()) {
      expect(await ann.subscribe(`bad${i}`, after)).toEqual({ type: 'error', code: 'INVALID_CURSOR', message: INVALID_SUBSCRIBE_CURSOR, threadId: `bad${i}` });
    }
    // A frame whose thread id is also malformed is refused without naming any thread.
    ann.send({ type: 'subscribe', threadId: 'a b', after: '\u0001' });
    await ann.until(() => ann.errors().length === 8, 5_000, 'the eighth error');
    expect(ann.errors()[7]).toEqual({ type: 'error', code: 'INVALID_CURSOR', message: INVALID_SUBSCRIBE_CURSOR });
    // A malformed ack cursor is refused the same way (an ack of the right format is never answered).
    ann.send({ type: 'ack', threadId: 'ann-t', cursor: 'é' });
    await ann.until(() => ann.errors().length === 9, 5_000, 'the ack error');
    expect(ann.errors()[8]).toEqual({ type: 'error', code: 'INVALID_CURSOR', message: 'invalid ack frame: cursor: expected 1-128 printable ASCII characters', threadId: 'ann-t' });
    // The connection still serves: a second connection resumes after the first event's cursor.
    const again = await peer(url, 'ann');
    expect(await again.subscribe('ann-t', cursor)).toMatchObject({ type: 'subscribed', replayed: 1 });
    await again.until(() => again.events('ann-t').length === 1, 5_000, 'the resumed replay');
    expect(again.events('ann-t')[0]!.event!.data).toMatchObject({ text: 'one' });
    expect(gateway.stats().invalidFrames).toBe(9);
    expect(gateway.stats().acks).toBe(0);
    expect(ann.close).toBeUndefined();
  });

  it('attack 9 finding 09: a present `after` (or ack `cursor`) that is no string (123, null, {}) is INVALID_CURSOR naming the thread, not INVALID_FRAME; the connection still serves', async () => {
    const { gateway, url } = await startGateway();
    const run = new RunBuilder('odo', 'odo-t');
    await gateway.send(run.started());
    const odo = await peer(url, 'odo');
    for (const [i, after] of [123, null, { a: 1 }].entries()) {
      odo.send({ type: 'subscribe', threadId: `odd${i}`, after });
    }
    odo.send({ type: 'ack', threadId: 'odo-t', cursor: 42 });
    await odo.until(() => odo.errors().length === 4, 5_000, 'four errors');
    expect(odo.errors()).toEqual([
      { type: 'error', code: 'INVALID_CURSOR', message: INVALID_SUBSCRIBE_CURSOR, threadId: 'odd0' },
      { type: 'error', code: 'INVALID_CURSOR', message: INVALID_SUBSCRIBE_CURSOR, threadId: 'odd1' },
      { type: 'error', code: 'INVALID_CURSOR', message: INVALID_SUBSCRIBE_CURSOR, threadId: 'odd2' },
      { type: 'error', code: 'INVALID_CURSOR', message: 'invalid ack frame: cursor: expected 1-128 printable ASCII characters', threadId: 'odo-t' },
    ]);
    // Only a present cursor: a subscribe without `after` is served (the replay), and the refused ones were never subscribed.
    expect(await odo.subscribe('odo-t')).toMatchObject({ type: 'subscribed', threadId: 'odo-t', replayed: 1 });
    expect(odo.frames.filter((f) => f.type === 'subscribed').map((f) => f.threadId)).toEqual(['odo-t']);
    expect(gateway.stats().invalidFrames).toBe(4);
    expect(odo.close).toBeUndefined();
  });

  it('malformed cursors count toward maxInvalidFrames: past it, close 1008 (invalid_frames)', async () => {
    const { gateway, url } = await startGateway({ maxInvalidFrames: 2 });
    const mal = await peer(url, 'mal');
    for (let i = 0; i < 3; i++) mal.send({ type: 'subscribe', threadId: `m${i}`, after: `\u0001${i}` });
    const closed = await mal.closed();
    expect(closed).toEqual({ code: 1008, reason: 'too many invalid frames' });
    expect(mal.errors()).toEqual([
      { type: 'error', code: 'INVALID_CURSOR', message: INVALID_SUBSCRIBE_CURSOR, threadId: 'm0' },
      { type: 'error', code: 'INVALID_CURSOR', message: INVALID_SUBSCRIBE_CURSOR, threadId: 'm1' },
    ]);
    expect(gateway.stats().invalidFrames).toBe(3);
    expect(gateway.stats().disconnects).toEqual({ invalid_frames: 1 });
  });

  it('a text frame that is not UTF-8 closes 1007 with a reason, counted as invalid_utf8; the subscribe sent before it is answered first', async () => {
    const { gateway, url, errors } = await startGateway();
    const run = new RunBuilder('ivy', 'ivy-t');
    await gateway.send(run.started());
    const calm = await peer(url, 'calm');
    expect(await calm.subscribe('calm-t')).toMatchObject({ type: 'subscribed' });
    const ivy = await peer(url, 'ivy');
    ivy.send({ type: 'subscribe', threadId: 'ivy-t' });
    ivy.ws.send(Buffer.from([0xc3, 0x28]), { binary: false });
    // Read by nobody: the connection fails at the frame before it.
    ivy.send({ type: 'subscribe', threadId: 'after-the-cut' });
    const closed = await ivy.closed();
    expect(closed).toEqual({ code: 1007, reason: 'invalid UTF-8 in a text frame' });
    expect(ivy.frames.map((f) => f.type)).toEqual(['hello', 'subscribed', 'event']);
    expect(ivy.frames[1]).toMatchObject({ threadId: 'ivy-t', replayed: 1 });
    expect(ivy.frames.some((f) => f.threadId === 'after-the-cut')).toBe(false);
    const stats = gateway.stats();
    expect(stats.disconnects).toEqual({ invalid_utf8: 1 });
    expect(stats.invalidFrames).toBe(0);
    expect(errors).toEqual([]);
    // The bystander is untouched.
    await gateway.send(new RunBuilder('calm', 'calm-t').started());
    await calm.until(() => calm.events('calm-t').length === 1, 5_000, 'the bystander event');
    expect(calm.close).toBeUndefined();
  });

  it('every kind of malformed UTF-8 closes 1007 (one count each); valid multi-byte text, also split across fragments mid-character, is read', async () => {
    const { gateway, url } = await startGateway();
    const malformed = [
      [0xc3, 0x28], // a lead byte without its continuation
      [0xff], // never valid
      [0xc0, 0xaf], // overlong '/'
      [0xed, 0xa0, 0x80], // an encoded surrogate (U+D800)
      [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
      [0x7b, 0xe2, 0x82], // a sequence cut short at the end
      [0x80], // a lone continuation byte
    ];
    for (const bytes of malformed) {
      const p = await peer(url, 'bad-bytes');
      p.ws.send(Buffer.from(bytes), { binary: false });
      expect(await p.closed(), bytes.join(' ')).toEqual({ code: 1007, reason: 'invalid UTF-8 in a text frame' });
      expect(p.frames.map((f) => f.type)).toEqual(['hello']);
    }
    expect(gateway.stats().disconnects).toEqual({ invalid_utf8: malformed.length });

    const good = await peer(url, 'good');
    // 'é' (0xc3 0xa9) cut between its two bytes across two fragments of one text message: valid as a whole.
    const frame = Buffer.from(JSON.stringify({ type: 'subscribe', threadId: 'x', after: 'é' }));
    const cut = frame.indexOf(0xa9);
    expect(frame[cut - 1]).toBe(0xc3);
    good.ws.send(frame.subarray(0, cut), { binary: false, fin: false });
    good.ws.send(frame.subarray(cut), { binary: false, fin: true });
    await good.until(() => good.errors().length === 1, 5_000, 'the answer to the fragmented frame');
    expect(good.errors()[0]).toEqual({ type: 'error', code: 'INVALID_CURSOR', message: INVALID_SUBSCRIBE_CURSOR, threadId: 'x' });
    // Valid UTF-8 that is not JSON is an invalid frame, not a failed connection.
    good.send('😀 not json');
    await good.until(() => good.errors().length === 2, 5_000, 'INVALID_JSON');
    expect(good.errors()[1]).toMatchObject({ code: 'INVALID_JSON' });
    expect(good.close).toBeUndefined();
    expect(gateway.stats().disconnects).toEqual({ invalid_utf8: malformed.length });
  });
});
