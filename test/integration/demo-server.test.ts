import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type AgentEvent, type AgentwireError } from '../../src/client/index.js';
import { validateLifecycle } from '../../src/index.js';
import { startDemoServer, type DemoServer } from '../../examples/demo-server/index.js';
import { SseTestClient } from '../helpers/sse-client.js';

let demo: DemoServer;
beforeAll(async () => {
  demo = await startDemoServer({ port: 0 });
});
afterAll(async () => {
  await demo?.close();
});

const api = (path: string) => new URL(path, demo.url).toString();

/** `token: null` sends no Authorization header. */
function postRun(body: unknown, token: string | null = 'demo-alice', contentType = 'application/json') {
  const headers: Record<string, string> = { 'Content-Type': contentType };
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(api('/api/runs'), { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

describe('demo server', () => {
  it('POST /api/runs starts a run; a WebSocket client (src/client + ws) receives a complete valid lifecycle', async () => {
    const threadId = 'demo-test-alice-1';
    const client = connect(`${demo.url.replace(/^http/, 'ws')}ws`, { threadId, token: 'demo-alice', WebSocket });
    const events: AgentEvent[] = [];
    const errors: AgentwireError[] = [];
    client.on('error', (error) => errors.push(error));
    const completed = new Promise<void>((resolve) =>
      client.on('event', (event) => {
        events.push(event);
        if (event.type === 'agent_completed') resolve();
      }),
    );
    await new Promise<void>((resolve) => client.on('status', (status) => status === 'open' && resolve()));

    const response = await postRun({ question: 'What is Redis Streams?', threadId });
    expect(response.status).toBe(202);
    const { runId, threadId: echoed } = (await response.json()) as { runId: string; threadId: string };
    expect(echoed).toBe(threadId);
    await completed;
    client.close();

    const check = validateLifecycle(events);
    expect(check.ok ? check.runs : check.violation.message).toBe(1);
    expect(events.every((e) => e.runId === runId && e.userId === 'alice' && e.threadId === threadId)).toBe(true);
    expect(events.map((e) => e.id)).toEqual(demo.transport.read(threadId, 'alice').map((e) => e.id));
    expect(events.filter((e) => e.type === 'tool_completed').map((e) => e.type === 'tool_completed' && e.data.status)).toEqual([
      'failed', // the research agent's search fails once per thread
      'succeeded',
      'succeeded',
    ]);
    expect(errors).toEqual([]);
    expect(client.stats.foreign).toBe(0);
  });

  it('serves the same thread over SSE at /events', async () => {
    const threadId = 'demo-test-bob-1';
    const { done } = await demo.startRun('bob', threadId, 'How do WebSockets reconnect?');
    await done;
    const stream = await SseTestClient.open(api(`/events?threadId=${threadId}&token=demo-bob`));
    expect(stream.status).toBe(200);
    await stream.waitForEvent('agent_completed');
    stream.close();
    expect(stream.events.map((e) => e.id)).toEqual(demo.transport.read(threadId, 'bob').map((e) => e.id));
    const refused = await SseTestClient.open(api(`/events?threadId=${threadId}&token=demo-alice`));
    await refused.ended;
    expect([refused.status, refused.error.code]).toEqual([403, 'THREAD_FORBIDDEN']);
  });

  it('refuses bad run requests with a status and a JSON error', async () => {
    await (await postRun({ question: 'mine', threadId: 'demo-test-owned' }, 'demo-carol')).body?.cancel();
    const cases: Array<[() => Promise<Response>, number, string]> = [
      [() => postRun({ question: 'q', threadId: 't' }, null), 401, 'AUTH_FAILED'],
      [() => postRun({ question: 'q', threadId: 't' }, 'alice'), 401, 'AUTH_FAILED'],
      [() => postRun({ question: 'q', threadId: 't' }, 'demo-alice', 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [() => postRun('{not json', 'demo-alice'), 400, 'INVALID_JSON'],
      [() => postRun({ question: '', threadId: 't' }), 400, 'VALIDATION_FAILED'],
      [() => postRun({ question: 'q', threadId: 'bad thread!' }), 400, 'VALIDATION_FAILED'],
      [() => postRun({ question: 'x'.repeat(20_000), threadId: 't' }), 413, 'BODY_TOO_LARGE'],
      [() => postRun({ question: 'q', threadId: 'demo-test-owned' }), 403, 'THREAD_FORBIDDEN'],
      [() => fetch(api('/api/runs')), 405, 'METHOD_NOT_ALLOWED'],
      [() => fetch(api('/nope')), 404, 'NOT_FOUND'],
    ];
    for (const [request, status, code] of cases) {
      const response = await request();
      const body = (await response.json()) as { error?: { code: string; message: string } };
      expect([response.status, body.error?.code]).toEqual([status, code]);
      if (!body.error) continue;
      expect(body.error.message.length).toBeGreaterThan(0);
    }
  });

  it('serves the page, its script and a browser client bundle free of Node built-ins', async () => {
    const page = await fetch(demo.url);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/app.js"></script>');
    expect(html).toContain('id="timeline"');

    const app = await fetch(api('/app.js'));
    expect(app.headers.get('content-type')).toContain('javascript');
    const appText = await app.text();
    expect(appText.match(/^import .*$/gm)).toEqual(['import { connect } from "/agentwire-client.js";']);

    const bundle = await fetch(api('/agentwire-client.js'));
    const bundleText = await bundle.text();
    expect(bundle.headers.get('content-type')).toContain('javascript');
    expect(bundleText).toMatch(/export\s*\{[^}]*\bconnect\b/);
    expect(bundleText).not.toMatch(/^import /m); // self-contained
    // No import of a Node built-in (a string such as a field named "events" is no import).
    expect(bundleText).not.toMatch(/(\bfrom\s*|\brequire\(\s*|\bimport\(\s*)["'](node:)?(fs|net|http|https|stream|events|crypto|os|path|async_hooks)["']/);
    expect(bundleText).not.toContain('WebSocketServer');
  });
});
