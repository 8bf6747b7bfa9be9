/**
 * The useChat handler bounds the parts of a POST's conversation before the AI SDK validates it:
 * its validator spends ~0.1-0.3 ms of the event loop per tool part, so 1 MiB of them (within
 * maxBodyBytes) held every other user's stream for seconds. Past `maxMessageParts`: 400
 * `INVALID_MESSAGES` naming the limit, no run; at the limit: the run streams as usual.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport } from '../../src/index.js';
import { createChatHandler } from '../../src/ai-sdk/index.js';
import { ScriptedAgent } from '../helpers/agents.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(maxMessageParts?: number) {
  const log = new MemoryTransport();
  const bridge = new AgentBridge({ transport: log });
  const agent = new ScriptedAgent({ bridge });
  const chat = createChatHandler({
    agent,
    log,
    authenticate: (request) => ({ userId: request.headers.get('authorization')?.slice('Bearer '.length) ?? 'nobody' }),
    input: () => [{ think: 'reading' }],
    heartbeatIntervalMs: 0,
    ...(maxMessageParts === undefined ? {} : { maxMessageParts }),
  });
  const { port } = await chat.listen(0, '127.0.0.1');
  cleanups.push(async () => {
    await chat.close();
    await bridge.close();
  });
  const post = async (chatId: string, partsPerMessage: number[]) => {
    const messages = partsPerMessage.map((count, m) => ({
      id: `m${m}`,
      role: m === partsPerMessage.length - 1 ? 'user' : 'assistant',
      parts: Array.from({ length: count }, (_, i) => ({ type: 'text', text: `part ${i}` })),
    }));
    const response = await fetch(`http://127.0.0.1:${port}/api/chat`, {
      method: 'POST',
      headers: { authorization: 'Bearer alice', 'content-type': 'application/json' },
      body: JSON.stringify({ id: chatId, messages }),
    });
    return { status: response.status, text: await response.text() };
  };
  return { log, post, port };
}

describe('useChat handler: maxMessageParts', () => {
  it('refuses a conversation past the limit with 400 INVALID_MESSAGES before validating it, and starts no run; at the limit the run streams', async () => {
    const { log, post } = await start(5);
    // Messages and parts count together: 2 messages of 2 parts each are 6.
    const refused = await post('chat-over', [2, 2]);
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.text).error).toMatchObject({ code: 'INVALID_MESSAGES', field: 'messages', message: 'Invalid messages: more than 5 messages and parts (maxMessageParts)' });
    expect(await log.ownerOf('chat-over')).toBeUndefined();

    const served = await post('chat-at', [1, 2]);
    expect(served.status).toBe(200);
    expect(served.text).toContain('"type":"finish"');
    expect(await log.ownerOf('chat-at')).toBe('alice');
  });

  it('defaults to 2,000 messages and parts', async () => {
    const { post } = await start();
    expect((await post('chat-default-over', [999, 1_000])).status).toBe(400);
    expect((await post('chat-default-at', [999, 999])).status).toBe(200);
  });

  it('refuses a message that is not an object with a parts array before validating the rest (350,000 empty messages held the loop for 9 s)', async () => {
    const { log, port } = await start();
    for (const message of [{}, 0, [], { parts: 'x' }]) {
      const response = await fetch(`http://127.0.0.1:${port}/api/chat`, {
        method: 'POST',
        headers: { authorization: 'Bearer alice', 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'chat-empty', messages: [{ id: 'm', role: 'user', parts: [] }, ...Array.from({ length: 50_000 }, () => message)] }),
      });
      expect(response.status).toBe(400);
      expect((await response.json()).error).toMatchObject({ code: 'INVALID_MESSAGES', message: 'Invalid messages: messages[1] must be an object with a parts array' });
    }
    expect(await log.ownerOf('chat-empty')).toBeUndefined();
  });
});
