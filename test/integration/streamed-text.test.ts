import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventType, HttpAgent, verifyEvents, type BaseEvent } from '@ag-ui/client';
import { EventSchema } from '@ag-ui/core/schemas';
import { DefaultChatTransport, lastAssistantMessageIsCompleteWithApprovalResponses, type UIMessage, type UIMessageChunk } from 'ai';
import { z } from 'zod';
import { from, lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createAguiHandler, lastUserText } from '../../src/agui/index.js';
import { agentwireCursorOf, messageAtCursor, type ModelAgentInput } from '../../src/ai-sdk/index.js';
import type { LogEntry } from '../../src/index.js';
import { NodeChat, chunksOfRun, messageFrom, readMessage, resumedChunks, startChatServer, userMessage } from '../helpers/ai-chat.js';
import { Exchange, surfaceAuthenticate } from '../helpers/run-surfaces.js';
import { AgentBridge, BaseAgent, MemoryTransport, defineTool, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { answerStep, scriptedModel, text, toolCall, toolStep } from '../helpers/ai-models.js';
import { pendingOf } from '../helpers/interactive.js';
import { ModelAgent, runModel, type TextStreaming } from '../../src/ai-sdk/index.js';
import type { RunContext } from '../../src/index.js';
import { AnswerText } from '../../src/client/index.js';
import { RawClient, follow, startGateway as startWsGateway, until } from '../helpers/ws-harness.js';
import { TcpProxy } from '../helpers/ws-proxy.js';
import { startGateway as startSseGateway } from '../helpers/sse-server.js';
import { SseTestClient } from '../helpers/sse-client.js';
import { ANSWER, PROGRESS, REASONING_0, REASONING_1, answerDeltas, getWeather, streamingModel } from '../helpers/streaming-model.js';

/**
 * Streamed answer text: a model-driven agent with `textStreaming: 'delta'` emits every model text
 * delta as its own `agent_thinking` (`channel: 'answer'`), in order, with seq and cursors. Checked
 * against what real receivers got: the log, a raw WebSocket, an SSE stream; and cut after every
 * event and resumed from its cursor, the rebuilt text equals the uninterrupted one.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function weatherAgent(bridge: AgentBridge, textStreaming?: TextStreaming): ModelAgent {
  return new ModelAgent({ name: 'weather', model: streamingModel(), tools: [getWeather], bridge, ...(textStreaming && { textStreaming }) });
}

/** The text each receiver must end up with, and the reference events of the run. */
function checkRun(events: readonly AgentEvent[]) {
  expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
  const deltas = answerDeltas(events);
  // Every model delta is its own event, in the model's order: the tool step's message, then the answer's.
  expect(deltas.map(([, text]) => text)).toEqual([...PROGRESS, ...ANSWER]);
  const ids = [...new Set(deltas.map(([id]) => id))];
  expect(ids).toHaveLength(2);
  expect(deltas.filter(([id]) => id === ids[1]).map(([, text]) => text)).toEqual(ANSWER);
  // Reasoning stays coalesced (one event per step here) and is marked apart from the answer.
  const thoughts = events.filter((event) => event.type === 'agent_thinking' && event.data.channel !== 'answer');
  expect(thoughts.map((event) => event.type === 'agent_thinking' && event.data.text)).toEqual([REASONING_0.join(''), REASONING_1.join('')]);
  const completed = events.at(-1)!;
  expect(completed.type === 'agent_completed' && completed.data.status === 'succeeded' && completed.data.result).toBe(ANSWER.join(''));
}

function rebuilt(events: readonly AgentEvent[], runId: string): string {
  const answers = new AnswerText();
  for (const event of events) answers.push(event);
  return answers.text(runId);
}

describe('ModelAgent textStreaming', () => {
  it("'delta': one event per model delta, in order, reasoning coalesced and distinguishable; the output is unchanged", async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    cleanups.push(() => bridge.close());
    const result = await weatherAgent(bridge, 'delta').run('Weather in Paris?', { userId: 'alice', threadId: 't-delta' });
    expect(result.status).toBe('succeeded');
    expect(result.output).toBe(ANSWER.join(''));
    const events = transport.read('t-delta', 'alice');
    checkRun(events);
    // Each message's deltas are consecutive events: nothing else of the run falls between them.
    const answerSeqs = events.filter((event) => event.type === 'agent_thinking' && event.data.channel === 'answer').map((event) => event.seq);
    expect(answerSeqs.slice(PROGRESS.length).every((seq, index, all) => index === 0 || seq === all[index - 1]! + 1)).toBe(true);
  });

  it("'off' (the default) keeps today's events: no answer deltas, the answer only in agent_completed", async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    cleanups.push(() => bridge.close());
    await weatherAgent(bridge).run('Weather in Paris?', { userId: 'alice', threadId: 't-off' });
    const events = transport.read('t-off', 'alice');
    expect(validateLifecycle(events).ok).toBe(true);
    expect(answerDeltas(events)).toEqual([]);
    expect(events.some((event) => event.type === 'agent_thinking' && 'channel' in event.data)).toBe(false);
    const thoughts = events.flatMap((event) => (event.type === 'agent_thinking' ? [event.data.text] : []));
    expect(thoughts.join('')).not.toContain('Paris it is');
  });

  it("'sentence': fewer events, the same text", async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    cleanups.push(() => bridge.close());
    const agent = new ModelAgent({ model: streamingModel(), tools: [getWeather], bridge, textStreaming: 'sentence', thinking: { minChars: 10, maxDelayMs: 0 } });
    await agent.run('Weather in Paris?', { userId: 'alice', threadId: 't-sentence' });
    const events = transport.read('t-sentence', 'alice');
    expect(validateLifecycle(events).ok).toBe(true);
    const deltas = answerDeltas(events);
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.length).toBeLessThan(PROGRESS.length + ANSWER.length);
    expect(deltas.map(([, text]) => text).join('')).toBe(PROGRESS.join('') + ANSWER.join(''));
    expect(rebuilt(events, events[0]!.runId)).toBe(PROGRESS.join('') + ANSWER.join(''));
  });

  it('refuses an unknown textStreaming value with INVALID_OPTION: ModelAgent at construction, runModel at the call (no event)', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    cleanups.push(() => bridge.close());
    expect(() => weatherAgent(bridge, 'tokens' as TextStreaming)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', field: 'textStreaming', message: 'ModelAgent option textStreaming must be "off", "sentence" or "delta" (got "tokens")' }),
    );
    class Direct extends BaseAgent<string, string> {
      protected async execute(prompt: string, ctx: RunContext): Promise<string> {
        return (await runModel(this, { model: streamingModel(), prompt, signal: ctx.signal, textStreaming: 'tokens' as TextStreaming })).text;
      }
    }
    const received: AgentEvent[] = [];
    const agent = new Direct({ bridge });
    agent.on('event', (event) => received.push(event));
    const result = await agent.run('Weather?', { userId: 'alice', threadId: 't-bad' });
    expect(result.status).toBe('failed');
    expect(result.error).toMatchObject({ code: 'INVALID_OPTION', message: 'runModel() option textStreaming must be "off", "sentence" or "delta" (got "tokens")' });
    expect(received.map((event) => event.type)).toEqual(['agent_started', 'agent_completed']);
  });
});

class Writer extends BaseAgent<string[], string> {
  protected async execute(deltas: string[]): Promise<string> {
    await this.think('Planning');
    for (const delta of deltas.slice(0, 2)) await this.streamText(delta);
    await this.think('a thought ends the message');
    for (const delta of deltas.slice(2)) await this.streamText(delta);
    await this.streamText('', { messageId: 'ignored' }); // nothing
    await this.streamText('P.S.', { messageId: 'ps' });
    return deltas.join('');
  }
}

describe('BaseAgent.streamText', () => {
  it('continues the message while its deltas are the last events, starts a new one after any other event or another id', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    cleanups.push(() => bridge.close());
    await new Writer({ bridge }).run(['a', 'b', 'c', 'd'], { userId: 'alice', threadId: 't-writer' });
    const events = transport.read('t-writer', 'alice');
    expect(validateLifecycle(events).ok).toBe(true);
    const deltas = answerDeltas(events);
    const [first, second] = [deltas[0]![0], deltas[2]![0]];
    expect(deltas).toEqual([
      [first, 'a'],
      [first, 'b'],
      [second, 'c'],
      [second, 'd'],
      ['ps', 'P.S.'],
    ]);
    expect(first).not.toBe(second);
    const answers = new AnswerText();
    for (const event of events) answers.push(event);
    expect(answers.messages(events[0]!.runId).map((message) => message.text)).toEqual(['ab', 'cd', 'P.S.']);
  });

  it('rejects outside a run and for a non-string delta, without emitting', async () => {
    const bridge = new AgentBridge({ transport: new MemoryTransport() });
    cleanups.push(() => bridge.close());
    const writer = new Writer({ bridge });
    await expect(writer.streamText('x')).rejects.toMatchObject({ code: 'NO_ACTIVE_RUN' });
  });
});

describe('streamed answer over the raw WebSocket protocol', () => {
  it('every delta arrives as its own event frame, in order; resumed from the cursor of every event, the text is rebuilt exactly', async () => {
    const gw = await startWsGateway();
    cleanups.push(() => gw.stop());
    const agent = weatherAgent(gw.bridge, 'delta');
    const live = await RawClient.open(gw.url, 'alice');
    cleanups.push(() => live.close());
    live.subscribe('t-ws');
    await live.waitFor(() => live.ofType('subscribed').length === 1, 'subscribed');
    const result = await agent.run('Weather in Paris?', { userId: 'alice', threadId: 't-ws' });
    await live.waitFor(() => live.events().some((event) => event.type === 'agent_completed'), 'agent_completed');
    const frames = live.ofType('event');
    const events = frames.map((frame) => frame.event);
    checkRun(events);
    expect(events).toEqual(transport(gw).read('t-ws', 'alice'));
    const full = rebuilt(events, result.runId);
    expect(full).toBe(PROGRESS.join('') + ANSWER.join(''));

    for (let cut = 0; cut < frames.length - 1; cut++) {
      const resumed = await RawClient.open(gw.url, 'alice');
      resumed.subscribe('t-ws', frames[cut]!.cursor);
      await resumed.waitFor(() => resumed.events().some((event) => event.type === 'agent_completed'), `agent_completed after cut ${cut}`);
      resumed.close();
      const after = resumed.events();
      // Exactly the events after the cut: no delta twice, none missing.
      expect([cut, after.map((event) => event.seq)]).toEqual([cut, events.slice(cut + 1).map((event) => event.seq)]);
      expect([cut, rebuilt([...events.slice(0, cut + 1), ...after], result.runId)]).toEqual([cut, full]);
    }
  });
});

describe('streamed answer through the agentwire client, network cut while it streams', () => {
  it('cut after every third delta: the client reconnects from its cursor, AnswerText holds the exact text, nothing dropped as a duplicate', async () => {
    const gw = await startWsGateway();
    cleanups.push(() => gw.stop());
    const proxy = await TcpProxy.start(gw.port);
    cleanups.push(() => proxy.close());
    const alice = follow(proxy.url(), 'alice', 't-live');
    cleanups.push(() => alice.client.close());
    const answers = new AnswerText();
    let deltas = 0;
    // Cut the network from inside the client's own listener: in the middle of a received batch.
    alice.client.on('event', (event) => {
      if (answers.push(event) && ++deltas % 3 === 0) proxy.cut();
    });
    await until(() => alice.client.status === 'open', 'open');
    // The model writes its next delta only once the client is back after the last cut: every cut falls mid-answer.
    let written = 0;
    const model = streamingModel({
      beforeDelta: async () => {
        await until(() => deltas === written && alice.client.status === 'open' && alice.client.stats.reconnects === proxy.cuts, 'the client has the last delta and is back after the cut');
        written++;
      },
    });
    const agent = new ModelAgent({ name: 'weather', model, tools: [getWeather], bridge: gw.bridge, textStreaming: 'delta' });
    const result = await agent.run('Weather in Paris?', { userId: 'alice', threadId: 't-live' });
    await until(() => alice.events.at(-1)?.type === 'agent_completed', 'agent_completed', 5_000);
    expect(proxy.cuts).toBe(Math.floor((PROGRESS.length + ANSWER.length) / 3));
    expect(alice.client.stats.reconnects).toBe(proxy.cuts);
    checkRun(alice.events);
    expect(alice.events).toEqual(gw.transport.read('t-live', 'alice'));
    expect(answers.text(result.runId)).toBe(PROGRESS.join('') + ANSWER.join(''));
    expect(answers.messages(result.runId).map((message) => message.text)).toEqual([PROGRESS.join(''), ANSWER.join('')]);
    expect(alice.client.stats.duplicates).toBe(0);
    expect(alice.errors).toEqual([]);
  });
});

function transport(gw: Awaited<ReturnType<typeof startWsGateway>>): MemoryTransport {
  return gw.transport;
}

describe('streamed answer over SSE', () => {
  it('every delta is its own SSE message; Last-Event-ID at every event resumes to the same text', async () => {
    const log = new MemoryTransport();
    const sse = await startSseGateway({ log, heartbeatIntervalMs: 0 });
    cleanups.push(() => sse.close());
    const bridge = new AgentBridge({ transport: log });
    cleanups.push(() => bridge.close());
    const live = await SseTestClient.open(sse.url('t-sse', 'alice'));
    cleanups.push(() => live.close());
    await live.waitFor((client) => client.raw.length > 0, 'the stream opened');
    const result = await weatherAgent(bridge, 'delta').run('Weather in Paris?', { userId: 'alice', threadId: 't-sse' });
    await live.waitForEvent('agent_completed');
    const messages = live.messages.filter((message) => message.id !== undefined);
    const events = live.events;
    checkRun(events);
    expect(messages.filter((message) => message.event === 'agent_thinking')).toHaveLength(PROGRESS.length + ANSWER.length + 2);
    const full = rebuilt(events, result.runId);
    expect(full).toBe(PROGRESS.join('') + ANSWER.join(''));

    for (let cut = 0; cut < messages.length - 1; cut++) {
      const resumed = await SseTestClient.open(sse.url('t-sse', 'alice'), { lastEventId: messages[cut]!.id! });
      await resumed.waitForEvent('agent_completed');
      resumed.close();
      const after = resumed.events;
      expect([cut, after.map((event) => event.seq)]).toEqual([cut, events.slice(cut + 1).map((event) => event.seq)]);
      expect([cut, rebuilt([...events.slice(0, cut + 1), ...after], result.runId)]).toEqual([cut, full]);
    }
  });
});

async function listen(handle: (req: IncomingMessage, res: ServerResponse) => boolean): Promise<{ base: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (!handle(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function aguiFixture() {
  const log = new MemoryTransport();
  const bridge = new AgentBridge({ transport: log });
  const agent = weatherAgent(bridge, 'delta');
  const agui = createAguiHandler<ModelAgentInput>({
    agent,
    log,
    authenticate: surfaceAuthenticate,
    heartbeatIntervalMs: 0,
    abortOnDisconnect: false,
    toInput: (input) => lastUserText(input) ?? 'Weather?',
  });
  const server = await listen((req, res) => agui.handle(req, res));
  cleanups.push(async () => {
    await agui.close();
    await server.close();
    await bridge.close();
  });
  return { log, url: `${server.base}${agui.path}` };
}

/** The client's pipeline: every frame valid for the AG-UI schema, the sequence accepted by the verifier. */
async function verified(events: readonly BaseEvent[]): Promise<BaseEvent[]> {
  for (const event of events) expect(EventSchema.safeParse(event).error).toBeUndefined();
  return lastValueFrom(from(events).pipe(verifyEvents(), toArray()));
}

function ofType<T extends BaseEvent>(events: readonly BaseEvent[], type: EventType): T[] {
  return events.filter((event) => event.type === type) as T[];
}

describe('streamed answer over AG-UI', () => {
  it('HttpAgent (verifier on): TEXT_MESSAGE_CONTENT per delta, reasoning as REASONING_*, no second copy of the final answer', async () => {
    const { url } = await aguiFixture();
    const client = new HttpAgent({ url, headers: { Authorization: 'Bearer tok-alice' }, threadId: 't-agui', initialMessages: [{ id: 'u1', role: 'user', content: 'Weather in Paris?' }] });
    const seen: BaseEvent[] = [];
    const failures: Error[] = [];
    const outcome = await client.runAgent({}, { onEvent: ({ event }) => void seen.push(event), onRunFailed: ({ error }) => void failures.push(error) });
    expect(failures).toEqual([]);
    const contents = ofType<{ type: EventType; messageId: string; delta: string } & BaseEvent>(seen, EventType.TEXT_MESSAGE_CONTENT);
    expect(contents.map((event) => event.delta)).toEqual([...PROGRESS, ...ANSWER]);
    const starts = ofType<{ messageId: string } & BaseEvent>(seen, EventType.TEXT_MESSAGE_START);
    expect(starts).toHaveLength(2); // the tool step's text and the answer: the result is not sent again
    expect(ofType(seen, EventType.TEXT_MESSAGE_END)).toHaveLength(2);
    expect(new Set(contents.slice(PROGRESS.length).map((event) => event.messageId))).toEqual(new Set([starts[1]!.messageId]));
    const reasoningDeltas = ofType<{ delta: string } & BaseEvent>(seen, EventType.REASONING_MESSAGE_CONTENT).map((event) => event.delta);
    expect(reasoningDeltas).toEqual([REASONING_0.join(''), REASONING_1.join('')]);
    expect(seen.at(-1)?.type).toBe(EventType.RUN_FINISHED);
    const assistant = outcome.newMessages.filter((message) => message.role === 'assistant' && typeof message.content === 'string' && message.content.length > 0);
    expect(assistant.map((message) => message.content)).toEqual([PROGRESS.join(''), ANSWER.join('')]);
    expect(outcome.result).toBe(ANSWER.join(''));
  });

  it('Last-Event-ID after every frame: the resumed frames continue exactly, the rebuilt message equals the uninterrupted one', async () => {
    const { url } = await aguiFixture();
    const body = JSON.stringify({ threadId: 't-agui-resume', runId: 'run-agui-resume', messages: [{ id: 'u1', role: 'user', content: 'Weather in Paris?' }], tools: [], context: [], state: {}, forwardedProps: {} });
    const reference = new Exchange(url, { headers: { Authorization: 'Bearer tok-alice' }, body });
    cleanups.push(() => reference.destroy());
    expect(await reference.ended).toBe('end');
    const full = reference.frames;
    const fullEvents = full.map((frame) => JSON.parse(frame.data) as BaseEvent);
    await verified(fullEvents);
    const textOf = (events: readonly BaseEvent[]) => ofType<{ delta: string } & BaseEvent>(events, EventType.TEXT_MESSAGE_CONTENT).map((event) => event.delta).join('');
    expect(textOf(fullEvents)).toBe(PROGRESS.join('') + ANSWER.join(''));
    const resumeUrl = `${url}?threadId=t-agui-resume&runId=run-agui-resume`;
    for (let cut = 0; cut < full.length - 1; cut++) {
      const resumed = new Exchange(resumeUrl, { headers: { Authorization: 'Bearer tok-alice', 'Last-Event-ID': full[cut]!.id! } });
      await resumed.ended;
      resumed.destroy();
      expect([cut, resumed.status]).toEqual([cut, 200]);
      expect([cut, resumed.frames]).toEqual([cut, full.slice(cut + 1)]);
      const rebuiltEvents = [...fullEvents.slice(0, cut + 1), ...resumed.frames.map((frame) => JSON.parse(frame.data) as BaseEvent)];
      await verified(rebuiltEvents);
      expect(textOf(rebuiltEvents)).toBe(textOf(fullEvents));
    }
  });
});

describe("streamed answer through the AI SDK's chat client", () => {
  async function chatFixture() {
    const log = new MemoryTransport();
    const bridge = new AgentBridge({ transport: log });
    const server = await startChatServer({ agent: weatherAgent(bridge, 'delta'), log });
    cleanups.push(async () => {
      await server.close();
      await bridge.close();
    });
    const entries = (threadId: string): LogEntry[] => {
      const subscribed = log.subscribeSync({ userId: 'alice', threadId }, { onEntries: () => undefined });
      if (subscribed.status !== 'subscribed') throw new Error('gap');
      subscribed.subscription.close();
      return subscribed.replay;
    };
    return { server, entries, api: `${server.url}/api/chat` };
  }

  it('useChat\'s AbstractChat gets a text-delta per model delta, reasoning parts apart, one text part per message (no duplicate answer)', async () => {
    const { api, entries } = await chatFixture();
    const bodies: string[] = [];
    const chat = new NodeChat({
      id: 'chat-stream',
      transport: new DefaultChatTransport<UIMessage>({
        api,
        headers: { authorization: 'Bearer alice-token' },
        fetch: async (input, init) => {
          const response = await fetch(input, init);
          bodies.push(await response.clone().text());
          return response;
        },
      }),
    });
    await chat.sendMessage({ text: 'Weather in Paris?' });
    expect(chat.status).toBe('ready');
    const chunks = bodies
      .join('')
      .split('\n\n')
      .filter((line) => line.startsWith('data: {'))
      .map((line) => JSON.parse(line.slice(6)) as UIMessageChunk);
    expect(chunks.flatMap((chunk) => (chunk.type === 'text-delta' ? [chunk.delta] : []))).toEqual([...PROGRESS, ...ANSWER]);
    const runId = entries('chat-stream')[0]!.event.runId;
    expect(chunks).toEqual(chunksOfRun(entries('chat-stream'), runId));
    const message = chat.messages.at(-1)!;
    expect(message.role).toBe('assistant');
    expect(message.parts.flatMap((part) => (part.type === 'text' ? [part.text] : []))).toEqual([PROGRESS.join(''), ANSWER.join('')]);
    expect(message.parts.flatMap((part) => (part.type === 'reasoning' ? [part.text] : []))).toEqual([REASONING_0.join(''), REASONING_1.join('')]);
  });

  it('cut after every chunk, resumed with the cursor the message kept (messageAtCursor): the rebuilt message equals the uninterrupted one', async () => {
    const { api, server, entries } = await chatFixture();
    const full = await readMessage(await new DefaultChatTransport<UIMessage>({ api, headers: { authorization: 'Bearer alice-token' } }).sendMessages({
      chatId: 'chat-cut',
      messages: [userMessage('Weather in Paris?')],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: undefined,
    }));
    const log = entries('chat-cut');
    const runId = log[0]!.event.runId;
    const chunks = chunksOfRun(log, runId);
    expect(full?.parts).toEqual((await messageFrom(chunks))?.parts);
    let resumes = 0;
    for (let cut = 1; cut < chunks.length; cut++) {
      // What a client holds after the first `cut` chunks, trimmed to its last cursor.
      const partial = messageAtCursor(await messageFrom(chunks.slice(0, cut)));
      if (!partial) continue; // before the first cursor: a full replay, not a resume
      const cursor = agentwireCursorOf(partial)!.cursor;
      const rest = await resumedChunks(api, 'alice-token', 'chat-cut', cursor);
      if (rest === 'none') {
        expect(partial.parts).toEqual(full?.parts); // the client has everything (204)
        continue;
      }
      expect(Array.isArray(rest)).toBe(true);
      const resumed = await messageFrom(rest as UIMessageChunk[], partial);
      expect([cut, resumed?.parts]).toEqual([cut, full?.parts]);
      resumes++;
    }
    expect(resumes).toBeGreaterThan(PROGRESS.length + ANSWER.length);
    void server;
  });
});

describe('streamed answer and a tool approval (useChat pause and resend)', () => {
  it('the text before the approval and the answer after the resend each appear once, as streamed', async () => {
    const log = new MemoryTransport();
    const bridge = new AgentBridge({ transport: log });
    const transfer = defineTool({
      name: 'transfer',
      description: 'Moves money',
      parameters: z.object({ amount: z.number() }),
      needsApproval: true,
      execute: ({ amount }) => ({ sent: amount }),
    });
    const model = scriptedModel([toolStep(text('Sending', ' it', ' now.'), toolCall('m1', 'transfer', { amount: 250 })), answerStep(text(...ANSWER))]);
    const server = await startChatServer({ agent: new ModelAgent({ name: 'banker', model, bridge, tools: [transfer], textStreaming: 'delta' }), log });
    cleanups.push(async () => {
      await server.close();
      await bridge.close();
    });
    const chat = new NodeChat({
      id: 'chat-approve-stream',
      transport: new DefaultChatTransport<UIMessage>({ api: `${server.url}/api/chat`, headers: { authorization: 'Bearer alice-token' } }),
      sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
    });
    await chat.sendMessage({ text: 'Send 250 to bob' });
    const pending = pendingOf(log.read('chat-approve-stream', 'alice'))!;
    const texts = () => chat.messages[1]!.parts.flatMap((part) => (part.type === 'text' ? [part.text] : []));
    expect(texts()).toEqual(['Sending it now.']);
    await chat.addToolApprovalResponse({ id: pending.requestId, approved: true });
    await until(() => chat.status === 'ready' && texts().length === 2 && texts()[1] === ANSWER.join(''), 'the resent stream to finish');
    expect(texts()).toEqual(['Sending it now.', ANSWER.join('')]);
    const events = log.read('chat-approve-stream', 'alice');
    expect(validateLifecycle(events).ok).toBe(true);
    expect(answerDeltas(events).map(([, delta]) => delta)).toEqual(['Sending', ' it', ' now.', ...ANSWER]);
  });
});
