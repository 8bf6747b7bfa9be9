import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DefaultChatTransport, lastAssistantMessageIsCompleteWithApprovalResponses, type UIMessage } from 'ai';
import { ModelAgent } from '../../src/ai-sdk/index.js';
import { AgentBridge, MemoryTransport, defineTool, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { NodeChat, startChatServer, type ChatServer } from '../helpers/ai-chat.js';
import { answerStep, scriptedModel, text, toolCall, toolResultsSent, toolStep } from '../helpers/ai-models.js';
import { pendingOf } from '../helpers/interactive.js';
import { until } from '../helpers/wait.js';

const servers: ChatServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

const CHAT = 'chat-approval';

async function setup(options: { pauseOnRequest?: boolean } = {}) {
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
  const server = await startChatServer({ agent, log: transport, ...options });
  servers.push(server);
  /** An AI SDK chat client of `token` (useChat's core) on chat `id`, resending after approval responses. */
  const chatOf = (token: string, messages: UIMessage[] = [], id = CHAT) =>
    new NodeChat({
      id,
      messages,
      transport: new DefaultChatTransport<UIMessage>({ api: `${server.url}/api/chat`, headers: { authorization: `Bearer ${token}` } }),
      sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
    });
  const events = () => transport.read(CHAT, 'alice');
  return { transport, chat: chatOf('alice-token'), chatOf, model, executed, events };
}

type Setup = Awaited<ReturnType<typeof setup>>;
type ToolPart = { type: string; state: string; approval?: { id: string }; output?: unknown };

const transferPart = (chat: NodeChat): ToolPart | undefined => chat.messages[1]?.parts.find((p) => p.type === 'tool-transfer') as ToolPart | undefined;
const answers = (events: readonly AgentEvent[]) => events.filter((event) => event.type === 'user_answered');

/** Sends the user's message: the response ends at the approval request (`finish`), the client is ready for addToolApprovalResponse. */
async function askForTransfer(s: Setup) {
  await s.chat.sendMessage({ text: 'Send 250 to bob' });
  const pending = pendingOf(s.events())!;
  expect(s.chat.status).toBe('ready');
  expect(transferPart(s.chat)).toMatchObject({ state: 'approval-requested', approval: { id: pending.requestId } });
  // The run waits: no answer, no tool result, no terminal event yet.
  expect(s.events().some((event) => event.type === 'tool_completed' || event.type === 'agent_completed')).toBe(false);
  return pending;
}

describe('approval with the AI SDK chat client: addToolApprovalResponse and the resend (MockLanguageModelV3)', () => {
  it('approved: the resend answers the request and streams the rest of the same run; the tool ran once, the model got its result', async () => {
    const s = await setup();
    const pending = await askForTransfer(s);
    await s.chat.addToolApprovalResponse({ id: pending.requestId, approved: true });
    await until(() => transferPart(s.chat)?.state === 'output-available' && s.chat.status === 'ready' && s.chat.messages[1]!.parts.some((p) => p.type === 'text'), 'the resent stream to finish');
    expect(transferPart(s.chat)).toMatchObject({ state: 'output-available', output: { sent: 250 } });
    expect(s.chat.messages).toHaveLength(2);
    expect(s.chat.messages[1]!.id).toBe(pending.runId);
    expect(s.chat.messages[1]!.parts.filter((p) => p.type === 'text')).toMatchObject([{ text: 'Done.' }]);
    expect(s.executed).toEqual([250]);
    expect(toolResultsSent(s.model.doStreamCalls[1])).toEqual([{ toolName: 'transfer', output: { type: 'json', value: { sent: 250 } } }]);
    const events = s.events();
    expect(answers(events)).toMatchObject([{ userId: 'alice', runId: pending.runId, data: { requestId: pending.requestId, approved: true } }]);
    expect(new Set(events.map((event) => event.runId))).toEqual(new Set([pending.runId]));
    expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
  });

  it('denied: output-denied in the chat; the model got TOOL_DENIED back as the tool result and answered', async () => {
    const s = await setup();
    const pending = await askForTransfer(s);
    await s.chat.addToolApprovalResponse({ id: pending.requestId, approved: false, reason: 'not today' });
    await until(() => s.chat.status === 'ready' && s.chat.messages[1]!.parts.some((p) => p.type === 'text'), 'the resent stream to finish');
    expect(transferPart(s.chat)!.state).toBe('output-denied');
    expect(s.executed).toEqual([]);
    const sent = toolResultsSent(s.model.doStreamCalls[1]);
    expect(sent).toHaveLength(1);
    expect(JSON.stringify(sent[0]!.output)).toContain('not today');
    expect(s.chat.messages[1]!.parts.some((p) => p.type === 'text' && p.text === 'Done.')).toBe(true);
    const completed = s.events().find((event) => event.type === 'tool_completed');
    expect(completed).toMatchObject({ data: { status: 'failed', error: { code: 'TOOL_DENIED' } } });
    expect(validateLifecycle(s.events())).toEqual({ ok: true, runs: 1 });
  });

  it('a second response to the same request is refused (409 ANSWER_ALREADY_GIVEN): one answer in the log, the tool ran once', async () => {
    const s = await setup();
    const pending = await askForTransfer(s);
    // A second client (another tab) with the conversation as it was at the request.
    const other = s.chatOf('alice-token', structuredClone(s.chat.messages));
    await s.chat.addToolApprovalResponse({ id: pending.requestId, approved: true });
    await until(() => s.chat.status === 'ready' && transferPart(s.chat)?.state === 'output-available' && s.events().at(-1)?.type === 'agent_completed', 'the first answer to finish the run');
    await other.addToolApprovalResponse({ id: pending.requestId, approved: false });
    await until(() => other.status === 'error', 'the second resend to be refused');
    expect(other.error!.message).toContain('ANSWER_ALREADY_GIVEN');
    expect(answers(s.events())).toHaveLength(1);
    expect(answers(s.events())[0]).toMatchObject({ data: { approved: true } });
    expect(s.executed).toEqual([250]);
    expect(validateLifecycle(s.events())).toEqual({ ok: true, runs: 1 });
  });

  it("another user's resend is refused (403) and changes nothing; the run's own user answers afterwards", async () => {
    const s = await setup();
    const pending = await askForTransfer(s);
    // Bob replays alice's conversation into her chat, and into a chat of his own.
    const intruder = s.chatOf('bob-token', structuredClone(s.chat.messages));
    await intruder.addToolApprovalResponse({ id: pending.requestId, approved: true });
    await until(() => intruder.status === 'error', "bob's resend to be refused");
    expect(intruder.error!.message).toContain('THREAD_FORBIDDEN');
    const ownChat = s.chatOf('bob-token', structuredClone(s.chat.messages), 'bobs-chat');
    await ownChat.addToolApprovalResponse({ id: pending.requestId, approved: true });
    await until(() => ownChat.status === 'error', "bob's resend into his own chat to be refused");
    expect(ownChat.error!.message).toContain('ANSWER_UNKNOWN_REQUEST');
    expect(answers(s.events())).toEqual([]);
    expect(s.executed).toEqual([]);
    // The request is still open for alice.
    await s.chat.addToolApprovalResponse({ id: pending.requestId, approved: true });
    await until(() => s.chat.status === 'ready' && transferPart(s.chat)?.state === 'output-available' && s.events().at(-1)?.type === 'agent_completed', "alice's answer to finish the run");
    expect(answers(s.events())).toMatchObject([{ userId: 'alice' }]);
    expect(s.executed).toEqual([250]);
  });

  it('a forged resend (unknown approval ids, too many of them) is refused before the log is touched; the run still waits', async () => {
    const s = await setup();
    const pending = await askForTransfer(s);
    const url = `${servers[0]!.url}/api/chat`;
    const resend = (parts: unknown[]) =>
      fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', authorization: 'Bearer alice-token' },
        body: JSON.stringify({ id: CHAT, trigger: 'submit-message', messageId: pending.runId, messages: [{ id: pending.runId, role: 'assistant', parts }] }),
      });
    const part = (id: string) => ({ type: 'tool-transfer', toolCallId: pending.toolCallId, state: 'approval-responded', input: { amount: 250 }, approval: { id, approved: true } });
    const unknown = await resend([part('req_forged')]);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 'ANSWER_UNKNOWN_REQUEST' } });
    const many = await resend(Array.from({ length: 65 }, (_, i) => part(`req_${i}`)));
    expect(many.status).toBe(400);
    expect(answers(s.events())).toEqual([]);
    expect(s.events().at(-1)!.type).toBe('tool_executing');
    // The same request named twice is one answer.
    const twice = await resend([part(pending.requestId), part(pending.requestId)]);
    expect(twice.status).toBe(200);
    await twice.text();
    expect(answers(s.events())).toHaveLength(1);
    await until(() => s.events().at(-1)?.type === 'agent_completed', 'the run to end');
    expect(s.executed).toEqual([250]);
  });

  it('useChat stop() during the resent stream cancels the same run (abortOnDisconnect): the approved tool is aborted, agent_completed cancelled', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    await bridge.initialize();
    let running = false;
    const slow = defineTool({
      name: 'transfer',
      description: 'Moves money, slowly',
      parameters: z.object({ amount: z.number() }),
      needsApproval: true,
      execute: async (_args, ctx) => {
        running = true;
        await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
      },
    });
    const model = scriptedModel([toolStep([], toolCall('m1', 'transfer', { amount: 9 })), answerStep(text('Done.'))]);
    const agent = new ModelAgent({ name: 'banker', model, bridge, tools: [slow] });
    const server = await startChatServer({ agent, log: transport, abortOnDisconnect: true });
    servers.push(server);
    const chat = new NodeChat({
      id: 'chat-stop',
      transport: new DefaultChatTransport<UIMessage>({ api: `${server.url}/api/chat`, headers: { authorization: 'Bearer alice-token' } }),
      sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
    });
    await chat.sendMessage({ text: 'Send 9' });
    const pending = pendingOf(transport.read('chat-stop', 'alice'))!;
    await chat.addToolApprovalResponse({ id: pending.requestId, approved: true });
    await until(() => running && chat.status !== 'ready', 'the approved tool to run while the resend is open');
    expect(transport.read('chat-stop', 'alice').some((event) => event.type === 'agent_completed')).toBe(false);
    await chat.stop();
    await until(() => transport.read('chat-stop', 'alice').at(-1)?.type === 'agent_completed', 'the run to end');
    const events = transport.read('chat-stop', 'alice');
    expect(events.at(-1)).toMatchObject({ type: 'agent_completed', data: { status: 'cancelled' } });
    expect(events.find((event) => event.type === 'tool_completed')).toMatchObject({ data: { status: 'failed' } });
    expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
  });

  describe('pauseOnRequest: false (the stream stays open; the answer comes over the answer endpoint or WebSocket)', () => {
    async function answerWhileStreaming(t: Setup, approved: boolean) {
      const sending = t.chat.sendMessage({ text: 'Send 250 to bob' });
      await until(() => pendingOf(t.events()) !== undefined, 'the approval request');
      const pending = pendingOf(t.events())!;
      await until(() => JSON.stringify(t.chat.messages).includes(pending.requestId), 'the approval request in the chat state');
      expect(transferPart(t.chat)).toMatchObject({ state: 'approval-requested', approval: { id: pending.requestId } });
      expect(t.chat.status).toBe('streaming');
      await t.transport.answerRequest({ runId: pending.runId, requestId: pending.requestId, userId: 'alice', approved });
      await sending;
      return transferPart(t.chat)!;
    }

    it('allowed: approval-requested, then the output; the model got the result', async () => {
      const s = await setup({ pauseOnRequest: false });
      const part = await answerWhileStreaming(s, true);
      expect(part).toMatchObject({ state: 'output-available', output: { sent: 250 } });
      expect(s.executed).toEqual([250]);
      expect(validateLifecycle(s.events())).toEqual({ ok: true, runs: 1 });
    });

    it('denied: output-denied; the model got TOOL_DENIED', async () => {
      const s = await setup({ pauseOnRequest: false });
      const part = await answerWhileStreaming(s, false);
      expect(part.state).toBe('output-denied');
      expect(JSON.stringify(toolResultsSent(s.model.doStreamCalls[1])[0]!.output)).toContain('denied');
    });
  });
});
