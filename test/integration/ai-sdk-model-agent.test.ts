import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { LanguageModelV3CallOptions, LanguageModelV3StreamPart } from '@ai-sdk/provider';
import { MockLanguageModelV3, convertArrayToReadableStream } from 'ai/test';
import { ModelAgent, runModel, type ModelAgentOptions } from '../../src/ai-sdk/index.js';
import {
  AgentBridge,
  BaseAgent,
  MemoryTransport,
  defineTool,
  validateLifecycle,
  type AgentEvent,
  type EventOfType,
  type RunContext,
} from '../../src/index.js';
import {
  answerStep,
  finish,
  hangAfter,
  overloaded,
  reasoning,
  scriptedModel,
  text,
  toolCall,
  toolResultsSent,
  toolStep,
  unauthorized,
  type StepScript,
} from '../helpers/ai-models.js';

const weather = defineTool({
  name: 'get_weather',
  description: 'Current weather of a city',
  parameters: z.object({ city: z.string().min(1) }),
  execute: ({ city }) => ({ city, tempC: 21 }),
});

const flaky = defineTool({
  name: 'flaky',
  description: 'Always fails',
  parameters: z.object({}),
  execute: () => {
    throw new RangeError('flaky backend down');
  },
});

/** Waits for the run's signal (no timeout): lets a test abort mid-tool. */
const slow = defineTool({
  name: 'slow',
  description: 'Waits until the run is aborted',
  parameters: z.object({}),
  execute: (_args, ctx) =>
    new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
});

type Options = Partial<Omit<ModelAgentOptions, 'model'>>;

/** Runs a ModelAgent on a scripted AI SDK test model through a real bridge; returns what alice's subscriber received. */
async function runModelAgent(steps: StepScript[] | MockLanguageModelV3, options: Options = {}, setup?: (agent: ModelAgent, abort: AbortController) => void) {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  const model = steps instanceof MockLanguageModelV3 ? steps : scriptedModel(steps);
  const agent = new ModelAgent({
    name: 'weather',
    model,
    system: 'You answer weather questions.',
    tools: [weather, flaky, slow],
    bridge,
    thinking: { flush: 'step' },
    ...options,
  });
  const received: AgentEvent[] = [];
  transport.subscribeSync({ userId: 'alice', threadId: 'chat-1' }, { onEntries: (entries) => received.push(...entries.map((e) => e.event)) });
  const controller = new AbortController();
  setup?.(agent, controller);
  const result = await agent.run('Weather in Paris?', { userId: 'alice', threadId: 'chat-1', signal: controller.signal });
  await bridge.close();
  expect(validateLifecycle(received)).toEqual({ ok: true, runs: 1 });
  return { result, received, model, types: received.map((e) => e.type) };
}

const ofType = <T extends AgentEvent['type']>(events: AgentEvent[], type: T) => events.filter((e): e is EventOfType<T> => e.type === type);
const thoughts = (events: AgentEvent[]) => ofType(events, 'agent_thinking').map((e) => e.data);

describe('ModelAgent: the five events from a model run (AI SDK MockLanguageModelV3)', () => {
  it('reasoning, progress text, a tool call and the answer: thinking before the tool, result and usage', async () => {
    const local: AgentEvent[] = [];
    const { result, received, types, model } = await runModelAgent(
      [
        toolStep([...reasoning('I need the ', 'weather. ', 'Let me check it now.'), ...text('Checking.')], toolCall('m1', 'get_weather', { city: 'Paris' })),
        answerStep(text('It is ', '21°C in Paris.')),
      ],
      {},
      (agent) => agent.on('event', (event) => local.push(event)),
    );
    expect(types).toEqual(['agent_started', 'agent_thinking', 'agent_thinking', 'tool_executing', 'tool_completed', 'agent_completed']);
    expect(thoughts(received)).toEqual([
      { text: 'I need the weather. Let me check it now.', step: 0 },
      { text: 'Checking.', step: 0 },
    ]);
    const [executing] = ofType(received, 'tool_executing');
    const [completed] = ofType(received, 'tool_completed');
    expect(executing!.data).toMatchObject({ tool: 'get_weather', args: { city: 'Paris' } });
    expect(completed!.data).toMatchObject({ toolCallId: executing!.data.toolCallId, status: 'succeeded', result: { city: 'Paris', tempC: 21 } });
    expect(completed!.data.durationMs).toBeGreaterThanOrEqual(0);
    const [done] = ofType(received, 'agent_completed');
    expect(done!.data).toMatchObject({ status: 'succeeded', result: 'It is 21°C in Paris.', usage: { inputTokens: 20, outputTokens: 10 } });
    expect(result).toMatchObject({ status: 'succeeded', output: 'It is 21°C in Paris.', usage: { inputTokens: 20, outputTokens: 10 } });
    // The model got the tool's result back, and the system prompt and our tool's JSON schema.
    expect(toolResultsSent(model.doStreamCalls[1])).toEqual([{ toolName: 'get_weather', output: { type: 'json', value: { city: 'Paris', tempC: 21 } } }]);
    expect(model.doStreamCalls[0]!.prompt[0]).toEqual({ role: 'system', content: 'You answer weather questions.' });
    const offered = model.doStreamCalls[0]!.tools?.find((tool) => tool.name === 'get_weather');
    expect(offered).toMatchObject({ type: 'function', inputSchema: { type: 'object', properties: { city: { type: 'string', minLength: 1 } }, required: ['city'] } });
    // Local listeners saw the very same events (same ids), as for a hand-written agent.
    expect(local.map((e) => e.id)).toEqual(received.map((e) => e.id));
  });

  it('invalid args, an unknown tool, unparsable JSON and a throwing tool: failed pairs, in the model order, errors back to the model', async () => {
    const { result, received, model } = await runModelAgent([
      toolStep(
        [],
        toolCall('m1', 'get_weather', { city: 'Paris' }),
        toolCall('m2', 'get_weather', { city: 42 }),
        toolCall('m3', 'get_stock', { symbol: 'ACME' }),
        toolCall('m4', 'get_weather', '{"city": "Par'),
        toolCall('m5', 'flaky', {}),
      ),
      answerStep(text('Paris is at 21°C; the rest failed.')),
    ]);
    expect(result.status).toBe('succeeded');
    const executing = ofType(received, 'tool_executing').map((e) => e.data);
    expect(executing.map((d) => [d.tool, d.args])).toEqual([
      ['get_weather', { city: 'Paris' }],
      ['get_weather', { city: 42 }],
      ['get_stock', { symbol: 'ACME' }],
      ['get_weather', '{"city": "Par'],
      ['flaky', {}],
    ]);
    const completed = new Map(ofType(received, 'tool_completed').map((e) => [e.data.toolCallId, e.data]));
    const outcome = executing.map((d) => {
      const data = completed.get(d.toolCallId)!;
      return data.status === 'succeeded' ? 'succeeded' : `${data.error.name}:${data.error.code ?? ''}`;
    });
    expect(outcome).toEqual(['succeeded', 'ToolError:TOOL_INVALID_ARGS', 'ToolError:TOOL_NOT_FOUND', 'ToolError:TOOL_INVALID_ARGS', 'RangeError:']);
    const flakyDone = completed.get(executing[4]!.toolCallId)!;
    // The event carries the tool error's name and a generic message (redact.error's default); the model got the real one.
    expect(flakyDone.status === 'failed' && flakyDone.error.message).toBe('Tool "flaky" failed');
    // Every call went back to the model as a tool result: the four failures as error texts.
    const sent = toolResultsSent(model.doStreamCalls[1]);
    expect(sent.map((r) => [r.toolName, (r.output as { type: string }).type])).toEqual([
      ['get_weather', 'json'],
      ['get_weather', 'error-text'],
      ['get_stock', 'error-text'],
      ['get_weather', 'error-text'],
      ['flaky', 'error-text'],
    ]);
    const errorText = (index: number) => (sent[index]!.output as { value: string }).value;
    expect(errorText(1)).toContain('args.city'); // our validation message, naming the field
    expect(errorText(2)).toContain("unavailable tool 'get_stock'");
    expect(errorText(3)).toContain('JSON parsing failed');
    expect(errorText(4)).toContain('flaky backend down');
  });

  it('several steps: thinking carries the step, usage is summed, maxSteps bounds the loop', async () => {
    const step = (n: number) => toolStep(reasoning(`Step ${n}.`), toolCall(`m${n}`, 'get_weather', { city: `City${n}` }));
    const { received, model, result } = await runModelAgent([step(0), step(1), step(2), step(3), answerStep(text('never reached'))], { maxSteps: 3 });
    expect(model.doStreamCalls).toHaveLength(3);
    expect(thoughts(received)).toEqual([
      { text: 'Step 0.', step: 0 },
      { text: 'Step 1.', step: 1 },
      { text: 'Step 2.', step: 2 },
    ]);
    expect(ofType(received, 'tool_completed').map((e) => e.data.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(result).toMatchObject({ status: 'succeeded', output: '', usage: { inputTokens: 30, outputTokens: 15 } });
    // Thinking of step n comes before its tool call, and after the previous step's tool result.
    expect(received.map((e) => e.type).slice(1, 7)).toEqual(['agent_thinking', 'tool_executing', 'tool_completed', 'agent_thinking', 'tool_executing', 'tool_completed']);
  });
});

describe('ModelAgent: deltas become agent_thinking at a sane granularity', () => {
  const chars = (value: string) => [...value];
  const reasoningText = 'First, find the city. Then call the tool. Finally answer.';

  it("'sentence' flush: one event per sentence, never one per token", async () => {
    const { received } = await runModelAgent([answerStep(reasoning(...chars(reasoningText)), text(...chars('Sunny.')))], {
      thinking: { flush: 'sentence', minChars: 0, maxDelayMs: 0 },
    });
    expect(thoughts(received).map((t) => t.text)).toEqual(['First, find the city. ', 'Then call the tool. ', 'Finally answer.']);
    expect(ofType(received, 'agent_completed')[0]!.data).toMatchObject({ result: 'Sunny.' });
  });

  it("'sentence' flush with minChars groups short sentences", async () => {
    const { received } = await runModelAgent([answerStep(reasoning(...chars(reasoningText)))], { thinking: { flush: 'sentence', minChars: 40, maxDelayMs: 0 } });
    expect(thoughts(received).map((t) => t.text)).toEqual(['First, find the city. Then call the tool. ', 'Finally answer.']);
  });

  it("'sentence' flush: maxDelayMs emits an unfinished sentence while the model is still streaming", async () => {
    let flushed!: () => void;
    const emitted = new Promise<void>((resolve) => (flushed = resolve));
    const model = new MockLanguageModelV3({
      doStream: async () => ({
        stream: new ReadableStream<LanguageModelV3StreamPart>({
          async start(controller) {
            controller.enqueue({ type: 'reasoning-start', id: 'r' });
            controller.enqueue({ type: 'reasoning-delta', id: 'r', delta: 'Looking up the forecast' });
            await emitted; // the model goes on only once that partial sentence became an event
            controller.enqueue({ type: 'reasoning-delta', id: 'r', delta: ' for Paris.' });
            controller.enqueue({ type: 'reasoning-end', id: 'r' });
            controller.enqueue(finish('stop'));
            controller.close();
          },
        }),
      }),
    });
    const { received } = await runModelAgent(model, { thinking: { flush: 'sentence', maxDelayMs: 20 } }, (agent) =>
      agent.on('agent_thinking', () => flushed()),
    );
    expect(thoughts(received).map((t) => t.text)).toEqual(['Looking up the forecast', ' for Paris.']);
  });

  it("text policy: 'tool-steps' (default) keeps the answer out of thinking, 'all' streams it too, 'none' never", async () => {
    const script = () => [
      toolStep(text('Let me check. '), toolCall('m1', 'get_weather', { city: 'Paris' })),
      answerStep(reasoning('Got it.'), text('21°C.')),
    ];
    const toolSteps = await runModelAgent(script());
    expect(thoughts(toolSteps.received).map((t) => t.text)).toEqual(['Let me check. ', 'Got it.']);
    const all = await runModelAgent(script(), { thinking: { flush: 'step', text: 'all' } });
    expect(thoughts(all.received).map((t) => t.text)).toEqual(['Let me check. ', 'Got it.', '21°C.']);
    const none = await runModelAgent(script(), { thinking: { flush: 'step', text: 'none', reasoning: false } });
    expect(thoughts(none.received)).toEqual([]);
    for (const run of [toolSteps, all, none]) expect(run.result.output).toBe('21°C.');
  });

  it('maxChars splits a long thought at whitespace', async () => {
    const { received } = await runModelAgent([answerStep(reasoning('alpha beta gamma delta'))], { thinking: { flush: 'step', maxChars: 11 } });
    expect(thoughts(received).map((t) => t.text)).toEqual(['alpha beta ', 'gamma delta']);
  });
});

describe('ModelAgent: failures, retries, abort', () => {
  it('a provider error fails the run with its name (and a generic message: redact.error decides)', async () => {
    const { result, received, types } = await runModelAgent([unauthorized()], { maxRetries: 0 });
    expect(result.status).toBe('failed');
    expect(types).toEqual(['agent_started', 'agent_completed']);
    expect(ofType(received, 'agent_completed')[0]!.data).toMatchObject({ status: 'failed', error: { name: 'AI_APICallError', message: 'Agent "weather" failed' } });
    expect(result.error?.message).toBe('Invalid API key');
  });

  it('an error mid-stream after a tool step fails the run; the finished tool pair stays closed', async () => {
    const broken: StepScript = [...reasoning('Answering now.'), ...text('Partial'), { type: 'error', error: new Error('connection reset') }];
    const { result, received, types } = await runModelAgent([toolStep([], toolCall('m1', 'get_weather', { city: 'Paris' })), broken]);
    expect(result.status).toBe('failed');
    expect(types).toEqual(['agent_started', 'tool_executing', 'tool_completed', 'agent_thinking', 'agent_completed']);
    expect(thoughts(received).map((t) => t.text)).toEqual(['Answering now.']); // the half answer is not thinking
    expect(ofType(received, 'agent_completed')[0]!.data).toMatchObject({ status: 'failed', error: { name: 'Error', message: 'Agent "weather" failed' } });
  });

  it('a retried model call never re-emits the events of earlier steps or of the retried step', async () => {
    const { result, received, model } = await runModelAgent([
      toolStep(reasoning('Checking the weather.'), toolCall('m1', 'get_weather', { city: 'Paris' })),
      overloaded(), // step 2, first attempt: 529, retried by the AI SDK
      answerStep(reasoning('Now I can answer.'), text('21°C.')),
    ]);
    expect(model.doStreamCalls).toHaveLength(3);
    expect(result).toMatchObject({ status: 'succeeded', output: '21°C.' });
    expect(thoughts(received)).toEqual([
      { text: 'Checking the weather.', step: 0 },
      { text: 'Now I can answer.', step: 1 },
    ]);
    expect(ofType(received, 'tool_executing')).toHaveLength(1);
    expect(new Set(received.map((e) => e.id)).size).toBe(received.length);
  });

  it('abort while the model streams: cancelled, the buffered text dropped', async () => {
    const { result, types, received } = await runModelAgent(
      [hangAfter([...reasoning('Thinking about it. '), ...text('Half an ans')])],
      { thinking: { flush: 'sentence', minChars: 0, maxDelayMs: 0 } },
      (agent, controller) => agent.on('agent_thinking', () => controller.abort(new Error('user pressed stop'))),
    );
    expect(result.status).toBe('cancelled');
    expect(types).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
    const done = ofType(received, 'agent_completed')[0]!.data;
    expect(done.status === 'cancelled' && done.error).toMatchObject({ name: 'AbortError', message: expect.stringContaining('user pressed stop') });
  });

  it('abort during a tool call: the tool is closed (AbortError) before agent_completed (cancelled)', async () => {
    const { result, types, received } = await runModelAgent([toolStep([], toolCall('m1', 'slow', {})), answerStep(text('never'))], {}, (agent, controller) =>
      agent.on('tool_executing', () => controller.abort(new Error('user pressed stop'))),
    );
    expect(result.status).toBe('cancelled');
    expect(types).toEqual(['agent_started', 'tool_executing', 'tool_completed', 'agent_completed']);
    expect(ofType(received, 'tool_completed')[0]!.data).toMatchObject({ status: 'failed', error: { name: 'AbortError' } });
  });
});

describe('runModel inside a hand-written agent, and one instance serving two users', () => {
  class Triage extends BaseAgent<string, { answer: string; steps: number }> {
    constructor(private readonly model: MockLanguageModelV3, bridge: AgentBridge) {
      super({ name: 'triage', tools: [weather], bridge });
    }
    protected async execute(question: string, ctx: RunContext) {
      await this.think('Routing the question to the weather model');
      const { text: answer, steps } = await runModel(this, { model: this.model, prompt: question, signal: ctx.signal, thinking: { flush: 'step' } });
      return { answer: answer.trim(), steps };
    }
  }

  it('a BaseAgent subclass calls runModel from execute and keeps its own events', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const model = scriptedModel([toolStep([], toolCall('m1', 'get_weather', { city: 'Oslo' })), answerStep(text('Oslo: 21°C. '))]);
    const result = await new Triage(model, bridge).run('Oslo?', { userId: 'bob', threadId: 'triage-1' });
    const events = transport.read('triage-1', 'bob');
    await bridge.close();
    expect(events.map((e) => e.type)).toEqual(['agent_started', 'agent_thinking', 'tool_executing', 'tool_completed', 'agent_completed']);
    expect(result.output).toEqual({ answer: 'Oslo: 21°C.', steps: 2 });
    expect(validateLifecycle(events).ok).toBe(true);
  });

  it('concurrent runs of two users on one ModelAgent: each user receives only their own run', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    // One model, answering by the user prompt it is given (the AI SDK calls it concurrently).
    const model = new MockLanguageModelV3({
      doStream: async (options: LanguageModelV3CallOptions) => {
        const city = JSON.stringify(options.prompt).includes('Oslo') ? 'Oslo' : 'Lima';
        const answered = options.prompt.some((m) => m.role === 'tool');
        const parts = answered
          ? answerStep(reasoning(`Answering for ${city}.`), text(`${city}: 21°C`))
          : toolStep(reasoning(`Looking up ${city}.`), toolCall(`call-${city}`, 'get_weather', { city }));
        return { stream: convertArrayToReadableStream<LanguageModelV3StreamPart>(parts) };
      },
    });
    const agent = new ModelAgent({ model, tools: [weather], bridge, thinking: { flush: 'step' } });
    const got: Record<string, AgentEvent[]> = { alice: [], bob: [] };
    for (const user of ['alice', 'bob'] as const) {
      transport.subscribeSync({ userId: user, threadId: `t-${user}` }, { onEntries: (entries) => got[user]!.push(...entries.map((e) => e.event)) });
    }
    const [a, b] = await Promise.all([
      agent.run('Weather in Oslo?', { userId: 'alice', threadId: 't-alice' }),
      agent.run('Weather in Lima?', { userId: 'bob', threadId: 't-bob' }),
    ]);
    await bridge.close();
    expect([a.output, b.output]).toEqual(['Oslo: 21°C', 'Lima: 21°C']);
    for (const [user, city] of [['alice', 'Oslo'], ['bob', 'Lima']] as const) {
      const events = got[user]!;
      expect(events.every((e) => e.userId === user)).toBe(true);
      expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
      expect(ofType(events, 'tool_executing')[0]!.data.args).toEqual({ city });
      expect(thoughts(events).map((t) => t.text)).toEqual([`Looking up ${city}.`, `Answering for ${city}.`]);
    }
  });
});
