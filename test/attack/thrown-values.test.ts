/**
 * Values thrown or rejected with by code that is not ours (an agent's execute, a tool, an abort
 * reason, a transport) that throw themselves when looked at: a revoked proxy (any instanceof or
 * property read is a TypeError) and a proxy of an Error whose every property read throws. Each run
 * still ends with exactly one agent_completed, and the process keeps serving (outside attack F1:
 * run() rejected with the raw TypeError and the run never completed).
 */
import { describe, expect, it } from 'vitest';
import { until } from '../helpers/wait.js';
import { z } from 'zod';
import { AgentBridge, BaseAgent, MemoryTransport, defineTool, validateLifecycle, type AgentEvent, type RunContext, type Transport } from '../../src/index.js';

type Hostile = 'revoked' | 'throwing-error';

function hostile(kind: Hostile): unknown {
  if (kind === 'revoked') {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    return proxy;
  }
  return new Proxy(new Error('hidden'), {
    get() {
      throw new Error('no reading this');
    },
  });
}

type Where = 'execute' | 'tool' | 'abort';

class Thrower extends BaseAgent<{ where: Where; kind: Hostile }, string> {
  constructor(bridge: AgentBridge) {
    super({
      name: 'thrower',
      bridge,
      tools: [
        defineTool({
          name: 'bad',
          description: 'throws what it is told to',
          parameters: z.object({ kind: z.enum(['revoked', 'throwing-error']) }),
          execute: ({ kind }) => {
            throw hostile(kind);
          },
        }),
      ],
    });
  }
  protected async execute({ where, kind }: { where: Where; kind: Hostile }, _ctx: RunContext): Promise<string> {
    await this.think('working');
    if (where === 'tool') {
      // The tool's failure reaches the agent as a ToolError; the agent goes on.
      const failure = await this.callTool('bad', { kind }).then(
        () => 'no error',
        (error: { code?: string }) => String(error.code),
      );
      return failure;
    }
    if (where === 'abort') return new Promise<string>(() => undefined); // cancelled from outside
    throw hostile(kind);
  }
}

const completedOf = (events: AgentEvent[]) => events.filter((event) => event.type === 'agent_completed');

describe('attack: thrown values that throw when looked at', () => {
  for (const kind of ['revoked', 'throwing-error'] as const) {
    it(`a tool result whose toJSON throws a ${kind} proxy: the call fails RESULT_NOT_SERIALIZABLE (unserializable), the run goes on and succeeds`, async () => {
      const transport = new MemoryTransport();
      const bridge = new AgentBridge({ transport });
      const threadId = `thrown-tojson-${kind}`;
      class Poisoned extends BaseAgent<void, string> {
        constructor() {
          super({ name: 'poisoned', bridge, tools: [defineTool({ name: 'poison', description: 'a result that cannot be shown', parameters: z.object({}), execute: () => ({ toJSON: () => { throw hostile(kind); } }) })] });
        }
        protected async execute(): Promise<string> {
          return this.callTool('poison', {}).then(
            () => 'no error',
            (error: { code?: string; details?: { reason?: string } }) => `${String(error.code)}/${String(error.details?.reason)}`,
          );
        }
      }
      const result = await new Poisoned().run(undefined, { userId: 'alice', threadId });
      expect(result).toMatchObject({ status: 'succeeded', output: 'RESULT_NOT_SERIALIZABLE/unserializable' });
      const events = transport.read(threadId, 'alice');
      expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
      expect(events.find((event) => event.type === 'tool_completed')?.data).toMatchObject({ status: 'failed', error: { name: 'ToolError' } });
      await bridge.close();
    });

    it(`execute() throws a ${kind} proxy: the run fails with one agent_completed, run() resolves`, async () => {
      const transport = new MemoryTransport();
      const bridge = new AgentBridge({ transport });
      const threadId = `thrown-execute-${kind}`;
      const result = await new Thrower(bridge).run({ where: 'execute', kind }, { userId: 'alice', threadId });
      expect(result.status).toBe('failed');
      const events = transport.read(threadId, 'alice');
      expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
      expect(completedOf(events)).toHaveLength(1);
      expect(completedOf(events)[0]!.data).toMatchObject({ status: 'failed', error: { name: 'Error', message: 'Agent "thrower" failed' } });
      expect(bridge.metrics().activeRuns).toBe(0);
      await bridge.close();
    });

    it(`a tool throws a ${kind} proxy: tool_completed failed (the default for a tool's own error), the agent gets ToolError TOOL_FAILED and its run succeeds`, async () => {
      const transport = new MemoryTransport();
      const bridge = new AgentBridge({ transport });
      const threadId = `thrown-tool-${kind}`;
      const result = await new Thrower(bridge).run({ where: 'tool', kind }, { userId: 'alice', threadId });
      expect(result).toMatchObject({ status: 'succeeded', output: 'TOOL_FAILED' });
      const events = transport.read(threadId, 'alice');
      expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
      const completed = events.find((event) => event.type === 'tool_completed');
      expect(completed?.data).toMatchObject({ status: 'failed', error: { name: 'Error', message: 'Tool "bad" failed' } });
      await bridge.close();
    });

    it(`a run aborted with a ${kind} proxy as the reason is cancelled with one agent_completed`, async () => {
      const transport = new MemoryTransport();
      const bridge = new AgentBridge({ transport });
      const threadId = `thrown-abort-${kind}`;
      const controller = new AbortController();
      const running = new Thrower(bridge).run({ where: 'abort', kind }, { userId: 'alice', threadId, signal: controller.signal });
      // The log as the barrier: abort once the run's first thought is in it.
      await until(() => transport.read(threadId, 'alice').some((event) => event.type === 'agent_thinking'), 'the first thought', 5_000);
      controller.abort(hostile(kind));
      const result = await running;
      expect(result.status).toBe('cancelled');
      const events = transport.read(threadId, 'alice');
      expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
      expect(completedOf(events)[0]!.data).toMatchObject({ status: 'cancelled' });
      await bridge.close();
    });

    it(`a transport that rejects with a ${kind} proxy: the bridge holds and retries, then delivers the next runs once it is back`, async () => {
      let failing = true;
      const stored: AgentEvent[] = [];
      const transport: Transport = {
        async send(event) {
          if (failing) throw hostile(kind);
          stored.push(event);
        },
        async close() {},
      };
      const bridge = new AgentBridge({ transport, retry: { retries: 1, minTimeoutMs: 1, maxTimeoutMs: 2, randomize: false }, recoveryIntervalMs: 10 });
      const agent = new Thrower(bridge);
      const first = await agent.run({ where: 'tool', kind }, { userId: 'alice', threadId: `thrown-transport-${kind}` });
      expect(first.status).toBe('succeeded');
      expect(bridge.state).toBe('degraded');
      failing = false;
      const later = await agent.run({ where: 'tool', kind }, { userId: 'bob', threadId: `thrown-transport-${kind}-after` });
      expect(later).toMatchObject({ status: 'succeeded', deliveryErrors: [] });
      // What the transport got: both runs, whole and in order (alice's were held, then delivered).
      expect(validateLifecycle(stored.filter((event) => event.userId === 'bob'))).toEqual({ ok: true, runs: 1 });
      await bridge.close();
      expect(validateLifecycle(stored.filter((event) => event.userId === 'alice'))).toEqual({ ok: true, runs: 1 });
    });

    it(`a transport whose health() throws a ${kind} proxy: bridge.health() reports it, and a run waiting for the lazy start ends instead of hanging`, async () => {
      const transport: Transport = {
        async send() {},
        async close() {},
        async health() {
          throw hostile(kind);
        },
      };
      const bridge = new AgentBridge({ transport });
      expect((await bridge.health()).transport).toMatchObject({ ok: false });
      // The first run starts the bridge lazily; the check fails: the run is refused (its agent_started
      // reported undelivered, caused by BRIDGE_FAILED), without running execute.
      const run = new Thrower(bridge).run({ where: 'tool', kind }, { userId: 'alice', threadId: `thrown-health-${kind}` });
      await expect(run).rejects.toMatchObject({ name: 'StateError', code: 'BRIDGE_FAILED', cause: { code: 'UNDELIVERED', causeCode: 'BRIDGE_FAILED' } });
      expect(bridge.state).toBe('failed');
      expect(bridge.metrics().activeRuns).toBe(0);
      await bridge.close();
    });
  }
});
