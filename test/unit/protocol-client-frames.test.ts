import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/index.js';
import { parseStreamRequest } from '../../src/gateway/sse/request.js';
import { parseClientFrame } from '../../src/transport/websocket/index.js';

const ERROR_CODES = ['INVALID_JSON', 'INVALID_FRAME', 'INVALID_CURSOR', 'UNKNOWN_FRAME_TYPE'];
const threadId = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,128}$/);
/** A cursor as SECURITY.md states it: 1–128 printable ASCII characters (no space). */
const cursor = fc.stringMatching(/^[\x21-\x7e]{1,128}$/);
const validFrame = fc.oneof(
  fc.record({ type: fc.constant('subscribe'), threadId }, { requiredKeys: ['type', 'threadId'] }),
  fc.record({ type: fc.constant('subscribe'), threadId, after: cursor }),
  fc.record({ type: fc.constant('unsubscribe'), threadId }),
  fc.record({ type: fc.constant('ack'), threadId, cursor }),
);
const notJson = fc.string({ unit: 'binary' }).filter((text) => {
  try {
    JSON.parse(text);
    return false;
  } catch {
    return true;
  }
});

describe('parseClientFrame', () => {
  it('accepts every valid frame and returns it unchanged', () => {
    fc.assert(
      fc.property(validFrame, (frame) => {
        expect(parseClientFrame(JSON.stringify(frame))).toEqual({ ok: true, frame });
      }),
    );
  });

  it('never throws on arbitrary text or JSON, and answers anything invalid with a known code and a short message', () => {
    const input = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.json({ maxDepth: 4 }),
      fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
      validFrame.chain((frame) => fc.record({ ...Object.fromEntries(Object.keys(frame).map((k) => [k, fc.jsonValue({ maxDepth: 2 })])) }).map((value) => JSON.stringify(value))),
    );
    fc.assert(
      fc.property(input, (text) => {
        const result = parseClientFrame(text);
        if (result.ok) return;
        expect(ERROR_CODES).toContain(result.code);
        expect(result.message.length).toBeGreaterThan(0);
        // Untrusted input is never echoed back at length.
        expect(result.message.length).toBeLessThan(250);
      }),
      { numRuns: 500 },
    );
  });

  it('classifies what it rejects', () => {
    fc.assert(
      fc.property(notJson, (text) => {
        expect(parseClientFrame(text)).toMatchObject({ ok: false, code: 'INVALID_JSON' });
      }),
    );
    const notAnObject = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.string(), fc.array(fc.jsonValue({ maxDepth: 2 })));
    fc.assert(
      fc.property(notAnObject, (value) => {
        expect(parseClientFrame(JSON.stringify(value))).toMatchObject({ ok: false, code: 'INVALID_FRAME' });
      }),
    );
    const unknownType = fc.string({ maxLength: 1000 }).filter((type) => !['subscribe', 'unsubscribe', 'ack'].includes(type));
    fc.assert(
      fc.property(unknownType, threadId, (type, id) => {
        const result = parseClientFrame(JSON.stringify({ type, threadId: id }));
        expect(result).toMatchObject({ ok: false, code: 'UNKNOWN_FRAME_TYPE' });
      }),
    );
    // A valid frame with one field of the wrong type is refused, naming the field.
    const wrongField = fc.tuple(validFrame, fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer())));
    fc.assert(
      fc.property(wrongField, ([frame, value]) => {
        const field = Object.keys(frame).find((key) => key !== 'type')!;
        const result = parseClientFrame(JSON.stringify({ ...frame, [field]: value }));
        expect(result).toMatchObject({ ok: false, code: 'INVALID_FRAME' });
        expect(!result.ok && result.message).toContain(field);
      }),
    );
  });

  it('refuses thread ids and cursors outside their formats', () => {
    for (const bad of ['', 'has space', 'slash/y', 'x'.repeat(129), 'ümlaut']) {
      expect(parseClientFrame(JSON.stringify({ type: 'subscribe', threadId: bad }))).toMatchObject({ ok: false, code: 'INVALID_FRAME' });
    }
    for (const bad of ['', 'c'.repeat(129), 'a b', '\u0000', '\u007f', 'é', '\ud800', 'a\nb', '\u2028']) {
      expect(parseClientFrame(JSON.stringify({ type: 'subscribe', threadId: 't', after: bad }))).toMatchObject({ ok: false, code: 'INVALID_CURSOR', threadId: 't' });
      expect(parseClientFrame(JSON.stringify({ type: 'ack', threadId: 't', cursor: bad }))).toMatchObject({ ok: false, code: 'INVALID_CURSOR', threadId: 't' });
    }
    // A present cursor that is no string is INVALID_CURSOR naming the thread too (gateways.md, subscribe row); absent, the schema decides.
    for (const bad of [7, 0, -1.5, true, false, null, {}, { a: 1 }, [], ['c']]) {
      expect(parseClientFrame(JSON.stringify({ type: 'subscribe', threadId: 't', after: bad }))).toEqual({
        ok: false,
        code: 'INVALID_CURSOR',
        message: 'invalid subscribe frame: after: expected 1-128 printable ASCII characters',
        threadId: 't',
      });
      expect(parseClientFrame(JSON.stringify({ type: 'ack', threadId: 't', cursor: bad }))).toMatchObject({ ok: false, code: 'INVALID_CURSOR', threadId: 't' });
      // A malformed thread id as well: refused without naming any thread.
      expect(parseClientFrame(JSON.stringify({ type: 'subscribe', threadId: 'a b', after: bad }))).not.toHaveProperty('threadId');
    }
    expect(parseClientFrame(JSON.stringify({ type: 'subscribe', threadId: 't' }))).toMatchObject({ ok: true });
    expect(parseClientFrame(JSON.stringify({ type: 'ack', threadId: 't' }))).toMatchObject({ ok: false, code: 'INVALID_FRAME' });
    expect(parseClientFrame('{"type":"subscribe","threadId":"t","__proto__":{"polluted":true}}')).toMatchObject({ ok: true });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('one cursor rule for WebSocket and SSE: a subscribe `after` is INVALID_CURSOR exactly when SSE refuses it as ?after=', () => {
    const anyString = fc.oneof(fc.string({ unit: 'binary', maxLength: 140 }), fc.string({ unit: 'binary-ascii', maxLength: 140 }), cursor, fc.stringMatching(/^[\x21-\x7e]{129,140}$/));
    const sseRefuses = (after: string): boolean => {
      const url = new URL('http://localhost/events');
      url.searchParams.set('threadId', 't');
      url.searchParams.set('after', after);
      try {
        parseStreamRequest({ url, headers: { get: () => null } });
        return false;
      } catch (error) {
        expect(error).toMatchObject({ code: 'INVALID_CURSOR' });
        expect(error).toBeInstanceOf(ValidationError);
        return true;
      }
    };
    fc.assert(
      fc.property(anyString, (after) => {
        const ws = parseClientFrame(JSON.stringify({ type: 'subscribe', threadId: 't', after }));
        const refused = !ws.ok && ws.code === 'INVALID_CURSOR';
        expect(ws.ok || refused).toBe(true);
        // SSE reads an empty ?after= as "no cursor"; the WebSocket frame names one, so it is refused.
        if (after !== '') expect(sseRefuses(after)).toBe(refused);
        expect(refused).toBe(!/^[\x21-\x7e]{1,128}$/.test(after));
        // The message is fixed: nothing of the value is echoed.
        if (refused) expect(ws.message).toBe('invalid subscribe frame: after: expected 1-128 printable ASCII characters');
      }),
      { numRuns: 2_000 },
    );
  });
});
