import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Registry, type OpenMetricsContentType } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { createAguiHandler } from '../../src/agui/index.js';
import {
  AgentBridge,
  MemoryTransport,
  tokenFrom,
  type AgentEvent,
  type Authenticate,
} from '../../src/index.js';
import {
  BRIDGE_FAMILIES,
  createMetricsRegistry,
  GATEWAY_FAMILIES,
  metricsHandler,
  sseGatewayMetrics,
  websocketGatewayMetrics,
  type GatewayMetricsSource,
} from '../../src/metrics/index.js';
import { SseGateway } from '../../src/transport/sse/index.js';
import { WebSocketGateway } from '../../src/transport/websocket/index.js';
import { ScriptedAgent, type Step } from '../helpers/agents.js';
import { FaultyTransport } from '../helpers/faulty-transport.js';
import { until } from '../helpers/wait.js';

const authenticate: Authenticate = (req) => {
  const token = tokenFrom(req);
  return token?.startsWith('user-') ? { userId: token.slice(5) } : null;
};

interface SampleLine {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format: HELP/TYPE per family and every sample line. */
function parseExposition(text: string) {
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: SampleLine[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line === '# EOF') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === 'HELP' ? help : type).set(meta[2]!, meta[3]!);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) throw new Error(`not an exposition line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    const raw = sample[3]!;
    samples.push({ name: sample[1]!, labels, value: raw === '+Inf' ? Infinity : Number(raw) });
  }
  const find = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  const value = (name: string, labels: Record<string, string> = {}): number | undefined => {
    const found = find(name, labels);
    if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
    return found[0]?.value;
  };
  return { help, type, samples, find, value };
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.restoreAllMocks();
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    })
      .on('error', reject)
      .end();
  });
}

/** One server like the demo's: WebSocket gateway, SSE gateway, AG-UI endpoint and /metrics over one bridge. */
async function startStack(options: { transport?: FaultyTransport; log?: MemoryTransport } = {}) {
  const log = options.log ?? new MemoryTransport();
  const bridge = new AgentBridge({ transport: options.transport ?? log, retry: { minTimeoutMs: 1, maxTimeoutMs: 2, randomize: false } });
  await bridge.initialize();
  const agent = new ScriptedAgent({ bridge });
  const events: AgentEvent[] = [];
  agent.on('event', (event) => events.push(event));
  const ws = new WebSocketGateway({ authenticate, transport: log, heartbeatIntervalMs: 0, subscribeTimeoutMs: 0 });
  const sse = new SseGateway({ log, authenticate, heartbeatIntervalMs: 0 });
  const agui = createAguiHandler({ agent, log, authenticate, heartbeatIntervalMs: 0, toInput: (input) => (input.forwardedProps as { steps: Step[] }).steps });
  const registry = createMetricsRegistry({
    bridges: { default: bridge },
    gateways: { ws: websocketGatewayMetrics(ws), sse: sseGatewayMetrics(sse), agui },
  });
  const serveMetrics = metricsHandler(registry);
  const server = createServer((req, res) => {
    if (sse.handle(req, res) || agui.handle(req, res)) return;
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/metrics') return void serveMetrics(req, res);
    res.writeHead(404).end();
  });
  ws.attach(server);
  const host = await listen(server);
  cleanups.push(() => log.close());
  cleanups.push(() => bridge.close());
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  cleanups.push(() => server.closeAllConnections());
  cleanups.push(() => ws.close());
  cleanups.push(() => sse.close());
  cleanups.push(() => agui.close());
  const scrape = async () => {
    const response = await get(`http://${host}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    return parseExposition(response.body);
  };
  const runOverAgui = async (user: string, threadId: string, steps: Step[]) => {
    const response = await fetch(`http://${host}/agui`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer user-${user}` },
      body: JSON.stringify({ threadId, messages: [], forwardedProps: { steps } }),
    });
    return { status: response.status, text: await response.text() };
  };
  return { host, bridge, agent, events, ws, sse, agui, registry, scrape, runOverAgui };
}

describe('Prometheus export of bridge and gateway metrics', () => {
  it('every documented family is exposed with its HELP and TYPE, and nothing else', async () => {
    const { scrape } = await startStack();
    const metrics = await scrape();
    const expected = [...BRIDGE_FAMILIES, ...GATEWAY_FAMILIES].map((family) => [`agentwire_${family.name}`, family.type]);
    expect([...metrics.type.entries()].sort()).toEqual(expected.sort());
    for (const [name] of expected) expect(metrics.help.get(name!)?.length).toBeGreaterThan(10);
    // Counters end in _total; nothing else does.
    for (const [name, type] of metrics.type) expect(name.endsWith('_total')).toBe(type === 'counter');
  });

  it('after runs over AG-UI: bridge counters, state, latency histogram and gateway gauges match what happened', async () => {
    const stack = await startStack();
    // A WebSocket client and an SSE client are connected, one WebSocket upgrade is refused.
    const socket = new WebSocket(`ws://${stack.host}/ws?token=user-alice`);
    cleanups.push(() => socket.terminate());
    await new Promise<void>((resolve, reject) => socket.once('open', () => resolve()).once('error', reject));
    // One invalid frame, answered (the answer is the barrier).
    const answered = new Promise<void>((resolve) => socket.on('message', (data) => String(data).includes('INVALID_JSON') && resolve()));
    socket.send('nope');
    await answered;
    const refused = new WebSocket(`ws://${stack.host}/ws?token=nobody`);
    await new Promise<void>((resolve) => refused.once('error', () => resolve()).once('close', () => resolve()));
    const sseAbort = new AbortController();
    cleanups.push(() => sseAbort.abort());
    const sseResponse = await fetch(`http://${stack.host}/events?threadId=thread-m&token=user-alice`, { signal: sseAbort.signal });
    expect(sseResponse.status).toBe(200);

    const first = await stack.runOverAgui('alice', 'thread-m', [{ think: 'a' }, { tool: 'echo', args: { text: 'x' } }]);
    const second = await stack.runOverAgui('alice', 'thread-m', [{ tool: 'boom', args: {}, catchError: true }]);
    expect([first.status, second.status]).toEqual([200, 200]);
    const unauthorized = await fetch(`http://${stack.host}/agui`, { method: 'POST', headers: { Authorization: 'Bearer forged' }, body: '{}' });
    expect(unauthorized.status).toBe(401);
    // framesSent counts the `subscribed` frame too (one shape for every surface: events and control frames).
    await until(() => stack.sse.stats().framesSent === stack.events.length + 1, 'the SSE stream to receive both runs');

    const metrics = await stack.scrape();
    const emitted = stack.events.length; // 5 + 4 events, all delivered
    expect(emitted).toBe(9);
    const bridge = { bridge: 'default' };
    expect(metrics.value('agentwire_bridge_events_emitted_total', bridge)).toBe(emitted);
    expect(metrics.value('agentwire_bridge_events_delivered_total', bridge)).toBe(emitted);
    expect(metrics.value('agentwire_bridge_delivery_retries_total', bridge)).toBe(0);
    expect(metrics.value('agentwire_bridge_events_failed_total', bridge)).toBe(0);
    expect(metrics.value('agentwire_bridge_events_buffered', bridge)).toBe(0);
    expect(metrics.value('agentwire_bridge_active_runs', bridge)).toBe(0);
    expect(metrics.value('agentwire_bridge_thread_resolution_failures_total', bridge)).toBe(0);
    expect(metrics.find('agentwire_bridge_state').map((s) => [s.labels.state, s.value])).toEqual([
      ['uninitialized', 0],
      ['initializing', 0],
      ['active', 1],
      ['degraded', 0],
      ['failed', 0],
      ['closed', 0],
    ]);

    // The latency histogram: cumulative buckets in seconds, +Inf = count = delivered, sum = the bridge's (ms → s).
    const buckets = metrics.find('agentwire_bridge_delivery_latency_seconds_bucket', bridge);
    const snapshot = stack.bridge.metrics().deliveryLatencyMs;
    expect(buckets.map((b) => b.labels.le)).toEqual([...snapshot.buckets.slice(0, -1).map((b) => String(b.le / 1000)), '+Inf']);
    expect(buckets.map((b) => b.value)).toEqual(snapshot.buckets.map((b) => b.count));
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    expect(buckets.at(-1)?.value).toBe(emitted);
    expect(metrics.value('agentwire_bridge_delivery_latency_seconds_count', bridge)).toBe(emitted);
    expect(metrics.value('agentwire_bridge_delivery_latency_seconds_sum', bridge)).toBeCloseTo(snapshot.sum / 1000, 9);
    expect(buckets[0]?.labels.le).toBe('0.00001');

    // Gateways: connections by state, users, frames, refusals.
    expect(metrics.value('agentwire_gateway_connections', { gateway: 'ws', state: 'open' })).toBe(1);
    expect(metrics.value('agentwire_gateway_connections', { gateway: 'ws', state: 'authenticating' })).toBe(0);
    expect(metrics.value('agentwire_gateway_connections', { gateway: 'sse', state: 'open' })).toBe(1);
    expect(metrics.value('agentwire_gateway_connections', { gateway: 'agui', state: 'open' })).toBe(0);
    expect(metrics.value('agentwire_gateway_users', { gateway: 'ws' })).toBe(1);
    expect(metrics.value('agentwire_gateway_refused_total', { gateway: 'ws', reason: 'unauthorized' })).toBe(1);
    expect(metrics.value('agentwire_gateway_refused_total', { gateway: 'agui', reason: 'auth_failed' })).toBe(1);
    expect(metrics.value('agentwire_gateway_frames_sent_total', { gateway: 'sse' })).toBe(emitted + 1);
    const aguiFrames = (first.text + second.text).split('\n').filter((line) => line.startsWith('data: ')).length;
    expect(metrics.value('agentwire_gateway_frames_sent_total', { gateway: 'agui' })).toBe(aguiFrames);
    expect(metrics.value('agentwire_gateway_isolation_drops_total', { gateway: 'ws' })).toBe(0);
    expect(metrics.value('agentwire_gateway_subscriptions', { gateway: 'ws' })).toBe(0);
    expect(metrics.find('agentwire_gateway_subscriptions', { gateway: 'sse' })).toEqual([]); // the SSE gateway does not report it
    // The WebSocket gateway's own stats, each one family, equal to what stats() says.
    const ws = stack.ws.stats();
    expect(metrics.value('agentwire_gateway_messages_sent_total', { gateway: 'ws' })).toBe(ws.messagesSent);
    expect(ws.messagesSent).toBeGreaterThan(0);
    expect(metrics.value('agentwire_gateway_acks_total', { gateway: 'ws' })).toBe(ws.acks);
    expect(metrics.value('agentwire_gateway_invalid_frames_total', { gateway: 'ws' })).toBe(1);
    expect(metrics.value('agentwire_gateway_queued_bytes', { gateway: 'ws' })).toBe(ws.queuedBytes);
    for (const gateway of ['ws', 'sse', 'agui']) expect(metrics.value('agentwire_gateway_poisoned_events_total', { gateway })).toBe(0);
    // The deprecated wrapper's flat stats have no `errors`: no sample for it.
    for (const gateway of ['sse', 'agui']) expect(metrics.value('agentwire_gateway_errors_total', { gateway })).toBe(0);
    expect(metrics.find('agentwire_gateway_errors_total', { gateway: 'ws' })).toEqual([]);
    expect(metrics.find('agentwire_gateway_messages_sent_total', { gateway: 'sse' })).toEqual([]);
  });

  it('retries, failures, buffering, degraded state and thread-resolution failures are counted', async () => {
    const log = new MemoryTransport();
    const faulty = new FaultyTransport(log);
    const stack = await startStack({ transport: faulty, log });
    faulty.failNext(2);
    const ok = await stack.runOverAgui('alice', 'thread-r', [{ think: 'retried' }]);
    expect(ok.status).toBe(200);

    // An event whose run id cannot be resolved to a thread is refused and counted.
    const foreign = stack.events.find((event) => event.type === 'agent_thinking')!;
    await expect(stack.bridge.send({ ...foreign, id: 'x1', runId: 'not-registered-run', seq: 1 } as AgentEvent)).rejects.toMatchObject({ code: 'DELIVERY_FAILED', causeCode: 'THREAD_UNRESOLVED' });

    let metrics = await stack.scrape();
    expect(metrics.value('agentwire_bridge_delivery_retries_total', { bridge: 'default' })).toBe(2);
    expect(metrics.value('agentwire_bridge_thread_resolution_failures_total', { bridge: 'default' })).toBe(1);
    expect(metrics.value('agentwire_bridge_events_failed_total', { bridge: 'default' })).toBe(stack.bridge.metrics().failed);

    // The transport goes down: events are held, the bridge is degraded.
    faulty.down();
    const held = stack.runOverAgui('alice', 'thread-r', [{ think: 'held' }]);
    await until(() => stack.bridge.state === 'degraded' && stack.bridge.metrics().buffered > 0, 'degraded with buffered events');
    metrics = await stack.scrape();
    expect(metrics.value('agentwire_bridge_state', { bridge: 'default', state: 'degraded' })).toBe(1);
    expect(metrics.value('agentwire_bridge_state', { bridge: 'default', state: 'active' })).toBe(0);
    expect(metrics.value('agentwire_bridge_events_buffered', { bridge: 'default' })).toBe(stack.bridge.metrics().buffered);
    expect(metrics.value('agentwire_bridge_events_buffered_peak', { bridge: 'default' })).toBeGreaterThan(0);
    faulty.up();
    expect((await held).status).toBe(200);
    await until(() => stack.bridge.state === 'active' && stack.bridge.metrics().buffered === 0, 'recovery');
    metrics = await stack.scrape();
    expect(metrics.value('agentwire_bridge_events_buffered', { bridge: 'default' })).toBe(0);
    expect(metrics.value('agentwire_bridge_events_delivered_total', { bridge: 'default' })).toBe(stack.events.length);
  });

  it('reads one snapshot per source per scrape, so related counters are consistent', async () => {
    const bridge = new AgentBridge();
    cleanups.push(() => bridge.close());
    const gatewayCalls = vi.fn(() => ({ connections: { open: 2 } }));
    const gateway: GatewayMetricsSource = { metrics: gatewayCalls };
    const spy = vi.spyOn(bridge, 'metrics');
    const registry = createMetricsRegistry({ bridges: { a: bridge }, gateways: { custom: gateway } });
    const text = await registry.metrics();
    expect(spy).toHaveBeenCalledTimes(1);
    expect(gatewayCalls).toHaveBeenCalledTimes(1);
    expect(parseExposition(text).value('agentwire_gateway_connections', { gateway: 'custom', state: 'open' })).toBe(2);
    await new Promise((resolve) => setImmediate(resolve));
    await registry.metrics();
    expect(spy).toHaveBeenCalledTimes(2);
  });

  it("joins an application's registry, honours a prefix, and speaks OpenMetrics when the registry does", async () => {
    const bridge = new AgentBridge();
    cleanups.push(() => bridge.close());
    const appRegistry = new Registry();
    new Counter({ name: 'app_requests_total', help: 'requests of the app', registers: [appRegistry] }).inc(3);
    createMetricsRegistry({ bridges: { main: bridge }, registry: appRegistry, prefix: 'aw_' });
    const text = parseExposition(await appRegistry.metrics());
    expect(text.value('app_requests_total')).toBe(3);
    expect(text.value('aw_bridge_events_emitted_total', { bridge: 'main' })).toBe(0);
    expect(text.value('aw_bridge_state', { bridge: 'main', state: 'uninitialized' })).toBe(1);

    const openMetrics = new Registry<OpenMetricsContentType>();
    openMetrics.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const open = createMetricsRegistry({ bridges: { main: bridge }, registry: openMetrics });
    const body = await open.metrics();
    expect(body.endsWith('# EOF\n')).toBe(true);
    expect(body).toContain('# TYPE agentwire_bridge_events_emitted counter');
    expect(parseExposition(body).value('agentwire_bridge_events_emitted_total', { bridge: 'main' })).toBe(0);
  });

  it('metricsHandler: GET/HEAD only, optional authorization', async () => {
    const bridge = new AgentBridge();
    cleanups.push(() => bridge.close());
    const registry = createMetricsRegistry({ bridges: { main: bridge } });
    const handler = metricsHandler(registry, { authorize: (req) => req.headers.authorization === 'Bearer scraper' });
    const server = createServer((req, res) => void handler(req, res));
    const host = await listen(server);
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    expect((await get(`http://${host}/metrics`)).status).toBe(403);
    const ok = await get(`http://${host}/metrics`, { Authorization: 'Bearer scraper' });
    expect(ok.status).toBe(200);
    expect(parseExposition(ok.body).value('agentwire_bridge_active_runs', { bridge: 'main' })).toBe(0);
    const post = await fetch(`http://${host}/metrics`, { method: 'POST', headers: { Authorization: 'Bearer scraper' } });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('metricsHandler: a throwing authorize hook or a failing collector gets a fixed message; the error goes to onError only', async () => {
    const bridge = new AgentBridge();
    cleanups.push(() => bridge.close());
    const registry = createMetricsRegistry({ bridges: { main: bridge } });
    let collectFails = false;
    new Counter({
      name: 'app_probe_total',
      help: 'a collector of the application that can fail',
      registers: [registry],
      collect() {
        if (collectFails) throw new Error('collector down: redis://ops:hunter2@10.0.3.8:6379');
      },
    });
    const reported: Array<{ message: string; context: unknown }> = [];
    const handler = metricsHandler(registry, {
      authorize: (req) => {
        if (req.headers.authorization === 'Bearer scraper') return true;
        throw new Error(`connect ECONNREFUSED postgres://metrics_ro:Pa55w0rd@10.0.3.7:5432/ops while checking ${req.headers.authorization ?? ''}`);
      },
      onError: (error, context) => {
        reported.push({ message: (error as Error).message, context });
        throw new Error('a throwing error hook changes nothing');
      },
    });
    const server = createServer((req, res) => void handler(req, res));
    const host = await listen(server);
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const denied = await get(`http://${host}/metrics`, { Authorization: 'Bearer guess' });
    expect([denied.status, denied.body]).toEqual([500, 'Authorization check failed\n']);
    expect(reported).toEqual([{ message: expect.stringContaining('Pa55w0rd'), context: { surface: 'metrics', stage: 'authorize' } }]);

    collectFails = true;
    const failed = await get(`http://${host}/metrics`, { Authorization: 'Bearer scraper' });
    expect([failed.status, failed.body]).toEqual([500, 'Metrics collection failed\n']);
    expect(reported[1]).toEqual({ message: expect.stringContaining('hunter2'), context: { surface: 'metrics', stage: 'collect' } });

    collectFails = false;
    const ok = await get(`http://${host}/metrics`, { Authorization: 'Bearer scraper' });
    expect(ok.status).toBe(200);
    expect(parseExposition(ok.body).value('agentwire_bridge_active_runs', { bridge: 'main' })).toBe(0);
    expect(reported).toHaveLength(2);
  });
});
