import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { UIMessage, UIMessageChunk } from 'ai';
import { ModelAgent, UiChunkMapper, agentwireCursorOf, messageAtCursor } from '../../src/ai-sdk/index.js';
import { RunChunkStream } from '../../src/ai-sdk/ui/run-chunk-stream.js';
import { AgentBridge, MemoryTransport, defineTool, type AgentEvent, type LogEntry } from '../../src/index.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { chunksOfRun, messageFrom, readMessage, resumedChunks } from '../helpers/ai-chat.js';
import { answerStep, reasoning, scriptedModel, text, toolCall, toolStep, unauthorized, type StepScript } from '../helpers/ai-models.js';

const weather = defineTool({
  name: 'get_weather',
  description: 'Current weather of a city',
  parameters: z.object({ city: z.string().min(1) }),
  execute: ({ city }) => ({ city, tempC: 21 }),
});

/** Runs a ModelAgent on a scripted model and returns the thread's log entries (with cursors). */
async function recordRun(steps: StepScript[], signal?: AbortSignal): Promise<{ entries: LogEntry[]; runId: string }> {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  const agent = new ModelAgent({ model: scriptedModel(steps), tools: [weather], bridge, thinking: { flush: 'step' }, maxRetries: 0 });
  const result = await agent.run('Weather?', { userId: 'alice', threadId: 'chat-1', ...(signal && { signal }) });
  const subscribed = transport.subscribeSync({ userId: 'alice', threadId: 'chat-1' }, { onEntries: () => undefined });
  await bridge.close();
  if (subscribed.status !== 'subscribed') throw new Error('no log');
  return { entries: subscribed.replay, runId: result.runId };
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

  it('resume after every cursor sends exactly the rest of the stream', async () => {
    const { entries, runId } = await recordRun(richRun);
    const mapper = new UiChunkMapper();
    const full = chunksOfRun(entries, runId);
    let sent = 0;
    for (const [index, entry] of entries.entries()) {
      sent += mapper.map(entry.event, entry.cursor).length;
      const resumed = await resumedChunks(entries, 'alice', entry.cursor);
      if (index === entries.length - 1) expect(resumed).toBe('none'); // the client has everything: 204
      else expect(resumed).toEqual(full.slice(sent));
    }
  });

  it('a stream cut anywhere, even inside an event, resumes from messageAtCursor into the uninterrupted message', async () => {
    const { entries, runId } = await recordRun(richRun);
    const full = chunksOfRun(entries, runId);
    const reference = plain(await messageFrom(full));
    for (let cut = 1; cut < full.length; cut++) {
      const partial = await messageFrom(full.slice(0, cut));
      const position = agentwireCursorOf(partial)!;
      const resumed = await resumedChunks(entries, 'alice', position.cursor);
      const base = messageAtCursor(partial);
      const final = resumed === 'none' ? base : await messageFrom(resumed as UIMessageChunk[], base);
      expect(plain(final), `cut after chunk ${cut} (${full[cut - 1]!.type})`).toEqual(reference);
    }
  });

  it('without a cursor: the active run is replayed from its start; a finished thread has nothing to resume', async () => {
    const { entries, runId } = await recordRun(richRun);
    expect(await resumedChunks(entries, 'alice', undefined)).toBe('none');
    const active = entries.slice(0, -1); // the run has not completed yet
    expect(await resumedChunks(active, 'alice', undefined)).toEqual(chunksOfRun(active, runId));
  });

  it('resume is all or nothing: an unknown cursor, or a run whose start was trimmed, is a gap', async () => {
    const { entries } = await recordRun(richRun);
    expect(await resumedChunks(entries, 'alice', 'zzz:999')).toBe('gap');
    expect(await resumedChunks(entries.slice(2), 'alice', entries[4]!.cursor)).toBe('gap');
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

  it('hand-written agents map the same way; a stream never carries another user’s event', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const result = await new ScriptedAgent({ bridge }).run([{ think: 'plan' }, { tool: 'echo', args: { text: 'hi' } }, { think: 'done' }], { userId: 'alice', threadId: 't1' });
    const subscribed = transport.subscribeSync({ userId: 'alice', threadId: 't1' }, { onEntries: () => undefined });
    await bridge.close();
    if (subscribed.status !== 'subscribed') throw new Error('no log');
    const entries = subscribed.replay;
    expect(summary(await messageFrom(chunksOfRun(entries, result.runId)))).toEqual([
      'step-start',
      'reasoning:plan',
      'tool-echo:output-available',
      'step-start',
      'reasoning:done',
      'text:hi',
    ]);
    // An event of another user injected into the run's entries is dropped by the stream.
    const foreign: AgentEvent = { ...entries[1]!.event, id: 'foreign', userId: 'mallory', seq: 99 } as AgentEvent;
    const session = new RunChunkStream({ runId: result.runId, userId: 'alice', mapper: new UiChunkMapper(), maxQueuedChunks: 1_000, onCancel: () => undefined });
    session.push([...entries.slice(0, 2), { cursor: 'x:1', event: foreign, json: JSON.stringify(foreign) }, ...entries.slice(2)]);
    const chunks: UIMessageChunk[] = [];
    for await (const chunk of session.stream as unknown as AsyncIterable<UIMessageChunk>) chunks.push(chunk);
    expect(session.isolationDrops).toBe(1);
    expect(chunks).toEqual(chunksOfRun(entries, result.runId));
  });
});
