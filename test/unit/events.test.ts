import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  LifecycleChecker,
  EVENT_TYPES,
  ValidationError,
  generateRunId,
  parseEvent,
  safeParseEvent,
  validateLifecycle,
  type AgentEvent,
} from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';

function runEvents(): AgentEvent[] {
  const runId = generateRunId('t1');
  const emitter = new RunEmitter({ runId, threadId: 't1', userId: 'alice', agent: 'a' });
  return [
    emitter.emit('agent_started', { metadata: {} }).event,
    emitter.emit('agent_thinking', { text: 'hm' }).event,
    emitter.emit('tool_executing', { toolCallId: 'c1', tool: 'x', args: {} }).event,
    emitter.emit('tool_completed', { toolCallId: 'c1', tool: 'x', status: 'succeeded', result: 1, durationMs: 1 }).event,
    emitter.emit('agent_completed', { status: 'succeeded', result: 'ok', durationMs: 2 }).event,
  ];
}

describe('parseEvent', () => {
  it('accepts every event an emitter produces, after a JSON round trip', () => {
    for (const event of runEvents()) expect(parseEvent(JSON.parse(JSON.stringify(event)))).toEqual(event);
  });

  it.each([
    ['data.toolCallId', (e: any) => ({ ...e, data: { ...e.data, toolCallId: 5 } }), 2],
    ['seq', (e: any) => ({ ...e, seq: 0 }), 0],
    ['v', (e: any) => ({ ...e, v: 2 }), 0],
    ['threadId', (e: any) => ({ ...e, threadId: 'has space' }), 0],
    ['data.status', (e: any) => ({ ...e, data: { ...e.data, status: 'maybe' } }), 4],
    ['type', (e: any) => ({ ...e, type: 'agent_exploded' }), 0],
    ['data.error', (e: any) => ({ ...e, data: { toolCallId: 'c', tool: 'x', status: 'failed', durationMs: 1 } }), 3],
  ])('names the failing field %s', (field, mutate, index) => {
    const event = runEvents()[index]!;
    let error: unknown;
    try {
      parseEvent(mutate(event));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe(field);
    expect((error as ValidationError).message).toContain(field);
  });

  /** What parseEvent threw for `value` (fails the test when it returned instead). */
  function refusal(value: unknown): ValidationError {
    let returned: unknown;
    try {
      returned = parseEvent(value);
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).code).toBe('INVALID_EVENT');
      expect(safeParseEvent(value)).toMatchObject({ success: false, error: { code: 'INVALID_EVENT', field: (error as ValidationError).field } });
      return error as ValidationError;
    }
    throw new Error(`parseEvent accepted ${JSON.stringify(value)} as ${JSON.stringify(returned)}`);
  }

  it('refuses arbitrary input with a ValidationError (never anything else, never accepting it)', () => {
    // Independent of the schema: no value without v: 1 and a known type is an event.
    const looksLikeEvent = (value: unknown) =>
      typeof value === 'object' && value !== null && (value as { v?: unknown }).v === 1 && (EVENT_TYPES as readonly unknown[]).includes((value as { type?: unknown }).type);
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withBigInt: true, withDate: true, withMap: true, withSet: true }), (value) => {
        fc.pre(!looksLikeEvent(value));
        refusal(value);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a valid event with any one envelope field replaced by a value of the wrong kind, naming the field', () => {
    const wrong: Record<string, fc.Arbitrary<unknown>> = {
      v: fc.oneof(fc.constant(0), fc.constant(2), fc.constant('1'), fc.constant(null)),
      id: fc.oneof(fc.constant(''), fc.integer(), fc.constant(null), fc.string({ minLength: 65, maxLength: 80 })),
      type: fc.oneof(fc.constant('agent_exploded'), fc.integer(), fc.constant(null)),
      runId: fc.oneof(fc.constant(''), fc.integer(), fc.constant(null), fc.constant({})),
      threadId: fc.oneof(fc.constant(''), fc.constant('has space'), fc.integer(), fc.constant(null)),
      userId: fc.oneof(fc.constant(''), fc.integer(), fc.constant(null), fc.string({ minLength: 257, maxLength: 300 })),
      agent: fc.oneof(fc.constant(''), fc.integer(), fc.constant(null)),
      seq: fc.oneof(fc.constant(0), fc.constant(-1), fc.constant(1.5), fc.constant('1'), fc.constant(null)),
      ts: fc.oneof(fc.constant(-1), fc.constant('now'), fc.constant(null)),
      data: fc.oneof(fc.constant(null), fc.constant([]), fc.integer(), fc.string()),
    };
    const events = runEvents();
    fc.assert(
      fc.property(fc.constantFrom(...events), fc.constantFrom(...Object.keys(wrong)), fc.boolean(), (event, field, drop) =>
        fc.assert(
          fc.property(wrong[field]!, (value) => {
            const mutated: Record<string, unknown> = JSON.parse(JSON.stringify(event));
            if (drop) delete mutated[field];
            else mutated[field] = value;
            expect(refusal(mutated).field?.split('.')[0]).toBe(field);
          }),
          { numRuns: 10 },
        ),
      ),
      { numRuns: 100 },
    );
    // And the untouched events still parse: the refusals above are about the field, not the event.
    for (const event of events) expect(parseEvent(JSON.parse(JSON.stringify(event)))).toEqual(event);
  });

  it('emitter refuses invalid data before consuming a seq', () => {
    const emitter = new RunEmitter({ runId: generateRunId('t'), threadId: 't', userId: 'u', agent: 'a' });
    emitter.emit('agent_started', { metadata: {} });
    expect(() => emitter.emit('agent_thinking', { text: 42 } as never)).toThrow(/data\.text/);
    expect(emitter.emit('agent_thinking', { text: 'ok' }).event.seq).toBe(2);
  });
});

describe('validateLifecycle', () => {
  it('accepts a complete run and interleaved runs', () => {
    const a = runEvents();
    const b = runEvents();
    const interleaved = a.flatMap((event, i) => [event, b[i]!]);
    expect(validateLifecycle(a)).toEqual({ ok: true, runs: 1 });
    expect(validateLifecycle(interleaved)).toEqual({ ok: true, runs: 2 });
  });

  const cases: Array<[string, (events: AgentEvent[]) => AgentEvent[]]> = [
    ['started_first', (e) => e.slice(1)],
    ['seq_gap', (e) => [e[0]!, e[2]!, e[3]!, e[4]!]],
    ['seq_gap', (e) => [e[0]!, e[1]!, e[1]!, e[2]!]],
    ['tool_not_open', (e) => [e[0]!, e[1]!, { ...e[3]!, seq: 3 } as AgentEvent]],
    ['tools_open_at_completion', (e) => [e[0]!, e[1]!, e[2]!, { ...e[4]!, seq: 4 } as AgentEvent]],
    ['after_completed', (e) => [...e, { ...e[1]!, seq: 6 } as AgentEvent]],
    ['incomplete', (e) => e.slice(0, 4)],
    ['run_identity', (e) => [e[0]!, { ...e[1]!, userId: 'mallory' } as AgentEvent]],
    ['started_once', (e) => [e[0]!, { ...e[0]!, seq: 2 } as AgentEvent]],
  ];
  it.each(cases)('reports %s', (rule, mutate) => {
    const result = validateLifecycle(mutate(runEvents()));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.violation.rule).toBe(rule);
  });

  it('accepts an in-progress stream when completion is not required', () => {
    expect(validateLifecycle(runEvents().slice(0, 3), { requireComplete: false }).ok).toBe(true);
  });

  it('finds any single reordering of a valid run (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 }), (i, j) => {
        fc.pre(i !== j);
        const events = runEvents();
        [events[i], events[j]] = [events[j]!, events[i]!];
        expect(validateLifecycle(events).ok).toBe(false);
      }),
    );
  });

  it('incremental checker reports the first violation as it happens', () => {
    const checker = new LifecycleChecker();
    const [started, thinking] = runEvents();
    expect(checker.push(started!)).toBeUndefined();
    expect(checker.push(started!)?.rule).toBe('seq_gap');
    expect(checker.push(thinking!)).toBeUndefined();
    expect(checker.firstViolation?.rule).toBe('seq_gap');
  });
});
