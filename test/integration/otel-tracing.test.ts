import { SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { otelInstrumentation, type OtelInstrumentationOptions } from '../../src/otel/index.js';
import { BaseAgent, defineTool, type AgentEvent, type RunContext } from '../../src/index.js';
import { ScriptedAgent, type Step } from '../helpers/agents.js';
import { memoryTracing, useAsyncContext } from '../helpers/otel-tracing.js';

type Tracing = ReturnType<typeof memoryTracing>;
let tracing: Tracing;

afterEach(async () => {
  await tracing?.close();
});

function scripted(options: OtelInstrumentationOptions = {}) {
  tracing = memoryTracing();
  const agent = new ScriptedAgent({ instrumentation: otelInstrumentation({ tracer: tracing.tracer, ...options }) });
  const events: AgentEvent[] = [];
  agent.on('event', (event) => events.push(event));
  return { agent, events };
}

const byName = (spans: ReadableSpan[], name: string) => spans.filter((span) => span.name === name);
const only = (spans: ReadableSpan[], name: string): ReadableSpan => {
  const found = byName(spans, name);
  expect(found.map((span) => span.name)).toEqual([name]);
  return found[0]!;
};
const idOf = (span: ReadableSpan) => span.spanContext().spanId;
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const exceptionTypes = (span: ReadableSpan) => span.events.filter((e) => e.name === 'exception').map((e) => e.attributes?.['exception.type']);

function toolCallIds(events: AgentEvent[]): string[] {
  return events.flatMap((event) => (event.type === 'tool_executing' ? [event.data.toolCallId] : []));
}

/** Checks the run span's identity attributes and returns its tool spans (children, in start order). */
function expectRunTree(spans: ReadableSpan[], runId: string, threadId: string): { run: ReadableSpan; tools: ReadableSpan[] } {
  const run = spans.find((span) => span.name === 'invoke_agent scripted' && span.attributes['agentwire.run.id'] === runId);
  expect(run).toBeDefined();
  expect(run!.kind).toBe(SpanKind.INTERNAL);
  expect(run!.attributes).toMatchObject({
    'gen_ai.operation.name': 'invoke_agent',
    'gen_ai.agent.name': 'scripted',
    'gen_ai.conversation.id': threadId,
    'agentwire.thread.id': threadId,
    'agentwire.run.id': runId,
  });
  const tools = spans
    .filter((span) => span.name.startsWith('execute_tool ') && span.attributes['agentwire.run.id'] === runId)
    .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
  for (const tool of tools) {
    expect(tool.kind).toBe(SpanKind.INTERNAL);
    expect(parentOf(tool)).toBe(idOf(run!));
    expect(tool.spanContext().traceId).toBe(run!.spanContext().traceId);
    expect(tool.attributes).toMatchObject({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.type': 'function', 'gen_ai.conversation.id': threadId });
  }
  return { run: run!, tools };
}

/** An agent whose code and tool create spans of their own, to check what they nest under. */
class TracedAgent extends BaseAgent<{ key: string }, string> {
  /** The span a tool's code saw as active. */
  activeInTool: string | undefined;

  constructor(private readonly tracer: Tracer, options: OtelInstrumentationOptions) {
    super({ name: 'traced', instrumentation: otelInstrumentation({ tracer, ...options }) });
    this.addTool(
      defineTool({
        name: 'lookup',
        description: 'reads a key from a (traced) store',
        parameters: z.object({ key: z.string() }),
        execute: async ({ key }) => {
          await new Promise((resolve) => setTimeout(resolve, 1));
          this.activeInTool = trace.getActiveSpan()?.spanContext().spanId;
          return this.tracer.startActiveSpan('db.query', async (span) => {
            await new Promise((resolve) => setTimeout(resolve, 1));
            span.end();
            return `value of ${key}`;
          });
        },
      }),
    );
  }

  protected async execute({ key }: { key: string }, _ctx: RunContext): Promise<string> {
    const value = await this.tracer.startActiveSpan('plan', async (span) => {
      try {
        return await this.callTool<string>('lookup', { key });
      } finally {
        span.end();
      }
    });
    this.reportUsage({ inputTokens: 12, outputTokens: 5 });
    return value;
  }
}

describe('otelInstrumentation with an AsyncLocalStorage context manager (what NodeSDK registers)', () => {
  let undo: () => void;
  beforeAll(() => {
    undo = useAsyncContext();
  });
  afterAll(() => undo());

  it('a run is an invoke_agent span, each tool call an execute_tool child carrying the call id', async () => {
    const { agent, events } = scripted();
    const steps: Step[] = [{ think: 'hm' }, { tool: 'echo', args: { text: 'a' } }, { tool: 'echo', args: { text: 'b' } }];
    const result = await agent.run(steps, { userId: 'alice', threadId: 'thread-1' });
    expect(result.status).toBe('succeeded');

    const spans = tracing.spans();
    expect(spans).toHaveLength(3);
    const { run, tools } = expectRunTree(spans, result.runId, 'thread-1');
    expect(run.parentSpanContext).toBeUndefined();
    expect(run.status.code).toBe(SpanStatusCode.UNSET);
    expect(run.attributes['agentwire.run.status']).toBe('succeeded');
    expect(run.attributes['error.type']).toBeUndefined();
    expect(tools.map((span) => span.name)).toEqual(['execute_tool echo', 'execute_tool echo']);
    expect(tools.map((span) => span.attributes['gen_ai.tool.call.id'])).toEqual(toolCallIds(events));
    expect(tools.every((span) => span.status.code === SpanStatusCode.UNSET && span.attributes['gen_ai.tool.name'] === 'echo')).toBe(true);
    // Content and personal data are opt-in.
    for (const span of spans) {
      expect(Object.keys(span.attributes).filter((key) => /arguments|result|user\.id|provider/.test(key))).toEqual([]);
    }
  });

  it("spans nest: the caller's span > invoke_agent > the agent's own span > execute_tool > the tool's own span", async () => {
    tracing = memoryTracing();
    const agent = new TracedAgent(tracing.tracer, {});
    const result = await tracing.tracer.startActiveSpan('http POST /runs', async (span) => {
      try {
        return await agent.run({ key: 'k1' }, { userId: 'alice', threadId: 'thread-nest' });
      } finally {
        span.end();
      }
    });
    expect(result.output).toBe('value of k1');

    const spans = tracing.spans();
    const request = only(spans, 'http POST /runs');
    const run = only(spans, 'invoke_agent traced');
    const plan = only(spans, 'plan');
    const tool = only(spans, 'execute_tool lookup');
    const query = only(spans, 'db.query');
    expect(parentOf(run)).toBe(idOf(request));
    expect(parentOf(plan)).toBe(idOf(run));
    expect(parentOf(tool)).toBe(idOf(plan));
    expect(parentOf(query)).toBe(idOf(tool));
    expect(agent.activeInTool).toBe(idOf(tool));
    expect(new Set(spans.map((span) => span.spanContext().traceId)).size).toBe(1);
    expect(run.attributes).toMatchObject({ 'gen_ai.usage.input_tokens': 12, 'gen_ai.usage.output_tokens': 5 });
  });

  it('a failing tool: execute_tool gets ERROR, error.type and the exception; the run that caught it is fine', async () => {
    const { agent } = scripted();
    const result = await agent.run(
      [
        { tool: 'boom', args: {}, catchError: true },
        { tool: 'echo', args: { text: 1 }, catchError: true },
        { tool: 'nope', args: {}, catchError: true },
        { tool: 'hang', args: {}, catchError: true },
      ],
      { userId: 'alice', threadId: 'thread-fail' },
    );
    expect(result.status).toBe('succeeded');
    const { run, tools } = expectRunTree(tracing.spans(), result.runId, 'thread-fail');
    expect(run.status.code).toBe(SpanStatusCode.UNSET);
    expect(tools.map((span) => [span.name, span.status.code, span.attributes['error.type']])).toEqual([
      ['execute_tool boom', SpanStatusCode.ERROR, 'RangeError'],
      ['execute_tool echo', SpanStatusCode.ERROR, 'TOOL_INVALID_ARGS'],
      ['execute_tool nope', SpanStatusCode.ERROR, 'TOOL_NOT_FOUND'],
      ['execute_tool hang', SpanStatusCode.ERROR, 'TOOL_TIMEOUT'],
    ]);
    expect(tools[0]!.status.message).toContain('boom failed');
    // The SDK's recordException takes exception.type from the error's `code` when it has one.
    expect(tools.map(exceptionTypes)).toEqual([['TOOL_FAILED'], ['TOOL_INVALID_ARGS'], ['TOOL_NOT_FOUND'], ['TOOL_TIMEOUT']]);
  });

  it('a run that throws: invoke_agent gets ERROR with error.type, message and the exception', async () => {
    const { agent } = scripted();
    const result = await agent.run([{ tool: 'echo', args: { text: 'x' } }, { throw: 'kaput' }], { userId: 'alice', threadId: 'thread-throw' });
    expect(result.status).toBe('failed');
    const { run, tools } = expectRunTree(tracing.spans(), result.runId, 'thread-throw');
    expect(run.status).toEqual({ code: SpanStatusCode.ERROR, message: 'kaput' });
    expect(run.attributes).toMatchObject({ 'error.type': 'Error', 'agentwire.run.status': 'failed' });
    expect(exceptionTypes(run)).toEqual(['Error']);
    expect(tools.map((span) => span.status.code)).toEqual([SpanStatusCode.UNSET]);

    // A tool failure the agent does not catch fails both spans, with the tool's error class.
    const uncaught = await agent.run([{ tool: 'boom', args: {} }], { userId: 'alice', threadId: 'thread-throw' });
    const tree = expectRunTree(tracing.spans(), uncaught.runId, 'thread-throw');
    expect(tree.run.attributes['error.type']).toBe('RangeError');
    expect(tree.tools.map((span) => span.attributes['error.type'])).toEqual(['RangeError']);
  });

  it('recordExceptions: false keeps error.type and status ERROR, and records no message nor exception', async () => {
    const { agent } = scripted({ recordExceptions: false });
    const result = await agent.run([{ tool: 'boom', args: {}, catchError: true }, { throw: 'postgres://admin:hunter2@db' }], { userId: 'alice', threadId: 'thread-quiet' });
    expect(result.status).toBe('failed');
    const { run, tools } = expectRunTree(tracing.spans(), result.runId, 'thread-quiet');
    expect(run.status).toEqual({ code: SpanStatusCode.ERROR });
    expect(run.attributes['error.type']).toBe('Error');
    expect(tools.map((span) => [span.status, span.attributes['error.type']])).toEqual([[{ code: SpanStatusCode.ERROR }, 'RangeError']]);
    for (const span of [run, ...tools]) expect(span.events.filter((e) => e.name === 'exception')).toEqual([]);
    expect(JSON.stringify(tracing.spans().map((span) => [span.attributes, span.status, span.events]))).not.toContain('hunter2');
  });

  it('an aborted run: the open tool span and the run span end with ERROR, error.type ABORTED', async () => {
    const { agent, events } = scripted();
    const controller = new AbortController();
    agent.on('tool_executing', () => setTimeout(() => controller.abort(new Error('user pressed stop')), 1));
    const result = await agent.run([{ think: 'go' }, { tool: 'slow', args: {} }], { userId: 'alice', threadId: 'thread-abort', signal: controller.signal });
    expect(result.status).toBe('cancelled');
    expect(events.at(-1)?.data).toMatchObject({ status: 'cancelled' });
    const { run, tools } = expectRunTree(tracing.spans(), result.runId, 'thread-abort');
    expect(run.attributes).toMatchObject({ 'error.type': 'ABORTED', 'agentwire.run.status': 'cancelled' });
    expect(run.status.code).toBe(SpanStatusCode.ERROR);
    expect(run.status.message).toContain('user pressed stop');
    expect(tools).toHaveLength(1);
    expect(tools[0]!.status.code).toBe(SpanStatusCode.ERROR);
    expect(tools[0]!.attributes['error.type']).toBe('ABORTED');
    expect(tracing.spans().every((span) => span.ended)).toBe(true);
  });

  it('concurrent runs on one agent: every tool span is a child of its own run span', async () => {
    const { agent } = scripted();
    const steps = (text: string): Step[] => [{ tool: 'echo', args: { text } }, { think: text }, { tool: 'echo', args: { text } }];
    const results = await Promise.all(['a', 'b', 'c'].map((text) => agent.run(steps(text), { userId: `user-${text}`, threadId: `thread-${text}` })));
    for (const [i, result] of results.entries()) {
      const { tools } = expectRunTree(tracing.spans(), result.runId, `thread-${'abc'[i]}`);
      expect(tools).toHaveLength(2);
    }
    expect(tracing.spans()).toHaveLength(9);
  });

  it('opt-ins: tool arguments/results (truncated), user.id and gen_ai.provider.name', async () => {
    const { agent } = scripted({ captureToolContent: true, maxContentLength: 12, recordUserId: true, providerName: 'openai' });
    const result = await agent.run([{ tool: 'echo', args: { text: 'short' } }, { tool: 'echo', args: { text: 'a much longer text' } }], {
      userId: 'alice',
      threadId: 'thread-opt',
    });
    const { run, tools } = expectRunTree(tracing.spans(), result.runId, 'thread-opt');
    expect(run.attributes).toMatchObject({ 'user.id': 'alice', 'gen_ai.provider.name': 'openai' });
    expect(tools.map((span) => [span.attributes['gen_ai.tool.call.arguments'], span.attributes['gen_ai.tool.call.result']])).toEqual([
      ['{"text":"sho', 'short'],
      ['{"text":"a m', 'a much longe'],
    ]);
  });
});

describe('otelInstrumentation without a context manager', () => {
  it('tool spans still nest under their run span (explicit parent), also for concurrent runs', async () => {
    const { agent, events } = scripted();
    const results = await Promise.all(
      ['x', 'y'].map((text) => agent.run([{ tool: 'echo', args: { text } }, { tool: 'boom', args: {}, catchError: true }], { userId: 'u', threadId: `t-${text}` })),
    );
    for (const [i, result] of results.entries()) {
      const { tools } = expectRunTree(tracing.spans(), result.runId, `t-${'xy'[i]}`);
      expect(tools.map((span) => span.attributes['gen_ai.tool.call.id'])).toEqual(toolCallIds(events.filter((e) => e.runId === result.runId)));
    }
  });

  it('uses the global tracer provider by default (a no-op until one is registered)', async () => {
    tracing = memoryTracing();
    const agent = new ScriptedAgent({ instrumentation: otelInstrumentation() });
    const before = await agent.run([{ tool: 'echo', args: { text: 'a' } }], { userId: 'u', threadId: 't-global' });
    expect(before.status).toBe('succeeded');
    expect(tracing.spans()).toEqual([]);

    expect(trace.setGlobalTracerProvider(tracing.provider)).toBe(true);
    try {
      const after = await agent.run([{ tool: 'echo', args: { text: 'a' } }], { userId: 'u', threadId: 't-global' });
      expect(tracing.spans().map((span) => span.name)).toEqual(['execute_tool echo', 'invoke_agent scripted']);
      expectRunTree(tracing.spans(), after.runId, 't-global');
    } finally {
      trace.disable();
    }
  });
});
