import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DefaultChatTransport, readUIMessageStream, type UIMessage, type UIMessageChunk } from 'ai';
import { ModelAgent, agentwireCursorOf, messageAtCursor, resumeAfterCursor, type ChatHandlerOptions } from '../../src/ai-sdk/index.js';
import { AgentBridge, BaseAgent, MemoryTransport, defineTool, validateLifecycle, type AgentEvent, type LogEntry } from '../../src/index.js';
import {
  NodeChat,
  chunksOfRun,
  fetchCuttingPostsAfter,
  messageFrom,
  readMessage,
  recordChunks,
  startChatServer,
  userMessage,
  type ChatServer,
} from '../helpers/ai-chat.js';
import { answerStep, reasoning, scriptedModel, text, toolCall, toolStep, unauthorized, type StepScript } from '../helpers/ai-models.js';

const weather = defineTool({
  name: 'get_weather',
  description: 'Current weather of a city',
  parameters: z.object({ city: z.string().min(1) }),
  execute: ({ city }) => ({ city, tempC: 21 }),
});

/** A model run that pauses in its second step until the test approves (so a client can drop and resume mid-run). */
const pausingRun = (): StepScript[] => [
  toolStep(reasoning('I will check the weather.'), toolCall('m1', 'get_weather', { city: 'Paris' }), toolCall('m2', 'get_weather', { city: 42 })),
  toolStep(reasoning('Waiting for approval.'), toolCall('m3', 'wait_for_approval', {})),
  answerStep(reasoning('Approved.'), text('It is 21°C in Paris.')),
];

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(steps: StepScript[], options: { approved?: boolean; handler?: Partial<ChatHandlerOptions> } = {}) {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  let approve!: () => void;
  const approval = new Promise<void>((resolve) => (approve = resolve));
  if (options.approved ?? true) approve();
  const waitForApproval = defineTool({
    name: 'wait_for_approval',
    description: 'Waits for a human to approve',
    parameters: z.object({}),
    execute: async (_args, ctx) => {
      await Promise.race([approval, new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))]);
      return { approved: true };
    },
  });
  const agent = new ModelAgent({ name: 'weather', model: scriptedModel(steps), tools: [weather, waitForApproval], bridge, thinking: { flush: 'step' }, maxRetries: 0 });
  const server: ChatServer = await startChatServer({ agent, log: transport, heartbeatIntervalMs: 0, ...options.handler });
  cleanups.push(async () => {
    await server.close();
    await bridge.close();
  });
  const chatTransport = (token: string, extra: Partial<ConstructorParameters<typeof DefaultChatTransport<UIMessage>>[0]> = {}) =>
    new DefaultChatTransport<UIMessage>({ api: `${server.url}/api/chat`, headers: { authorization: `Bearer ${token}` }, ...extra });
  /** The thread's log entries as alice sees them (with cursors). */
  const entries = (threadId = 'chat-1'): LogEntry[] => {
    const subscribed = transport.subscribeSync({ userId: 'alice', threadId }, { onEntries: () => undefined });
    if (subscribed.status !== 'subscribed') throw new Error('gap');
    subscribed.subscription.close();
    return subscribed.replay;
  };
  /** Resolves once the thread's log holds an event matching `test`. */
  const logged = (test: (event: AgentEvent) => boolean, threadId = 'chat-1') =>
    new Promise<void>((resolve) => {
      const subscribed = transport.subscribeSync({ userId: 'alice', threadId }, {
        onEntries: (live) => {
          if (live.some((entry) => test(entry.event))) resolve();
        },
      });
      if (subscribed.status === 'subscribed' && subscribed.replay.some((entry) => test(entry.event))) resolve();
    });
  return { transport, server, approve, chatTransport, entries, logged };
}

const send = (transport: DefaultChatTransport<UIMessage>, chatId: string, messages: UIMessage[], abortSignal?: AbortSignal) =>
  transport.sendMessages({ chatId, messages, trigger: 'submit-message', messageId: undefined, abortSignal });

/** POSTs a message and reads the stream until the run pauses at the approval tool, then drops the connection. */
async function readUntilPaused(transport: DefaultChatTransport<UIMessage>): Promise<UIMessage | undefined> {
  const connection = new AbortController();
  let partial: UIMessage | undefined;
  for await (const message of readUIMessageStream({ stream: await send(transport, 'chat-1', [userMessage('Weather?')], connection.signal) })) {
    partial = message;
    if (message.parts.some((part) => part.type === 'tool-wait_for_approval')) break;
  }
  connection.abort(); // the client goes away (closes the HTTP connection)
  return partial;
}

const summary = (message: UIMessage | undefined) =>
  (message?.parts ?? []).map((part) => {
    if (part.type === 'reasoning' || part.type === 'text') return `${part.type}:${part.text}`;
    if ('state' in part && 'toolCallId' in part) return `${part.type}:${part.state}`;
    return part.type;
  });
const plain = (message: UIMessage | undefined) => JSON.parse(JSON.stringify(message)) as UIMessage;

const FULL_MESSAGE = [
  'step-start',
  'reasoning:I will check the weather.',
  'tool-get_weather:output-available',
  'tool-get_weather:output-error',
  'step-start',
  'reasoning:Waiting for approval.',
  'tool-wait_for_approval:output-available',
  'step-start',
  'reasoning:Approved.',
  'text:It is 21°C in Paris.',
];

describe('createChatHandler: POST streams a run as the AI SDK UI message stream', () => {
  it('DefaultChatTransport + readUIMessageStream build the full message; SSE headers as the AI SDK sends them', async () => {
    const { chatTransport, entries } = await setup(pausingRun());
    let headers: Headers | undefined;
    const transport = chatTransport('alice-token', {
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        headers = response.headers;
        return response;
      },
    });
    const chunks: UIMessageChunk[] = [];
    const message = await readMessage(recordChunks(await send(transport, 'chat-1', [userMessage('Weather in Paris?')]), chunks));
    expect(summary(message)).toEqual(FULL_MESSAGE);
    const log = entries();
    const runId = log[0]!.event.runId;
    expect(message?.id).toBe(runId);
    expect(headers?.get('content-type')).toBe('text/event-stream');
    expect(headers?.get('x-vercel-ai-ui-message-stream')).toBe('v1');
    expect(headers?.get('x-agentwire-run-id')).toBe(runId);
    // What went over the wire is exactly the mapping of the run's events in the log.
    expect(chunks).toEqual(chunksOfRun(log, runId));
    expect(validateLifecycle(log.map((e) => e.event))).toEqual({ ok: true, runs: 1 });
    const tool = message!.parts.find((p) => p.type === 'tool-get_weather' && p.state === 'output-error');
    expect(tool).toMatchObject({ input: { city: 42 }, errorText: expect.stringContaining('args.city') });
  });

  it('the run gets the conversation as model messages; a second turn continues the thread', async () => {
    const { chatTransport, entries } = await setup([answerStep(text('Hello!')), answerStep(text('Still 21°C.'))]);
    const transport = chatTransport('alice-token');
    const first = await readMessage(await send(transport, 'chat-1', [userMessage('Hi')]));
    const second = await readMessage(await send(transport, 'chat-1', [userMessage('Hi'), first!, userMessage('And now?', 'u-2')]));
    expect(summary(second)).toEqual(['step-start', 'text:Still 21°C.']);
    const started = entries().filter((e) => e.event.type === 'agent_started').map((e) => e.event);
    expect(started).toHaveLength(2);
    const input = started[1]!.type === 'agent_started' ? (started[1]!.data.input as { messages: Array<{ role: string }> }) : undefined;
    expect(input?.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
  });

  it('a failed run streams an error chunk that useChat surfaces', async () => {
    const { chatTransport } = await setup([unauthorized()]);
    const errors: unknown[] = [];
    const chunks: UIMessageChunk[] = [];
    await readMessage(recordChunks(await send(chatTransport('alice-token'), 'chat-1', [userMessage('Hi')]), chunks), undefined, (e) => errors.push(e));
    expect(chunks.filter((c) => c.type !== 'message-metadata').map((c) => c.type)).toEqual(['start', 'error', 'finish']);
    expect(errors.map((e) => (e as Error).message)).toEqual(['Agent "weather" failed']); // the provider's message stays on the server
  });
});

describe('createChatHandler: a user hook that throws costs its chunks, not the stream', () => {
  const flaky = defineTool({
    name: 'flaky',
    description: 'always fails',
    parameters: z.object({}),
    execute: () => {
      throw new Error('tool broke');
    },
  });
  /** Thinks, calls a failing tool, then answers with a plain string (or fails with `fail`). */
  class Plain extends BaseAgent<{ fail: boolean }, string> {
    protected async execute(input: { fail: boolean }): Promise<string> {
      await this.think('Thinking');
      await this.callTool('flaky', {}).catch(() => undefined);
      if (input.fail) throw new Error('run broke');
      return 'plain string answer';
    }
  }

  async function chatWith(handler: Partial<ChatHandlerOptions<{ fail: boolean }>>, fail: boolean) {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const reported: Array<{ error: unknown; stage?: string }> = [];
    const server = await startChatServer({
      agent: new Plain({ name: 'plain', bridge, tools: [flaky] }),
      log: transport,
      heartbeatIntervalMs: 0,
      input: () => ({ fail }),
      onError: (error: unknown, context: { stage?: string }) => void reported.push({ error, stage: context.stage }),
      ...handler,
    } as never);
    cleanups.push(async () => {
      await server.close();
      await bridge.close();
    });
    const chat = new DefaultChatTransport<UIMessage>({ api: `${server.url}/api/chat`, headers: { authorization: 'Bearer alice-token' } });
    const chunks: UIMessageChunk[] = [];
    const errors: unknown[] = [];
    const message = await readMessage(recordChunks(await send(chat, 'chat-hook', [userMessage('Hi')]), chunks), undefined, (e) => errors.push(e));
    return { chunks, errors, message, reported, types: chunks.filter((c) => c.type !== 'message-metadata').map((c) => c.type) };
  }
  const buggy = (result: unknown) => (result as { text: string }).text.trim();

  it('resultText that throws: the step closes and the stream ends with an error chunk (fixed text) and finish; onError gets the TypeError', async () => {
    const { types, chunks, errors, message, reported } = await chatWith({ resultText: buggy }, false);
    expect(types).toEqual(['start', 'start-step', 'reasoning-start', 'reasoning-delta', 'reasoning-end', 'tool-input-available', 'tool-output-error', 'finish-step', 'error', 'finish']);
    const fixed = "INTERNAL_ERROR: The server could not show the run's answer (details withheld)";
    expect(chunks.find((c) => c.type === 'error')).toEqual({ type: 'error', errorText: fixed });
    expect(chunks.at(-1)).toMatchObject({ type: 'finish', finishReason: 'error' });
    expect(errors.map((e) => (e as Error).message)).toEqual([fixed]);
    expect(summary(message)).toEqual(['step-start', 'reasoning:Thinking', 'tool-flaky:output-error']);
    expect(reported.map(({ error, stage }) => [(error as Error).constructor.name, stage])).toEqual([['TypeError', 'serialize']]);
  });

  it('resultText that returns a number is a failed hook too (no text-delta with a number)', async () => {
    const { types, reported } = await chatWith({ resultText: () => 5 as never }, false);
    expect(types.slice(-3)).toEqual(['finish-step', 'error', 'finish']);
    expect(reported).toHaveLength(1);
  });

  it('errorText that throws: tool-output-error and the error chunk carry a fixed text, the stream ends with finish; each failure reported', async () => {
    const { types, chunks, errors, reported } = await chatWith({ errorText: buggy as never }, true);
    expect(types).toEqual(['start', 'start-step', 'reasoning-start', 'reasoning-delta', 'reasoning-end', 'tool-input-available', 'tool-output-error', 'finish-step', 'error', 'finish']);
    const fixed = 'The server could not show this error (details withheld)';
    expect(chunks.find((c) => c.type === 'tool-output-error')).toMatchObject({ errorText: fixed });
    expect(chunks.find((c) => c.type === 'error')).toEqual({ type: 'error', errorText: fixed });
    expect(errors.map((e) => (e as Error).message)).toEqual([fixed]);
    expect(JSON.stringify(chunks)).not.toMatch(/trim|tool broke|run broke/);
    expect(reported.map(({ stage }) => stage)).toEqual(['serialize', 'serialize']);
  });
});

describe('createChatHandler: auth and isolation', () => {
  it('401 without a principal, 403 for another user’s chat (POST and resume), 204 for an unknown chat, 400 for a bad body', async () => {
    const { server, chatTransport } = await setup([answerStep(text('Hello!'))]);
    const post = (token: string | undefined, body: unknown) =>
      fetch(`${server.url}/api/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
        body: JSON.stringify(body),
      });
    const body = { id: 'chat-1', messages: [userMessage('Hi')], trigger: 'submit-message' };
    expect((await post(undefined, body)).status).toBe(401);
    expect((await post('wrong-token', body)).status).toBe(401);
    await readMessage(await send(chatTransport('alice-token'), 'chat-1', [userMessage('Hi')]));
    const forbidden = await post('bob-token', body);
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toEqual({ error: { code: 'THREAD_FORBIDDEN', message: 'Thread "chat-1" belongs to another user' } });
    await expect(chatTransport('bob-token').reconnectToStream({ chatId: 'chat-1' })).rejects.toThrow('another user');
    expect(await chatTransport('alice-token').reconnectToStream({ chatId: 'no-such-chat' })).toBeNull();
    expect((await post('alice-token', { id: 'bad id!', messages: [] })).status).toBe(400);
    expect((await post('alice-token', { id: 'chat-2', messages: [{ role: 'user' }] })).status).toBe(400);
    expect((await fetch(`${server.url}/api/chat`, { headers: { authorization: 'Bearer alice-token' } })).status).toBe(405);
  });
});

describe('createChatHandler: resume (GET /api/chat/:id/stream) from the thread log', () => {
  it('with the cursor of the message the client kept: exactly the rest, no duplicated part', async () => {
    const { chatTransport, approve, entries } = await setup(pausingRun(), { approved: false });
    // Read until the run pauses at the approval tool, then drop the connection (the run goes on).
    const partial = await readUntilPaused(chatTransport('alice-token'));
    const cursor = agentwireCursorOf(partial);
    expect(cursor?.runId).toBe(entries()[0]!.event.runId);
    // Resume while the run is still paused, then let it finish.
    const resumed = await chatTransport('alice-token', { prepareReconnectToStreamRequest: resumeAfterCursor(() => partial) }).reconnectToStream({
      chatId: 'chat-1',
    });
    expect(resumed).not.toBeNull();
    approve();
    const chunks: UIMessageChunk[] = [];
    const final = await readMessage(recordChunks(resumed!, chunks), messageAtCursor(partial));
    expect(summary(final)).toEqual(FULL_MESSAGE);
    expect(chunks.some((c) => c.type === 'start')).toBe(false); // a continuation, not a replay
    const runId = cursor!.runId;
    expect(plain(final)).toEqual(plain(await messageFrom(chunksOfRun(entries(), runId))));
    const toolIds = final!.parts.flatMap((p) => ('toolCallId' in p ? [p.toolCallId] : []));
    expect(new Set(toolIds).size).toBe(toolIds.length);
  });

  it('useChat (AbstractChat + DefaultChatTransport) recovers from a dropped connection by replaying the run: no duplicates', async () => {
    const { chatTransport, approve, logged, entries } = await setup(pausingRun(), { approved: false });
    const cut = fetchCuttingPostsAfter('tool-input-available');
    let resumeAnswered!: () => void;
    const resumeStarted = new Promise<void>((resolve) => (resumeAnswered = resolve));
    const chat = new NodeChat({
      id: 'chat-1',
      transport: chatTransport('alice-token', {
        fetch: async (input, init) => {
          const response = await cut(input, init);
          if (init?.method === 'GET') resumeAnswered();
          return response;
        },
      }),
    });
    await chat.sendMessage({ text: 'Weather in Paris?' });
    expect(chat.status).toBe('error'); // the network dropped mid-run
    await logged((event) => event.type === 'tool_executing' && event.data.tool === 'wait_for_approval');
    const resuming = chat.resumeStream(); // what useChat does on reconnect (or on mount with resume: true)
    await resumeStarted; // the server answered the GET with the run's stream; now let the run finish
    approve();
    await resuming;
    expect(chat.status).toBe('ready');
    expect(chat.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(summary(chat.messages[1])).toEqual(FULL_MESSAGE);
    expect(chat.messages[1]!.id).toBe(entries()[0]!.event.runId);
  });

  it('after the run finished: the kept cursor still gets the rest; without a cursor there is nothing to resume (204)', async () => {
    const { chatTransport, approve, entries, logged } = await setup(pausingRun(), { approved: false });
    const partial = await readUntilPaused(chatTransport('alice-token'));
    approve();
    await logged((event) => event.type === 'agent_completed');
    expect(await chatTransport('alice-token').reconnectToStream({ chatId: 'chat-1' })).toBeNull();
    const resumed = await chatTransport('alice-token', { prepareReconnectToStreamRequest: resumeAfterCursor(() => partial) }).reconnectToStream({
      chatId: 'chat-1',
    });
    const final = await readMessage(resumed!, messageAtCursor(partial));
    expect(summary(final)).toEqual(FULL_MESSAGE);
    // Resuming from the final cursor: the client has everything.
    const done = await chatTransport('alice-token', { prepareReconnectToStreamRequest: resumeAfterCursor(() => final) }).reconnectToStream({ chatId: 'chat-1' });
    expect(done).toBeNull();
    expect(entries().at(-1)?.event.type).toBe('agent_completed');
  });

  it('a cursor the log cannot honour is refused (409), never partially replayed', async () => {
    const { server } = await setup([answerStep(text('Hello!'))]);
    const transport = new DefaultChatTransport<UIMessage>({ api: `${server.url}/api/chat`, headers: { authorization: 'Bearer alice-token' } });
    await readMessage(await send(transport, 'chat-1', [userMessage('Hi')]));
    const response = await fetch(`${server.url}/api/chat/chat-1/stream?cursor=otherepoch:3`, { headers: { authorization: 'Bearer alice-token' } });
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ error: { code: 'HISTORY_GAP' } });
  });

  it('abortOnDisconnect: a client that leaves cancels the run (open tool closed first)', async () => {
    const { chatTransport, logged, entries } = await setup(pausingRun(), { approved: false, handler: { abortOnDisconnect: true } });
    await readUntilPaused(chatTransport('alice-token'));
    await logged((event) => event.type === 'agent_completed');
    const events = entries().map((e) => e.event);
    expect(validateLifecycle(events).ok).toBe(true);
    expect(events.slice(-2).map((e) => [e.type, 'status' in e.data ? e.data.status : undefined])).toEqual([
      ['tool_completed', 'failed'],
      ['agent_completed', 'cancelled'],
    ]);
  });

  it('close() aborts the runs it started, even those whose client left', async () => {
    const { server, chatTransport, logged, entries } = await setup(pausingRun(), { approved: false });
    await readUntilPaused(chatTransport('alice-token'));
    await server.handler.close();
    await logged((event) => event.type === 'agent_completed');
    const last = entries().at(-1)!.event;
    expect(last.type === 'agent_completed' && last.data.status).toBe('cancelled');
  });
});

describe('createChatHandler: misconfiguration is loud', () => {
  it("an agent whose events never reach the handler's log: the stream ends with an error chunk", async () => {
    const elsewhere = new MemoryTransport();
    const bridge = new AgentBridge({ transport: elsewhere });
    const agent = new ModelAgent({ model: scriptedModel([answerStep(text('Hello!'))]), bridge });
    const server = await startChatServer({ agent, log: new MemoryTransport(), heartbeatIntervalMs: 0, terminalTimeoutMs: 20 });
    cleanups.push(async () => {
      await server.close();
      await bridge.close();
    });
    const transport = new DefaultChatTransport<UIMessage>({ api: `${server.url}/api/chat`, headers: { authorization: 'Bearer alice-token' } });
    const errors: unknown[] = [];
    await readMessage(await send(transport, 'chat-1', [userMessage('Hi')]), undefined, (e) => errors.push(e));
    expect(errors.map((e) => (e as Error).message)).toEqual([expect.stringContaining('UNDELIVERED: The run\'s events did not reach the event log this handler reads')]);
  });
});
