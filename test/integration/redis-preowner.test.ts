import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { AgentBridge, validateLifecycle, type AgentEvent, type EventLog, type Transport } from '../../src/index.js';
import { WebSocketGateway } from '../../src/gateway/websocket/index.js';
import { RedisEventLog, RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { REDIS_URL, StepAgent, deletePrefix, describeWithRedis, probeRedis, testPrefix } from '../helpers/redis-env.js';
import { SseTestClient } from '../helpers/sse-client.js';
import { startGateway as startSseGateway } from '../helpers/sse-server.js';
import { RawClient, authenticate } from '../helpers/ws-harness.js';
import { until } from '../helpers/wait.js';

const availability = await probeRedis();
const fastRetry = { minTimeoutMs: 5, maxTimeoutMs: 50, randomize: false };
const READ_MS = 5_000;

/**
 * Subscriptions opened before a thread has any event (no owner yet), over a Redis log: when the
 * thread's first event is alice's, mallory's subscriptions end with THREAD_FORBIDDEN (as with
 * MemoryTransport), and alice's get her events, in order.
 */
describeWithRedis('Redis log: subscriptions made before the thread had an owner', availability, () => {
  let prefix: string;
  const closers: Array<() => Promise<unknown>> = [];

  beforeAll(() => {
    prefix = testPrefix('preowner');
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  });
  afterAll(async () => {
    await deletePrefix(prefix);
  });

  async function setup(mode: 'event-log' | 'transport') {
    const transport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix: prefix });
    closers.push(() => transport.close());
    let log: Transport & EventLog;
    if (mode === 'transport') {
      log = transport;
    } else {
      const eventLog = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix });
      closers.push(() => eventLog.close());
      // The gateways only read from it (nothing here calls their send()).
      log = eventLog as unknown as Transport & EventLog;
    }
    const ws = new WebSocketGateway({ authenticate, log, heartbeatIntervalMs: 0 });
    const address = await ws.listen(0, '127.0.0.1');
    closers.push(() => ws.close());
    const sse = await startSseGateway({ log });
    closers.push(() => sse.close());
    const bridge = new AgentBridge({ transport, retry: fastRetry, recoveryIntervalMs: 10 });
    closers.push(() => bridge.close());
    const agent = new StepAgent({ bridge });
    return { ws, wsUrl: address.url, sse, agent };
  }

  async function wsSubscriber(url: string, userId: string, threadId: string) {
    const client = await RawClient.open(url, userId);
    client.subscribe(threadId);
    await until(() => client.ofType('subscribed').length === 1, `${userId} ws subscribed`, READ_MS);
    return client;
  }

  async function sseSubscriber(url: string) {
    const client = await SseTestClient.open(url);
    expect(client.status).toBe(200);
    await client.waitFor((c) => c.messages.some((m) => m.event === 'subscribed'), 'sse subscribed', READ_MS);
    return client;
  }

  const ids = (events: AgentEvent[]) => events.map((event) => event.id);

  it.each(['event-log', 'transport'] as const)(
    'gateways reading a %s: mallory gets THREAD_FORBIDDEN on WS and SSE, alice gets all her events',
    async (mode) => {
      const { wsUrl, sse, agent } = await setup(mode);
      const threadId = `preowner-${mode}`;
      const aliceWs = await wsSubscriber(wsUrl, 'alice', threadId);
      const malloryWs = await wsSubscriber(wsUrl, 'mallory', threadId);
      const aliceSse = await sseSubscriber(sse.url(threadId, 'alice'));
      const mallorySse = await sseSubscriber(sse.url(threadId, 'mallory'));
      expect(aliceWs.ofType('subscribed')[0]).toMatchObject({ threadId, replayed: 0 });
      expect(malloryWs.ofType('subscribed')[0]).toMatchObject({ threadId, replayed: 0 });

      // alice's first run fixes the owner.
      await agent.run({ steps: 2 }, { userId: 'alice', threadId });
      const perRun = StepAgent.eventCount(2);

      await until(() => malloryWs.ofType('error').length > 0, 'mallory ws error', READ_MS);
      expect(malloryWs.ofType('error')).toEqual([expect.objectContaining({ code: 'THREAD_FORBIDDEN', threadId })]);

      await Promise.race([
        mallorySse.ended,
        new Promise((_, reject) => setTimeout(() => reject(new Error('mallory sse did not end')), READ_MS)),
      ]);
      const last = mallorySse.messages[mallorySse.messages.length - 1]!;
      expect(last.event).toBe('close');
      expect(JSON.parse(last.data)).toMatchObject({ type: 'close', code: 'THREAD_FORBIDDEN' });
      expect(mallorySse.events).toEqual([]);

      await until(() => aliceWs.events().length >= perRun, 'alice ws run 1', READ_MS);
      await aliceSse.waitForEvent('agent_completed', 1, READ_MS);

      // A second run: alice's receivers are the barrier; mallory's WS (still connected) gets nothing of it.
      await agent.run({ steps: 2 }, { userId: 'alice', threadId });
      await until(() => aliceWs.events().length >= 2 * perRun, 'alice ws run 2', READ_MS);
      await aliceSse.waitForEvent('agent_completed', 2, READ_MS);

      expect(validateLifecycle(aliceWs.events())).toEqual({ ok: true, runs: 2 });
      expect(aliceWs.events()).toHaveLength(2 * perRun);
      expect(ids(aliceSse.events)).toEqual(ids(aliceWs.events()));
      expect(aliceWs.ofType('error')).toEqual([]);
      expect(malloryWs.events()).toEqual([]);
      expect(malloryWs.ofType('error')).toHaveLength(1);
      expect(malloryWs.closed).toBeUndefined();

      // After the fact, mallory's subscriptions are refused as before; alice's replay has both runs.
      malloryWs.subscribe(threadId);
      await until(() => malloryWs.ofType('error').length === 2, 'mallory ws refused', READ_MS);
      expect(malloryWs.ofType('error')[1]).toMatchObject({ code: 'THREAD_FORBIDDEN', threadId });
      const refused = await SseTestClient.open(sse.url(threadId, 'mallory'));
      expect(refused.status).toBe(403);
      await refused.ended;
      expect(refused.error.code).toBe('THREAD_FORBIDDEN');
      const late = await SseTestClient.open(sse.url(threadId, 'alice'));
      await late.waitForEvent('agent_completed', 2, READ_MS);
      expect(ids(late.events)).toEqual(ids(aliceWs.events()));
      late.close();

      for (const client of [aliceWs, malloryWs]) client.close();
      for (const client of [aliceSse]) client.close();
    },
  );
});
