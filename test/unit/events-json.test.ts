import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_JSON_LIMITS,
  ValidationError,
  generateRunId,
  parseEvent,
  type AgentEvent,
} from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { eventJson, isNotSerializableMarker } from '../../src/events/json.js';
import { exceedsDepth, hasEventJson, notSerializableMarker, resolveLimits, serializeEvent, toJson } from '../../src/events/json.js';

function nest(levels: number): unknown {
  let value: unknown = 0;
  for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { v: value };
  return value;
}

function emitter(limits = DEFAULT_JSON_LIMITS) {
  return new RunEmitter({ runId: generateRunId('t1'), threadId: 't1', userId: 'alice', agent: 'a' }, { limits });
}

describe('toJson: JSON.stringify semantics plus reasons and limits', () => {
  it.each([
    ['bigint', { n: 1n }],
    ['cycle', (() => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    })()],
    ['depth', nest(65)],
    ['depth', nest(10_000)],
    ['depth', nest(200_000)], // deeper than JSON.stringify's stack: its RangeError is classified, not thrown
    ['unserializable', { toJSON: () => { throw new Error('secret-token-123'); } }],
    ['unserializable', new Proxy({}, { ownKeys: () => { throw new TypeError('secret-token-123'); } })],
  ])('refuses with reason %s', (reason, value) => {
    const outcome = toJson(value);
    expect(outcome).toMatchObject({ ok: false, reason });
    // The author's own error text never ends up in the reason's message.
    expect(!outcome.ok && outcome.message).not.toContain('secret-token-123');
  });

  it('accepts exactly maxDepth levels and refuses one more', () => {
    expect(toJson(nest(64)).ok).toBe(true);
    expect(toJson(nest(65)).ok).toBe(false);
    expect(toJson(nest(10), { maxDepth: 10, maxBytes: 1 << 20 }).ok).toBe(true);
    expect(toJson(nest(11), { maxDepth: 10, maxBytes: 1 << 20 }).ok).toBe(false);
  });

  it('counts brackets inside strings as text, not nesting', () => {
    expect(exceedsDepth(JSON.stringify({ s: '['.repeat(1000) + '{'.repeat(1000) }), 2)).toBe(false);
    expect(exceedsDepth(JSON.stringify({ s: '"\\[[[' , a: [[[]]] }), 3)).toBe(true);
    expect(toJson({ s: '{'.repeat(5000) }).ok).toBe(true);
  });

  it('counts UTF-8 bytes, not UTF-16 code units, against maxBytes', () => {
    const limits = { maxDepth: 64, maxBytes: 30_000 };
    // 'é' is 2 bytes, '😀' 4 bytes (2 code units); quotes add 2.
    expect(toJson('é'.repeat(14_999), limits).ok).toBe(true);
    expect(toJson('é'.repeat(15_000), limits)).toMatchObject({ ok: false, reason: 'size' });
    expect(toJson('😀'.repeat(7_499), limits).ok).toBe(true);
    expect(toJson('😀'.repeat(7_500), limits)).toMatchObject({ ok: false, reason: 'size' });
  });

  it('keeps lone surrogates as JSON escapes that parse back to the same string', () => {
    const text = 'a\ud800b\udfffc';
    const outcome = toJson({ text });
    expect(outcome.ok && JSON.parse(outcome.json)).toEqual({ text });
  });

  it('follows JSON.stringify for values it can represent (Map/Set → {}, undefined omitted, NaN → null)', () => {
    const outcome = toJson({ m: new Map([[1, 2]]), s: new Set([1]), u: undefined, n: NaN, f: () => 1, d: new Date(0) });
    expect(outcome.ok && JSON.parse(outcome.json)).toEqual({ m: {}, s: {}, n: null, d: '1970-01-01T00:00:00.000Z' });
  });
});

describe('serializeEvent / eventJson', () => {
  it('serializes once: eventJson returns the string made at emit without walking the data again', () => {
    let calls = 0;
    const payload = { toJSON: () => (calls++, 'payload') };
    const { event } = emitter().emit('tool_executing', { toolCallId: 'c1', tool: 'x', args: payload });
    expect(calls).toBe(1);
    expect(hasEventJson(event)).toBe(true);
    expect(eventJson(event)).toBe(eventJson(event));
    expect(calls).toBe(1);
    expect(JSON.parse(eventJson(event)).data.args).toBe('payload');
  });

  it('an event built elsewhere is serialized on demand, and refused with a typed error when it is not JSON', () => {
    const { event } = emitter().emit('agent_thinking', { text: 'hi' });
    const copy = { ...event } as AgentEvent;
    expect(hasEventJson(copy)).toBe(false);
    expect(JSON.parse(eventJson(copy))).toEqual(JSON.parse(eventJson(event)));
    const poisoned = { ...event, data: { text: 'x', extra: 1n } } as unknown as AgentEvent;
    expect(() => eventJson(poisoned)).toThrow(ValidationError);
    expect(() => eventJson(poisoned)).toThrow(expect.objectContaining({ code: 'EVENT_NOT_SERIALIZABLE', details: { reason: 'bigint' } }));
    const huge = { ...event, data: { text: 'x'.repeat(2 << 20) } } as AgentEvent;
    expect(() => serializeEvent(huge)).toThrow(expect.objectContaining({ code: 'EVENT_TOO_LARGE', details: { reason: 'size' } }));
  });

  it('the data of an event counts from level 1: 64 levels of data are accepted, 65 refused', () => {
    const ok = emitter().emit('agent_started', { input: nest(63), metadata: {} }).event; // data → input (1) + 63
    expect(JSON.parse(eventJson(ok)).data.input).toEqual(nest(63));
    expect(() => emitter().emit('agent_started', { input: nest(64), metadata: {} })).toThrow(expect.objectContaining({ code: 'EVENT_NOT_SERIALIZABLE' }));
  });
});

describe('RunEmitter events: plain data, serialized once, the same text as JSON.stringify', () => {
  it('is the JSON.stringify text for any identity and data (property)', () => {
    const text = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(text, text, fc.jsonValue(), fc.string({ unit: 'binary' }), (userId, agent, args, thought) => {
        const run = new RunEmitter({ runId: generateRunId('t1'), threadId: 't1', userId, agent }, { validate: false });
        for (const event of [
          run.emit('tool_executing', { toolCallId: 'c', tool: 'x', args }).event,
          run.emit('agent_thinking', { text: thought }).event,
        ]) {
          expect(eventJson(event)).toBe(JSON.stringify(event));
        }
      }),
    );
  });

  it('looks like a plain event: its keys in wire order, nothing else copied or compared', () => {
    const { event } = emitter().emit('agent_thinking', { text: 'hi' });
    expect(Object.keys(event)).toEqual(['v', 'id', 'type', 'runId', 'threadId', 'userId', 'agent', 'seq', 'ts', 'data']);
    expect(Object.getOwnPropertySymbols(event)).toEqual([]);
    const copy = { ...event };
    expect(copy).toEqual(event);
    expect(hasEventJson(copy as AgentEvent)).toBe(false);
    expect(parseEvent(JSON.parse(eventJson(event)))).toEqual(event);
  });
});

describe('RunEmitter: a refused event uses no seq', () => {
  it('throws before the seq is consumed, then goes on gaplessly', () => {
    const run = emitter({ maxDepth: 64, maxBytes: 16 * 1024 });
    expect(run.emit('agent_started', { metadata: {} }).event.seq).toBe(1);
    expect(() => run.emit('agent_thinking', { text: 'x'.repeat(20_000) })).toThrow(expect.objectContaining({ code: 'EVENT_TOO_LARGE' }));
    expect(() => run.emit('tool_executing', { toolCallId: 'c', tool: 't', args: { n: 1n } })).toThrow(expect.objectContaining({ code: 'EVENT_NOT_SERIALIZABLE' }));
    expect(run.count).toBe(1);
    expect(run.emit('agent_thinking', { text: 'fits' }).event.seq).toBe(2);
    expect(() => run.emit('agent_exploded"' as 'agent_thinking', { text: 'x' })).toThrow(expect.objectContaining({ code: 'INVALID_EVENT', field: 'type' }));
    expect(run.count).toBe(2);
  });
});

describe('limits', () => {
  it('defaults to 64 levels and 1 MiB; validates what it is given', () => {
    expect(resolveLimits(undefined)).toEqual({ maxDepth: 64, maxBytes: 1024 * 1024 });
    expect(resolveLimits({ maxDepth: 8 })).toEqual({ maxDepth: 8, maxBytes: 1024 * 1024 });
    expect(resolveLimits({ maxEventBytes: 65_536 }, { maxDepth: 10, maxBytes: 1 })).toEqual({ maxDepth: 10, maxBytes: 65_536 });
    for (const bad of [{ maxEventBytes: 100 }, { maxEventBytes: 1.5e6 + 0.5 }, { maxDepth: 0 }, { maxDepth: Infinity }, { maxEventBytes: '1' }]) {
      expect(() => resolveLimits(bad as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    }
  });
});

describe('wire schema: JSON has no undefined', () => {
  it('tool args, tool results and run results may be absent after a JSON round trip', () => {
    const run = emitter();
    const events = [
      run.emit('agent_started', { metadata: {} }).event,
      run.emit('tool_executing', { toolCallId: 'c1', tool: 'x', args: undefined }).event,
      run.emit('tool_completed', { toolCallId: 'c1', tool: 'x', status: 'succeeded', result: undefined, durationMs: 1 }).event,
      run.emit('agent_completed', { status: 'succeeded', result: undefined, durationMs: 2 }).event,
    ];
    for (const event of events) {
      const wire = JSON.parse(eventJson(event));
      expect(wire.data).not.toHaveProperty('result');
      expect(wire.data).not.toHaveProperty('args');
      expect(parseEvent(wire).id).toBe(event.id);
    }
  });
});

describe('not-serializable marker', () => {
  it('is recognised, and nothing else is', () => {
    expect(isNotSerializableMarker(notSerializableMarker('bigint'))).toBe(true);
    expect(isNotSerializableMarker(JSON.parse(JSON.stringify(notSerializableMarker('cycle'))))).toBe(true);
    for (const other of [null, {}, { $agentwire: 'x', reason: 'bigint' }, { $agentwire: 'not_serializable' }, 'not_serializable']) {
      expect(isNotSerializableMarker(other)).toBe(false);
    }
  });
});
