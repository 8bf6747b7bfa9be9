import { EventType, HttpAgent, type BaseEvent } from '@ag-ui/client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { validateLifecycle, type AgentEvent } from '../../src/index.js';
import { startDemoServer, type DemoServer } from '../../examples/demo-server/index.js';

let server: DemoServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  vi.restoreAllMocks();
});

describe('the demo server over AG-UI and /metrics (research agent, HttpAgent)', () => {
  it('answers an HttpAgent conversation and reports the run on /metrics', async () => {
    const complaints = [vi.spyOn(console, 'warn').mockImplementation(() => undefined), vi.spyOn(console, 'error').mockImplementation(() => undefined)];
    server = await startDemoServer({ port: 0 });
    const events: AgentEvent[] = [];
    server.agent.on('event', (event) => events.push(event));
    const client = new HttpAgent({
      url: `${server.url}agui`,
      headers: { Authorization: 'Bearer demo-alice' },
      threadId: 'interop-thread',
      initialMessages: [{ id: 'q1', role: 'user', content: 'What is Redis?' }],
    });
    const seen: BaseEvent[] = [];
    const { result, newMessages } = await client.runAgent({}, { onEvent: ({ event }) => void seen.push(event) });

    expect(complaints.map((spy) => spy.mock.calls)).toEqual([[], []]);
    expect(result).toMatch(/^Answer to "What is Redis\?": Summary of 2 sources/);
    expect(seen[0]).toMatchObject({ type: EventType.RUN_STARTED, threadId: 'interop-thread' });
    expect(seen.at(-1)).toMatchObject({ type: EventType.RUN_FINISHED, outcome: { type: 'success' } });
    // The flaky search fails once, is retried, then summarized: three tool calls, the first one failed.
    const calls = newMessages.flatMap((message) => (message.role === 'assistant' ? (message.toolCalls ?? []) : []));
    expect(calls.map((call) => call.function.name)).toEqual(['web_search', 'web_search', 'summarize']);
    const results = newMessages.filter((message) => message.role === 'tool');
    expect(results[0]?.content).toContain('"error"');
    expect(newMessages.at(-1)).toMatchObject({ role: 'assistant', content: result });
    const check = validateLifecycle(events);
    expect(check.ok).toBe(true);

    const metrics = await (await fetch(`${server.url}metrics`)).text();
    expect(metrics).toContain(`agentwire_bridge_events_emitted_total{bridge="default"} ${events.length}`);
    expect(metrics).toContain(`agentwire_gateway_frames_sent_total{gateway="agui"} ${seen.length}`);
  });

  it('refuses a conversation without a user message with 400 naming messages', async () => {
    server = await startDemoServer({ port: 0 });
    const response = await fetch(`${server.url}agui`, {
      method: 'POST',
      headers: { Authorization: 'Bearer demo-alice', 'Content-Type': 'application/json' },
      body: JSON.stringify({ threadId: 't', messages: [] }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { field: 'messages' } });
  });
});
