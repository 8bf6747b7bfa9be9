import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTransport, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { SseGateway } from '../../src/gateway/index.js';
import { scriptedRun, testAuthenticate } from '../helpers/sse-server.js';
import { WebSseReader } from '../helpers/sse-web.js';
import { until } from '../helpers/wait.js';

/**
 * The SSE gateway's web-standard handler called the way a Next.js route handler is
 * (`export const GET = (request: Request) => gateway.fetch(request)`): plain `Request` objects
 * in, `Response` objects out, the body read through its `ReadableStream` reader.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function setup(options: Partial<ConstructorParameters<typeof SseGateway>[0]> = {}) {
  const transport = new MemoryTransport({ maxEventsPerThread: 100_000 });
  const gateway = new SseGateway({ log: transport, authenticate: testAuthenticate, heartbeatIntervalMs: 0, ...options });
  cleanups.push(() => transport.close());
  cleanups.push(() => gateway.close());
  // What a Next.js app exports from app/events/route.ts.
  const GET = (request: Request): Promise<Response> => gateway.fetch(request);
  const stream = async (query: string, init: RequestInit = {}) => {
    const controller = new AbortController();
    cleanups.push(() => controller.abort());
    const response = await GET(new Request(`https://app.example.com/events?${query}`, { signal: controller.signal, ...init }));
    return { response, controller };
  };
  return { transport, gateway, GET, stream };
}

describe('SseGateway.fetch as a Next.js route handler', () => {
  it('streams the replay, then live events, as a web ReadableStream; resumes from Last-Event-ID', async () => {
    const { transport, stream } = setup();
    const run = scriptedRun(transport, 'alice', 't1');
    run.start();
    run.think(3);
    const { response } = await stream('threadId=t1&token=tok-alice');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = new WebSseReader(response);
    cleanups.push(() => reader.cancel().catch(() => undefined));
    await reader.waitFor((r) => r.events.length === 4, 'the replay');
    expect(JSON.parse(reader.messages[0]!.data)).toMatchObject({ type: 'subscribed', threadId: 't1', replayed: 4 });
    const resumeFrom = reader.messages.filter((m) => m.id !== undefined)[1]!.id!;
    run.tool();
    run.complete();
    await reader.waitFor((r) => r.events.at(-1)?.type === 'agent_completed', 'the live events');
    const stored = transport.read('t1', 'alice');
    expect(reader.events.map((e) => e.id)).toEqual(stored.map((e) => e.id));
    expect(validateLifecycle(reader.events as unknown as AgentEvent[]).ok).toBe(true);

    const { response: resumedResponse } = await stream('threadId=t1&token=tok-alice', { headers: { 'Last-Event-ID': resumeFrom } });
    const resumed = new WebSseReader(resumedResponse);
    cleanups.push(() => resumed.cancel().catch(() => undefined));
    await resumed.waitFor((r) => r.events.at(-1)?.type === 'agent_completed', 'the resumed stream');
    expect(resumed.events.map((e) => e.id)).toEqual(stored.slice(2).map((e) => e.id));
  });

  it('refuses with a Response carrying the status and the JSON error body', async () => {
    const { GET } = setup({ allowedOrigins: ['https://app.example.com'] });
    const cases: Array<[Request, number, string | undefined]> = [
      [new Request('https://gw.example.com/events?threadId=t1'), 401, 'AUTH_FAILED'],
      [new Request('https://gw.example.com/events?token=tok-alice'), 400, 'MISSING_THREAD_ID'],
      [new Request('https://gw.example.com/events?threadId=t1&token=tok-alice', { method: 'POST' }), 405, 'METHOD_NOT_ALLOWED'],
      [new Request('https://gw.example.com/events?threadId=t1&token=tok-alice', { headers: { Origin: 'https://evil.example.com' } }), 403, 'ORIGIN_FORBIDDEN'],
      [new Request('https://gw.example.com/events?threadId=t1&token=tok-alice', { headers: { 'Last-Event-ID': 'a b' } }), 400, 'INVALID_CURSOR'],
    ];
    for (const [request, status, code] of cases) {
      const response = await GET(request);
      expect([request.method, status, code]).toEqual([request.method, response.status, ((await response.json()) as { error: { code: string } }).error.code]);
      expect(response.headers.get('content-type')).toContain('application/json');
    }
    const preflight = await GET(
      new Request('https://gw.example.com/events', { method: 'OPTIONS', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'GET' } }),
    );
    expect([preflight.status, preflight.headers.get('access-control-allow-origin')]).toEqual([204, 'https://app.example.com']);
  });

  it('request.signal aborting ends the stream and frees its place', async () => {
    const { gateway, stream } = setup({ maxConnectionsPerUser: 1, userLimitPolicy: 'refuse-newest' });
    const { response, controller } = await stream('threadId=t1&token=tok-alice');
    const reader = new WebSseReader(response);
    await reader.waitFor((r) => r.messages.length >= 1, 'subscribed');
    expect(gateway.stats().connections.open).toBe(1);
    controller.abort();
    await until(() => gateway.stats().connections.open === 0, 'the aborted stream to be released');
    const again = await stream('threadId=t1&token=tok-alice');
    expect(again.response.status).toBe(200);
    await again.response.body?.cancel();
  });

  it('a reader that stops reading is cut once its queue passes the bound; a reading one is not; nothing is lost', async () => {
    const { transport, gateway, stream } = setup({ maxQueuedBytes: 64 * 1024 });
    const run = scriptedRun(transport, 'alice', 't1');
    const slow = new WebSseReader((await stream('threadId=t1&token=tok-alice')).response);
    const steady = new WebSseReader((await stream('threadId=t1&token=tok-alice')).response);
    cleanups.push(() => steady.cancel().catch(() => undefined));
    await Promise.all([slow, steady].map((r) => r.waitFor((x) => x.messages.length >= 1, 'subscribed')));
    slow.pause();
    run.start();
    for (let burst = 0; burst < 500 && (gateway.stats().disconnects.slow_consumer ?? 0) === 0; burst++) {
      run.think(8, 4_096);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(gateway.stats().disconnects.slow_consumer).toBe(1);
    slow.resume();
    expect(await slow.ended).toBe('error');
    run.complete();
    await steady.waitFor((r) => r.events.at(-1)?.type === 'agent_completed', 'the steady reader to get everything', 20_000);
    expect(steady.events.map((e) => e.id)).toEqual(transport.read('t1', 'alice').map((e) => e.id));
    const lastSeen = slow.messages.filter((m) => m.id !== undefined).at(-1)!.id!;
    const resumed = new WebSseReader((await stream('threadId=t1&token=tok-alice', { headers: { 'Last-Event-ID': lastSeen } })).response);
    cleanups.push(() => resumed.cancel().catch(() => undefined));
    await resumed.waitFor((r) => r.events.at(-1)?.type === 'agent_completed', 'the resumed reader', 20_000);
    expect([...slow.events, ...resumed.events].map((e) => e.id)).toEqual(transport.read('t1', 'alice').map((e) => e.id));
  });
});
