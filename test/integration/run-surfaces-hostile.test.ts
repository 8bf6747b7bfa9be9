import { HttpAgent, type BaseEvent } from '@ag-ui/client';
import { DefaultChatTransport, readUIMessageStream, type UIMessage } from 'ai';
import fc from 'fast-check';
import { hostileValue as anyHostileValue } from '../helpers/hostile-values.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createAguiHandler } from '../../src/agui/index.js';
import { createChatHandler } from '../../src/ai-sdk/index.js';
import { AgentBridge, BaseAgent, MemoryTransport, defineTool, validateLifecycle, type AgentEvent, type LogEntry } from '../../src/index.js';
import type { GatewayStats } from '../../src/gateway/index.js';
import { Exchange, post, surfaceAuthenticate } from '../helpers/run-surfaces.js';

/**
 * Hostile request bodies and hostile event data (fast-check `anything()` with BigInt, boxed
 * values, maps, sparse arrays, null prototypes; cycles; values nested hundreds deep; long and
 * unusual strings) through the AG-UI and the useChat surface, while a well-behaved user runs on
 * the same server. Every property: the process stays up (an uncaught error fails the run), the
 * bystander receives all of its run in order through the real client, every run the hostile
 * requests started has a valid lifecycle in the log, and every answer is a documented one.
 */

/** Values the property puts behind a key; the agent reads them server-side (they cannot travel as JSON). */
const HOSTILE = new Map<string, { text: unknown; args: unknown; result: unknown; output: unknown }>();

interface FuzzInput {
  key?: unknown;
  steps?: unknown;
  payload?: unknown;
}

/** Runs a well-behaved script (`steps`), a hostile script (`key`), or echoes whatever `payload` is. */
class FuzzAgent extends BaseAgent<FuzzInput, unknown> {
  constructor(bridge: AgentBridge) {
    super({ name: 'fuzz', bridge });
    this.addTool(defineTool({ name: 'echo', description: 'echo', parameters: z.object({ text: z.string() }), execute: ({ text }) => text }));
    this.addTool(defineTool({ name: 'take', description: 'takes anything', parameters: z.unknown(), execute: () => 'taken' }));
    this.addTool(
      defineTool({
        name: 'give',
        description: 'returns the hostile result',
        parameters: z.object({ key: z.string() }),
        execute: ({ key }) => HOSTILE.get(key)?.result,
      }),
    );
  }

  protected async execute(input: FuzzInput): Promise<unknown> {
    if (Array.isArray(input.steps)) {
      const parts: string[] = [];
      for (const text of input.steps as string[]) {
        await this.think(`thinking ${text}`);
        parts.push(String(await this.callTool('echo', { text: String(text) })));
      }
      return parts.join(',');
    }
    const hostile = typeof input.key === 'string' ? HOSTILE.get(input.key) : undefined;
    if (!hostile) {
      await this.think('echoing the payload');
      return input.payload;
    }
    await this.think(hostile.text as string).catch(() => undefined);
    await this.callTool('take', hostile.args).catch(() => undefined);
    await this.callTool('give', { key: input.key as string }).catch(() => undefined);
    return hostile.output;
  }
}

/** What `anything()` cannot make: cycles, values nested far past every limit, long strings. */
function withCycle(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return { value, self: undefined as unknown };
  try {
    (value as Record<string, unknown>).self = value;
  } catch {
    // frozen or exotic: keep it as is
  }
  return value;
}
const deep = (levels: number, leaf: unknown): unknown => {
  let value: unknown = leaf;
  for (let i = 0; i < levels; i++) value = i % 2 === 0 ? [value] : { nested: value };
  return value;
};
const anything = anyHostileValue({ maxDepth: 4 });
const hostileValue = fc.oneof(
  anything,
  anything.map(withCycle),
  fc.integer({ min: 60, max: 400 }).map((levels) => deep(levels, 'bottom')),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.integer({ min: 1, max: 2_000_000 }).map((n) => 'x'.repeat(n)),
  fc.bigInt(),
  fc.constantFrom(undefined, Symbol('s'), () => 1, NaN, -0, Infinity),
);

/** JSON text for a body, whatever the value: BigInt as its digits, anything JSON drops as null. */
function lenientJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)) ?? 'null';
  } catch {
    return '{"cyclic":true}';
  }
}

type Kind = 'agui' | 'chat';

interface Stack {
  kind: Kind;
  url: string;
  transport: MemoryTransport;
  events: AgentEvent[];
  stats(): GatewayStats;
  body(threadId: string, fields: Record<string, unknown>): Record<string, unknown>;
  bystander(threadId: string, steps: string[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * A log of one's own that is careless: it hands out the memory log's entries, but every
 * `tool_completed` of a poisoned thread with a BigInt result and no JSON (the built-in logs refuse
 * such events at append; a log of your own may not).
 */
function carelessLog(inner: MemoryTransport): MemoryTransport & { onError: (error: unknown, context: { stage?: string }) => void } {
  const poison = (entry: LogEntry): LogEntry =>
    entry.event.type === 'tool_completed' && entry.event.threadId.startsWith('poisoned-')
      ? ({ cursor: entry.cursor, event: { ...entry.event, data: { ...entry.event.data, result: 10n } } } as unknown as LogEntry)
      : entry;
  const log = Object.create(inner) as MemoryTransport & { onError: (error: unknown, context: { stage?: string }) => void };
  log.subscribe = async (request, listener) => {
    const result = await inner.subscribe(request, { onEntries: (entries) => listener.onEntries(entries.map(poison)), onClose: (reason) => listener.onClose?.(reason) });
    return result.status === 'subscribed' ? { ...result, replay: result.replay.map(poison) } : result;
  };
  return log;
}

async function startStack(kind: Kind, reported: Array<{ error: unknown; stage?: string }> = []): Promise<Stack> {
  const transport = new MemoryTransport({ maxEventsPerThread: 2_000 });
  const bridge = new AgentBridge({ transport });
  const agent = new FuzzAgent(bridge);
  const events: AgentEvent[] = [];
  agent.on('event', (event) => events.push(event));
  const common = {
    agent,
    log: carelessLog(transport),
    authenticate: surfaceAuthenticate,
    heartbeatIntervalMs: 0,
    maxRunsPerUser: 20,
    maxConnectionsPerUser: 20,
    onError: (error: unknown, context: { stage?: string }) => void reported.push({ error, stage: context.stage }),
  };
  const handler =
    kind === 'agui'
      ? createAguiHandler<FuzzInput>({ ...common, toInput: (input) => (input.forwardedProps ?? {}) as FuzzInput })
      : createChatHandler<FuzzInput>({ ...common, input: (request) => ({ key: request.body.key, steps: request.body.steps, payload: request.body.payload }) });
  const address = await handler.listen();
  const base = `http://127.0.0.1:${address.port}`;
  const url = `${base}${handler.path}`;
  const body = (threadId: string, fields: Record<string, unknown>) =>
    kind === 'agui'
      ? { threadId, messages: [], forwardedProps: fields }
      : { id: threadId, trigger: 'submit-message', messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'go' }] }], ...fields };

  /** A well-behaved user's run through the real client; checks it received all of it, in order. */
  const bystander = async (threadId: string, steps: string[]) => {
    const expected = steps.join(',');
    if (kind === 'agui') {
      const client = new HttpAgent({ url, headers: { Authorization: 'Bearer tok-bob' }, threadId });
      const seen: BaseEvent[] = [];
      const run = await client.runAgent({ forwardedProps: { steps } }, { onEvent: ({ event }) => void seen.push(event) });
      expect(run.result).toBe(expected);
      expect(seen.filter((e) => e.type === 'TOOL_CALL_RESULT').map((e) => (e as { content?: string }).content)).toEqual(steps);
      expect(run.newMessages.filter((m) => m.role === 'reasoning').map((m) => m.content)).toEqual(steps.map((s) => `thinking ${s}`));
    } else {
      const chat = new DefaultChatTransport<UIMessage>({ api: url, headers: { authorization: 'Bearer tok-bob' }, body: { steps } });
      const stream = await chat.sendMessages({ chatId: threadId, messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'go' }] }], trigger: 'submit-message', messageId: undefined, abortSignal: undefined });
      let message: UIMessage | undefined;
      for await (const state of readUIMessageStream({ stream })) message = state;
      const parts = message?.parts ?? [];
      expect(parts.filter((p) => p.type === 'reasoning').map((p) => (p as { text: string }).text)).toEqual(steps.map((s) => `thinking ${s}`));
      expect(parts.filter((p) => p.type === 'tool-echo').map((p) => (p as { output?: unknown }).output)).toEqual(steps);
      expect(parts.filter((p) => p.type === 'text').map((p) => (p as { text: string }).text)).toEqual([expected]);
    }
    const logged = transport.read(threadId, 'bob');
    expect(validateLifecycle(logged).ok).toBe(true);
  };
  return {
    kind,
    url,
    transport,
    events,
    stats: () => handler.stats(),
    body,
    bystander,
    async close() {
      await handler.close();
      await bridge.close();
      await transport.close();
    },
  };
}

/** Documented answers to a hostile POST: a stream, or a refusal of the request itself. Never 5xx. */
const DOCUMENTED = new Set([200, 400, 401, 403, 409, 413, 429]);

/** POSTs and reads the answer to its end; a 200 must end with the run's last frame. */
async function exchangeFor(stack: Stack, body: string): Promise<Exchange> {
  const x = post({ url: stack.url }, 'tok-mallory', body);
  await x.ended;
  return x;
}

function expectWellEnded(stack: Stack, x: Exchange): void {
  expect(DOCUMENTED.has(x.status), `status ${x.status}: ${x.body.slice(0, 200)}`).toBe(true);
  if (x.status !== 200) {
    expect(typeof x.error.code).toBe('string');
    return;
  }
  expect(x.outcome).toBe('end');
  const last = x.data.at(-1);
  if (stack.kind === 'agui') expect(['RUN_FINISHED', 'RUN_ERROR']).toContain(last?.type);
  else expect(last?.type).toBe('[DONE]');
}

function expectValidRuns(stack: Stack, userId: string): void {
  const runs = new Set(stack.events.filter((e) => e.userId === userId).map((e) => `${e.threadId}\u0000${e.runId}`));
  for (const key of runs) {
    const [threadId, runId] = key.split('\u0000') as [string, string];
    const logged = stack.transport.read(threadId, userId).filter((e) => e.runId === runId);
    const check = validateLifecycle(logged);
    expect(check.ok ? 'valid' : check.violation.message, `run ${runId}`).toBe('valid');
  }
}

describe.each(['agui', 'chat'] as Kind[])('hostile input through the %s surface', (kind) => {
  let stack: Stack;
  let round = 0;
  const reported: Array<{ error: unknown; stage?: string }> = [];
  beforeAll(async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    stack = await startStack(kind, reported);
  });
  afterAll(async () => {
    await stack.close();
    vi.restoreAllMocks();
  });

  it('hostile request bodies: a documented answer each, the bystander gets all of its run, every started run is valid', async () => {
    const text = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.json({ depthSize: 'large' }),
      fc.jsonValue({ depthSize: 'medium' }).map((payload) => JSON.stringify(stack.body(`t-${++round}`, { payload }))),
      anything.map((payload) => lenientJson(stack.body(`t-${++round}`, { payload }))),
      fc.integer({ min: 1, max: 9_000 }).map((levels) => lenientJson(stack.body(`t-${++round}`, { payload: deep(levels, 1) }))),
      fc.tuple(fc.jsonValue(), fc.nat()).map(([payload, cut]) => {
        const whole = JSON.stringify(stack.body(`t-${++round}`, { payload }));
        return whole.slice(0, cut % whole.length);
      }),
      fc.constantFrom(
        '{"__proto__":{"admin":true},"threadId":"t1","messages":[]}',
        '{"constructor":{"prototype":{"x":1}},"id":"t1","messages":[]}',
        `{"threadId":"t1","runId":"${'r'.repeat(300)}","messages":[]}`,
        '{"threadId":"t1","messages":[],"forwardedProps":{"payload":1e400}}',
        '\u0000\u0001\u0002',
        '{"id":"\\ud800","messages":[]}',
      ),
    );
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(text, async (body) => {
        const [x] = await Promise.all([exchangeFor(stack, body), stack.bystander(`bob-${++round}`, ['a', 'b'])]);
        expectWellEnded(stack, x);
        statuses.add(x.status);
      }),
      { numRuns: 60 },
    );
    // The bodies reached both outcomes: runs, and refusals of the request.
    expect(statuses.has(200) && statuses.has(400)).toBe(true);
    expectValidRuns(stack, 'mallory');
    expectValidRuns(stack, 'bob');
  });

  it('hostile event data (tool args, results, thoughts, outputs): every run completes validly, the bystander is untouched', async () => {
    const hostile = fc.record({ text: hostileValue, args: hostileValue, result: hostileValue, output: hostileValue });
    await fc.assert(
      fc.asyncProperty(hostile, async (values) => {
        const key = `k${++round}`;
        HOSTILE.set(key, values);
        try {
          const [x] = await Promise.all([
            exchangeFor(stack, JSON.stringify(stack.body(`h-${round}`, { key }))),
            stack.bystander(`bob-${round}`, ['x', 'y', 'z']),
          ]);
          expect(x.status).toBe(200);
          expectWellEnded(stack, x);
        } finally {
          HOSTILE.delete(key);
        }
      }),
      {
        numRuns: 40,
        // Found by fast-check: two legal events of ~0.4 and ~0.6 MiB in one burst once cut a
        // reader that kept up (the stream's queue bound was the size of one largest event).
        examples: [[{ text: 'x'.repeat(13_613), args: {}, result: 'x'.repeat(433_387), output: 'x'.repeat(614_627) }]],
      },
    );
    expectValidRuns(stack, 'mallory');
    expectValidRuns(stack, 'bob');
    // The hostile values reached the events: refused at emit with the documented outcomes.
    const failures = stack.events.flatMap((e) => (e.type === 'tool_completed' || e.type === 'agent_completed') && e.data.status === 'failed' ? [e.data.error.code] : []);
    expect(failures).toContain('RESULT_NOT_SERIALIZABLE');
    expect(failures).toContain('OUTPUT_NOT_SERIALIZABLE');
    // Still serving after all of it.
    await stack.bystander('bob-final', ['done']);
  }, 120_000); // 40 runs of values up to ~1 MiB each: seconds alone, more beside a full suite

  it('an event the log hands out that is not JSON costs that event only: skipped, counted, reported; the stream goes on', async () => {
    const before = stack.stats().poisonedEvents;
    const [x] = await Promise.all([
      exchangeFor(stack, JSON.stringify(stack.body('poisoned-1', { steps: ['p', 'q'] }))),
      stack.bystander('bob-poison', ['m', 'n']),
    ]);
    expectWellEnded(stack, x);
    expect(stack.stats().poisonedEvents - before).toBe(2); // the two tool_completed
    expect(reported.filter((r) => r.stage === 'serialize').length).toBeGreaterThanOrEqual(2);
    if (kind === 'agui') {
      expect(x.data.filter((d) => d.type === 'TOOL_CALL_RESULT')).toEqual([]);
      expect(x.data.filter((d) => d.type === 'TOOL_CALL_START')).toHaveLength(2);
      expect(x.data.at(-1)).toMatchObject({ type: 'RUN_FINISHED', result: 'p,q' });
    } else {
      expect(x.data.filter((d) => d.type === 'tool-output-available')).toEqual([]);
      expect(x.data.filter((d) => d.type === 'text-delta').map((d) => d.delta)).toEqual(['p,q']);
    }
    expect(validateLifecycle(stack.transport.read('poisoned-1', 'mallory')).ok).toBe(true);
  });
});
