/**
 * A property over hostile thrown values (attack 5, f01): whatever `execute()` or a tool throws —
 * an AgentwireError whose `code` getter throws (what broke it: run() rejected after agent_started,
 * no agent_completed, activeRuns stuck at 1; a tool's failure left its tool_executing unclosed),
 * getters that throw on any other field, proxies whose every trap throws, revoked proxies, frozen
 * objects, Symbols, functions, null — every run ends with exactly one agent_completed in the log,
 * every tool_executing is closed, run() resolves and the bridge counts no active run. Through a
 * MemoryRunQueue, the status shows the error the log's agent_completed carries.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  AgentBridge,
  BaseAgent,
  MemoryTransport,
  StateError,
  ToolError,
  ValidationError,
  defineTool,
  validateLifecycle,
  type RunContext,
} from '../../src/index.js';
import { MemoryRunQueue } from '../../src/runs/index.js';
import { until, untilAsync } from '../helpers/wait.js';

const FIELDS = ['code', 'name', 'message', 'stack', 'cause', 'retryable', 'constructor', 'details', 'tool', 'toJSON'] as const;
type Base = 'error' | 'tool-error' | 'validation-error' | 'state-error' | 'object' | 'function' | 'symbol' | 'null' | 'undefined' | 'string';
type Wrap = 'none' | 'frozen' | 'throwing-proxy' | 'revoked-proxy' | 'error-proxy';

interface Hostile {
  base: Base;
  throwing: Array<(typeof FIELDS)[number]>;
  wrap: Wrap;
}

const SECRET = 'postgres://admin:hunter2@db/prod';

function make({ base, throwing, wrap }: Hostile): unknown {
  if (wrap === 'revoked-proxy') {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    return proxy;
  }
  let value: unknown;
  switch (base) {
    case 'error':
      value = new Error(SECRET);
      break;
    case 'tool-error':
      value = new ToolError('t', SECRET);
      break;
    case 'validation-error':
      value = new ValidationError(SECRET, { code: 'EVENT_NOT_SERIALIZABLE', details: { reason: 'cycle' } });
      break;
    case 'state-error':
      value = new StateError('RUN_ENDED', SECRET);
      break;
    case 'object':
      value = { message: SECRET };
      break;
    case 'function':
      value = () => SECRET;
      break;
    case 'symbol':
      return Symbol(SECRET);
    case 'null':
      return null;
    case 'undefined':
      return undefined;
    case 'string':
      return SECRET;
  }
  const target = value as object;
  for (const field of throwing) {
    try {
      Object.defineProperty(target, field, {
        configurable: true,
        get() {
          throw new Error(`no reading ${field}`);
        },
      });
    } catch {
      // A function's non-configurable own property: left as it is.
    }
  }
  if (wrap === 'frozen') return Object.freeze(target);
  if (wrap === 'error-proxy') {
    // Every read throws, but instanceof Error holds (the target's prototype).
    return new Proxy(target, {
      get() {
        throw new Error('no reading');
      },
      has() {
        throw new Error('no has');
      },
      ownKeys() {
        throw new Error('no keys');
      },
    });
  }
  if (wrap === 'throwing-proxy') {
    const trap = () => {
      throw new Error('no trap');
    };
    return new Proxy(target, {
      get: trap,
      has: trap,
      ownKeys: trap,
      getPrototypeOf: trap,
      getOwnPropertyDescriptor: trap,
      defineProperty: trap,
      set: trap,
      deleteProperty: trap,
      isExtensible: trap,
      preventExtensions: trap,
      setPrototypeOf: trap,
      ...(typeof target === 'function' && { apply: trap, construct: trap }),
    });
  }
  return target;
}

const hostileArb: fc.Arbitrary<Hostile> = fc.record({
  base: fc.constantFrom<Base>('error', 'tool-error', 'validation-error', 'state-error', 'object', 'function', 'symbol', 'null', 'undefined', 'string'),
  throwing: fc.subarray([...FIELDS]),
  wrap: fc.constantFrom<Wrap>('none', 'frozen', 'throwing-proxy', 'revoked-proxy', 'error-proxy'),
});

type Where = 'execute' | 'tool-caught' | 'tool-rethrown' | 'timed-tool-caught' | 'timed-tool-rethrown';

interface Case {
  hostile: Hostile;
  where: Where;
  /** A redact.error hook that reads the thrown value's fields (and so throws for many). */
  hook: boolean;
}

class Hostiles extends BaseAgent<Case, string> {
  constructor(bridge: AgentBridge, hook: boolean) {
    const thrower = (input: { n: number }) => {
      throw make(pending.get(input.n)!);
    };
    super({
      name: 'hostiles',
      bridge,
      tools: [
        defineTool({ name: 'plain', description: 'throws', parameters: z.object({ n: z.number() }), execute: thrower }),
        defineTool({ name: 'timed', description: 'throws, with a timeout', parameters: z.object({ n: z.number() }), timeoutMs: 60_000, execute: thrower }),
      ],
      ...(hook && {
        redact: {
          error: (error: unknown) => {
            const e = error as { name: string; code?: string };
            return { name: String(e.name), message: 'redacted', ...(e.code !== undefined && { code: String(e.code) }) };
          },
        },
      }),
    });
  }

  protected async execute(input: Case, _ctx: RunContext): Promise<string> {
    await this.think('working');
    const n = register(input.hostile);
    if (input.where === 'execute') throw make(input.hostile);
    const tool = input.where.startsWith('timed') ? 'timed' : 'plain';
    try {
      await this.callTool(tool, { n });
    } catch (error) {
      if (input.where.endsWith('rethrown')) throw error;
    }
    return 'done';
  }
}

/** The hostile value a tool call throws, by a number its (JSON) args can carry. */
const pending = new Map<number, Hostile>();
let next = 0;
function register(hostile: Hostile): number {
  pending.set(++next, hostile);
  return next;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  hostile: hostileArb,
  where: fc.constantFrom<Where>('execute', 'tool-caught', 'tool-rethrown', 'timed-tool-caught', 'timed-tool-rethrown'),
  hook: fc.boolean(),
});

describe('attack: hostile thrown values never break a run lifecycle (property)', () => {
  it('every run resolves and ends with exactly one agent_completed, every tool call closed, no active run left', async () => {
    let i = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        // A bridge per case: a run that leaks shows as its own counterexample, not every later one.
        const transport = new MemoryTransport();
        const bridge = new AgentBridge({ transport });
        const threadId = `hostile-${++i}`;
        const result = await new Hostiles(bridge, c.hook).run(c, { userId: 'alice', threadId });
        expect(['succeeded', 'failed']).toContain(result.status);
        const events = transport.read(threadId, 'alice');
        expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
        expect(events.filter((event) => event.type === 'agent_completed')).toHaveLength(1);
        expect(events.at(-1)?.type).toBe('agent_completed');
        if (c.where !== 'execute') expect(events.filter((event) => event.type === 'tool_completed')).toHaveLength(1);
        // Events are JSON; no default (nor this hook) lets a non-SDK error's message out.
        if (c.hostile.base === 'error' || c.hostile.base === 'object' || c.hostile.base === 'string' || c.hostile.base === 'function' || c.hostile.base === 'symbol') {
          expect(JSON.stringify(events)).not.toContain(SECRET);
        }
        expect(bridge.metrics().activeRuns).toBe(0);
        await bridge.close();
      }),
      { numRuns: 200 },
    );
  });

  it('through a MemoryRunQueue: the status ends finished with the error the log’s agent_completed carries', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const queue = new MemoryRunQueue();
    queue.serve({ agents: { plain: new Hostiles(bridge, false), hooked: new Hostiles(bridge, true) } }, { concurrency: 4 });
    let i = 0;
    try {
      await fc.assert(
        fc.asyncProperty(caseArb, async (c) => {
          const threadId = `hostile-queue-${++i}`;
          const runId = await queue.submit(c.hook ? 'hooked' : 'plain', c, { userId: 'alice', threadId });
          // The log as the barrier: the run's terminal event, then its status.
          await until(() => transport.read(threadId, 'alice').some((event) => event.type === 'agent_completed'), 'agent_completed', 5_000);
          await untilAsync(async () => (await queue.status(runId))?.state === 'finished', 'the finished status', 5_000);
          const events = transport.read(threadId, 'alice');
          expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
          const terminal = events.at(-1)!;
          const status = (await queue.status(runId))!;
          expect(status.outcome).toBe((terminal.data as { status: string }).status);
          expect(status.error).toEqual((terminal.data as { error?: unknown }).error);
        }),
        { numRuns: 60 },
      );
    } finally {
      await queue.close({ timeoutMs: 100 });
      await bridge.close();
    }
  });
});
