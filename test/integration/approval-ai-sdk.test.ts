import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DefaultChatTransport, type UIMessage } from 'ai';
import { ModelAgent } from '../../src/ai-sdk/index.js';
import { AgentBridge, MemoryTransport, defineTool, validateLifecycle } from '../../src/index.js';
import { NodeChat, startChatServer, type ChatServer } from '../helpers/ai-chat.js';
import { answerStep, scriptedModel, text, toolCall, toolResultsSent, toolStep } from '../helpers/ai-models.js';
import { pendingOf } from '../helpers/interactive.js';
import { until } from '../helpers/wait.js';

const servers: ChatServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function setup() {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  await bridge.initialize();
  const executed: number[] = [];
  const transfer = defineTool({
    name: 'transfer',
    description: 'Moves money',
    parameters: z.object({ amount: z.number() }),
    needsApproval: true,
    execute: ({ amount }) => {
      executed.push(amount);
      return { sent: amount };
    },
  });
  const model = scriptedModel([toolStep([], toolCall('m1', 'transfer', { amount: 250 })), answerStep(text('Done.'))]);
  const agent = new ModelAgent({ name: 'banker', model, bridge, tools: [transfer] });
  const server = await startChatServer({ agent, log: transport });
  servers.push(server);
  const chat = new NodeChat({
    id: 'chat-approval',
    transport: new DefaultChatTransport<UIMessage>({ api: `${server.url}/api/chat`, headers: { authorization: 'Bearer alice-token' } }),
  });
  return { transport, chat, model, executed };
}

/** The user answers while the AI SDK chat client streams the run (as an app's Allow/Deny button would, through the answer endpoint). */
type Setup = Awaited<ReturnType<typeof setup>>;

async function answerWhileStreaming(t: Setup, approved: boolean) {
  const sending = t.chat.sendMessage({ text: 'Send 250 to bob' });
  await until(() => pendingOf(t.transport.read('chat-approval', 'alice')) !== undefined, 'the approval request');
  // The client's message shows the AI SDK's approval-requested state with our request id.
  const pending = pendingOf(t.transport.read('chat-approval', 'alice'))!;
  await until(() => JSON.stringify(t.chat.messages).includes(pending.requestId), 'the approval request in the chat state');
  const part = t.chat.messages[1]!.parts.find((p) => p.type === 'tool-transfer') as { state: string; approval?: { id: string } };
  expect(part).toMatchObject({ state: 'approval-requested', approval: { id: pending.requestId } });
  await t.transport.answerRequest({ runId: pending.runId, requestId: pending.requestId, userId: 'alice', approved });
  await sending;
  return t.chat.messages[1]!.parts.find((p) => p.type === 'tool-transfer') as { state: string };
}

describe('approval with the AI SDK chat client (MockLanguageModelV3)', () => {
  it('allowed: approval-requested, then the output; the model got the result', async () => {
    const s = await setup();
    const part = await answerWhileStreaming(s, true);
    expect(part).toMatchObject({ state: 'output-available', output: { sent: 250 } });
    expect(s.executed).toEqual([250]);
    expect(toolResultsSent(s.model.doStreamCalls[1])).toEqual([{ toolName: 'transfer', output: { type: 'json', value: { sent: 250 } } }]);
    expect(validateLifecycle(s.transport.read('chat-approval', 'alice'))).toEqual({ ok: true, runs: 1 });
  });

  it('denied: output-denied in the chat; the model got TOOL_DENIED back as the tool result and answered', async () => {
    const s = await setup();
    const part = await answerWhileStreaming(s, false);
    expect(part.state).toBe('output-denied');
    expect(s.executed).toEqual([]);
    const sent = toolResultsSent(s.model.doStreamCalls[1]);
    expect(sent).toHaveLength(1);
    expect(JSON.stringify(sent[0]!.output)).toContain('denied');
    expect(s.chat.messages[1]!.parts.some((p) => p.type === 'text' && p.text === 'Done.')).toBe(true);
  });
});
