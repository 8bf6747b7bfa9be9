import { EventType, HttpAgent, verifyEvents, type BaseEvent } from '@ag-ui/client';
import { DefaultChatTransport, readUIMessageStream, type UIMessage } from 'ai';
import { from, lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createAguiHandler } from '../../src/agui/index.js';
import { AGENTWIRE_CURSOR_HEADER, ModelAgent, createChatHandler, messageAtCursor, resumeAfterCursor } from '../../src/ai-sdk/index.js';
import { AgentBridge, MemoryTransport, defineTool, validateLifecycle } from '../../src/index.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { NodeChat, userMessage } from '../helpers/ai-chat.js';
import { answerStep, reasoning, scriptedModel, text, toolCall, toolStep } from '../helpers/ai-models.js';
import { stepsFrom, surfaceAuthenticate } from '../helpers/run-surfaces.js';
import { until } from '../helpers/wait.js';

/**
 * The web-standard handlers of AG-UI and useChat called the way a Next.js route handler is
 * (`export const POST = (request: Request) => handler.fetch(request)`): plain `Request` objects
 * in, `Response` objects out, the stream read through its `ReadableStream`, the clients being the
 * real ones (@ag-ui/client's `HttpAgent`, the AI SDK's `DefaultChatTransport` / `AbstractChat`)
 * with their `fetch` pointed at the route handler. No socket anywhere.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.restoreAllMocks();
});

/** Reads an SSE `Response` body into frames (id, data), like EventSource. */
async function framesOf(response: Response, until?: (frames: Array<{ id?: string; data: string }>) => boolean) {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const frames: Array<{ id?: string; data: string }> = [];
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const lines = block.split('\n');
      const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
      const id = lines.find((l) => l.startsWith('id: '))?.slice(4);
      if (data.length > 0) frames.push({ ...(id !== undefined && { id }), data: data.join('\n') });
    }
    if (until?.(frames)) {
      await reader.cancel();
      break;
    }
  }
  return frames;
}

function aguiRoute(options: { abortOnDisconnect?: boolean } = {}) {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  const agent = new ScriptedAgent({ bridge });
  const handler = createAguiHandler({
    agent,
    log: transport,
    authenticate: surfaceAuthenticate,
    heartbeatIntervalMs: 0,
    toInput: (input) => stepsFrom((input.forwardedProps as { steps?: unknown } | undefined)?.steps),
    ...options,
  });
  cleanups.push(async () => {
    await handler.close();
    await bridge.close();
  });
  // What a Next.js app exports from app/agui/route.ts.
  const POST = (request: Request) => handler.fetch(request);
  const GET = (request: Request) => handler.fetch(request);
  return { transport, handler, POST, GET };
}

describe('AG-UI web handler as a Next.js route handler', () => {
  it('HttpAgent (verifier on) runs through it; the frames resume with Last-Event-ID from a plain GET Request', async () => {
    const complaints = [vi.spyOn(console, 'warn').mockImplementation(() => undefined), vi.spyOn(console, 'error').mockImplementation(() => undefined)];
    const { transport, POST, GET } = aguiRoute({ abortOnDisconnect: false });
    const client = new HttpAgent({
      url: 'https://app.example.com/agui',
      headers: { Authorization: 'Bearer tok-alice' },
      threadId: 'web-1',
      fetch: (input: RequestInfo | URL, init?: RequestInit) => POST(new Request(input, init)),
    } as ConstructorParameters<typeof HttpAgent>[0]);
    const seen: BaseEvent[] = [];
    const run = await client.runAgent(
      { runId: 'web-run-1', forwardedProps: { steps: [{ think: 'hmm' }, { tool: 'echo', args: { text: 'hi' } }] } },
      { onEvent: ({ event }) => void seen.push(event) },
    );
    expect(complaints.map((spy) => spy.mock.calls)).toEqual([[], []]);
    expect(run.result).toBe('hi');
    expect(seen.at(-1)).toMatchObject({ type: EventType.RUN_FINISHED, outcome: { type: 'success' } });
    expect(validateLifecycle(transport.read('web-1', 'alice')).ok).toBe(true);

    const auth = { Authorization: 'Bearer tok-alice' };
    const full = await framesOf(await GET(new Request('https://app.example.com/agui?threadId=web-1&runId=web-run-1', { headers: auth })));
    expect(full.map((f) => (JSON.parse(f.data) as BaseEvent).type)).toEqual(seen.map((e) => e.type));
    for (const cut of [0, 3, full.length - 2]) {
      const response = await GET(new Request('https://app.example.com/agui?threadId=web-1&runId=web-run-1', { headers: { ...auth, 'Last-Event-ID': full[cut]!.id! } }));
      const rebuilt = [...full.slice(0, cut + 1), ...(await framesOf(response))];
      expect(rebuilt).toEqual(full);
      await lastValueFrom(from(rebuilt.map((f) => JSON.parse(f.data) as BaseEvent)).pipe(verifyEvents(), toArray()));
    }
    const done = await GET(new Request('https://app.example.com/agui?threadId=web-1&runId=web-run-1', { headers: { ...auth, 'Last-Event-ID': full.at(-1)!.id! } }));
    expect(done.status).toBe(204);
  });

  it('request.signal aborting (HttpAgent.abortRun) ends the stream and cancels the run', async () => {
    const { transport, handler, POST } = aguiRoute();
    const client = new HttpAgent({
      url: 'https://app.example.com/agui',
      headers: { Authorization: 'Bearer tok-alice' },
      threadId: 'web-abort',
      fetch: (input: RequestInfo | URL, init?: RequestInit) => POST(new Request(input, init)),
    } as ConstructorParameters<typeof HttpAgent>[0]);
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    await client.runAgent({ forwardedProps: { steps: [{ tool: 'slow', args: {} }] } }, { onToolCallStartEvent: () => client.abortRun() });
    await until(() => transport.read('web-abort', 'alice').some((e) => e.type === 'agent_completed'), 'the run to be cancelled');
    const events = transport.read('web-abort', 'alice');
    expect(validateLifecycle(events).ok).toBe(true);
    expect(events.at(-1)?.data).toMatchObject({ status: 'cancelled', error: { message: 'The AG-UI client disconnected' } });
    await until(() => handler.stats().connections.open === 0, 'the stream to be released');
  });

  it('refusals are Responses with the status and the JSON error body; preflight answers CORS', async () => {
    const { POST } = aguiRoute();
    const transportlessHandler = createAguiHandler({
      agent: new ScriptedAgent({ bridge: new AgentBridge({ transport: new MemoryTransport() }) }),
      log: new MemoryTransport(),
      authenticate: surfaceAuthenticate,
      allowedOrigins: ['https://app.example.com'],
      maxBodyBytes: 1_000,
      toInput: () => [],
    });
    cleanups.push(() => transportlessHandler.close());
    const json = { 'Content-Type': 'application/json', Authorization: 'Bearer tok-alice' };
    const cases: Array<[Promise<Response>, number, string]> = [
      [POST(new Request('https://gw.example.com/agui', { method: 'POST', body: '{}' })), 401, 'AUTH_FAILED'],
      [POST(new Request('https://gw.example.com/agui', { method: 'POST', headers: json, body: '['.repeat(6_000) + ']'.repeat(6_000) })), 400, 'BODY_TOO_DEEP'],
      [POST(new Request('https://gw.example.com/agui', { method: 'PUT', headers: json, body: '{}' })), 405, 'METHOD_NOT_ALLOWED'],
      [transportlessHandler.fetch(new Request('https://gw.example.com/agui', { method: 'POST', headers: json, body: 'x'.repeat(5_000) })), 413, 'BODY_TOO_LARGE'],
      [
        transportlessHandler.fetch(new Request('https://gw.example.com/agui', { method: 'POST', headers: { ...json, Origin: 'https://evil.example.com' }, body: '{}' })),
        403,
        'ORIGIN_FORBIDDEN',
      ],
    ];
    for (const [pending, status, code] of cases) {
      const response = await pending;
      expect([response.status, ((await response.json()) as { error: { code: string } }).error.code]).toEqual([status, code]);
      expect(response.headers.get('content-type')).toContain('application/json');
    }
    const preflight = await transportlessHandler.fetch(
      new Request('https://gw.example.com/agui', { method: 'OPTIONS', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST' } }),
    );
    expect([preflight.status, preflight.headers.get('access-control-allow-origin'), preflight.headers.get('access-control-allow-methods')]).toEqual([
      204,
      'https://app.example.com',
      'GET, POST',
    ]);
  });
});

describe('useChat web handler as Next.js route handlers (app/api/chat/route.ts, app/api/chat/[id]/stream/route.ts)', () => {
  function chatRoutes() {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    let approve!: () => void;
    const approval = new Promise<void>((resolve) => (approve = resolve));
    const weather = defineTool({ name: 'get_weather', description: 'weather', parameters: z.object({ city: z.string() }), execute: ({ city }) => ({ city, tempC: 21 }) });
    const wait = defineTool({ name: 'wait_for_approval', description: 'waits', parameters: z.object({}), execute: async () => (await approval, { approved: true }) });
    const agent = new ModelAgent({
      name: 'weather',
      model: scriptedModel([
        toolStep(reasoning('Checking.'), toolCall('m1', 'get_weather', { city: 'Paris' })),
        toolStep(reasoning('Waiting.'), toolCall('m2', 'wait_for_approval', {})),
        answerStep(text('It is 21°C in Paris.')),
      ]),
      tools: [weather, wait],
      bridge,
      thinking: { flush: 'step' },
      maxRetries: 0,
    });
    const handler = createChatHandler({ agent, log: transport, authenticate: surfaceAuthenticate, heartbeatIntervalMs: 0 });
    cleanups.push(async () => {
      await handler.close();
      await bridge.close();
    });
    const POST = (request: Request) => handler.fetch(request);
    const GET = (request: Request) => handler.fetch(request);
    // The app routes by path the way Next.js does; the AI SDK's clients call it through `fetch`.
    const appFetch = (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      return request.method === 'POST' ? POST(request) : GET(request);
    };
    return { transport, handler, approve, appFetch };
  }

  it('AbstractChat (what useChat wraps) sends, drops, resumes by replay; a kept message continues after its cursor', async () => {
    const { transport, approve, appFetch } = chatRoutes();
    const transportFor = (extra: Partial<ConstructorParameters<typeof DefaultChatTransport<UIMessage>>[0]> = {}) =>
      new DefaultChatTransport<UIMessage>({ api: 'https://app.example.com/api/chat', headers: { authorization: 'Bearer tok-alice' }, fetch: appFetch, ...extra });
    // A partial message kept by a client whose connection dropped at the approval tool.
    const abort = new AbortController();
    const stream = await transportFor().sendMessages({ chatId: 'chat-web', messages: [userMessage('Weather?')], trigger: 'submit-message', messageId: undefined, abortSignal: abort.signal });
    let partial: UIMessage | undefined;
    for await (const message of readUIMessageStream({ stream })) {
      partial = message;
      if (message.parts.some((part) => part.type === 'tool-wait_for_approval')) break;
    }
    abort.abort();
    // useChat's own recovery: resumeStream() replays the active run from its start.
    const chat = new NodeChat({ id: 'chat-web', transport: transportFor(), messages: [userMessage('Weather?')] });
    const resuming = chat.resumeStream();
    await until(() => chat.status === 'streaming', 'the replayed stream');
    // A client that kept its partial message continues after its cursor.
    const continued = await transportFor({ prepareReconnectToStreamRequest: resumeAfterCursor(() => partial) }).reconnectToStream({ chatId: 'chat-web' });
    approve();
    await resuming;
    let final: UIMessage | undefined;
    for await (const message of readUIMessageStream({ message: messageAtCursor(partial), stream: continued! })) final = message;
    const summary = (message: UIMessage | undefined) => (message?.parts ?? []).map((p) => ('text' in p ? `${p.type}:${p.text}` : p.type));
    expect(summary(chat.messages[1])).toEqual(summary(final));
    expect(summary(final).at(-1)).toBe('text:It is 21°C in Paris.');
    expect(chat.messages[1]!.id).toBe(transport.read('chat-web', 'alice')[0]!.runId);
    expect(validateLifecycle(transport.read('chat-web', 'alice')).ok).toBe(true);
  });

  it('refusals: 401, 400 for a deep history part, 409 for a cursor of another thread, 204 with nothing to resume, 403 for another user', async () => {
    const { appFetch } = chatRoutes();
    const post = (headers: Record<string, string>, body: string) => appFetch('https://app.example.com/api/chat', { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body });
    const alice = { authorization: 'Bearer tok-alice' };
    expect((await post({}, '{}')).status).toBe(401);
    const deep = `{"id":"c1","trigger":"submit-message","messages":[{"id":"m","role":"assistant","parts":[{"type":"data-x","data":${'['.repeat(6_000)}${']'.repeat(6_000)}}]}]}`;
    const deepResponse = await post(alice, deep);
    expect([deepResponse.status, ((await deepResponse.json()) as { error: { code: string } }).error.code]).toEqual([400, 'BODY_TOO_DEEP']);
    expect((await appFetch('https://app.example.com/api/chat/nothing-here/stream', { headers: alice })).status).toBe(204);
    // A finished chat, and a cursor of another of alice's threads.
    const transport = new DefaultChatTransport<UIMessage>({ api: 'https://app.example.com/api/chat', headers: alice, fetch: appFetch });
    for (const chatId of ['c-a', 'c-b']) {
      const stream = await transport.sendMessages({ chatId, messages: [userMessage('Hi')], trigger: 'submit-message', messageId: undefined, abortSignal: undefined });
      for await (const message of readUIMessageStream({ stream })) {
        if (message.parts.some((part) => part.type === 'tool-wait_for_approval')) break;
      }
    }
    const cursorOfA = await appFetch('https://app.example.com/api/chat/c-a/stream', { headers: alice });
    const first = (await framesOf(cursorOfA, (frames) => frames.some((f) => f.data.includes('"cursor"')))).find((f) => f.data.includes('"cursor"'))!;
    const cursor = (JSON.parse(first.data) as { messageMetadata: { agentwire: { cursor: string } } }).messageMetadata.agentwire.cursor;
    const crossThread = await appFetch('https://app.example.com/api/chat/c-b/stream', { headers: { ...alice, [AGENTWIRE_CURSOR_HEADER]: cursor } });
    expect([crossThread.status, ((await crossThread.json()) as { error: { code: string } }).error.code]).toEqual([409, 'HISTORY_GAP']);
    const bob = await appFetch('https://app.example.com/api/chat/c-a/stream', { headers: { authorization: 'Bearer tok-bob' } });
    expect(bob.status).toBe(403);
  });
});
