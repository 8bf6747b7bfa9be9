/**
 * The AG-UI handler bounds the JSON values of a `RunAgentInput` body before `@ag-ui/core`'s schema
 * parses it: the schema spends ~6 µs of the event loop per value, so 350,000 empty objects in
 * `context` (within maxBodyBytes and maxBodyDepth) held every other user's stream for 2 s. Past
 * `maxInputValues`: 400 `VALIDATION_FAILED` naming the limit, no run; at the limit: the run streams.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport } from '../../src/index.js';
import { createAguiHandler } from '../../src/agui/index.js';
import { ScriptedAgent } from '../helpers/agents.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(maxInputValues?: number) {
  const log = new MemoryTransport();
  const bridge = new AgentBridge({ transport: log });
  const agent = new ScriptedAgent({ bridge });
  const agui = createAguiHandler({
    agent,
    log,
    authenticate: () => ({ userId: 'alice' }),
    toInput: () => [{ think: 'reading' }],
    heartbeatIntervalMs: 0,
    ...(maxInputValues === undefined ? {} : { maxInputValues }),
  });
  const { port } = await agui.listen(0, '127.0.0.1');
  cleanups.push(async () => {
    await agui.close();
    await bridge.close();
  });
  /** A RunAgentInput whose `context` holds `contexts` entries: 8 values around them, 3 per entry. */
  const post = async (threadId: string, contexts: number) => {
    const body = { threadId, runId: '', state: {}, messages: [], tools: [], forwardedProps: {}, context: Array.from({ length: contexts }, (_, i) => ({ description: 'd', value: `${i}` })) };
    const response = await fetch(`http://127.0.0.1:${port}/agui`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body: JSON.stringify(body) });
    return { status: response.status, text: await response.text() };
  };
  return { log, post };
}

describe('AG-UI handler: maxInputValues', () => {
  it('refuses a body past the limit with 400 VALIDATION_FAILED before the schema runs, and starts no run; at the limit the run streams', async () => {
    const { log, post } = await start(20);
    // 8 values around `context` (the body, threadId, runId, state, messages, tools, forwardedProps, context) + 3 per entry.
    const refused = await post('t-over', 5);
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.text).error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'body', message: 'Invalid RunAgentInput: more than 20 JSON values (maxInputValues)' });
    expect(await log.ownerOf('t-over')).toBeUndefined();
    const served = await post('t-at', 4);
    expect(served.status).toBe(200);
    expect(served.text).toContain('RUN_FINISHED');
    expect(await log.ownerOf('t-at')).toBe('alice');
  });

  it('defaults to 20,000 values', async () => {
    const { post } = await start();
    expect((await post('t-default', 6_700)).status).toBe(400); // 20,108 values
    expect((await post('t-default-ok', 6_000)).status).toBe(200);
  });
});
