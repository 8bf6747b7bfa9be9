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
import {
  BaseAgent,
  ValidationError,
  defineTool,
  generateRunId,
  validateLifecycle,
  type AgentEvent,
  type BaseAgentOptions,
  type EventLog,
  type LogEntry,
  type LogListener,
  type SubscribeRequest,
  type SubscribeResult,
  type Transport,
  type MemoryTransport,
} from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
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

/**
 * A log of one's own that keeps whatever it is given, as it is: no JSON check and no
 * `LogEntry.json` (it breaks the built-in logs' contract). What the gateway's flush must survive.
 */
class PassThroughLog implements Transport, EventLog {
  private readonly threads = new Map<string, { entries: LogEntry[]; listeners: Set<{ userId: string; listener: LogListener }> }>();

  send(event: AgentEvent): Promise<void> {
    this.append(event);
    return Promise.resolve();
  }

  append(event: AgentEvent): void {
    const thread = this.thread(event.threadId);
    const entry = { cursor: `pt:${thread.entries.length + 1}`, event } as unknown as LogEntry;
    thread.entries.push(entry);
    for (const { userId, listener } of thread.listeners) if (userId === event.userId) listener.onEntries([entry]);
  }

  read(threadId: string, userId: string): AgentEvent[] {
    return this.thread(threadId).entries.map((entry) => entry.event).filter((event) => event.userId === userId);
  }

  subscribe(request: SubscribeRequest, listener: LogListener): Promise<SubscribeResult> {
    const thread = this.thread(request.threadId);
    const subscriber = { userId: request.userId, listener };
    thread.listeners.add(subscriber);
    const from = request.after === undefined ? 0 : Number(request.after.slice(3));
    return Promise.resolve({
      status: 'subscribed',
      replay: thread.entries.slice(from).filter((entry) => entry.event.userId === request.userId),
      cursor: thread.entries.at(-1)?.cursor ?? null,
      subscription: { close: () => thread.listeners.delete(subscriber) },
    });
  }

  ownerOf(): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private thread(threadId: string) {
    let thread = this.threads.get(threadId);
    if (!thread) this.threads.set(threadId, (thread = { entries: [], listeners: new Set() }));
    return thread;
  }
}

interface Setup {
  harness: Harness;
  /** Where events go straight in (bypassing the emitter and the gateway). */
  log: { append(event: AgentEvent): unknown; read(threadId: string, userId: string): AgentEvent[] };
  reported: Array<{ error: unknown; context: GatewayErrorContext }>;
}

async function setup(log?: PassThroughLog): Promise<Setup> {
  const reported: Setup['reported'] = [];
  const harness = await startGateway({
    ...(log && { transport: log as unknown as MemoryTransport }),
    onError: (error, context) => {
      reported.push({ error, context });
      if (reported.length % 7 === 0) throw new Error('a throwing onError hook must not matter either');
    },
  });
  return { harness, log: log ?? harness.transport, reported };
}

let memory: Setup;
let own: Setup;
beforeAll(async () => {
  memory = await setup();
  own = await setup(new PassThroughLog());
});
afterAll(async () => {
  await memory.harness.stop();
  await own.harness.stop();
});

describe('events that are not JSON, pushed straight in (property)', () => {
  const cases = [
    ['the built-in memory log (refuses them at append: nothing to skip)', () => memory, true],
    ['a log of your own that stores them as they are (the flush skips them)', () => own, false],
  ] as const;
  it.each(cases)('%s: never crash the flush; the bystander and the poisoner get everything else, in order; counted once', async (_name, which, logRefuses) => {
    const { harness, log, reported } = which();
    const { url, gateway } = harness;
    const bystander = follow(url, 'bystander', 'b-thread');
    const poisoner = await RawClient.open(url, 'poisoner');
    const second = await RawClient.open(url, 'poisoner'); // the poisoner's second connection: the event is skipped there too
    poisoner.subscribe('p-thread');
    second.subscribe('p-thread');
    await until(() => bystander.client.status === 'open' && poisoner.ofType('subscribed').length === 1 && second.ofType('subscribed').length === 1, 'subscribed');

    let skippedExpected = 0;
    let refusedByGateway = 0;
    let refusedByLog = 0;
    const before = gateway.stats().unserializableEvents;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(poison, fc.boolean()), { minLength: 1, maxLength: 6 }), async (values) => {
        const p = new RunEmitter({ runId: generateRunId('p-thread'), threadId: 'p-thread', userId: 'poisoner', agent: 'a' });
        const b = new RunEmitter({ runId: generateRunId('b-thread'), threadId: 'b-thread', userId: 'bystander', agent: 'a' });
        // All in one tick: the poisoned events share a flush (and batches) with everything else.
        log.append(p.emit('agent_started', { metadata: {} }).event);
        log.append(b.emit('agent_started', { metadata: {} }).event);
        const refusals: Array<Promise<unknown>> = [];
        for (const [value, viaSend] of values) {
          const clean = p.emit('agent_thinking', { text: 'clean' }).event;
          const poisoned = { ...p.emit('agent_thinking', { text: 'poisoned' }).event, data: { text: 'poisoned', value } } as AgentEvent;
          const json = isJson(poisoned);
          log.append(clean);
          log.append(b.emit('agent_thinking', { text: 'bystander' }).event);
          if (viaSend) {
            // Through the gateway as a Transport: refused up front (typed, not retryable), never stored.
            if (!json) refusedByGateway++;
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
          } else if (logRefuses) {
            // The built-in log refuses it alone, synchronously, with a typed error.
            let refused: unknown;
            try {
              log.append(poisoned);
            } catch (error) {
              refused = error;
            }
            if (json) expect(refused).toBeUndefined();
            else {
              refusedByLog++;
              expect(refused).toMatchObject({ code: 'TRANSPORT_REFUSED', retryable: false });
            }
          } else {
            // Stored as it is: the gateway meets it in its flush.
            if (!json) skippedExpected++;
            log.append(poisoned);
          }
        }
        log.append(p.emit('agent_completed', { status: 'succeeded', result: null, durationMs: 1 }).event);
        log.append(b.emit('agent_completed', { status: 'succeeded', result: null, durationMs: 1 }).event);
        await Promise.all(refusals);
        // The receiving clients are the barrier: each got its run's terminal event.
        const runId = p.identity.runId;
        const done = (client: RawClient): boolean => client.events().some((e) => e.runId === runId && e.type === 'agent_completed');
        await until(() => done(poisoner) && done(second) && bystander.events.some((e) => e.runId === b.identity.runId && e.type === 'agent_completed'), 'both runs received');
      }),
      { numRuns: 100 },
    );

    // What each client received is exactly what it must: every JSON event of its thread, in log order.
    const poisonerExpected = log.read('p-thread', 'poisoner').filter(isJson);
    expect(ids(poisoner.events())).toEqual(ids(poisonerExpected));
    expect(ids(second.events())).toEqual(ids(poisonerExpected));
    expect(ids(bystander.events)).toEqual(ids(log.read('b-thread', 'bystander')));
    expect(validateLifecycle(bystander.events)).toMatchObject({ ok: true });
    expect(bystander.errors).toEqual([]);
    expect(bystander.client.stats.reconnects).toBe(0);
    // Nobody was disconnected; the events the gateway met were counted once each (not once per connection) and reported.
    expect(poisoner.closed).toBeUndefined();
    expect(second.closed).toBeUndefined();
    expect(refusedByGateway).toBeGreaterThan(10);
    if (logRefuses) expect(refusedByLog).toBeGreaterThan(10);
    else expect(skippedExpected).toBeGreaterThan(10);
    const stats = gateway.stats();
    expect(stats.unserializableEvents - before).toBe(skippedExpected + refusedByGateway);
    expect(stats).toMatchObject({ internalErrors: 0, closedInternalError: 0, connections: 3 });
    const serializeReports = reported.filter((r) => r.context.stage === 'serialize');
    expect(serializeReports).toHaveLength(skippedExpected);
    expect(serializeReports.every((r) => r.error instanceof ValidationError && r.context.surface === 'websocket' && r.context.userId === 'poisoner' && r.context.threadId === 'p-thread')).toBe(true);

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
    const { url, transport, gateway, bridge, agent } = memory.harness;
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
    // Events are made JSON-safe where the agent builds them (replaced, or the call fails with a typed
    // error): nothing unserializable ever reaches the transport, and the poisoner's runs stay valid.
    expect(refused).toBe(0);
    expect(transport.read('p2-thread', 'poisoner2').every(isJson)).toBe(true);
    expect(gateway.stats().unserializableEvents - before).toBe(0);
    expect(validateLifecycle(poisoner.events).ok).toBe(true);
    expect(gateway.stats()).toMatchObject({ internalErrors: 0, closedInternalError: 0 });
    expect(bystander.client.stats.reconnects + poisoner.client.stats.reconnects).toBe(0);
    bystander.client.close();
    poisoner.client.close();
  });
});

describe('events whose thread id is not a thread id, pushed through send()', () => {
  it('are refused (INVALID_EVENT, field threadId, not retryable) before anything is stored; a subscriber of the real thread gets its events whole', async () => {
    const { url, gateway } = memory.harness;
    const watcher = await RawClient.open(url, 'tid-user');
    watcher.subscribe('tid-thread');
    await watcher.waitFor(() => watcher.ofType('subscribed').length === 1, 'subscribed');
    const emitter = new RunEmitter({ runId: generateRunId('tid-thread'), threadId: 'tid-thread', userId: 'tid-user', agent: 'a' });
    const before = gateway.stats().unserializableEvents;
    const hostile = ['tid-thread","event":{"forged":true},"x":"', 'a"b', '', 'x'.repeat(129), 'tid thread', '\u2028'];
    for (const threadId of hostile) {
      const event = { ...emitter.emit('agent_thinking', { text: 'hostile' }).event, threadId } as AgentEvent;
      await expect(gateway.send(event)).rejects.toMatchObject({ code: 'INVALID_EVENT', field: 'threadId', retryable: false });
    }
    const clean = new RunEmitter({ runId: generateRunId('tid-thread'), threadId: 'tid-thread', userId: 'tid-user', agent: 'a' });
    const started = clean.emit('agent_started', { metadata: {} }).event;
    const done = clean.emit('agent_completed', { status: 'succeeded', result: null, durationMs: 1 }).event;
    await gateway.send(started);
    await gateway.send(done);
    await watcher.waitFor(() => watcher.events().length === 2, 'the clean run');
    expect(ids(watcher.events())).toEqual([started.id, done.id]);
    expect(gateway.stats().unserializableEvents - before).toBe(hostile.length);
    watcher.close();
  });
});
