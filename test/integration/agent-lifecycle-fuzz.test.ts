/**
 * Hostile values (fast-check) as run input and metadata, thinking text, tool arguments, tool
 * results and run output, through a real BaseAgent → AgentBridge → MemoryTransport, while a
 * bystander user runs at the same time. Judged by what subscribers of the transport received:
 * the process stays up, the poisoned run's events parse after the JSON round trip a client makes
 * and keep the lifecycle grammar, with the documented outcome for each value, and the bystander
 * gets every one of its events, in order.
 */
import fc from 'fast-check';
import { hostileValue } from '../helpers/hostile-values.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  AgentBridge,
  BaseAgent,
  DeliveryError,
  MemoryTransport,
  ValidationError,
  defineTool,
  generateRunId,
  parseEvent,
  validateLifecycle,
  type AgentEvent,
  type RunContext,
} from '../../src/index.js';
import { eventJson, isNotSerializableMarker } from '../../src/events/json.js';
import { toJson } from '../../src/events/json.js';

interface Scenario {
  input: unknown;
  metadata: Record<string, unknown>;
  text: unknown;
  args: unknown;
  result: unknown;
  output: unknown;
}

const scenarios = new Map<string, Scenario>();
const scenarioOf = (ctx: RunContext) => scenarios.get(ctx.runId)!;

/** Thinks, calls one tool, returns: each with the scenario's value. */
class Poisoned extends BaseAgent<unknown, unknown> {
  constructor(bridge: AgentBridge) {
    super({
      name: 'poisoned',
      bridge,
      tools: [defineTool({ name: 'take', description: 'returns the scenario result', parameters: z.any(), execute: (_args, ctx) => scenarioOf(ctx).result })],
    });
  }
  protected async execute(_input: unknown, ctx: RunContext): Promise<unknown> {
    const { text, args, output } = scenarioOf(ctx);
    await this.think(text as string).catch(() => undefined);
    await this.callTool('take', args).catch(() => undefined);
    return output;
  }
}

/** A well-behaved run of the same agent class shape: three thoughts and a tool call. */
class Bystander extends BaseAgent<string, string> {
  constructor(bridge: AgentBridge) {
    super({
      name: 'bystander',
      bridge,
      tools: [defineTool({ name: 'upper', description: 'upper-cases', parameters: z.object({ s: z.string() }), execute: async ({ s }) => s.toUpperCase() })],
    });
  }
  protected async execute(input: string): Promise<string> {
    for (let i = 0; i < 3; i++) await this.think(`${input} ${i}`);
    return this.callTool<string>('upper', { s: input });
  }
}
const BYSTANDER_TYPES = ['agent_started', 'agent_thinking', 'agent_thinking', 'agent_thinking', 'tool_executing', 'tool_completed', 'agent_completed'];

function deep(levels: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { d: value };
  return value;
}

function wide(keys: number): Record<string, number> {
  const value: Record<string, number> = {};
  for (let i = 0; i < keys; i++) value[`k${i}`] = i;
  return value;
}

const anything = hostileValue({ stringUnit: 'binary' }); // lone surrogates and every other code unit

const cyclic = anything.map((v) => {
  const value: { v: unknown; list: unknown[] } = { v, list: [] };
  value.list.push(value);
  return value;
});

const traps = fc.constantFrom<() => unknown>(
  () => ({
    toJSON() {
      throw new Error('toJSON secret');
    },
  }),
  () =>
    Object.defineProperty({}, 'a', {
      enumerable: true,
      get() {
        throw new Error('getter secret');
      },
    }),
  () =>
    new Proxy(
      {},
      {
        ownKeys() {
          throw new TypeError('proxy secret');
        },
      },
    ),
  () => ({ toJSON: () => 10n }),
  () => () => 'a function',
  () => Symbol('s'),
  () => undefined,
);

const hostile: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: anything },
  { weight: 1, arbitrary: cyclic },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 10_000 }).map(deep) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map(wide) },
  // Either well under 1 MiB or over it: the outcome does not depend on the envelope's few hundred bytes.
  { weight: 1, arbitrary: fc.constantFrom(300_000, 1_100_000).map((n) => 'é'.repeat(n / 2)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
  { weight: 1, arbitrary: traps.map((make) => make()) },
);

const fine: Scenario = { input: 'in', metadata: {}, text: 'thinking', args: { a: 1 }, result: 'r', output: 'out' };
const loop: Record<string, unknown> = {};
loop.self = loop;
const outcomeExamples: Scenario[] = [
  fine,
  { ...fine, input: 10n },
  { ...fine, args: 10n },
  { ...fine, args: loop },
  { ...fine, args: deep(10_000) },
  { ...fine, args: 'é'.repeat(550_000) },
  { ...fine, result: 10n },
  { ...fine, output: 10n },
];

const scenario: fc.Arbitrary<Scenario> = fc.record({
  input: hostile,
  metadata: fc.oneof(fc.constant({}), fc.dictionary(fc.string({ maxLength: 5 }), hostile, { maxKeys: 2 })),
  text: fc.oneof(fc.string({ unit: 'binary', maxLength: 500 }), hostile),
  args: hostile,
  result: hostile,
  output: hostile,
});

/** Whether `value` can be the data field `key` of an event (its data sits at level 1, like this object's). */
const fits = (key: string, value: unknown) => toJson({ [key]: value }).ok;

const wire = (events: AgentEvent[]) => events.map((event) => parseEvent(JSON.parse(eventJson(event))));

const crashes: unknown[] = [];
const onCrash = (error: unknown) => crashes.push(error);
beforeAll(() => {
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
});
afterAll(() => {
  process.off('uncaughtException', onCrash);
  process.off('unhandledRejection', onCrash);
});

describe('hostile values through BaseAgent → AgentBridge → MemoryTransport, with a bystander', () => {
  const transport = new MemoryTransport({ maxTotalEvents: 1_000_000 });
  const bridge = new AgentBridge({ transport });
  const poisoned = new Poisoned(bridge);
  const bystander = new Bystander(bridge);
  let sample = 0;

  function follow(userId: string, threadId: string): AgentEvent[] {
    const received: AgentEvent[] = [];
    transport.subscribeSync({ userId, threadId }, { onEntries: (entries) => received.push(...entries.map((e) => e.event)) });
    return received;
  }

  it('the poisoned run keeps its lifecycle with the documented outcomes; the bystander gets everything in order', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        const n = ++sample;
        const threadId = `poison-${n}`;
        const runId = generateRunId(threadId);
        scenarios.set(runId, sc);
        const malloryGot = follow('mallory', threadId);
        const bobGot = follow('bob', `bob-${n}`);
        const [outcome, bob] = await Promise.all([
          poisoned.run(sc.input, { userId: 'mallory', threadId, runId, metadata: sc.metadata }).catch((error: unknown) => error),
          bystander.run(`hello ${n}`, { userId: 'bob', threadId: `bob-${n}` }),
        ]);
        scenarios.delete(runId);

        // The bystander: complete, in order, intact.
        expect(bob).toMatchObject({ status: 'succeeded', output: `HELLO ${n}` });
        const bobWire = wire(bobGot);
        expect(bobWire.map((e) => e.type)).toEqual(BYSTANDER_TYPES);
        expect(bobWire.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(validateLifecycle(bobWire)).toEqual({ ok: true, runs: 1 });

        // The poisoned run: refused before any event, or a valid lifecycle.
        if (outcome instanceof Error) {
          expect(outcome).toBeInstanceOf(ValidationError);
          expect(outcome).toMatchObject({ code: 'INPUT_NOT_SERIALIZABLE' });
          expect(fits('input', sc.input) && fits('metadata', sc.metadata)).toBe(false);
          expect(malloryGot).toEqual([]);
          expect(bridge.registry.has(runId)).toBe(false);
          seen.add('input refused');
          return;
        }
        const events = wire(malloryGot);
        expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
        expect(events.map((e) => e.seq)).toEqual(events.map((_e, i) => i + 1));
        expect((outcome as { events: number }).events).toBe(events.length);
        const byType = (type: AgentEvent['type']) => events.filter((e) => e.type === type);

        const thought = typeof sc.text === 'string' && fits('text', sc.text);
        expect(byType('agent_thinking')).toHaveLength(thought ? 1 : 0);

        const executing = byType('tool_executing')[0]!;
        const args = executing.type === 'tool_executing' ? executing.data.args : undefined;
        if (fits('args', sc.args)) expect(isNotSerializableMarker(args)).toBe(false);
        else {
          expect(args).toEqual({ $agentwire: 'not_serializable', reason: expect.any(String) });
          seen.add(`args ${(args as { reason: string }).reason}`);
        }

        const completed = byType('tool_completed')[0]!;
        const toolData = completed.type === 'tool_completed' ? completed.data : undefined;
        if (fits('result', sc.result)) expect(toolData?.status).toBe('succeeded');
        else {
          expect(toolData).toMatchObject({ status: 'failed', error: { code: 'RESULT_NOT_SERIALIZABLE' } });
          seen.add('result refused');
        }

        const done = events.at(-1)!;
        const runData = done.type === 'agent_completed' ? done.data : undefined;
        if (fits('result', sc.output)) expect(runData?.status).toBe('succeeded');
        else {
          expect(runData).toMatchObject({ status: 'failed', error: { code: 'OUTPUT_NOT_SERIALIZABLE' } });
          seen.add('output refused');
        }
        if (runData?.status === 'succeeded') seen.add('succeeded');
        // Nothing the agent's code threw leaked into an event.
        expect(events.map(eventJson).join('')).not.toMatch(/toJSON secret|getter secret|proxy secret/);
      }),
      // One hand-picked scenario per outcome runs first, so that the check below cannot fail by
      // chance (one outcome is ~1 in 24 of the random runs; examples count in numRuns).
      { numRuns: 150, examples: outcomeExamples.map((example) => [example]) },
    );
    // The property was not vacuous: every outcome occurred.
    for (const outcome of ['input refused', 'args bigint', 'args cycle', 'args depth', 'args size', 'result refused', 'output refused', 'succeeded']) {
      expect(seen).toContain(outcome);
    }
    expect(crashes).toEqual([]);
    expect(bridge.state).toBe('active');
  });

  it('think() with any value never throws synchronously: it resolves, or rejects with a ValidationError', async () => {
    const outcomes: Array<string> = [];
    let text: unknown;
    class Thinker extends BaseAgent<unknown, void> {
      protected async execute(): Promise<void> {
        let promise: Promise<void>;
        try {
          promise = this.think(text as string);
        } catch {
          outcomes.push('threw');
          return;
        }
        outcomes.push(await promise.then(() => 'ok', (error: unknown) => (error instanceof ValidationError ? error.code : 'other')));
      }
    }
    const thinker = new Thinker({ bridge });
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary' }), hostile), async (value) => {
        text = value;
        const threadId = `think-${++sample}`;
        const got = follow('mallory', threadId);
        await thinker.run(null, { userId: 'mallory', threadId });
        const expected = typeof text !== 'string' ? 'INVALID_EVENT' : fits('text', text) ? 'ok' : 'EVENT_TOO_LARGE';
        expect(outcomes.at(-1)).toBe(expected);
        expect(validateLifecycle(wire(got))).toEqual({ ok: true, runs: 1 });
      }),
      { numRuns: 100 },
    );
    expect(outcomes).not.toContain('threw');
    expect(outcomes).not.toContain('other');
  });

  it('integrator-built events with any data: delivered or refused with a DeliveryError; a bystander is not affected', async () => {
    const before = bridge.metrics().failed;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(hostile, async (args) => {
        const n = ++sample;
        const threadId = `sent-${n}`;
        const got = follow('mallory', threadId);
        const bobGot = follow('bob', `bob-${n}`);
        const bob = bystander.run(`hi ${n}`, { userId: 'bob', threadId: `bob-${n}` });
        const base = { v: 1 as const, runId: generateRunId(threadId), threadId, userId: 'mallory', agent: 'integrator', ts: Date.now() };
        await bridge.send({ ...base, id: `${n}-1`, seq: 1, type: 'agent_started', data: { metadata: {} } });
        const sent = await bridge
          .send({ ...base, id: `${n}-2`, seq: 2, type: 'tool_executing', data: { toolCallId: 'c', tool: 't', args } })
          .catch((error: unknown) => error);
        if (sent instanceof Error) {
          refused++;
          expect(sent).toBeInstanceOf(DeliveryError);
          expect(['EVENT_NOT_SERIALIZABLE', 'EVENT_TOO_LARGE']).toContain((sent as DeliveryError).causeCode);
          expect(fits('args', args)).toBe(false);
        } else {
          expect(fits('args', args)).toBe(true);
          await bridge.send({ ...base, id: `${n}-3`, seq: 3, type: 'tool_completed', data: { toolCallId: 'c', tool: 't', status: 'succeeded', result: null, durationMs: 1 } });
        }
        const seq = sent instanceof Error ? 2 : 4;
        await bridge.send({ ...base, id: `${n}-4`, seq, type: 'agent_completed', data: { status: 'succeeded', result: null, durationMs: 1 } });
        await expect(bob).resolves.toMatchObject({ status: 'succeeded' });
        expect(wire(bobGot).map((e) => e.type)).toEqual(BYSTANDER_TYPES);
        // What was delivered is a valid run: the refused event left no hole a client could see.
        const events = wire(got);
        expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
        expect(events.map((e) => e.seq)).toEqual(sent instanceof Error ? [1, 2] : [1, 2, 3, 4]);
      }),
      { numRuns: 100 },
    );
    expect(bridge.metrics().failed - before).toBe(refused);
    expect(bridge.state).toBe('active');
    expect(crashes).toEqual([]);
  });

  afterAll(() => bridge.close());
});
