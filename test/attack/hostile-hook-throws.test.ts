/**
 * Values thrown by an integrator's hooks (authenticate, cancelRun) or a log of theirs (answer,
 * subscribe) that throw when looked at: a revoked proxy, a proxy whose getPrototypeOf trap throws
 * (so `instanceof` throws), and a proxy of an AgentwireError whose every property read throws.
 * Each costs the one request or frame it came with, answered as a refusal; the gateway goes on
 * serving, judged by what real WebSocket clients over loopback received.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport, StateError, tokenFrom, validateLifecycle, type AgentEvent, type Authenticate } from '../../src/index.js';
import { WebSocketGateway } from '../../src/gateway/websocket/index.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { Exchange, isLastFrame, post, startSurface, surfaceAuthenticate, type Mount } from '../helpers/run-surfaces.js';
import { startGateway as startSse, testAuthenticate } from '../helpers/sse-server.js';
import { RawClient, authenticate, refusedStatus, until } from '../helpers/ws-harness.js';

const KINDS = ['revoked', 'prototype-trap', 'throwing-agentwire-error'] as const;
type Kind = (typeof KINDS)[number];

function hostile(kind: Kind): unknown {
  if (kind === 'revoked') {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    return proxy;
  }
  if (kind === 'prototype-trap') {
    return new Proxy(
      {},
      {
        getPrototypeOf() {
          throw new Error('no looking at my prototype');
        },
      },
    );
  }
  // instanceof AgentwireError holds (the target's prototype), but reading code or message throws.
  return new Proxy(new StateError('RUN_NOT_FOUND', 'hidden'), {
    get() {
      throw new Error('no reading this');
    },
  });
}

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

async function start() {
  const log = new MemoryTransport();
  const reported: Array<{ stage: unknown }> = [];
  // `token=hostile-<kind>` makes the hook throw that value; every other token is the usual test one.
  const auth = hostileAuth(authenticate);
  let cancelThrows: Kind = 'revoked';
  const gateway = new WebSocketGateway({
    authenticate: auth,
    log,
    cancelRun: () => Promise.reject(hostile(cancelThrows)),
    onError: (_error, context) => reported.push({ stage: context.stage }),
  });
  const { url } = await gateway.listen(0, '127.0.0.1');
  const bridge = new AgentBridge({ transport: gateway });
  await bridge.initialize();
  const agent = new ScriptedAgent({ bridge });
  stops.push(async () => {
    await bridge.close();
    await gateway.close();
    await log.close();
  });
  return { url, log, gateway, agent, reported, setCancelThrows: (kind: Kind) => (cancelThrows = kind) };
}

async function following(url: string, userId: string, threadId: string): Promise<RawClient> {
  const client = await RawClient.open(url, userId);
  stops.push(async () => void client.ws.close());
  client.subscribe(threadId);
  await client.waitFor(() => client.ofType('subscribed').length === 1, 'subscribed');
  return client;
}

/** An authenticate hook that throws the hostile value a `hostile-<kind>` token names, else is `fallback`. */
function hostileAuth(fallback: Authenticate): Authenticate {
  return (request) => {
    const token = tokenFrom(request) ?? '';
    const kind = KINDS.find((k) => token === `hostile-${k}`);
    if (kind) throw hostile(kind);
    return fallback(request);
  };
}

/** A run of `agent` in `threadId` reaches `client` whole: the connection still serves. */
async function stillServes(agent: ScriptedAgent, client: RawClient, threadId: string): Promise<void> {
  const before = client.events().length;
  const result = await agent.run([{ think: 'still here' }], { userId: 'alice', threadId });
  expect(result.status).toBe('succeeded');
  await client.waitFor(() => client.events().filter((event) => event.runId === result.runId).length === 3, 'the whole run');
  expect(validateLifecycle(client.events().slice(before))).toEqual({ ok: true, runs: 1 });
}

describe('attack: hooks and logs that throw values which throw when looked at', () => {
  it('authenticate throws each hostile value: that upgrade is refused with 401 (reported), and a real client is served afterwards', async () => {
    const { url, agent, reported } = await start();
    for (const kind of KINDS) {
      const status = await refusedStatus(`${url}?token=hostile-${kind}`);
      expect(status, kind).toBe(401);
    }
    expect(reported.filter((report) => report.stage === 'authenticate')).toHaveLength(KINDS.length);
    const alice = await following(url, 'alice', 't-auth');
    await stillServes(agent, alice, 't-auth');
    expect(alice.closed).toBeUndefined();
  });

  it('cancelRun rejects with each hostile value: the client gets an UNAVAILABLE error frame and its connection goes on', async () => {
    const { url, agent, reported, setCancelThrows } = await start();
    const alice = await following(url, 'alice', 't-cancel');
    for (const [i, kind] of KINDS.entries()) {
      setCancelThrows(kind);
      alice.send({ type: 'cancel', runId: `thread_t-cancel_run_1_${i}` });
      await alice.waitFor(() => alice.ofType('error').length === i + 1, `the refusal of the cancel (${kind})`);
      expect(alice.ofType('error')[i], kind).toMatchObject({ type: 'error', code: 'UNAVAILABLE', runId: `thread_t-cancel_run_1_${i}` });
    }
    expect(reported.filter((report) => report.stage === 'cancel')).toHaveLength(KINDS.length);
    await stillServes(agent, alice, 't-cancel');
    expect(alice.closed).toBeUndefined();
  });

  it('the log rejects an answer with each hostile value: the client gets an UNAVAILABLE error frame and its connection goes on', async () => {
    const { url, log, agent } = await start();
    const alice = await following(url, 'alice', 't-answer');
    let answerThrows: Kind = 'revoked';
    log.answerRequest = () => Promise.reject(hostile(answerThrows));
    for (const [i, kind] of KINDS.entries()) {
      answerThrows = kind;
      alice.send({ type: 'answer', threadId: 't-answer', runId: 'thread_t-answer_run_1_x', requestId: `req_${i}`, approved: true });
      await alice.waitFor(() => alice.ofType('error').length === i + 1, `the refusal of the answer (${kind})`);
      expect(alice.ofType('error')[i], kind).toMatchObject({ type: 'error', code: 'UNAVAILABLE', requestId: `req_${i}` });
    }
    await stillServes(agent, alice, 't-answer');
    expect(alice.closed).toBeUndefined();
  });

  it('the log rejects a subscribe with each hostile value: the client gets SUBSCRIBE_FAILED for that thread and its connection goes on', async () => {
    const { url, log, agent } = await start();
    const alice = await following(url, 'alice', 't-sub');
    const subscribe = log.subscribe.bind(log);
    let subscribeThrows: Kind | undefined;
    log.subscribe = (request, listener) => (subscribeThrows ? Promise.reject(hostile(subscribeThrows)) : subscribe(request, listener));
    for (const [i, kind] of KINDS.entries()) {
      subscribeThrows = kind;
      alice.subscribe(`t-sub-${i}`);
      await alice.waitFor(() => alice.ofType('error').length === i + 1, `the refusal of the subscribe (${kind})`);
      expect(alice.ofType('error')[i], kind).toMatchObject({ type: 'error', code: 'SUBSCRIBE_FAILED', threadId: `t-sub-${i}` });
    }
    subscribeThrows = undefined;
    await stillServes(agent, alice, 't-sub');
    expect(alice.closed).toBeUndefined();
  });
});

describe('attack: an authenticate hook throwing hostile values on the HTTP surfaces', () => {
  for (const mount of ['node', 'hono'] as const satisfies readonly Mount[]) {
    it(`AG-UI (${mount} handler): each hostile value is a 401 AUTH_FAILED (reported), and a real user's run streams to its end afterwards`, async () => {
      const reported: unknown[] = [];
      const fixture = await startSurface('agui', mount, { authenticate: hostileAuth(surfaceAuthenticate), onError: (_error, context) => reported.push(context.stage) });
      stops.push(() => fixture.close());
      for (const kind of KINDS) {
        const refused = post(fixture, `hostile-${kind}`, fixture.body('t-hostile', [{ think: 'never' }]));
        await refused.ended;
        expect(refused.status, kind).toBe(401);
        expect(JSON.parse(refused.body), kind).toMatchObject({ error: { code: 'AUTH_FAILED' } });
      }
      expect(reported.filter((stage) => stage === 'authenticate')).toHaveLength(KINDS.length);
      const served = post(fixture, 'tok-alice', fixture.body('t-real', [{ think: 'served' }]));
      await served.ended;
      expect(served.status).toBe(200);
      expect(isLastFrame('agui', JSON.parse(served.frames.at(-1)!.data) as Record<string, unknown>)).toBe(true);
      expect(fixture.events.map((event) => event.type)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
    });
  }

  it("SSE gateway: each hostile value is a 401 AUTH_FAILED, and a real user's stream gets the thread's events afterwards", async () => {
    const log = new MemoryTransport();
    const sse = await startSse({ log, authenticate: hostileAuth(testAuthenticate), heartbeatIntervalMs: 0 });
    stops.push(async () => {
      await sse.close();
      await log.close();
    });
    const bridge = new AgentBridge({ transport: log });
    const agent = new ScriptedAgent({ bridge });
    stops.push(() => bridge.close());
    for (const kind of KINDS) {
      const refused = new Exchange(`${sse.base}${sse.gateway.path}?threadId=t-sse&token=hostile-${kind}`);
      await refused.ended;
      expect(refused.status, kind).toBe(401);
    }
    const result = await agent.run([{ think: 'served' }], { userId: 'alice', threadId: 't-sse' });
    const stream = new Exchange(sse.url('t-sse', 'alice'));
    stops.push(async () => stream.destroy());
    await stream.responded;
    expect(stream.status).toBe(200);
    // Events carry an id (their cursor); the gateway's own messages (subscribed) do not.
    const events = () => stream.frames.filter((frame) => frame.id !== undefined).map((frame) => JSON.parse(frame.data) as AgentEvent);
    await until(() => events().length >= 3, 'the run replayed');
    expect(validateLifecycle(events())).toEqual({ ok: true, runs: 1 });
    expect(events().map((event) => [event.runId, event.type])).toEqual([
      [result.runId, 'agent_started'],
      [result.runId, 'agent_thinking'],
      [result.runId, 'agent_completed'],
    ]);
  });
});
