import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { UIMessage, UIMessageChunk } from 'ai';
import { ModelAgent, UiChunkMapper, agentwireCursorOf, messageAtCursor } from '../../src/ai-sdk/index.js';
import { AgentBridge, MemoryTransport, defineTool, type LogEntry } from '../../src/index.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { chunksOfRun, messageFrom, readMessage, resumedChunks, startChatServer } from '../helpers/ai-chat.js';
import { answerStep, reasoning, scriptedModel, text, toolCall, toolStep, unauthorized, type StepScript } from '../helpers/ai-models.js';

const weather = defineTool({
  name: 'get_weather',
  description: 'Current weather of a city',
  parameters: z.object({ city: z.string().min(1) }),
  execute: ({ city }) => ({ city, tempC: 21 }),
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The thread's entries (with cursors) as alice sees them. */
function entriesOf(transport: MemoryTransport, threadId = 'chat-1'): LogEntry[] {
  const subscribed = transport.subscribeSync({ userId: 'alice', threadId }, { onEntries: () => undefined });
  if (subscribed.status !== 'subscribed') throw new Error('no log');
  subscribed.subscription.close();
  return subscribed.replay;
}

/**
 * Runs a ModelAgent on a scripted model; returns the thread's log entries (with cursors) and
 * `resume(cursor)`: what the chat handler's `GET /api/chat/chat-1/stream` sends, read by the AI
 * SDK's own `DefaultChatTransport` (a real server on the same log).
 */
async function recordRun(steps: StepScript[], signal?: AbortSignal, transport = new MemoryTransport()) {
  const bridge = new AgentBridge({ transport });
  const agent = new ModelAgent({ model: scriptedModel(steps), tools: [weather], bridge, thinking: { flush: 'step' }, maxRetries: 0 });
  const result = await agent.run('Weather?', { userId: 'alice', threadId: 'chat-1', ...(signal && { signal }) });
  const server = await startChatServer({ agent, log: transport, heartbeatIntervalMs: 0 });
  cleanups.push(async () => {
    await server.close();
    await bridge.close();
  });
  const resume = (cursor: string | undefined, limit?: number) => resumedChunks(`${server.url}/api/chat`, 'alice-token', 'chat-1', cursor, limit);
  return { entries: entriesOf(transport), runId: result.runId, resume, transport };
}

const richRun: StepScript[] = [
  toolStep(
    [...reasoning('I need the weather for both cities.'), ...text('Checking Paris and Oslo.')],
    toolCall('m1', 'get_weather', { city: 'Paris' }),
    toolCall('m2', 'get_weather', { city: 42 }),
  ),
  toolStep(reasoning('Retrying Oslo with a valid argument.'), toolCall('m3', 'get_weather', { city: 'Oslo' })),
  answerStep(reasoning('Both known.'), text('Paris and Oslo: 21°C.')),
];

const plain = (message: UIMessage | undefined) => JSON.parse(JSON.stringify(message)) as UIMessage;
const summary = (message: UIMessage | undefined) =>
  (message?.parts ?? []).map((part) => {
    if (part.type === 'reasoning' || part.type === 'text') return `${part.type}:${part.text}`;
    if ('state' in part && 'toolCallId' in part) return `${part.type}:${part.state}`;
    return part.type;
  });

describe('UI mapping: our events → AI SDK UI message chunks', () => {
  it('a model run becomes the message useChat expects (AI SDK readUIMessageStream)', async () => {
    const { entries, runId } = await recordRun(richRun);
    const chunks = chunksOfRun(entries, runId);
    // The two calls of step 1 run concurrently: the first may finish before the second starts.
    const parallel = [
      ['tool-input-available', 'tool-input-available', 'tool-output-available', 'tool-output-error'],
      ['tool-input-available', 'tool-output-available', 'tool-input-available', 'tool-output-error'],
    ];
    const reasoningPart = ['reasoning-start', 'reasoning-delta', 'reasoning-end'];
    const expected = (calls: string[]) => [
      'start',
      'start-step',
      ...reasoningPart,
      ...reasoningPart,
      ...calls,
      'finish-step',
      'start-step',
      ...reasoningPart,
      'tool-input-available',
      'tool-output-available',
      'finish-step',
      'start-step',
      ...reasoningPart,
      ...['text-start', 'text-delta', 'text-end'],
      'finish-step',
      'finish',
    ];
    expect(parallel.map(expected)).toContainEqual(chunks.filter((c) => c.type !== 'message-metadata').map((c) => c.type));
    const message = await messageFrom(chunks);
    expect(message?.id).toBe(runId);
    expect(summary(message)).toEqual([
      'step-start',
      'reasoning:I need the weather for both cities.',
      'reasoning:Checking Paris and Oslo.',
      'tool-get_weather:output-available',
      'tool-get_weather:output-error',
      'step-start',
      'reasoning:Retrying Oslo with a valid argument.',
      'tool-get_weather:output-available',
      'step-start',
      'reasoning:Both known.',
      'text:Paris and Oslo: 21°C.',
    ]);
    const tools = message!.parts.filter((p) => p.type === 'tool-get_weather');
    expect(tools[0]).toMatchObject({ input: { city: 'Paris' }, output: { city: 'Paris', tempC: 21 } });
    expect(tools[1]).toMatchObject({ input: { city: 42 }, errorText: expect.stringContaining('args.city') });
    const last = entries.at(-1)!;
    expect(message?.metadata).toEqual({ agentwire: { runId, cursor: last.cursor, seq: last.event.seq, parts: message!.parts.length } });
  });

  it('resume after every cursor sends exactly the rest of the stream (the log decides, the AI SDK reads it)', async () => {
    const { entries, runId, resume } = await recordRun(richRun);
    const mapper = new UiChunkMapper();
    const full = chunksOfRun(entries, runId);
    let sent = 0;
    for (const [index, entry] of entries.entries()) {
      sent += mapper.map(entry.event, entry.cursor).length;
      const resumed = await resume(entry.cursor);
      if (index === entries.length - 1) expect(resumed).toBe('none'); // the client has everything: 204
      else expect(resumed).toEqual(full.slice(sent));
    }
  });

  it('a stream cut anywhere, even inside an event, resumes from messageAtCursor into the uninterrupted message', async () => {
    const { entries, runId, resume } = await recordRun(richRun);
    const full = chunksOfRun(entries, runId);
    const reference = plain(await messageFrom(full));
    for (let cut = 1; cut < full.length; cut++) {
      const partial = await messageFrom(full.slice(0, cut));
      const position = agentwireCursorOf(partial)!;
      const resumed = await resume(position.cursor);
      const base = messageAtCursor(partial);
      const final = resumed === 'none' ? base : await messageFrom(resumed as UIMessageChunk[], base);
      expect(plain(final), `cut after chunk ${cut} (${full[cut - 1]!.type})`).toEqual(reference);
    }
  });

  it('without a cursor: the active run is replayed from its start; a finished thread has nothing to resume', async () => {
    const { entries, runId, resume } = await recordRun(richRun);
    expect(await resume(undefined)).toBe('none');
    // The same run, not completed yet, in a fresh log.
    const active = new MemoryTransport();
    for (const entry of entries.slice(0, -1)) active.append(entry.event);
    const replayed = await recordRun([answerStep(text('other thread'))], undefined, active);
    // recordRun ran one more (complete) run in chat-1 after the unfinished one: the unfinished one is still the latest active.
    const expected = chunksOfRun(entriesOf(active), runId);
    expect(await replayed.resume(undefined, expected.length)).toEqual(expected);
  });

  it('resume is all or nothing: a forged cursor, a trimmed run start, another thread’s cursor → 409, never a partial replay', async () => {
    const { entries, resume, transport } = await recordRun(richRun);
    expect(await resume('zzz:999')).toBe(409);
    expect(await resume(`${entries[3]!.cursor.split(':')[0]}:99999`)).toBe(409);
    // Another thread of the same user, with as many entries: its cursors must not resume chat-1.
    for (const entry of entries) transport.append({ ...entry.event, id: `${entry.event.id}-b`, threadId: 'chat-b', runId: `${entry.event.runId}-b` });
    const other = entriesOf(transport, 'chat-b');
    expect(await resume(other[4]!.cursor)).toBe(409);
    // A log that trimmed the run's start: a cursor after the trim cannot be rebuilt.
    const trimmed = new MemoryTransport({ maxEventsPerThread: entries.length - 2 });
    for (const entry of entries) trimmed.append(entry.event);
    const kept = await recordRun([answerStep(text('x'))], undefined, trimmed);
    expect(await kept.resume(entriesOf(trimmed)[2]!.cursor)).toBe(409);
  });

  it('failed and cancelled runs end with error / abort chunks', async () => {
    const failed = await recordRun([toolStep([], toolCall('m1', 'get_weather', { city: 'Paris' })), unauthorized()]);
    const failedChunks = chunksOfRun(failed.entries, failed.runId);
    expect(failedChunks.slice(-3).map((c) => c.type)).toEqual(['finish-step', 'error', 'finish']);
    expect(failedChunks.at(-2)).toEqual({ type: 'error', errorText: 'Agent "ModelAgent" failed' }); // redact.error's default
    expect(failedChunks.at(-1)).toMatchObject({ type: 'finish', finishReason: 'error' });
    const errors: unknown[] = [];
    await readMessage(new ReadableStream({ start: (c) => (failedChunks.forEach((x) => c.enqueue(x)), c.close()) }), undefined, (e) => errors.push(e));
    expect(errors.map((e) => (e as Error).message)).toEqual(['Agent "ModelAgent" failed']);

    const cancelled = await recordRun([answerStep(text('x'))], AbortSignal.abort(new Error('stop')));
    const cancelledChunks = chunksOfRun(cancelled.entries, cancelled.runId);
    expect(cancelledChunks.map((c) => c.type)).toEqual(['start', 'message-metadata', 'abort']);
  });

  it('hand-written agents map the same way; another user cannot resume the chat (403)', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const agent = new ScriptedAgent({ bridge });
    const result = await agent.run([{ think: 'plan' }, { tool: 'echo', args: { text: 'hi' } }, { think: 'done' }], { userId: 'alice', threadId: 't1' });
    const entries = entriesOf(transport, 't1');
    expect(summary(await messageFrom(chunksOfRun(entries, result.runId)))).toEqual([
      'step-start',
      'reasoning:plan',
      'tool-echo:output-available',
      'step-start',
      'reasoning:done',
      'text:hi',
    ]);
    const server = await startChatServer({ agent: agent as never, log: transport, heartbeatIntervalMs: 0, input: (() => []) as never });
    cleanups.push(async () => {
      await server.close();
      await bridge.close();
    });
    expect(await resumedChunks(`${server.url}/api/chat`, 'alice-token', 't1', entries[1]!.cursor)).toEqual(chunksOfRun(entries, result.runId).slice(chunksOfRun(entries.slice(0, 2), result.runId).length));
    expect(await resumedChunks(`${server.url}/api/chat`, 'bob-token', 't1', entries[1]!.cursor)).toBe(403);
  });
});
