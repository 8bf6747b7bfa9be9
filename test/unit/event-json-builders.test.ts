import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { answerDeltaJson, executingJson, jsonString, succeededJson, thinkingJson } from '../../src/agent/event-json.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { eventJson } from '../../src/events/json.js';
import { generateRunId } from '../../src/index.js';

/** Values a tool may take or return: JSON, and what JSON.stringify treats specially. */
const anyValue = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(undefined, null, NaN, Infinity, -0, () => 1, Symbol('s'), new Date(0), { toJSON: (key: string) => `key:${key}` }),
  fc.array(fc.constantFrom(undefined, () => 1, NaN)),
  fc.dictionary(fc.string(), fc.constantFrom(undefined, 1, 'x')),
);
const text = fc.string({ unit: 'binary', maxLength: 80 });

/** `depth` levels of nested arrays. */
function nest(depth: number): unknown {
  let value: unknown = 0;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe('data JSON of the agent\'s own events: exactly JSON.stringify(data), or undefined (generic path)', () => {
  it('jsonString is JSON.stringify of any string', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 100 }), (s) => {
        expect(jsonString(s)).toBe(JSON.stringify(s));
      }),
    );
    for (const s of ['', '"', '\\', '\n', '\u0000', '\ud800', '\udc00x', '😀', 'é', '\u2028']) expect(jsonString(s)).toBe(JSON.stringify(s));
  });

  it('think and streamText data', () => {
    fc.assert(
      fc.property(text, fc.option(fc.oneof(fc.nat(), fc.double()), { nil: undefined }), text, (t, step, messageId) => {
        const thinking = thinkingJson(t, step);
        if (thinking !== undefined) expect(thinking).toBe(JSON.stringify(step === undefined ? { text: t } : { text: t, step }));
        const delta = answerDeltaJson(t, step, messageId);
        const data = step === undefined ? { text: t, channel: 'answer', messageId } : { text: t, step, channel: 'answer', messageId };
        if (delta !== undefined) expect(delta).toBe(JSON.stringify(data));
        if (Number.isFinite(step ?? 0)) expect(thinking).toBeDefined();
      }),
    );
    expect(thinkingJson(5, undefined)).toBeUndefined();
    expect(thinkingJson('x', NaN)).toBeUndefined();
    expect(answerDeltaJson('x', undefined, 7)).toBeUndefined();
  });

  it('tool_executing and tool_completed data', () => {
    fc.assert(
      fc.property(text, text, anyValue, fc.double({ min: 0, noNaN: true }), (toolCallId, tool, value, durationMs) => {
        const executing = executingJson(toolCallId, tool, value, 64);
        if (executing !== undefined) expect(executing).toBe(JSON.stringify({ toolCallId, tool, args: value }));
        const succeeded = succeededJson(toolCallId, tool, value, durationMs, 64);
        if (succeeded !== undefined) expect(succeeded).toBe(JSON.stringify({ toolCallId, tool, status: 'succeeded', result: value, durationMs }));
      }),
    );
    // A toJSON at the top is called with its key: the generic path does that.
    expect(executingJson('c', 't', { toJSON: (key: string) => key }, 64)).toBeUndefined();
    expect(executingJson('c', 't', 1n, 64)).toBeUndefined();
    expect(succeededJson('c', 't', 1, NaN, 64)).toBeUndefined();
    expect(executingJson('c', 't', undefined, 64)).toBe('{"toolCallId":"c","tool":"t"}');
  });

  it('nested values count from level 2: 63 more levels are accepted under a limit of 64, 64 are not', () => {
    expect(executingJson('c', 't', nest(63), 64)).toBe(JSON.stringify({ toolCallId: 'c', tool: 't', args: nest(63) }));
    expect(executingJson('c', 't', nest(64), 64)).toBeUndefined();
    expect(succeededJson('c', 't', nest(64), 1, 64)).toBeUndefined();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(executingJson('c', 't', cyclic, 64)).toBeUndefined();
  });

  it('an event built with its data JSON is the JSON.stringify text of the event (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), text, fc.jsonValue(), (userId, thought, args) => {
        const run = new RunEmitter({ runId: generateRunId('t1'), threadId: 't1', userId, agent: 'a' }, { validate: false });
        const settle = () => undefined;
        const thinking = run.prepare('agent_thinking', { text: thought }, thinkingJson(thought, undefined));
        run.dispatch(thinking, settle);
        const executing = run.prepare('tool_executing', { toolCallId: 'c', tool: 'x', args }, executingJson('c', 'x', args, 64));
        for (const event of [thinking, executing]) expect(eventJson(event)).toBe(JSON.stringify(event));
      }),
    );
  });
});
