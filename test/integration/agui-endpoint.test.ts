import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  EventType,
  HttpAgent,
  verifyEvents,
  type AgentSubscriber,
  type BaseEvent,
  type Message,
  type RunAgentInput,
} from '@ag-ui/client';
import { EventSchema } from '@ag-ui/core/schemas';
import { firstValueFrom, from, lastValueFrom, toArray } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { until } from '../helpers/wait.js';
import { createAguiHandler, lastUserText, type AguiHandler, type AguiHandlerBaseOptions, type ToInput } from '../../src/agui/index.js';
import {
  AgentBridge,
  BaseAgent,
  MemoryTransport,
  isRunId,
  parseRunId,
  tokenFrom,
  validateLifecycle,
  ValidationError,
  generateRunId,
  type AgentEvent,
  type Authenticate,
  type BaseAgentOptions,
  type EventLog,
} from '../../src/index.js';
import { ScriptedAgent, type Step } from '../helpers/agents.js';

/** `Bearer user-<name>` authenticates as `<name>`; anything else is refused. */
const authenticate: Authenticate = (req) => {
  const token = tokenFrom(req);
  return token?.startsWith('user-') ? { userId: token.slice(5) } : null;
};

const stepSchema: z.ZodType<Step> = z.union([
  z.object({ think: z.string() }),
  z.object({ tool: z.string(), args: z.unknown(), catchError: z.boolean().optional() }),
  z.object({ throw: z.string() }),
  z.object({ wait: z.literal('abort') }),
]) as z.ZodType<Step>;

/** The scripted agent's input travels in `forwardedProps.steps`. */
function stepsOf(input: RunAgentInput): Step[] {
  const parsed = z.array(stepSchema).safeParse((input.forwardedProps as { steps?: unknown } | undefined)?.steps);
  if (!parsed.success) throw new ValidationError('forwardedProps.steps must be a list of steps', { field: 'forwardedProps.steps' });
  return parsed.data;
}

interface Endpoint {
  url: string;
  transport: MemoryTransport;
  agent: ScriptedAgent;
  bridge: AgentBridge;
  handler: AguiHandler;
  /** Every event the agent emitted (what the server side actually did). */
  events: AgentEvent[];
  eventsOf(runId: string): AgentEvent[];
  client(user: string, threadId: string, messages?: Message[]): HttpAgent;
  post(body: unknown, headers?: Record<string, string>): Promise<Response>;
}

const cleanups: Array<() => Promise<void> | void> = [];
let consoleSpies: Array<ReturnType<typeof vi.spyOn>> = [];

beforeEach(() => {
  // The client reports stripped fields (console.warn) and pipeline failures (console.error): none may happen.
  consoleSpies = [vi.spyOn(console, 'warn').mockImplementation(() => undefined), vi.spyOn(console, 'error').mockImplementation(() => undefined)];
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.restoreAllMocks();
});

function expectNoClientComplaints(): void {
  for (const spy of consoleSpies) expect(spy.mock.calls).toEqual([]);
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function startEndpoint(
  { agentOptions, ...options }: Partial<AguiHandlerBaseOptions<Step[]>> & { toInput?: ToInput<Step[]>; agentOptions?: BaseAgentOptions } = {},
): Promise<Endpoint> {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  const agent = new ScriptedAgent({ bridge, ...agentOptions });
  const events: AgentEvent[] = [];
  agent.on('event', (event) => events.push(event));
  const handler = createAguiHandler({ agent, log: transport, authenticate, toInput: stepsOf, heartbeatIntervalMs: 0, ...options });
  const server = createServer((req, res) => {
    if (!handler.handle(req, res)) res.writeHead(404).end();
  });
  const port = await listen(server);
  cleanups.push(() => bridge.close());
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  cleanups.push(() => {
    server.closeAllConnections();
  });
  cleanups.push(() => handler.close());
  const url = `http://127.0.0.1:${port}/agui`;
  return {
    url,
    transport,
    agent,
    bridge,
    handler,
    events,
    eventsOf: (runId) => events.filter((event) => event.runId === runId),
    client: (user, threadId, messages = [{ id: 'u1', role: 'user', content: 'hello' }]) =>
      new HttpAgent({ url, headers: { Authorization: `Bearer user-${user}` }, threadId, initialMessages: messages }),
    post: (body, headers = {}) =>
      fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
  };
}

/** Runs the client to completion, recording every event its subscribers saw (after enforcement and verification). */
async function runThroughClient(client: HttpAgent, steps: Step[], subscriber: AgentSubscriber = {}, runId?: string) {
  const seen: BaseEvent[] = [];
  const failures: Error[] = [];
  const outcome = await client.runAgent(
    { forwardedProps: { steps }, ...(runId && { runId }) },
    {
      ...subscriber,
      onEvent: (params) => {
        seen.push(params.event);
        return subscriber.onEvent?.(params);
      },
      onRunFailed: ({ error }) => {
        failures.push(error);
      },
    },
  );
  return { ...outcome, seen, failures, types: seen.map((event) => event.type) };
}


function expectValidLifecycle(events: AgentEvent[]): void {
  const check = validateLifecycle(events);
  expect(check.ok ? 'valid' : check.violation.message).toBe('valid');
}

/** Reads a raw SSE response body into the AG-UI events it carries. */
async function sseEvents(response: Response): Promise<BaseEvent[]> {
  const text = await response.text();
  return text
    .split('\n\n')
    .flatMap((block) => block.split('\n').filter((line) => line.startsWith('data: ')))
    .map((line) => JSON.parse(line.slice(6)) as BaseEvent);
}

const toolCallIdsOf = (events: AgentEvent[]) =>
  events.flatMap((event) => (event.type === 'tool_executing' ? [event.data.toolCallId] : []));

describe('AG-UI endpoint with @ag-ui/client HttpAgent (verifier and schema enforcement in the pipeline)', () => {
  it('streams a successful run: every event verified, messages and tool calls match what the agent did', async () => {
    const endpoint = await startEndpoint();
    const client = endpoint.client('alice', 'thread-ok');
    const run = await runThroughClient(
      client,
      [{ think: 'Looking things up' }, { tool: 'echo', args: { text: 'hello' } }, { think: 'Almost there' }, { think: '' }, { tool: 'echo', args: { text: 'world' } }],
      {},
      'client-run-1',
    );

    expect(run.failures).toEqual([]);
    expectNoClientComplaints();
    expect(run.types).toEqual([
      EventType.RUN_STARTED,
      EventType.REASONING_START,
      EventType.REASONING_MESSAGE_START,
      EventType.REASONING_MESSAGE_CONTENT,
      EventType.REASONING_MESSAGE_END,
      EventType.REASONING_END,
      EventType.TOOL_CALL_START,
      EventType.TOOL_CALL_ARGS,
      EventType.TOOL_CALL_END,
      EventType.TOOL_CALL_RESULT,
      EventType.REASONING_START,
      EventType.REASONING_MESSAGE_START,
      EventType.REASONING_MESSAGE_CONTENT,
      EventType.REASONING_MESSAGE_END,
      EventType.REASONING_MESSAGE_START, // the empty thought: no content event
      EventType.REASONING_MESSAGE_END,
      EventType.REASONING_END,
      EventType.TOOL_CALL_START,
      EventType.TOOL_CALL_ARGS,
      EventType.TOOL_CALL_END,
      EventType.TOOL_CALL_RESULT,
      EventType.TEXT_MESSAGE_START,
      EventType.TEXT_MESSAGE_CONTENT,
      EventType.TEXT_MESSAGE_END,
      EventType.RUN_FINISHED,
    ]);
    expect(run.result).toBe('hello,world');

    // The client's run id is the agentwire run id; the server did exactly this run, for alice.
    const serverEvents = endpoint.eventsOf('client-run-1');
    expectValidLifecycle(serverEvents);
    expect(serverEvents.every((event) => event.userId === 'alice' && event.threadId === 'thread-ok')).toBe(true);
    expect(run.seen[0]).toMatchObject({ type: EventType.RUN_STARTED, threadId: 'thread-ok', runId: 'client-run-1' });
    expect(run.seen.at(-1)).toMatchObject({ type: EventType.RUN_FINISHED, threadId: 'thread-ok', runId: 'client-run-1', outcome: { type: 'success' } });

    const [firstCall, secondCall] = toolCallIdsOf(serverEvents);
    expect(run.newMessages).toEqual([
      { id: expect.any(String), role: 'reasoning', content: 'Looking things up' },
      {
        id: firstCall,
        role: 'assistant',
        toolCalls: [{ id: firstCall, type: 'function', function: { name: 'echo', arguments: '{"text":"hello"}' } }],
      },
      expect.objectContaining({ role: 'tool', toolCallId: firstCall, content: 'hello' }),
      { id: expect.any(String), role: 'reasoning', content: 'Almost there' },
      { id: expect.any(String), role: 'reasoning', content: '' },
      {
        id: secondCall,
        role: 'assistant',
        toolCalls: [{ id: secondCall, type: 'function', function: { name: 'echo', arguments: '{"text":"world"}' } }],
      },
      expect.objectContaining({ role: 'tool', toolCallId: secondCall, content: 'world' }),
      expect.objectContaining({ role: 'assistant', content: 'hello,world' }),
    ]);
    expect(client.messages.slice(0, 1)).toEqual([{ id: 'u1', role: 'user', content: 'hello' }]);
  });

  it('a failing tool becomes a verified TOOL_CALL_RESULT describing the error; the run goes on', async () => {
    const endpoint = await startEndpoint();
    const run = await runThroughClient(endpoint.client('alice', 'thread-tool'), [
      { tool: 'boom', args: {}, catchError: true },
      { tool: 'echo', args: { text: 42 }, catchError: true }, // invalid arguments: fails before executing
      { tool: 'echo', args: { text: 'after' } },
    ]);

    expect(run.failures).toEqual([]);
    expectNoClientComplaints();
    expect(run.result).toBe('error:ToolError,error:ToolError,after');
    const serverEvents = endpoint.events;
    expectValidLifecycle(serverEvents);
    const [boomCall, invalidCall, echoCall] = toolCallIdsOf(serverEvents);
    const toolMessages = run.newMessages.filter((message) => message.role === 'tool');
    expect(toolMessages).toEqual([
      expect.objectContaining({ toolCallId: boomCall, content: JSON.stringify({ error: { name: 'RangeError', message: 'Tool "boom" failed' } }) }),
      expect.objectContaining({ toolCallId: invalidCall, content: expect.stringContaining('"code":"TOOL_INVALID_ARGS"') }),
      expect.objectContaining({ toolCallId: echoCall, content: 'after' }),
    ]);
    const results = run.seen.filter((event) => event.type === EventType.TOOL_CALL_RESULT);
    expect(results.map((event) => (event.metadata as { agentwire: { status: string } }).agentwire.status)).toEqual(['failed', 'failed', 'succeeded']);
    expect(run.seen.at(-1)).toMatchObject({ type: EventType.RUN_FINISHED, outcome: { type: 'success' } });
  });

  it('a run that throws ends with RUN_ERROR (message, code) after its open tool call got a result', async () => {
    const endpoint = await startEndpoint();
    const errors: BaseEvent[] = [];
    const thrown = await runThroughClient(
      endpoint.client('alice', 'thread-throw'),
      [{ think: 'about to fail' }, { tool: 'echo', args: { text: 'x' } }, { throw: 'kaput' }],
      { onRunErrorEvent: ({ event }) => void errors.push(event) },
    );
    expect(thrown.failures).toEqual([]);
    expect(thrown.types.slice(-2)).toEqual([EventType.TOOL_CALL_RESULT, EventType.RUN_ERROR]);
    // The agent's own error leaves with its name and a generic message (redact.error's default).
    expect(thrown.seen.at(-1)).toMatchObject({ type: EventType.RUN_ERROR, message: 'Agent "scripted" failed', code: 'Error' });
    expect(errors).toHaveLength(1);

    // An uncaught tool failure fails the run: the tool's result first, then RUN_ERROR with the tool error's code.
    const failed = await runThroughClient(endpoint.client('alice', 'thread-throw'), [{ tool: 'boom', args: {} }]);
    expect(failed.types).toEqual([
      EventType.RUN_STARTED,
      EventType.TOOL_CALL_START,
      EventType.TOOL_CALL_ARGS,
      EventType.TOOL_CALL_END,
      EventType.TOOL_CALL_RESULT,
      EventType.RUN_ERROR,
    ]);
    expect(failed.seen.at(-1)).toMatchObject({ code: 'TOOL_FAILED', message: 'Tool "boom" failed' });
    expectNoClientComplaints();
    expectValidLifecycle(endpoint.events);
    expect(endpoint.events.filter((e) => e.type === 'agent_completed').map((e) => e.data.status)).toEqual(['failed', 'failed']);
  });

  it('agent.abortRun() disconnects: the server cancels the run and closes the open tool call', async () => {
    const endpoint = await startEndpoint();
    const client = endpoint.client('alice', 'thread-abort');
    const run = await runThroughClient(client, [{ think: 'starting' }, { tool: 'slow', args: {} }], {
      onToolCallStartEvent: () => {
        client.abortRun();
      },
    });

    // What the client saw: verified events up to the tool call, then its own abort marker.
    expect(run.failures).toEqual([]);
    expectNoClientComplaints();
    expect(run.types.slice(0, 7)).toEqual([
      EventType.RUN_STARTED,
      EventType.REASONING_START,
      EventType.REASONING_MESSAGE_START,
      EventType.REASONING_MESSAGE_CONTENT,
      EventType.REASONING_MESSAGE_END,
      EventType.REASONING_END,
      EventType.TOOL_CALL_START,
    ]);
    expect(run.seen.at(-1)).toMatchObject({ type: EventType.RUN_ERROR, code: 'abort' });

    // What the server did: the disconnect aborted the run, the slow tool was closed, then the run ended cancelled.
    await until(() => endpoint.events.some((event) => event.type === 'agent_completed'), 'the cancelled run to end', 5_000);
    const serverEvents = endpoint.events;
    expectValidLifecycle(serverEvents);
    const toolCompleted = serverEvents.find((event) => event.type === 'tool_completed');
    expect(toolCompleted?.data).toMatchObject({ tool: 'slow', status: 'failed', error: { name: 'AbortError' } });
    expect(serverEvents.at(-1)?.data).toMatchObject({ status: 'cancelled', error: { name: 'AbortError', message: 'The AG-UI client disconnected' } });
    await until(() => endpoint.handler.stats().connections.open === 0, 'the stream to be released', 5_000);
    // A client that leaves is not a server-side disconnect (not counted).
    expect(endpoint.handler.stats().disconnects).toEqual({});
  });

  it('a run cancelled by the server (close()) ends with RUN_FINISHED outcome cancelled, verified', async () => {
    const endpoint = await startEndpoint();
    const client = endpoint.client('alice', 'thread-shutdown');
    let closing: Promise<void> | undefined;
    const outcomes: string[] = [];
    const run = await runThroughClient(client, [{ tool: 'slow', args: {} }], {
      onToolCallStartEvent: () => {
        closing = endpoint.handler.close();
      },
      onRunFinishedEvent: (params) => void outcomes.push(params.outcome),
    });
    await closing;
    expect(run.failures).toEqual([]);
    expectNoClientComplaints();
    expect(run.types).toEqual([
      EventType.RUN_STARTED,
      EventType.TOOL_CALL_START,
      EventType.TOOL_CALL_ARGS,
      EventType.TOOL_CALL_END,
      EventType.TOOL_CALL_RESULT,
      EventType.RUN_FINISHED,
    ]);
    expect(outcomes).toEqual(['cancelled']);
    const toolMessage = run.newMessages.find((message) => message.role === 'tool');
    expect(toolMessage?.content).toContain('"name":"AbortError"');
    expectValidLifecycle(endpoint.events);

    // Closed: new runs are refused.
    const refused = await endpoint.post({ threadId: 't', runId: 'r', messages: [], forwardedProps: { steps: [] } }, { Authorization: 'Bearer user-alice' });
    expect(refused.status).toBe(503);
  });

  it('cancelled: "error" ends a cancelled run with RUN_ERROR ABORTED instead (pre-1.0 clients)', async () => {
    const endpoint = await startEndpoint({ cancelled: 'error' });
    const client = endpoint.client('alice', 'thread-shutdown-2');
    let closing: Promise<void> | undefined;
    const run = await runThroughClient(client, [{ tool: 'slow', args: {} }], {
      onToolCallStartEvent: () => {
        closing = endpoint.handler.close();
      },
    });
    await closing;
    expect(run.failures).toEqual([]);
    expect(run.seen.at(-1)).toMatchObject({ type: EventType.RUN_ERROR, code: 'ABORTED' });
    expectNoClientComplaints();
  });

  it("'text' thinking mode streams thoughts as assistant text messages", async () => {
    const endpoint = await startEndpoint({ thinking: 'text', answerText: () => undefined });
    const run = await runThroughClient(endpoint.client('alice', 'thread-text'), [{ think: 'one' }, { think: 'two' }]);
    expect(run.types).toEqual([
      EventType.RUN_STARTED,
      EventType.TEXT_MESSAGE_START,
      EventType.TEXT_MESSAGE_CONTENT,
      EventType.TEXT_MESSAGE_END,
      EventType.TEXT_MESSAGE_START,
      EventType.TEXT_MESSAGE_CONTENT,
      EventType.TEXT_MESSAGE_END,
      EventType.RUN_FINISHED,
    ]);
    expect(run.newMessages.map((message) => [message.role, message.content])).toEqual([
      ['assistant', 'one'],
      ['assistant', 'two'],
    ]);
    expectNoClientComplaints();
  });

  it('the client verifier is really on: it rejects a stream that breaks the protocol', async () => {
    const broken = from([
      { type: EventType.RUN_STARTED, threadId: 't', runId: 'r' },
      { type: EventType.TOOL_CALL_ARGS, toolCallId: 'never-started', delta: '{}' },
    ] as BaseEvent[]).pipe(verifyEvents());
    await expect(lastValueFrom(broken)).rejects.toThrow(/No active tool call/);
    await expect(firstValueFrom(from([{ type: EventType.RUN_FINISHED, threadId: 't', runId: 'r' }] as BaseEvent[]).pipe(verifyEvents()))).rejects.toThrow(
      /First event must be 'RUN_STARTED'/,
    );
  });
});

describe('AG-UI endpoint: a user hook that throws costs its frames, not the stream', () => {
  // A realistic bug: the hook expects an object, the output is a string (TypeError).
  const buggy = (output: unknown) => (output as { text: string }).text.trim();

  for (const [name, answerText] of [
    ['throws', buggy],
    ['returns a number', () => 5 as unknown as string],
  ] as const) {
    it(`answerText that ${name}: open reasoning is closed, the stream ends with RUN_ERROR INTERNAL_ERROR (fixed message), verified; onError gets the hook's error`, async () => {
      const reported: Array<{ error: unknown; stage?: string; runId?: string }> = [];
      const endpoint = await startEndpoint({ answerText, onError: (error, context) => void reported.push({ error, stage: context.stage, runId: context.runId }) });
      const run = await runThroughClient(endpoint.client('alice', `thread-hook-${name.length}`), [{ think: 'Thinking' }], {}, `hook-run-${name.length}`);
      expect(run.failures).toEqual([]);
      expectNoClientComplaints();
      expect(run.types).toEqual([
        EventType.RUN_STARTED,
        EventType.REASONING_START,
        EventType.REASONING_MESSAGE_START,
        EventType.REASONING_MESSAGE_CONTENT,
        EventType.REASONING_MESSAGE_END,
        EventType.REASONING_END,
        EventType.RUN_ERROR,
      ]);
      const last = run.seen.at(-1) as BaseEvent & { code?: string; message?: string };
      expect(last).toMatchObject({ code: 'INTERNAL_ERROR', message: "The server could not show the run's answer (details withheld)" });
      expect(JSON.stringify(run.seen)).not.toMatch(/trim|answerText returned/);
      expect(reported).toHaveLength(1);
      expect(reported[0]).toMatchObject({ stage: 'serialize', runId: `hook-run-${name.length}` });
      expect(reported[0]!.error).toBeInstanceOf(TypeError);
      // The run itself succeeded; only its answer frame was lost.
      expect(endpoint.eventsOf(`hook-run-${name.length}`).at(-1)?.data).toMatchObject({ status: 'succeeded' });

      // The raw frames of a second run: every frame matches the schema and the verifier accepts the stream.
      const response = await endpoint.post(
        { threadId: `thread-hook-raw-${name.length}`, messages: [{ id: 'u1', role: 'user', content: 'hi' }], forwardedProps: { steps: [{ think: 'a' }, { think: 'b' }] } },
        { Authorization: 'Bearer user-alice' },
      );
      const frames = await sseEvents(response);
      for (const frame of frames) expect(EventSchema.safeParse(frame).error).toBeUndefined();
      const verified = await lastValueFrom(from(frames).pipe(verifyEvents(), toArray()));
      expect(verified.map((frame) => frame.type).slice(-2)).toEqual([EventType.REASONING_END, EventType.RUN_ERROR]);
      expect(endpoint.handler.stats().poisonedEvents).toBe(0);
    });
  }

  it('a throwing metadata hook refuses the POST (500, details withheld) before anything streams; onError gets it', async () => {
    const reported: unknown[] = [];
    const endpoint = await startEndpoint({
      metadata: () => {
        throw new Error('secret detail');
      },
      onError: (error) => void reported.push(error),
    });
    const response = await endpoint.post({ threadId: 'thread-meta', messages: [], forwardedProps: { steps: [] } }, { Authorization: 'Bearer user-alice' });
    expect(response.status).toBe(500);
    expect(await response.text()).not.toContain('secret detail');
    expect(reported).toHaveLength(1);
    expect(endpoint.events).toEqual([]);
  });
});

describe('AG-UI endpoint: run ids, concurrency and isolation', () => {
  it('without a runId the run gets a standard agentwire run id of its thread; every frame matches the AG-UI schema', async () => {
    const endpoint = await startEndpoint();
    const response = await endpoint.post(
      { threadId: 'thread-raw', messages: [{ id: 'u1', role: 'user', content: 'hi' }], forwardedProps: { steps: [{ tool: 'echo', args: { text: 'a' } }] } },
      { Authorization: 'Bearer user-alice' },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const frames = await sseEvents(response);
    for (const frame of frames) expect(EventSchema.safeParse(frame).error).toBeUndefined();
    const verified = await lastValueFrom(from(frames).pipe(verifyEvents(), toArray()));
    expect(verified).toHaveLength(frames.length);
    const runId = String(frames[0]?.runId);
    expect(isRunId(runId)).toBe(true);
    expect(parseRunId(runId).threadId).toBe('thread-raw');
    expect(endpoint.eventsOf(runId).map((event) => event.type)).toEqual(['agent_started', 'tool_executing', 'tool_completed', 'agent_completed']);
  });

  it('concurrent runs of two users on one agent: each stream carries only its own run', async () => {
    const endpoint = await startEndpoint();
    const steps = (name: string): Step[] => [{ think: `${name} thinks` }, { tool: 'echo', args: { text: name } }, { think: `${name} again` }, { tool: 'echo', args: { text: `${name}!` } }];
    const [alice, bob] = await Promise.all([
      runThroughClient(endpoint.client('alice', 'thread-a'), steps('alice')),
      runThroughClient(endpoint.client('bob', 'thread-b'), steps('bob')),
    ]);
    expectNoClientComplaints();
    for (const [user, run] of [['alice', alice], ['bob', bob]] as const) {
      expect(run.failures).toEqual([]);
      expect(run.result).toBe(`${user},${user}!`);
      const runId = String(run.seen[0]?.runId);
      const serverEvents = endpoint.eventsOf(runId);
      expect(serverEvents.every((event) => event.userId === user)).toBe(true);
      const streamedCallIds = run.seen.flatMap((event) => (event.type === EventType.TOOL_CALL_START ? [String(event.toolCallId)] : []));
      expect(streamedCallIds).toEqual(toolCallIdsOf(serverEvents));
      expect(run.newMessages.filter((m) => m.role === 'reasoning').map((m) => m.content)).toEqual([`${user} thinks`, `${user} again`]);
    }
    expectValidLifecycle(endpoint.events);
  });

  it('a client that stops reading is cut at maxQueuedBytes and its run cancelled (memory stays bounded)', async () => {
    // 400 thoughts of 50 kB (20 MB of frames), far more than the kernel buffers on loopback hold.
    const bigThoughts = (): Step[] => Array.from({ length: 400 }, (_, i) => ({ think: `${i} ${'x'.repeat(50_000)}` }));
    // The 20 MB script is the run's input: agent_started carries a placeholder (an event holds at most 1 MiB).
    const endpoint = await startEndpoint({ maxQueuedBytes: 256 * 1024, toInput: bigThoughts, agentOptions: { redact: { input: () => '[script]' } } });
    const { port } = new URL(endpoint.url);
    const body = JSON.stringify({ threadId: 'thread-slow-reader', runId: 'run-slow-reader', messages: [] });
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined); // the server cuts the connection
    cleanups.push(() => void socket.destroy());
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.pause(); // reads nothing: the kernel buffers fill, then the response's own buffer
    socket.write(
      `POST /agui HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer user-alice\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await until(() => endpoint.eventsOf('run-slow-reader').some((event) => event.type === 'agent_completed'), 'the run to end', 15_000);
    const serverEvents = endpoint.eventsOf('run-slow-reader');
    expectValidLifecycle(serverEvents);
    expect(serverEvents.at(-1)?.data).toMatchObject({ status: 'cancelled', error: { message: 'The AG-UI client does not read its stream' } });
    expect(serverEvents.filter((event) => event.type === 'agent_thinking').length).toBeLessThan(400);
    expect(endpoint.handler.stats().disconnects).toEqual({ slow_consumer: 1 });
  });

  it('takes a body already parsed by express.json(); a result JSON cannot carry fails the run (OUTPUT_NOT_SERIALIZABLE)', async () => {
    class BigIntAgent extends BaseAgent<RunAgentInput, unknown> {
      protected async execute(): Promise<unknown> {
        await this.think('counting');
        return { big: 10n };
      }
    }
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    cleanups.push(() => bridge.close());
    const agent = new BigIntAgent({ name: 'bigint', bridge });
    const handler = createAguiHandler({ agent, log: transport, authenticate, heartbeatIntervalMs: 0 });
    cleanups.push(() => handler.close());
    const server = createServer((req, res) => {
      // What express.json() does: read the body, put the parsed value on req.body.
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (text += chunk));
      req.on('end', () => {
        (req as typeof req & { body?: unknown }).body = JSON.parse(text);
        if (!handler.handle(req, res)) res.writeHead(404).end();
      });
    });
    const port = await listen(server);
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const client = new HttpAgent({ url: `http://127.0.0.1:${port}/agui`, headers: { Authorization: 'Bearer user-alice' }, threadId: 'thread-express' });
    const errors: Array<{ code?: string }> = [];
    await client.runAgent({}, { onRunErrorEvent: ({ event }) => void errors.push(event) }).catch(() => undefined);
    expect(errors).toMatchObject([{ code: 'OUTPUT_NOT_SERIALIZABLE' }]);
    expectNoClientComplaints();
  });

  it('lastUserText reads the last user message (string or text parts)', () => {
    const input = {
      threadId: 't',
      runId: 'r',
      messages: [
        { id: '1', role: 'user', content: 'first' },
        { id: '2', role: 'assistant', content: 'answer' },
        { id: '3', role: 'user', content: [{ type: 'text', text: 'second ' }, { type: 'text', text: 'question' }] },
      ],
      tools: [],
      context: [],
    } as RunAgentInput;
    expect(lastUserText(input)).toBe('second question');
    expect(lastUserText({ ...input, messages: [] })).toBeUndefined();
  });
});

describe('AG-UI endpoint refusals (HTTP status + JSON error, nothing streamed)', () => {
  const body = (threadId: string, extra: Record<string, unknown> = {}) => ({ threadId, runId: `run-${threadId}`, messages: [], forwardedProps: { steps: [] }, ...extra });
  const asAlice = { Authorization: 'Bearer user-alice' };

  it('401 without valid credentials, through HttpAgent and raw', async () => {
    const endpoint = await startEndpoint();
    const raw = await endpoint.post(body('t1'));
    expect(raw.status).toBe(401);
    expect(raw.headers.get('www-authenticate')).toBe('Bearer');
    expect(await raw.json()).toEqual({ error: { code: 'AUTH_FAILED', message: expect.any(String) } });
    const wrong = await endpoint.post(body('t1'), { Authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);

    const client = new HttpAgent({ url: endpoint.url, threadId: 't1' });
    await expect(client.runAgent({ forwardedProps: { steps: [] } })).rejects.toMatchObject({ status: 401 });
    expect(consoleSpies[1]?.mock.calls).toEqual([['Agent execution failed:', expect.objectContaining({ status: 401 })]]);
    expect(endpoint.events).toEqual([]);
    expect(endpoint.handler.stats().refused).toEqual({ auth_failed: 3 });
  });

  it('503 when the auth hook takes longer than authTimeoutMs', async () => {
    const endpoint = await startEndpoint({ authenticate: () => new Promise(() => undefined), authTimeoutMs: 20 });
    const response = await endpoint.post(body('t1'), asAlice);
    expect(response.status).toBe(503);
    expect((await response.json()).error.code).toBe('AUTH_TIMEOUT');
    expect(endpoint.handler.stats()).toMatchObject({ connections: { authenticating: 0 }, refused: { auth_timeout: 1 } });
  });

  it("403 for another user's thread, before any event; the owner keeps using it", async () => {
    const endpoint = await startEndpoint();
    const owner = await runThroughClient(endpoint.client('alice', 'shared-thread'), [{ think: 'mine' }]);
    expect(owner.failures).toEqual([]);
    const before = endpoint.events.length;

    const intruder = await endpoint.post(body('shared-thread'), { Authorization: 'Bearer user-bob' });
    expect(intruder.status).toBe(403);
    expect(await intruder.json()).toEqual({ error: { code: 'THREAD_FORBIDDEN', message: 'Thread "shared-thread" belongs to another user' } });
    const bobClient = endpoint.client('bob', 'shared-thread');
    await expect(bobClient.runAgent({ forwardedProps: { steps: [{ think: 'theirs' }] } })).rejects.toMatchObject({
      status: 403,
      payload: { error: { code: 'THREAD_FORBIDDEN' } },
    });
    expect(consoleSpies[1]?.mock.calls).toEqual([['Agent execution failed:', expect.objectContaining({ status: 403 })]]);
    expect(endpoint.events.length).toBe(before);

    const again = await runThroughClient(endpoint.client('alice', 'shared-thread'), [{ think: 'still mine' }]);
    expect(again.failures).toEqual([]);
    expect(endpoint.events.every((event) => event.userId === 'alice')).toBe(true);
  });

  it("403, not 503, for the loser of a race for a new thread: another user's first event ends its subscription before the stream opens", async () => {
    // The handler's log: bob's subscription to the unowned thread is made, then alice's first event
    // (from another process, as over a shared Redis log) lands before bob's stream opens.
    const transport = new MemoryTransport();
    const aliceFirst: AgentEvent = {
      v: 1,
      id: 'alice-start',
      type: 'agent_started',
      runId: generateRunId('race-thread'),
      threadId: 'race-thread',
      userId: 'alice',
      agent: 'elsewhere',
      seq: 1,
      ts: Date.now(),
      data: { metadata: {} },
    };
    const log: EventLog = {
      ownerOf: (threadId) => transport.ownerOf(threadId),
      async subscribe(request, listener) {
        const result = await transport.subscribe(request, listener);
        if (request.userId === 'bob') await transport.send(aliceFirst);
        return result;
      },
    };
    const endpoint = await startEndpoint({ log });
    const before = endpoint.events.length;
    const loser = await endpoint.post(body('race-thread'), { Authorization: 'Bearer user-bob' });
    expect(loser.status).toBe(403);
    expect(await loser.json()).toEqual({ error: { code: 'THREAD_FORBIDDEN', message: 'Thread "race-thread" belongs to another user' } });
    expect(await transport.ownerOf('race-thread')).toBe('alice');
    expect(endpoint.events.slice(before).filter((event) => event.userId === 'bob')).toEqual([]);
  });

  it('400 naming the field for an invalid RunAgentInput, bad ids, bad JSON or input the agent refuses', async () => {
    const endpoint = await startEndpoint();
    const cases: Array<[unknown, string, string]> = [
      [{ threadId: 't', runId: 'r' }, 'VALIDATION_FAILED', 'messages'],
      [{ threadId: 't', runId: 'r', messages: [{ id: 'm', role: 'wizard', content: 'x' }] }, 'VALIDATION_FAILED', 'messages.0.role'],
      [{ runId: 'r', messages: [] }, 'VALIDATION_FAILED', 'threadId'],
      [{ threadId: 'a/b', runId: 'r', messages: [] }, 'INVALID_THREAD_ID', 'threadId'],
      [{ threadId: 't', runId: 'r n', messages: [] }, 'INVALID_RUN_ID', 'runId'],
      [{ threadId: 't', runId: 'thread_other_run_1700000000000_abcdefABCDEF', messages: [] }, 'RUN_THREAD_MISMATCH', 'runId'],
      [{ threadId: 't', runId: 'r', messages: [], forwardedProps: { steps: 'nope' } }, 'VALIDATION_FAILED', 'forwardedProps.steps'],
      [[1, 2], 'VALIDATION_FAILED', 'body'],
      ['{"threadId":', 'INVALID_JSON', 'body'],
    ];
    for (const [payload, code, field] of cases) {
      const response = await endpoint.post(payload, asAlice);
      expect({ payload, status: response.status }).toEqual({ payload, status: 400 });
      expect(await response.json()).toEqual({ error: { code, field, message: expect.any(String) } });
    }
    expect(endpoint.events).toEqual([]);
  });

  it('405 for other methods, 413 for an oversized body, 409 for a run id already streaming, 429 past the per-user limit', async () => {
    const endpoint = await startEndpoint({ maxBodyBytes: 2_000, maxRunsPerUser: 1 });
    const put = await fetch(endpoint.url, { method: 'PUT', headers: asAlice });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST, OPTIONS');

    const big = await endpoint.post(body('t-big', { padding: 'x'.repeat(5_000) }), asAlice);
    expect(big.status).toBe(413);
    expect((await big.json()).error.code).toBe('BODY_TOO_LARGE');

    const client = endpoint.client('alice', 't-slow');
    let started!: () => void;
    const streaming = new Promise<void>((resolve) => (started = resolve));
    const slow = runThroughClient(client, [{ tool: 'slow', args: {} }], { onToolCallStartEvent: () => started() }, 'run-slow');
    await streaming;
    const conflict = await endpoint.post({ ...body('t-slow'), runId: 'run-slow' }, { Authorization: 'Bearer user-bob' });
    expect(conflict.status).toBe(409);
    const overLimit = await endpoint.post(body('t-other'), asAlice);
    expect(overLimit.status).toBe(429);
    client.abortRun();
    await slow;
    expect(endpoint.handler.stats().refused).toEqual({ method_not_allowed: 1, body_too_large: 1, run_id_conflict: 1, too_many_runs: 1 });
    // Reusing a finished run's id would restart its seq under the same id: refused too.
    await until(() => endpoint.handler.stats().connections.open === 0);
    const reused = await endpoint.post({ ...body('t-slow'), runId: 'run-slow' }, asAlice);
    expect(reused.status).toBe(409);
    expect((await reused.json()).error.message).toContain('already used');
  });
});
