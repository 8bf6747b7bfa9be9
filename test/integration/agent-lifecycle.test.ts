import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  AbortError,
  AgentBridge,
  AuthError,
  BaseAgent,
  MemoryTransport,
  StateError,
  ToolError,
  ValidationError,
  defineTool,
  generateRunId,
  validateLifecycle,
  type AgentEvent,
  type RunContext,
} from '../../src/index.js';
import { ScriptedAgent, type Step } from '../helpers/agents.js';

/** Runs a script through a real bridge + memory transport and returns what a subscriber of the user received. */
async function runScript(steps: Step[], options: { abortAfterMs?: number } = {}) {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  const agent = new ScriptedAgent({ bridge });
  const received: AgentEvent[] = [];
  transport.subscribeSync({ userId: 'alice', threadId: 't1' }, { onEntries: (entries) => received.push(...entries.map((e) => e.event)) });
  const controller = new AbortController();
  if (options.abortAfterMs !== undefined) setTimeout(() => controller.abort(new Error('user pressed stop')), options.abortAfterMs);
  const result = await agent.run(steps, { userId: 'alice', threadId: 't1', signal: controller.signal });
  await bridge.close();
  return { result, received, types: received.map((e) => e.type) };
}

describe('BaseAgent lifecycle (received by a subscriber)', () => {
  it('success: started, thinking, tool pair, completed with result', async () => {
    const { result, received, types } = await runScript([{ think: 'plan' }, { tool: 'echo', args: { text: 'hi' } }]);
    expect(result.status).toBe('succeeded');
    expect(result.output).toBe('hi');
    expect(types).toEqual(['agent_started', 'agent_thinking', 'tool_executing', 'tool_completed', 'agent_completed']);
    expect(validateLifecycle(received).ok).toBe(true);
    const completed = received[3]!;
    expect(completed.type === 'tool_completed' && completed.data).toMatchObject({ status: 'succeeded', result: 'hi', tool: 'echo' });
    expect(received.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(received.map((e) => e.id)).size).toBe(5);
  });

  it('tool failure is reported with the error name and a generic message, and the run can go on', async () => {
    const { result, received } = await runScript([{ tool: 'boom', args: {}, catchError: true }, { think: 'recovered' }]);
    expect(result.status).toBe('succeeded');
    expect(result.output).toBe('error:ToolError');
    const failed = received.find((e) => e.type === 'tool_completed')!;
    // The tool's own message ('boom failed') stays in the process (redact.error decides otherwise).
    expect(failed.type === 'tool_completed' && failed.data.status === 'failed' && failed.data.error).toEqual({ name: 'RangeError', message: 'Tool "boom" failed' });
    expect(validateLifecycle(received).ok).toBe(true);
  });

  it('unknown tool and invalid args give a failed tool_completed and a ToolError, never a crash', async () => {
    const { result, received } = await runScript([
      { tool: 'nope', args: {}, catchError: true },
      { tool: 'echo', args: { text: 42 }, catchError: true },
    ]);
    expect(result.status).toBe('succeeded');
    const failures = received.filter((e) => e.type === 'tool_completed').map((e) => (e.type === 'tool_completed' && e.data.status === 'failed' ? e.data.error : null));
    expect(failures[0]).toMatchObject({ name: 'ToolError', code: 'TOOL_NOT_FOUND' });
    expect(failures[1]).toMatchObject({ name: 'ToolError', code: 'TOOL_INVALID_ARGS' });
    expect(failures[1]!.message).toContain('args.text');
    expect(validateLifecycle(received).ok).toBe(true);
  });

  it('a thrown error fails the run with one agent_completed carrying the error', async () => {
    const { result, received, types } = await runScript([{ think: 'a' }, { throw: 'kaput' }]);
    expect(result.status).toBe('failed');
    expect(result.error?.message).toBe('kaput');
    expect(types.filter((t) => t === 'agent_completed')).toHaveLength(1);
    const last = received.at(-1)!;
    expect(last.type === 'agent_completed' && last.data).toMatchObject({ status: 'failed', error: { name: 'Error', message: 'Agent "scripted" failed' } });
    expect(JSON.stringify(last)).not.toContain('kaput');
    expect(result.error?.message).toBe('kaput'); // the caller still sees the real error
    expect(validateLifecycle(received).ok).toBe(true);
  });

  it('a thrown tool error that is not caught closes the tool first, then fails the run', async () => {
    const { result, types, received } = await runScript([{ tool: 'boom', args: {} }]);
    expect(result.status).toBe('failed');
    expect(result.error).toBeInstanceOf(ToolError);
    expect(types).toEqual(['agent_started', 'tool_executing', 'tool_completed', 'agent_completed']);
    expect(validateLifecycle(received).ok).toBe(true);
  });

  it('tool timeout: failed tool_completed with ToolTimeoutError', async () => {
    const { result, received } = await runScript([{ tool: 'hang', args: {}, catchError: true }]);
    expect(result.status).toBe('succeeded');
    const done = received.find((e) => e.type === 'tool_completed')!;
    expect(done.type === 'tool_completed' && done.data).toMatchObject({ status: 'failed', error: { name: 'ToolTimeoutError', code: 'TOOL_TIMEOUT' } });
    expect(validateLifecycle(received).ok).toBe(true);
  });

  it('abort mid-tool closes the tool with AbortError, then cancels the run', async () => {
    const { result, received, types } = await runScript([{ think: 'x' }, { tool: 'slow', args: {} }], { abortAfterMs: 30 });
    expect(result.status).toBe('cancelled');
    expect(result.error).toBeInstanceOf(AbortError);
    expect(types).toEqual(['agent_started', 'agent_thinking', 'tool_executing', 'tool_completed', 'agent_completed']);
    const tool = received[3]!;
    expect(tool.type === 'tool_completed' && tool.data).toMatchObject({ status: 'failed', error: { name: 'AbortError' } });
    const last = received[4]!;
    expect(last.type === 'agent_completed' && last.data).toMatchObject({ status: 'cancelled', error: { name: 'AbortError' } });
    expect(last.type === 'agent_completed' && last.data.status !== 'succeeded' && last.data.error.message).toContain('user pressed stop');
    expect(validateLifecycle(received).ok).toBe(true);
  });

  it('abort of an agent that ignores its signal still ends the run exactly once', async () => {
    const { result, received } = await runScript([{ wait: 'abort' }], { abortAfterMs: 10 });
    expect(result.status).toBe('cancelled');
    expect(received.filter((e) => e.type === 'agent_completed')).toHaveLength(1);
    expect(validateLifecycle(received).ok).toBe(true);
  });

  it('an already-aborted signal yields started + cancelled, and execute never runs tools', async () => {
    const agent = new ScriptedAgent();
    const types: string[] = [];
    agent.on('event', (e) => types.push(e.type));
    const result = await agent.run([{ tool: 'echo', args: { text: 'x' } }], { userId: 'u', threadId: 't', signal: AbortSignal.abort() });
    expect(result.status).toBe('cancelled');
    expect(types).toEqual(['agent_started', 'agent_completed']);
  });

  it('a throwing local listener never changes the outcome; it is counted and reported', async () => {
    const agent = new ScriptedAgent();
    const reported: unknown[] = [];
    const seen: string[] = [];
    agent.on('agent_thinking', () => {
      throw new Error('listener bug');
    });
    agent.on('agent_thinking', (e) => seen.push(e.data.text));
    agent.on('listener_error', (error) => reported.push(error));
    const result = await agent.run([{ think: 'a' }, { think: 'b' }], { userId: 'u', threadId: 't' });
    expect(result.status).toBe('succeeded');
    expect(seen).toEqual(['a', 'b']);
    expect(agent.listenerErrors).toBe(2);
    expect(reported).toHaveLength(2);
  });

  it('runs with no bridge and emits locally', async () => {
    const agent = new ScriptedAgent();
    const events: AgentEvent[] = [];
    agent.on('event', (e) => events.push(e));
    const result = await agent.run([{ think: 'solo' }], { userId: 'u', threadId: 't' });
    expect(result.status).toBe('succeeded');
    expect(validateLifecycle(events).ok).toBe(true);
  });

  it('rejects bad run options with ValidationError and another user\'s thread with AuthError, before any event', async () => {
    const bridge = new AgentBridge();
    const agent = new ScriptedAgent({ bridge });
    const events: AgentEvent[] = [];
    agent.on('event', (e) => events.push(e));
    await agent.run([], { userId: 'alice', threadId: 'owned' });
    events.length = 0;
    await expect(agent.run([], { userId: '', threadId: 't' })).rejects.toBeInstanceOf(ValidationError);
    await expect(agent.run([], { userId: 'u', threadId: 'bad thread' })).rejects.toMatchObject({ code: 'INVALID_THREAD_ID' });
    await expect(agent.run([], { userId: 'u', threadId: 't', runId: generateRunId('other') })).rejects.toMatchObject({ code: 'RUN_THREAD_MISMATCH' });
    await expect(agent.run([], { userId: 'mallory', threadId: 'owned' })).rejects.toBeInstanceOf(AuthError);
    expect(events).toEqual([]);
    await bridge.close();
  });

  it('think() outside a run rejects with a StateError (never a synchronous throw, never a silent no-op)', async () => {
    let promise: Promise<void> | undefined;
    expect(() => (promise = new ScriptedAgent().think('lost'))).not.toThrow();
    await expect(promise).rejects.toBeInstanceOf(StateError);
    await expect(promise).rejects.toMatchObject({ code: 'NO_ACTIVE_RUN' });
  });

  it('reports usage in agent_completed', async () => {
    class Counting extends BaseAgent<void, string> {
      protected async execute(): Promise<string> {
        this.reportUsage({ inputTokens: 10, outputTokens: 3 });
        this.reportUsage({ inputTokens: 5, outputTokens: 2 });
        return 'ok';
      }
    }
    const agent = new Counting();
    let usage: unknown;
    agent.on('agent_completed', (e) => (usage = e.data.usage));
    const result = await agent.run(undefined, { userId: 'u', threadId: 't' });
    expect(result.usage).toEqual({ inputTokens: 15, outputTokens: 5 });
    expect(usage).toEqual({ inputTokens: 15, outputTokens: 5 });
  });
});

describe('one agent instance, 100 concurrent runs for 100 users', () => {
  it('every think() and tool call lands in its own run; zero cross-user events received', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    class Interleaver extends BaseAgent<{ rounds: number }, string> {
      constructor() {
        super({
          name: 'interleaver',
          bridge,
          tools: [
            defineTool({
              name: 'whoami',
              description: 'returns the run user (from the tool context)',
              parameters: z.object({ round: z.number() }),
              execute: async ({ round }, ctx) => {
                await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
                return `${ctx.userId}:${round}`;
              },
            }),
          ],
        });
      }
      protected async execute({ rounds }: { rounds: number }, ctx: RunContext): Promise<string> {
        for (let round = 0; round < rounds; round++) {
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
          await this.think(`${ctx.userId} round ${round}`);
          const who = await this.callTool<string>('whoami', { round });
          if (!who.startsWith(`${ctx.userId}:`)) throw new Error(`tool ran in the wrong run: ${who}`);
        }
        return ctx.userId;
      }
    }
    const agent = new Interleaver();
    const users = Array.from({ length: 100 }, (_, i) => `user-${i}`);
    const received = new Map<string, AgentEvent[]>();
    for (const userId of users) {
      const events: AgentEvent[] = [];
      received.set(userId, events);
      transport.subscribeSync({ userId, threadId: `thread-${userId}` }, { onEntries: (entries) => events.push(...entries.map((e) => e.event)) });
    }
    const results = await Promise.all(users.map((userId) => agent.run({ rounds: 5 }, { userId, threadId: `thread-${userId}` })));
    expect(results.every((r, i) => r.status === 'succeeded' && r.output === users[i])).toBe(true);
    for (const userId of users) {
      const events = received.get(userId)!;
      expect(events).toHaveLength(1 + 5 * 3 + 1);
      expect(events.every((e) => e.userId === userId)).toBe(true);
      expect(validateLifecycle(events).ok).toBe(true);
      const thoughts = events.flatMap((e) => (e.type === 'agent_thinking' ? [e.data.text] : []));
      expect(thoughts.every((text) => text.startsWith(`${userId} `))).toBe(true);
    }
    expect(transport.isolationDrops).toBe(0);
    await bridge.close();
  });
});

describe('run signals', () => {
  it('leaves no listener on a caller signal shared by many runs', async () => {
    const agent = new ScriptedAgent();
    const controller = new AbortController();
    let added = 0;
    let removed = 0;
    const add = controller.signal.addEventListener.bind(controller.signal);
    const remove = controller.signal.removeEventListener.bind(controller.signal);
    controller.signal.addEventListener = ((...args: Parameters<typeof add>) => (added++, add(...args))) as typeof add;
    controller.signal.removeEventListener = ((...args: Parameters<typeof remove>) => (removed++, remove(...args))) as typeof remove;
    for (let i = 0; i < 20; i++) {
      await agent.run([{ think: 'x' }, { tool: 'echo', args: { text: 'y' } }], { userId: 'u', threadId: 't', signal: controller.signal });
    }
    expect(added).toBeGreaterThan(0);
    expect(removed).toBe(added);
  });
});

describe('redaction', () => {
  it('redacts input, tool args, tool results and output in events while the agent sees real values', async () => {
    const agent = new ScriptedAgent({
      redact: {
        input: () => '[input]',
        toolArgs: (tool, args) => (tool === 'echo' ? { text: '[secret]' } : args),
        toolResult: () => '[result]',
        output: () => '[output]',
      },
    });
    const events: AgentEvent[] = [];
    agent.on('event', (e) => events.push(e));
    const result = await agent.run([{ tool: 'echo', args: { text: 'sk-live-123' } }], { userId: 'u', threadId: 't' });
    expect(result.output).toBe('sk-live-123');
    const json = JSON.stringify(events);
    expect(json).not.toContain('sk-live-123');
    expect(events.map((e) => e.data)).toMatchObject([
      { input: '[input]' },
      { args: { text: '[secret]' } },
      { result: '[result]' },
      { result: '[output]' },
    ]);
  });
});
