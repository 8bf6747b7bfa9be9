/**
 * The decisions of the hardening work, each through a real BaseAgent → AgentBridge →
 * MemoryTransport, judged by what a subscriber of the transport received (the same events a
 * gateway serves) and by what the agent's caller saw.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  AgentBridge,
  AgentwireError,
  BaseAgent,
  DeliveryError,
  MemoryTransport,
  StateError,
  ThreadRegistry,
  ToolError,
  ValidationError,
  defaultErrorInfo,
  defineTool,
  generateRunId,
  parseEvent,
  validateLifecycle,
  type AgentEvent,
  type BaseAgentOptions,
  type EventOfType,
  type RunContext,
  type Transport,
} from '../../src/index.js';
import { eventJson } from '../../src/events/json.js';

type Script = (agent: Probe, input: unknown, ctx: RunContext) => Promise<unknown>;

/** An agent whose `execute` is the test's script; tools as given. */
class Probe extends BaseAgent<unknown, unknown> {
  constructor(
    options: BaseAgentOptions,
    private readonly script: Script,
  ) {
    super({ name: 'probe', ...options });
  }
  protected execute(input: unknown, ctx: RunContext): Promise<unknown> {
    return this.script(this, input, ctx);
  }
}

const echo = defineTool({ name: 'echo', description: 'returns its args', parameters: z.any(), execute: (args) => args });
let kept: unknown;
const keep = defineTool({ name: 'keep', description: 'keeps its args, returns ok', parameters: z.any(), execute: (args) => ((kept = args), 'kept') });
let produced: unknown;
const produce = defineTool({ name: 'produce', description: 'returns the value the test set', parameters: z.object({}), execute: () => produced });
const boom = defineTool({
  name: 'boom',
  description: 'throws the error in its args',
  parameters: z.object({ kind: z.string() }),
  execute: ({ kind }) => {
    if (kind === 'object') throw { password: 'hunter2', dsn: 'postgres://admin:hunter2@db' };
    if (kind === 'string') throw 'hunter2 leaked';
    if (kind === 'agentwire') throw new ToolError('boom', `custom: ${'x'.repeat(100_000)}`);
    throw new RangeError('/home/app/.env: API_KEY=hunter2');
  },
});

interface Stack {
  transport: MemoryTransport;
  bridge: AgentBridge;
  /** Events a subscriber of the user's thread received (read as a gateway would). */
  follow(userId: string, threadId: string): AgentEvent[];
}

function stack(options: { transport?: MemoryTransport; bridge?: ConstructorParameters<typeof AgentBridge>[0] } = {}): Stack {
  const transport = options.transport ?? new MemoryTransport();
  const bridge = new AgentBridge({ transport, ...options.bridge });
  return {
    transport,
    bridge,
    follow(userId, threadId) {
      const received: AgentEvent[] = [];
      transport.subscribeSync({ userId, threadId }, { onEntries: (entries) => received.push(...entries.map((e) => e.event)) });
      return received;
    },
  };
}

function probe(s: Stack, script: Script, options: BaseAgentOptions = {}): Probe {
  return new Probe({ bridge: s.bridge, tools: [echo, keep, produce, boom], ...options }, script);
}

/** Every event parses after the JSON round trip a client makes, and the run's grammar holds. */
function wireValid(events: AgentEvent[], runs = 1): AgentEvent[] {
  const wire = events.map((event) => parseEvent(JSON.parse(eventJson(event))));
  expect(validateLifecycle(wire)).toEqual({ ok: true, runs });
  return wire;
}

const ofType = <T extends AgentEvent['type']>(events: AgentEvent[], type: T) => events.filter((e): e is EventOfType<T> => e.type === type);
const failedError = (event: AgentEvent | undefined) =>
  event && (event.type === 'tool_completed' || event.type === 'agent_completed') && event.data.status !== 'succeeded' ? event.data.error : undefined;

function cyclic(): unknown {
  const value: Record<string, unknown> = { a: 1 };
  value.self = value;
  return value;
}

function nest(levels: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

describe('run input and metadata: refused before any event', () => {
  it.each([
    ['input', 'bigint', { amount: 10n }, {}],
    ['input', 'cycle', cyclic(), {}],
    ['input', 'depth', nest(64), {}],
    ['input', 'size', 'x'.repeat(1024 * 1024), {}],
    ['metadata', 'bigint', 'fine', { n: 1n }],
    ['metadata', 'cycle', 'fine', { c: cyclic() }],
  ])('%s with a %s: ValidationError INPUT_NOT_SERIALIZABLE, nothing emitted, nothing registered', async (field, reason, input, metadata) => {
    const s = stack();
    const received = s.follow('alice', 't1');
    const local: AgentEvent[] = [];
    let executed = false;
    const agent = probe(s, async () => (executed = true));
    agent.on('event', (e) => local.push(e));
    const runId = generateRunId('t1');
    const error = await agent.run(input, { userId: 'alice', threadId: 't1', runId, metadata: metadata as Record<string, unknown> }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: 'INPUT_NOT_SERIALIZABLE', field, details: { reason } });
    expect(executed).toBe(false);
    expect(received).toEqual([]);
    expect(local).toEqual([]);
    expect(s.bridge.registry.has(runId)).toBe(false);
    // The run id was not used: the same id runs fine with a valid input.
    await expect(agent.run('ok', { userId: 'alice', threadId: 't1', runId })).resolves.toMatchObject({ status: 'succeeded' });
    wireValid(received);
    await s.bridge.close();
  });

  it('what is checked is what the event carries: a redacted input may hold anything', async () => {
    const s = stack();
    const received = s.follow('alice', 't1');
    const agent = probe(s, async (_agent, input) => typeof (input as { n: unknown }).n, { redact: { input: () => '[redacted]' } });
    const result = await agent.run({ n: 1n }, { userId: 'alice', threadId: 't1' });
    expect(result).toMatchObject({ status: 'succeeded', output: 'bigint' });
    expect(wireValid(received)[0]!.data).toMatchObject({ input: '[redacted]' });
  });

  it('a throwing redact.input hook rejects run() with its error, before any event', async () => {
    const s = stack();
    const received = s.follow('alice', 't1');
    const agent = probe(s, async () => 'never', {
      redact: {
        input: () => {
          throw new Error('hook bug');
        },
      },
    });
    await expect(agent.run('x', { userId: 'alice', threadId: 't1' })).rejects.toThrow('hook bug');
    expect(received).toEqual([]);
  });
});

describe('tool arguments that are not JSON: shown as a marker, the tool gets the real ones', () => {
  it.each([
    ['bigint', { n: 5n }],
    ['cycle', cyclic()],
    ['depth', nest(70)],
    ['size', { blob: 'x'.repeat(1024 * 1024) }],
  ])('%s', async (reason, args) => {
    const s = stack();
    const received = s.follow('alice', 't1');
    kept = undefined;
    const agent = probe(s, async (a) => a.callTool('keep', args));
    const result = await agent.run(null, { userId: 'alice', threadId: 't1' });
    expect(result).toMatchObject({ status: 'succeeded', output: 'kept' });
    expect(kept).toBe(args); // the tool got the very value it was called with
    const wire = wireValid(received);
    expect(ofType(wire, 'tool_executing')[0]!.data.args).toEqual({ $agentwire: 'not_serializable', reason });
    expect(ofType(wire, 'tool_completed')[0]!.data).toMatchObject({ status: 'succeeded', result: 'kept' });
  });
});

describe('tool results that are not JSON: the call fails with RESULT_NOT_SERIALIZABLE', () => {
  it.each([
    ['bigint', 7n],
    ['cycle', cyclic()],
    ['depth', nest(70)],
    ['size', 'y'.repeat(1024 * 1024 + 1)],
    ['unserializable', { toJSON: () => { throw new Error('getter secret'); } }],
  ])('%s: failed tool_completed, callTool rejects with ToolError, the run goes on', async (reason, value) => {
    const s = stack();
    const received = s.follow('alice', 't1');
    let caught: unknown;
    const agent = probe(s, async (a) => {
      produced = value;
      caught = await a.callTool('produce', {}).catch((e: unknown) => e);
      await a.think('went on');
      return 'done';
    });
    const result = await agent.run(null, { userId: 'alice', threadId: 't1' });
    expect(result.status).toBe('succeeded');
    expect(caught).toBeInstanceOf(ToolError);
    expect(caught).toMatchObject({ code: 'RESULT_NOT_SERIALIZABLE', tool: 'produce', details: { reason } });
    const wire = wireValid(received);
    expect(wire.map((e) => e.type)).toEqual(['agent_started', 'tool_executing', 'tool_completed', 'agent_thinking', 'agent_completed']);
    expect(failedError(wire[2])).toMatchObject({ name: 'ToolError', code: 'RESULT_NOT_SERIALIZABLE' });
    expect(eventJson(wire[2]!)).not.toContain('getter secret');
  });

  it('a model-driven agent gets it back as a tool error (the AI SDK sends the rejection to the model)', async () => {
    const { ModelAgent } = await import('../../src/ai-sdk/index.js');
    const { answerStep, scriptedModel, text, toolCall, toolResultsSent, toolStep } = await import('../helpers/ai-models.js');
    const s = stack();
    const received = s.follow('alice', 'chat');
    const model = scriptedModel([toolStep([], toolCall('m1', 'produce', {})), answerStep(text('sorry'))]);
    produced = { big: 1n };
    const agent = new ModelAgent({ name: 'model', model, tools: [produce], bridge: s.bridge });
    const result = await agent.run('go', { userId: 'alice', threadId: 'chat' });
    expect(result.status).toBe('succeeded');
    const sent = toolResultsSent(model.doStreamCalls[1]);
    expect(sent).toEqual([{ toolName: 'produce', output: { type: 'error-text', value: expect.stringContaining('cannot be represented as JSON') } }]);
    expect(failedError(ofType(wireValid(received), 'tool_completed')[0])).toMatchObject({ code: 'RESULT_NOT_SERIALIZABLE' });
  });
});

describe('run output that is not JSON: the run fails with OUTPUT_NOT_SERIALIZABLE', () => {
  it.each([
    ['bigint', 1n],
    ['cycle', cyclic()],
    ['size', 'z'.repeat(1024 * 1024 + 1)],
  ])('%s', async (reason, output) => {
    const s = stack();
    const received = s.follow('alice', 't1');
    const agent = probe(s, async () => output);
    const result = await agent.run(null, { userId: 'alice', threadId: 't1' });
    expect(result.status).toBe('failed');
    expect(result.output).toBeUndefined();
    expect(result.error).toBeInstanceOf(ValidationError);
    expect(result.error).toMatchObject({ code: 'OUTPUT_NOT_SERIALIZABLE', details: { reason } });
    const last = wireValid(received).at(-1)!;
    expect(last.type === 'agent_completed' && last.data).toMatchObject({ status: 'failed', error: { name: 'ValidationError', code: 'OUTPUT_NOT_SERIALIZABLE' } });
    expect(result.events).toBe(received.length);
  });

  it('a throwing redact.output hook fails the run, with one terminal event', async () => {
    const s = stack();
    const received = s.follow('alice', 't1');
    const agent = probe(s, async () => 'fine', {
      redact: {
        output: () => {
          throw new TypeError('hook secret');
        },
      },
    });
    const result = await agent.run(null, { userId: 'alice', threadId: 't1' });
    expect(result).toMatchObject({ status: 'failed', error: { name: 'TypeError', message: 'hook secret' } });
    expect(failedError(wireValid(received).at(-1))).toEqual({ name: 'TypeError', message: 'Agent "probe" failed' });
  });
});

describe('think(): too large, misuse', () => {
  it('text over maxEventBytes rejects with EVENT_TOO_LARGE: no event, no seq used', async () => {
    const s = stack();
    const received = s.follow('alice', 't1');
    let caught: unknown;
    const agent = probe(
      s,
      async (a) => {
        caught = await a.think('t'.repeat(20_000)).catch((e: unknown) => e);
        await a.think('small');
        return 'ok';
      },
      { limits: { maxEventBytes: 16 * 1024 } },
    );
    await agent.run(null, { userId: 'alice', threadId: 't1' });
    expect(caught).toBeInstanceOf(ValidationError);
    expect(caught).toMatchObject({ code: 'EVENT_TOO_LARGE' });
    const wire = wireValid(received);
    expect(wire.map((e) => [e.type, e.seq])).toEqual([
      ['agent_started', 1],
      ['agent_thinking', 2],
      ['agent_completed', 3],
    ]);
  });

  it('never throws synchronously: outside a run NO_ACTIVE_RUN, after the run RUN_CLOSED, bad text INVALID_EVENT', async () => {
    const s = stack();
    let runOver!: () => void;
    const over = new Promise<void>((resolve) => (runOver = resolve));
    let badText: unknown;
    // Work the run leaves behind: it keeps the run's async context and calls in after the run completed.
    let lateCalls: Promise<{ threw: boolean; think: unknown; tool: unknown }> | undefined;
    const agent = probe(s, async (a) => {
      badText = await a.think(42 as unknown as string).catch((e: unknown) => e);
      lateCalls = (async () => {
        await over;
        let think: Promise<void> | undefined;
        let tool: Promise<unknown> | undefined;
        try {
          think = a.think('too late');
          tool = a.callTool('echo', {});
        } catch {
          return { threw: true, think: undefined, tool: undefined };
        }
        return { threw: false, think: await think.catch((e: unknown) => e), tool: await tool.catch((e: unknown) => e) };
      })();
      return 'ok';
    });
    const received = s.follow('alice', 't1');
    await agent.run(null, { userId: 'alice', threadId: 't1' });
    expect(badText).toMatchObject({ code: 'INVALID_EVENT' });
    let outside: Promise<void> | undefined;
    expect(() => (outside = agent.think('nobody'))).not.toThrow();
    await expect(outside).rejects.toMatchObject({ name: 'StateError', code: 'NO_ACTIVE_RUN' });
    await expect(agent.callTool('echo', {})).rejects.toMatchObject({ code: 'NO_ACTIVE_RUN' });
    runOver();
    const late = await lateCalls!;
    expect(late.threw).toBe(false);
    expect(late.think).toBeInstanceOf(StateError);
    expect(late.think).toMatchObject({ code: 'RUN_CLOSED' });
    expect(late.tool).toMatchObject({ code: 'RUN_CLOSED' });
    expect(wireValid(received).map((e) => e.type)).toEqual(['agent_started', 'agent_completed']);
  });
});

describe('reportUsage(): synchronous, never throws late', () => {
  it('returns true inside a run, false outside or after it; a late call changes nothing', async () => {
    const s = stack();
    const received = s.follow('alice', 't1');
    let runOver!: () => void;
    const over = new Promise<void>((resolve) => (runOver = resolve));
    let late: Promise<boolean> | undefined;
    const agent = probe(s, async (a) => {
      expect(a.reportUsage({ inputTokens: 3, outputTokens: 4 })).toBe(true);
      // A timer the run leaves behind, firing after the run completed (in the run's async context).
      late = new Promise((resolve) => setTimeout(() => void over.then(() => resolve(a.reportUsage({ inputTokens: 100, outputTokens: 100 }))), 0));
      return 'ok';
    });
    const result = await agent.run(null, { userId: 'alice', threadId: 't1' });
    expect(agent.reportUsage({ inputTokens: 1, outputTokens: 1 })).toBe(false);
    runOver();
    expect(await late!).toBe(false);
    expect(result.usage).toEqual({ inputTokens: 3, outputTokens: 4 });
    expect(wireValid(received).at(-1)!.data).toMatchObject({ usage: { inputTokens: 3, outputTokens: 4 } });
  });

  it('counts that are not non-negative integers throw a ValidationError inside the run (the run fails cleanly)', async () => {
    const s = stack();
    const received = s.follow('alice', 't1');
    const agent = probe(s, async (a) => {
      for (const bad of [{ inputTokens: -1, outputTokens: 0 }, { inputTokens: 1.5, outputTokens: 0 }, { inputTokens: NaN, outputTokens: 0 }, null]) {
        expect(() => a.reportUsage(bad as never)).toThrow(ValidationError);
      }
      a.reportUsage({ inputTokens: 1, outputTokens: 'many' as unknown as number });
      return 'unreachable';
    });
    const result = await agent.run(null, { userId: 'alice', threadId: 't1' });
    expect(result).toMatchObject({ status: 'failed', error: { code: 'VALIDATION_FAILED', field: 'usage.outputTokens' } });
    wireValid(received);
  });
});

describe('tool names that cannot be registered ones: TOOL_NOT_FOUND with a failed pair', () => {
  it.each([
    ['an empty name', '', '(invalid)'],
    ['a name longer than 128 characters', 'n'.repeat(500), `${'n'.repeat(127)}…`],
    ['a number', 42, '(invalid)'],
    ['undefined', undefined, '(invalid)'],
    ['a symbol', Symbol('x'), '(invalid)'],
    ['an object', { toString: () => 'echo' }, '(invalid)'],
    ['an unknown name', 'nope', 'nope'],
  ])('%s', async (_label, name, shown) => {
    const s = stack();
    const received = s.follow('alice', 't1');
    let caught: unknown;
    const agent = probe(s, async (a) => {
      caught = await a.callTool(name as string, {}).catch((e: unknown) => e);
      return 'ok';
    });
    await agent.run(null, { userId: 'alice', threadId: 't1' });
    expect(caught).toBeInstanceOf(ToolError);
    expect(caught).toMatchObject({ code: 'TOOL_NOT_FOUND', tool: shown });
    const wire = wireValid(received);
    expect(wire.map((e) => e.type)).toEqual(['agent_started', 'tool_executing', 'tool_completed', 'agent_completed']);
    expect(ofType(wire, 'tool_executing')[0]!.data.tool).toBe(shown);
    expect(ofType(wire, 'tool_completed')[0]!.data).toMatchObject({ tool: shown, status: 'failed', error: { name: 'ToolError', code: 'TOOL_NOT_FOUND' } });
    expect((shown as string).length).toBeLessThanOrEqual(128);
  });
});

describe('redact.error: what error name/message/code leave the process', () => {
  async function failures(kind: string, options: BaseAgentOptions = {}) {
    const s = stack();
    const received = s.follow('alice', 't1');
    let rejection: unknown;
    const agent = probe(
      s,
      async (a) => {
        rejection = await a.callTool('boom', { kind }).catch((e: unknown) => e);
        throw rejection; // and the run fails with the ToolError
      },
      options,
    );
    const result = await agent.run(null, { userId: 'alice', threadId: 't1' });
    const wire = wireValid(received);
    return { result, rejection, tool: failedError(ofType(wire, 'tool_completed')[0])!, run: failedError(wire.at(-1))!, json: wire.map(eventJson).join('\n') };
  }

  it('default: a tool\'s own error leaves with its name and a generic message; locally the author sees everything', async () => {
    const { result, rejection, tool, run, json } = await failures('range');
    expect(tool).toEqual({ name: 'RangeError', message: 'Tool "boom" failed' });
    expect(run).toEqual({ name: 'ToolError', code: 'TOOL_FAILED', message: 'Tool "boom" failed' });
    expect(json).not.toContain('hunter2');
    // Locally: the ToolError names the cause; the cause is the tool's own error.
    expect(rejection).toBeInstanceOf(ToolError);
    expect((rejection as ToolError).message).toContain('API_KEY=hunter2');
    expect((rejection as ToolError).cause).toBeInstanceOf(RangeError);
    expect(result.error).toBe(rejection);
  });

  it.each(['object', 'string'])('default: a thrown %s is never dumped into an event', async (kind) => {
    const { tool, run, json } = await failures(kind);
    expect(tool).toEqual({ name: 'Error', message: 'Tool "boom" failed' });
    expect(run).toEqual({ name: 'ToolError', code: 'TOOL_FAILED', message: 'Tool "boom" failed' });
    expect(json).not.toContain('hunter2');
  });

  it('default: the SDK\'s own errors keep their message and code, bounded', async () => {
    const { tool } = await failures('agentwire');
    expect(tool.name).toBe('ToolError');
    expect(tool.code).toBe('TOOL_FAILED');
    expect(tool.message.startsWith('custom: xxx')).toBe(true);
    expect(tool.message.length).toBe(1024);
    expect(tool.message.endsWith('…')).toBe(true);
    const s = stack();
    const received = s.follow('alice', 't2');
    await probe(s, async (a) => {
      await a.callTool('echo', undefined).catch(() => undefined);
      await a.callTool('boom', { kind: 5 }).catch(() => undefined);
      return 'ok';
    }).run(null, { userId: 'alice', threadId: 't2' });
    const errors = ofType(wireValid(received), 'tool_completed').map(failedError);
    expect(errors[1]).toMatchObject({ name: 'ToolError', code: 'TOOL_INVALID_ARGS', message: expect.stringContaining('args.kind') });
  });

  it('the hook decides, gets the tool\'s own error with its context, and may return the full message', async () => {
    const seen: Array<[unknown, unknown]> = [];
    const { tool, run } = await failures('range', {
      redact: {
        error: (error, context) => {
          seen.push([error, context]);
          if (context.event === 'tool_completed' && error instanceof Error) return { name: error.name, message: error.message };
          return undefined; // the default
        },
      },
    });
    expect(tool).toEqual({ name: 'RangeError', message: '/home/app/.env: API_KEY=hunter2' });
    expect(run).toEqual({ name: 'ToolError', code: 'TOOL_FAILED', message: 'Tool "boom" failed' });
    expect(seen[0]![0]).toBeInstanceOf(RangeError);
    expect(seen[0]![1]).toMatchObject({ event: 'tool_completed', tool: 'boom', agent: 'probe', userId: 'alice', threadId: 't1' });
    expect(seen[1]![1]).toMatchObject({ event: 'agent_completed', agent: 'probe' });
    expect(seen[1]![0]).toBeInstanceOf(ToolError);
  });

  it('a hook that throws or returns something else gets the default; what it returns is bounded', async () => {
    const throwing = await failures('range', {
      redact: {
        error: () => {
          throw new Error('hook bug');
        },
      },
    });
    expect(throwing.tool).toEqual({ name: 'RangeError', message: 'Tool "boom" failed' });
    const garbage = await failures('range', { redact: { error: () => ({ name: 5, message: null }) as never } });
    expect(garbage.tool).toEqual({ name: 'RangeError', message: 'Tool "boom" failed' });
    const huge = await failures('range', { redact: { error: () => ({ name: 'N'.repeat(1000), message: 'm'.repeat(1_000_000), code: 'C'.repeat(1000) }) } });
    expect([huge.tool.name.length, huge.tool.message.length, huge.tool.code!.length]).toEqual([128, 1024, 64]);
  });

  it('a failed terminal event always fits, even with the smallest limits and the longest fields', async () => {
    const s = stack({ bridge: { limits: { maxEventBytes: 16 * 1024 } } });
    const userId = '\u0001'.repeat(256); // every character escapes to 6 bytes (a control character: well-formed, unlike a lone surrogate)
    const received = s.follow(userId, 't1');
    const agent = new Probe({ bridge: s.bridge, name: '\u0001'.repeat(128) }, async () => {
      throw new ValidationError('"\\'.repeat(5000));
    });
    const result = await agent.run(null, { userId, threadId: 't1' });
    expect(result.status).toBe('failed');
    const last = wireValid(received).at(-1)!;
    expect(failedError(last)!.message.length).toBe(1024);
    expect(new TextEncoder().encode(eventJson(last)).length).toBeLessThanOrEqual(16 * 1024);
  });

  it('defaultErrorInfo is exported for hooks that adjust the default', () => {
    const context = { event: 'agent_completed' as const, runId: 'r', threadId: 't', userId: 'u', agent: 'a' };
    expect(defaultErrorInfo(new TypeError('secret'), context)).toEqual({ name: 'TypeError', message: 'Agent "a" failed' });
    expect(defaultErrorInfo(new ValidationError('shown', { code: 'INVALID_EVENT' }), context)).toEqual({ name: 'ValidationError', message: 'shown', code: 'INVALID_EVENT' });
    expect(defaultErrorInfo({ secret: 1 }, context)).toEqual({ name: 'Error', message: 'Agent "a" failed' });
  });
});

describe('limits are configurable on the agent and on the bridge', () => {
  it('the bridge\'s limits apply to its agents; an agent\'s own limits take precedence', async () => {
    const s = stack({ bridge: { limits: { maxEventBytes: 16 * 1024, maxDepth: 8 } } });
    const outcomes: string[] = [];
    const script: Script = async (a) => {
      for (const text of ['a'.repeat(20_000), 'a'.repeat(100_000)]) {
        outcomes.push(await a.think(text).then(() => 'ok', (e: AgentwireError) => e.code));
      }
      const args = await a.callTool('echo', nest(10)).catch(() => undefined);
      outcomes.push(args === undefined ? 'failed' : 'ok');
      return 'done';
    };
    const bridgeLimited = probe(s, script);
    const ownLimits = probe(s, script, { limits: { maxEventBytes: 64 * 1024 } });
    const received = s.follow('alice', 't1');
    await bridgeLimited.run(null, { userId: 'alice', threadId: 't1' });
    await ownLimits.run(null, { userId: 'alice', threadId: 't1' });
    // Bridge limits: both texts too large, nest(10) too deep (echo's result fails the call). Own limits:
    // 64 KiB lets the first text through; maxDepth, left out, is still the bridge's 8.
    expect(outcomes).toEqual(['EVENT_TOO_LARGE', 'EVENT_TOO_LARGE', 'failed', 'ok', 'EVENT_TOO_LARGE', 'failed']);
    wireValid(received, 2);
  });

  it('invalid limits are refused at construction', () => {
    const s = stack();
    expect(() => probe(s, async () => 1, { limits: { maxEventBytes: 10 } })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    expect(() => new AgentBridge({ limits: { maxDepth: 1 } })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
  });
});

/** A memory transport that says which runs it retains events of (the logs' `hasRun`). */
class RetainingTransport extends MemoryTransport {
  readonly runs = new Set<string>();
  hasRunCalls = 0;
  constructor(private readonly answer: (runId: string) => boolean | Promise<boolean> = () => false) {
    super();
  }
  override append(event: AgentEvent) {
    this.runs.add(event.runId);
    return super.append(event);
  }
  // Answers asynchronously, as the Redis log does (the memory log's own answer is synchronous).
  override hasRun(runId: string): boolean {
    return this.answerLater(runId) as unknown as boolean;
  }
  private answerLater(runId: string): Promise<boolean> {
    this.hasRunCalls++;
    return new Promise((resolve, reject) => setTimeout(() => Promise.resolve(this.answer(runId)).then((known) => resolve(known || this.runs.has(runId)), reject), 5));
  }
}

describe('run ids are used once', () => {
  it('refuses a run id the registry knows: active, or finished', async () => {
    const s = stack();
    const received = s.follow('alice', 't1');
    const runId = generateRunId('t1');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const agent = probe(s, async () => gate);
    const first = agent.run(null, { userId: 'alice', threadId: 't1', runId });
    await new Promise((resolve) => setTimeout(resolve, 1));
    await expect(agent.run(null, { userId: 'alice', threadId: 't1', runId })).rejects.toMatchObject({ name: 'ValidationError', code: 'RUN_ID_CONFLICT' });
    release();
    await first;
    await expect(agent.run(null, { userId: 'alice', threadId: 't1', runId })).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
    const wire = wireValid(received);
    expect(ofType(wire, 'agent_started')).toHaveLength(1);
  });

  it('a run id a front end only registered (to check the thread\'s owner first) starts its run once', async () => {
    const s = stack();
    const received = s.follow('alice', 't1');
    const agent = probe(s, async () => 'ok');
    s.bridge.registry.register('pre-registered', 't1', 'alice');
    await expect(agent.run(null, { userId: 'alice', threadId: 't1', runId: 'pre-registered' })).resolves.toMatchObject({ status: 'succeeded' });
    await expect(agent.run(null, { userId: 'alice', threadId: 't1', runId: 'pre-registered' })).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
    // Registered for another thread or user: refused as well (by the registry).
    s.bridge.registry.register('elsewhere', 't2', 'alice');
    await expect(agent.run(null, { userId: 'alice', threadId: 't1', runId: 'elsewhere' })).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
    expect(ofType(wireValid(received), 'agent_started')).toHaveLength(1);
  });

  it('refuses a run id the transport still retains, after the registry forgot it', async () => {
    let now = 0;
    const transport = new RetainingTransport();
    const s = stack({ transport, bridge: { registry: new ThreadRegistry({ finishedRunTtlMs: 10, now: () => now }) } });
    const runId = 'custom-run-1';
    const agent = probe(s, async () => 'ok');
    await agent.run(null, { userId: 'alice', threadId: 't1', runId });
    now += 1_000;
    s.bridge.registry.sweep();
    expect(s.bridge.registry.has(runId)).toBe(false);
    await expect(agent.run(null, { userId: 'alice', threadId: 't1', runId })).rejects.toMatchObject({ code: 'RUN_ID_CONFLICT' });
    expect(transport.read('t1', 'alice').filter((e) => e.type === 'agent_started')).toHaveLength(1);
    // Generated run ids are not checked against the transport (they are unique by construction).
    const calls = transport.hasRunCalls;
    await agent.run(null, { userId: 'alice', threadId: 't1' });
    expect(transport.hasRunCalls).toBe(calls);
  });

  it('a transport that cannot answer refuses the run (unknown is not free)', async () => {
    const transport = new RetainingTransport(() => Promise.reject(new Error('redis down')));
    const s = stack({ transport });
    const received = s.follow('alice', 't1');
    const agent = probe(s, async () => 'ok');
    await expect(agent.run(null, { userId: 'alice', threadId: 't1', runId: 'r-1' })).rejects.toMatchObject({ name: 'TransportError' });
    expect(received).toEqual([]);
    expect(s.bridge.registry.has('r-1')).toBe(false);
  });

  it.each([
    ['with a transport that answers asynchronously', () => new RetainingTransport()],
    ['with a transport that answers "free" late (the claim alone decides)', () => Object.assign(new MemoryTransport(), { hasRun: () => new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5)) })],
    ['with a transport without hasRun', () => new MemoryTransport()],
  ])('two concurrent run() with one id: exactly one proceeds (%s)', async (_label, make) => {
    const s = stack({ transport: make() });
    const received = s.follow('alice', 't1');
    const agent = probe(s, async (a) => {
      await a.think('running');
      return 'ok';
    });
    const runId = generateRunId('t1');
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => agent.run(null, { userId: 'alice', threadId: 't1', runId })));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(refused.map((o) => (o.reason as AgentwireError).code)).toEqual(['RUN_ID_CONFLICT', 'RUN_ID_CONFLICT', 'RUN_ID_CONFLICT', 'RUN_ID_CONFLICT']);
    expect(wireValid(received).map((e) => e.seq)).toEqual([1, 2, 3]);
  });
});

describe('AgentBridge.send: events built by an integrator', () => {
  it('a non-JSON event is refused with a DeliveryError (causeCode), counted, and other runs are not affected', async () => {
    const s = stack();
    const bob = s.follow('bob', 'tb');
    const mallory = s.follow('mallory', 'tm');
    const errors: DeliveryError[] = [];
    s.bridge.on('delivery_error', (error) => errors.push(error));
    const agent = probe(s, async (a) => {
      await a.think('one');
      await a.think('two');
      return 'ok';
    });
    const bystander = agent.run(null, { userId: 'bob', threadId: 'tb' });
    const runId = generateRunId('tm');
    const base = { v: 1 as const, runId, threadId: 'tm', userId: 'mallory', agent: 'x', ts: Date.now() };
    await expect(s.bridge.send({ ...base, id: 'e1', seq: 1, type: 'agent_started', data: { metadata: {} } })).resolves.toBe('delivered');
    const cases: Array<[unknown, string]> = [
      [{ n: 1n }, 'EVENT_NOT_SERIALIZABLE'],
      [cyclic(), 'EVENT_NOT_SERIALIZABLE'],
      [nest(100), 'EVENT_NOT_SERIALIZABLE'],
      ['w'.repeat(1024 * 1024), 'EVENT_TOO_LARGE'],
    ];
    for (const [i, [args, causeCode]] of cases.entries()) {
      const event = { ...base, id: `e${i + 2}`, seq: 2, type: 'tool_executing' as const, data: { toolCallId: 'c', tool: 't', args } };
      const error = await s.bridge.send(event).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DeliveryError);
      expect(error).toMatchObject({ code: 'DELIVERY_FAILED', causeCode });
    }
    // enqueue() of an event nobody serialized is checked the same way.
    const viaEnqueue = await new Promise<unknown>((resolve) =>
      s.bridge.enqueue({ ...base, id: 'e9', seq: 2, type: 'tool_executing', data: { toolCallId: 'c', tool: 't', args: 2n } }, (error) => resolve(error)),
    );
    expect(viaEnqueue).toMatchObject({ causeCode: 'EVENT_NOT_SERIALIZABLE' });
    expect(errors).toHaveLength(5);
    expect(s.bridge.metrics().failed).toBe(5);
    expect(s.bridge.state).toBe('active');
    await expect(bystander).resolves.toMatchObject({ status: 'succeeded' });
    expect(wireValid(bob).map((e) => e.type)).toEqual(['agent_started', 'agent_thinking', 'agent_thinking', 'agent_completed']);
    expect(mallory.map((e) => e.id)).toEqual(['e1']);
    // The integrator's run can still be completed.
    await expect(s.bridge.send({ ...base, id: 'e10', seq: 2, type: 'agent_completed', data: { status: 'succeeded', result: 'ok', durationMs: 1 } })).resolves.toBe('delivered');
    wireValid(mallory);
  });
});

describe('Transport.hasRun is optional in the interface', () => {
  it('a transport without it type-checks and runs', async () => {
    const events: AgentEvent[] = [];
    const minimal: Transport = { send: async (event) => void events.push(event), close: async () => undefined };
    const bridge = new AgentBridge({ transport: minimal });
    await new Probe({ bridge }, async () => 'ok').run(null, { userId: 'u', threadId: 't', runId: 'given-id' });
    expect(events.map((e) => e.type)).toEqual(['agent_started', 'agent_completed']);
  });
});
