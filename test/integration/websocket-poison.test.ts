/**
 * Events that JSON cannot represent (BigInt, cycles, 6,000-deep nesting, over a MiB, a throwing
 * `toJSON`), pushed straight into the WebSocket gateway's log (bypassing the emitter) and through
 * agent runs, next to a bystander user on the same gateway. The per-tick flush must never throw:
 * the process stays up, the poisoned event is skipped for everyone and counted, every other event
 * (the bystander's and the poisoner's own) arrives in order.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BaseAgent, RunEmitter, ValidationError, defineTool, generateRunId, validateLifecycle, type AgentEvent, type BaseAgentOptions } from '../../src/index.js';
import { DEFAULT_JSON_LIMITS, toJson } from '../../src/events/json.js';
import type { GatewayErrorContext } from '../../src/transport/websocket/index.js';
import { RawClient, follow, startGateway, until } from '../helpers/ws-harness.js';

type Harness = Awaited<ReturnType<typeof startGateway>>;

/** Nesting `depth` levels deep, alternating arrays and objects. */
function deep(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { d: value };
  return value;
}
function cyclic(inner: unknown): unknown {
  const node: Record<string, unknown> = { inner };
  node.self = { back: node };
  return node;
}
const HUGE = 'x'.repeat(DEFAULT_JSON_LIMITS.maxBytes + 10);

/** Values JSON cannot represent, and plenty it can (fc.anything without BigInt is mostly JSON). */
const poison: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({
    withBigInt: true,
    withBoxedValues: true,
    withMap: true,
    withSet: true,
    withDate: true,
    withNullPrototype: true,
    withObjectString: true,
    withSparseArray: true,
    withTypedArray: true,
    withUnicodeString: true,
  }),
  fc.bigInt(),
  fc.anything().map(cyclic),
  fc.integer({ min: 65, max: 6_500 }).map(deep),
  fc.constant(HUGE),
  fc.constant({ toJSON: () => { throw new Error('toJSON refuses'); } }),
  fc.constant(Object.defineProperty({}, 'boom', { enumerable: true, get: () => { throw new Error('getter refuses'); } })),
);

const isJson = (event: AgentEvent): boolean => toJson(event, DEFAULT_JSON_LIMITS, 1).ok;
const ids = (events: readonly AgentEvent[]): string[] => events.map((event) => event.id);

let harness: Harness;
const reported: Array<{ error: unknown; context: GatewayErrorContext }> = [];
beforeAll(async () => {
  harness = await startGateway({
    onError: (error, context) => {
      reported.push({ error, context });
      if (reported.length % 7 === 0) throw new Error('a throwing onError hook must not matter either');
    },
  });
});
afterAll(() => harness.stop());

describe('events that are not JSON, straight into the gateway log (property)', () => {
  it('never crash the flush: skipped for every connection and counted; the bystander and the poisoner get everything else, in order', async () => {
    const { url, transport, gateway } = harness;
    const bystander = follow(url, 'bystander', 'b-thread');
    const poisoner = await RawClient.open(url, 'poisoner');
    const second = await RawClient.open(url, 'poisoner'); // the poisoner's second connection: the event is skipped there too
    poisoner.subscribe('p-thread');
    second.subscribe('p-thread');
    await until(() => bystander.client.status === 'open' && poisoner.ofType('subscribed').length === 1 && second.ofType('subscribed').length === 1, 'subscribed');

    let skippedExpected = 0;
    let refusedExpected = 0;
    const before = gateway.stats().unserializableEvents;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(poison, fc.boolean()), { minLength: 1, maxLength: 6 }), async (values) => {
        const p = new RunEmitter({ runId: generateRunId('p-thread'), threadId: 'p-thread', userId: 'poisoner', agent: 'a' });
        const b = new RunEmitter({ runId: generateRunId('b-thread'), threadId: 'b-thread', userId: 'bystander', agent: 'a' });
        // All in one tick: the poisoned events share a flush (and batches) with everything else.
        transport.append(p.emit('agent_started', { metadata: {} }).event);
        transport.append(b.emit('agent_started', { metadata: {} }).event);
        const refusals: Array<Promise<unknown>> = [];
        for (const [value, viaSend] of values) {
          const clean = p.emit('agent_thinking', { text: 'clean' }).event;
          const poisoned = { ...p.emit('agent_thinking', { text: 'poisoned' }).event, data: { text: 'poisoned', value } } as AgentEvent;
          transport.append(clean);
          transport.append(b.emit('agent_thinking', { text: 'bystander' }).event);
          if (viaSend) {
            // Through the gateway as a Transport: refused up front (typed, not retryable), never stored.
            const json = isJson(poisoned);
            if (!json) refusedExpected++;
            refusals.push(
              gateway.send(poisoned).then(
                () => expect(json).toBe(true),
                (error: unknown) => {
                  expect(json).toBe(false);
                  expect(error).toBeInstanceOf(ValidationError);
                  expect(['EVENT_NOT_SERIALIZABLE', 'EVENT_TOO_LARGE']).toContain((error as ValidationError).code);
                  expect((error as ValidationError).retryable).toBe(false);
                },
              ),
            );
          } else {
            // Straight into the log, as an integrator's own code or a buggy log could.
            if (!isJson(poisoned)) skippedExpected++;
            transport.append(poisoned);
          }
        }
        transport.append(p.emit('agent_completed', { status: 'succeeded', result: null, durationMs: 1 }).event);
        transport.append(b.emit('agent_completed', { status: 'succeeded', result: null, durationMs: 1 }).event);
        await Promise.all(refusals);
        // The receiving clients are the barrier: each got its run's terminal event.
        const runId = p.identity.runId;
        const done = (client: RawClient): boolean => client.events().some((e) => e.runId === runId && e.type === 'agent_completed');
        await until(() => done(poisoner) && done(second) && bystander.events.some((e) => e.runId === b.identity.runId && e.type === 'agent_completed'), 'both runs received');
      }),
      { numRuns: 120 },
    );

    // What each client received is exactly what it must: every JSON event of its thread, in log order.
    const poisonerExpected = transport.read('p-thread', 'poisoner').filter(isJson);
    expect(ids(poisoner.events())).toEqual(ids(poisonerExpected));
    expect(ids(second.events())).toEqual(ids(poisonerExpected));
    expect(ids(bystander.events)).toEqual(ids(transport.read('b-thread', 'bystander')));
    expect(validateLifecycle(bystander.events)).toMatchObject({ ok: true });
    expect(bystander.errors).toEqual([]);
    expect(bystander.client.stats.reconnects).toBe(0);
    // Nobody was disconnected, the poisoned events were counted once each (not once per connection) and reported.
    expect(poisoner.closed).toBeUndefined();
    expect(second.closed).toBeUndefined();
    expect(skippedExpected).toBeGreaterThan(10);
    expect(refusedExpected).toBeGreaterThan(10);
    const stats = gateway.stats();
    expect(stats.unserializableEvents - before).toBe(skippedExpected + refusedExpected);
    expect(stats).toMatchObject({ internalErrors: 0, closedInternalError: 0, connections: 3 });
    const serializeReports = reported.filter((r) => r.context.stage === 'serialize');
    expect(serializeReports).toHaveLength(skippedExpected);
    expect(serializeReports.every((r) => r.error instanceof ValidationError && r.context.userId === 'poisoner' && r.context.threadId === 'p-thread')).toBe(true);

    // A replay of the poisoned thread skips them too, and `replayed` counts what follows.
    const late = await RawClient.open(url, 'poisoner');
    late.subscribe('p-thread');
    await late.waitFor(() => late.events().length === poisonerExpected.length, 'replay');
    expect(late.ofType('subscribed')[0]!.replayed).toBe(poisonerExpected.length);
    expect(ids(late.events())).toEqual(ids(poisonerExpected));
    expect(reported.filter((r) => r.context.stage === 'serialize')).toHaveLength(skippedExpected); // known ones are not reported again
    expect(await gateway.health()).toMatchObject({ ok: true });

    bystander.client.close();
    for (const client of [poisoner, second, late]) client.close();
  });
});

class PoisonAgent extends BaseAgent<unknown, unknown> {
  constructor(options: BaseAgentOptions = {}) {
    super({ name: 'poison', ...options });
    this.addTool(
      defineTool({ name: 'give', description: 'returns the value it is given', parameters: z.object({ value: z.any() }), execute: ({ value }) => value }),
    );
  }

  protected async execute(input: unknown): Promise<unknown> {
    await this.think('before the tool');
    const result = await this.callTool('give', { value: input });
    await this.think('after the tool');
    return result;
  }
}

describe('events that are not JSON, through agent runs (property)', () => {
  it('cost only those events: the process serves on, a bystander running at the same time gets all of its events in order', async () => {
    const { url, transport, gateway, bridge, agent } = harness;
    const poisonAgent = new PoisonAgent({ bridge });
    const bystander = follow(url, 'bystander2', 'b2-thread');
    const poisoner = follow(url, 'poisoner2', 'p2-thread', { checkLifecycle: false });
    await until(() => bystander.client.status === 'open' && poisoner.client.status === 'open', 'subscribed');
    const before = gateway.stats().unserializableEvents;
    let refused = 0;

    await fc.assert(
      fc.asyncProperty(poison, async (value) => {
        const [poisoned, clean] = await Promise.all([
          // Whether the run refuses the input or the events are refused on delivery, it settles.
          poisonAgent.run(value, { userId: 'poisoner2', threadId: 'p2-thread' }).catch((error: unknown) => error),
          agent.run([{ think: 'a' }, { tool: 'echo', args: { text: 'b' } }, { think: 'c' }], { userId: 'bystander2', threadId: 'b2-thread' }),
        ]);
        expect(clean).toMatchObject({ status: 'succeeded', deliveryErrors: [] });
        if (!(poisoned instanceof Error)) {
          const result = poisoned as { deliveryErrors: Array<{ causeCode?: string }> };
          for (const error of result.deliveryErrors) expect(['EVENT_NOT_SERIALIZABLE', 'EVENT_TOO_LARGE']).toContain(error.causeCode);
          refused += result.deliveryErrors.length;
        }
      }),
      { numRuns: 40 },
    );
    const lastOf = (threadId: string, userId: string): string => transport.read(threadId, userId).at(-1)!.id;
    await until(
      () => bystander.events.at(-1)?.id === lastOf('b2-thread', 'bystander2') && poisoner.events.at(-1)?.id === lastOf('p2-thread', 'poisoner2'),
      'every stored event received',
    );
    expect(ids(bystander.events)).toEqual(ids(transport.read('b2-thread', 'bystander2')));
    expect(validateLifecycle(bystander.events)).toEqual({ ok: true, runs: 40 });
    expect(bystander.errors).toEqual([]);
    // The poisoner's client got every event that was stored and is JSON, in order.
    expect(ids(poisoner.events)).toEqual(ids(transport.read('p2-thread', 'poisoner2').filter(isJson)));
    expect(refused).toBeGreaterThan(0);
    // Every event refused on delivery is counted by the gateway (plus any that reached the log and were skipped).
    const skipped = transport.read('p2-thread', 'poisoner2').filter((event) => !isJson(event)).length;
    expect(gateway.stats().unserializableEvents - before).toBe(refused + skipped);
    expect(gateway.stats()).toMatchObject({ internalErrors: 0, closedInternalError: 0 });
    expect(bystander.client.stats.reconnects + poisoner.client.stats.reconnects).toBe(0);
    bystander.client.close();
    poisoner.client.close();
  });
});
