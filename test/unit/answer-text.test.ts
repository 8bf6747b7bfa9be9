import { EventType, verifyEvents, type BaseEvent } from '@ag-ui/client';
import { EventSchema } from '@ag-ui/core/schemas';
import type { UIMessage, UIMessageChunk } from 'ai';
import fc from 'fast-check';
import { from, lastValueFrom, toArray } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AguiEventMapper } from '../../src/agui/index.js';
import { UiChunkMapper, messageAtCursor } from '../../src/ai-sdk/index.js';
import { AnswerText } from '../../src/client/index.js';
import { AgentBridge, BaseAgent, MemoryTransport, defineTool, validateLifecycle, type LogEntry } from '../../src/index.js';
import { agentThinkingDataSchema } from '../../src/protocol/index.js';
import { quickValid } from '../../src/bridge/fast-check.js';
import { messageFrom } from '../helpers/ai-chat.js';

/**
 * Property: whatever an agent streams (any deltas, empty and whitespace ones included, with
 * thoughts and tool calls between them), the text rebuilt from its events equals what it wrote,
 * also when the receiver got a prefix and then a replay from any earlier position (a resume
 * that overlaps); and AG-UI and the AI SDK see the same text, reasoning apart.
 */

type Op = { delta: string; id?: string } | { think: string } | { tool: true };

class ScriptWriter extends BaseAgent<Op[], string> {
  constructor(bridge: AgentBridge) {
    super({ bridge, tools: [defineTool({ name: 'noop', description: 'does nothing', parameters: z.object({}), execute: async () => 'ok' })] });
  }
  protected async execute(ops: Op[]): Promise<string> {
    for (const op of ops) {
      if ('delta' in op) await this.streamText(op.delta, op.id === undefined ? {} : { messageId: op.id });
      else if ('think' in op) await this.think(op.think);
      else await this.callTool('noop', {});
    }
    return 'done';
  }
}

const transport = new MemoryTransport();
const bridge = new AgentBridge({ transport });
afterAll(() => bridge.close());

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ delta: fc.string({ unit: 'grapheme', maxLength: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ delta: fc.string({ minLength: 1, maxLength: 3 }), id: fc.constantFrom('a', 'b') }) },
  { weight: 1, arbitrary: fc.record({ think: fc.string({ maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ tool: true as const }) },
);

let runs = 0;
async function entriesOf(ops: Op[]): Promise<LogEntry[]> {
  const threadId = `prop-${++runs}`;
  const result = await new ScriptWriter(bridge).run(ops, { userId: 'alice', threadId });
  expect(result.status).toBe('succeeded');
  const subscribed = transport.subscribeSync({ userId: 'alice', threadId }, { onEntries: () => undefined });
  if (subscribed.status !== 'subscribed') throw new Error('gap');
  subscribed.subscription.close();
  return subscribed.replay;
}

const written = (ops: Op[]) => ops.map((op) => ('delta' in op ? op.delta : '')).join('');

describe('streamed answer text rebuild (fast-check)', () => {
  it('AnswerText: a prefix, then a replay from any earlier position, rebuilds exactly what was written', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 24 }), fc.nat(), fc.nat(), async (ops, cutSeed, replaySeed) => {
        const entries = await entriesOf(ops);
        const events = entries.map((entry) => entry.event);
        expect(validateLifecycle(events).ok).toBe(true);
        const runId = events[0]!.runId;
        const cut = cutSeed % events.length;
        const replayFrom = replaySeed % (cut + 2);
        const answers = new AnswerText();
        for (const event of [...events.slice(0, cut + 1), ...events.slice(replayFrom)]) answers.push(event);
        expect(answers.text(runId)).toBe(written(ops));
        // The same messages as the AI SDK's text parts (one per message, in order).
        const chunks = new UiChunkMapper();
        const parts = (await messageFrom(entries.flatMap((entry) => chunks.map(entry.event, entry.cursor))))!.parts;
        const texts = parts.flatMap((part) => (part.type === 'text' ? [part.text] : []));
        expect(answers.messages(runId).map((message) => message.text)).toEqual(written(ops) === '' ? [] : texts);
        // Empty deltas emit nothing; every emitted answer event is valid for the schema.
        for (const event of events) if (event.type === 'agent_thinking') expect(agentThinkingDataSchema.safeParse(event.data).success).toBe(true);
        expect(events.filter((event) => event.type === 'agent_thinking' && event.data.channel === 'answer' && event.data.text === '')).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });

  it('AG-UI: TEXT_MESSAGE_CONTENT carries exactly the text, reasoning apart, and the verifier accepts every stream', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 24 }), async (ops) => {
        const events = (await entriesOf(ops)).map((entry) => entry.event);
        const mapper = new AguiEventMapper();
        const agui = events.flatMap((event) => mapper.map(event)) as BaseEvent[];
        for (const event of agui) expect(EventSchema.safeParse(event).error).toBeUndefined();
        await lastValueFrom(from(agui).pipe(verifyEvents(), toArray()));
        const text = agui.flatMap((event) => (event.type === EventType.TEXT_MESSAGE_CONTENT ? [(event as BaseEvent & { delta: string }).delta] : [])).join('');
        // The result ("done") is the text message only when the run streamed no answer.
        expect(text).toBe(written(ops) || 'done');
        const thoughts = agui.flatMap((event) => (event.type === EventType.REASONING_MESSAGE_CONTENT ? [(event as BaseEvent & { delta: string }).delta] : [])).join('');
        expect(thoughts).toBe(ops.map((op) => ('think' in op ? op.think : '')).join(''));
      }),
      { numRuns: 100 },
    );
  });

  it('AI SDK: cut after any chunk, trimmed with messageAtCursor, resumed (reopened part + the rest): the message equals the uninterrupted one', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 16 }), fc.nat(), async (ops, cutSeed) => {
        const entries = await entriesOf(ops);
        const full = new UiChunkMapper();
        const chunks = entries.flatMap((entry) => full.map(entry.event, entry.cursor));
        const message = (await messageFrom(chunks))!;
        const text = message.parts.flatMap((part) => (part.type === 'text' ? [part.text] : [])).join('');
        expect(text).toBe(written(ops) || 'done');
        const cut = 1 + (cutSeed % chunks.length);
        const partial = messageAtCursor(await messageFrom(chunks.slice(0, cut)));
        if (!partial) return;
        // What the server does for a resume after that cursor: advance a mapper over the events the client has, then resumed() and the rest.
        const { seq } = (partial.metadata as { agentwire: { seq: number } }).agentwire;
        const mapper = new UiChunkMapper();
        for (const entry of entries.filter((e) => e.event.seq <= seq)) mapper.map(entry.event, entry.cursor);
        const rest: UIMessageChunk[] = [...mapper.resumed(), ...entries.filter((e) => e.event.seq > seq).flatMap((entry) => mapper.map(entry.event, entry.cursor))];
        const resumed = rest.length === 0 ? partial : ((await messageFrom(rest, partial)) as UIMessage);
        expect(resumed.parts).toEqual(message.parts);
      }),
      { numRuns: 100 },
    );
  });
});

describe('agent_thinking answer fields', () => {
  it("the emitter's plain-code check never passes data the schema refuses (channel, messageId of any kind)", () => {
    const anyValue = fc.oneof(fc.constant(undefined), fc.constantFrom('answer', 'reasoning', 'Answer', ''), fc.string({ maxLength: 70 }), fc.integer(), fc.boolean(), fc.constant(null));
    fc.assert(
      fc.property(fc.string({ maxLength: 4 }), fc.option(fc.nat(), { nil: undefined }), anyValue, anyValue, (text, step, channel, messageId) => {
        const data: Record<string, unknown> = { text };
        if (step !== undefined) data.step = step;
        if (channel !== undefined) data.channel = channel;
        if (messageId !== undefined) data.messageId = messageId;
        const accepted = agentThinkingDataSchema.safeParse(data).success;
        if (quickValid('agent_thinking', data)) expect(accepted).toBe(true);
        // The shapes agentwire emits take the fast path.
        if (channel === 'answer' && typeof messageId === 'string' && messageId.length >= 1 && messageId.length <= 64) expect(quickValid('agent_thinking', data)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });
});
