/**
 * `revoke(userId)` reaches the user's requests still being admitted, on every HTTP surface
 * (fifth attack round, f02): a request whose `authenticate` hook was answering, or whose body was
 * still arriving, when its user was revoked is refused with 401 `REVOKED` and starts nothing (no
 * run, no stream, no queued job, no answer). Other users' requests and streams go on. Real
 * servers on loopback, bodies written in pieces; every assertion is on what the client received
 * and what the log holds.
 */
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport, tokenFrom, type Authenticate, type Principal } from '../../src/index.js';
import { AnswerEndpoint } from '../../src/gateway/index.js';
import { RunsHandler } from '../../src/gateway/runs/index.js';
import { SseGateway } from '../../src/transport/sse/index.js';
import { MemoryRunQueue } from '../../src/runs/index.js';
import { BankAgent, pendingOf } from '../helpers/interactive.js';
import { Exchange, closingCode, post, startSurface, surfaceAuthenticate, type Mount, type SurfaceFixture, type SurfaceKind } from '../helpers/run-surfaces.js';
import { StepAgent } from '../helpers/runs-agents.js';
import { SseTestClient } from '../helpers/sse-client.js';
import { scriptedRun } from '../helpers/sse-server.js';
import { until } from '../helpers/wait.js';
import { listenHttp } from '../helpers/http-listen.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * An auth hook (`Bearer tok-<user>`, or a principal of the test's making) that tells the test when
 * it answered for a user, and can hold a user's hook until the test releases it.
 */
class HookProbe {
  private readonly answered = new Map<string, Array<() => void>>();
  private readonly held = new Map<string, { entered: () => void; gate: Promise<void> }>();

  constructor(private readonly principal: (req: Parameters<Authenticate>[0]) => Principal | null = (req) => surfaceAuthenticate(req) as Principal | null) {}

  readonly authenticate: Authenticate = async (req) => {
    const principal = this.principal(req);
    if (!principal) return null;
    const held = this.held.get(principal.userId);
    if (held) {
      this.held.delete(principal.userId);
      held.entered();
      await held.gate;
    }
    queueMicrotask(() => {
      for (const resolve of this.answered.get(principal.userId)?.splice(0) ?? []) resolve();
    });
    return principal;
  };

  /**
   * Resolves once the hook answered for `userId` and the surface went on to read the body: what
   * follows a hook's answer up to the body read is promise continuations only, so one turn of
   * the event loop later the request waits for its body.
   */
  answeredFor(userId: string): Promise<void> {
    return new Promise<void>((resolve) => {
      const list = this.answered.get(userId) ?? [];
      list.push(resolve);
      this.answered.set(userId, list);
    }).then(() => new Promise<void>((resolve) => setImmediate(resolve)));
  }

  /** Holds the next hook call of `userId`: `entered` resolves when it is waiting, `release()` lets it answer. */
  hold(userId: string): { entered: Promise<void>; release: () => void } {
    let release!: () => void;
    let entered!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const enteredPromise = new Promise<void>((resolve) => (entered = resolve));
    this.held.set(userId, { entered, gate });
    return { entered: enteredPromise, release };
  }
}

/** A JSON body cut in two: the first part is written at once, the rest when the test says so. */
function halves(body: unknown): { first: string; rest: string; length: number } {
  const text = JSON.stringify(body);
  const cut = Math.floor(text.length / 2);
  return { first: text.slice(0, cut), rest: text.slice(cut), length: Buffer.byteLength(text) };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A POST over its own socket whose body is written in two pieces: `finish()` writes the rest. */
function slowPost(url: string, headers: Record<string, string>, body: unknown): { reply: Promise<Reply>; finish: () => void } {
  const { first, rest, length } = halves(body);
  let finish!: () => void;
  const reply = new Promise<Reply>((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': String(length), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.write(first);
    req.flushHeaders();
    finish = () => req.end(rest);
    cleanups.push(() => void req.destroy());
  });
  return { reply, finish };
}

const codeOf = (text: string): string => (JSON.parse(text) as { error: { code: string } }).error.code;

const listen = (handler: Parameters<typeof listenHttp>[0]): Promise<string> => listenHttp(handler, cleanups);

describe.each([
  ['agui', 'node'],
  ['agui', 'hono'],
  ['chat', 'node'],
  ['chat', 'hono'],
] as Array<[SurfaceKind, Mount]>)('%s surface through the %s handler: revoke() while a request is being admitted', (kind, mount) => {
  async function fixture(probe: HookProbe): Promise<SurfaceFixture> {
    const surface = await startSurface(kind, mount, { authenticate: probe.authenticate, maxConnectionsPerUser: 5 });
    cleanups.push(() => surface.close());
    return surface;
  }
  const send = (surface: SurfaceFixture, token: string, body: unknown, options?: Parameters<typeof post>[3]): Exchange => {
    const x = post(surface, token, body, options);
    cleanups.push(() => x.destroy());
    return x;
  };
  /** Alice's run, streaming, waiting until it is cancelled: the other user's stream that must go on. */
  async function aliceStreaming(surface: SurfaceFixture): Promise<Exchange> {
    const alice = send(surface, 'tok-alice', surface.body('alice-1', [{ think: 'alice works' }, { wait: 'abort' }]));
    await alice.waitFor((x) => x.frames.length > 0, "alice's first frame");
    return alice;
  }
  function expectAliceUnaffected(surface: SurfaceFixture, alice: Exchange): void {
    expect(alice.status).toBe(200);
    expect(alice.outcome).toBeUndefined();
    expect(surface.events.filter((e) => e.userId === 'alice').map((e) => e.type)).toEqual(['agent_started', 'agent_thinking']);
    expect(surface.handler.stats().connections.open).toBe(1);
  }

  it('revoked after the hook answered, while the body arrives: 401 REVOKED when it completes, no run, nothing in the log', async () => {
    const probe = new HookProbe();
    const surface = await fixture(probe);
    const alice = await aliceStreaming(surface);
    const { first, rest, length } = halves(surface.body('mallory-1', [{ think: 'for a revoked user' }]));
    const answered = probe.answeredFor('mallory');
    const mallory = send(surface, 'tok-mallory', [first], { hold: true, length });
    await answered;
    // Nothing of mallory's is open yet: the revocation has nothing to close, but it is not lost.
    expect(surface.handler.revoke('mallory')).toBe(0);
    mallory.write(rest);
    await mallory.ended;
    expect([mallory.status, mallory.error.code]).toEqual([401, 'REVOKED']);
    expect(mallory.headers['www-authenticate']).toBe('Bearer');
    expect(surface.transport.read('mallory-1', 'mallory')).toEqual([]);
    expect(surface.events.filter((e) => e.userId === 'mallory')).toEqual([]);
    expect(surface.handler.stats().refused).toMatchObject({ revoked: 1 });
    expectAliceUnaffected(surface, alice);
  });

  it('revoked while the hook is still answering: 401 REVOKED once it answers, no run', async () => {
    const probe = new HookProbe();
    const surface = await fixture(probe);
    const alice = await aliceStreaming(surface);
    const held = probe.hold('mallory');
    const mallory = send(surface, 'tok-mallory', surface.body('mallory-2', [{ think: 'for a revoked user' }]));
    await held.entered;
    expect(surface.handler.revoke('mallory')).toBe(0);
    held.release();
    await mallory.ended;
    expect([mallory.status, mallory.error.code]).toEqual([401, 'REVOKED']);
    expect(surface.transport.read('mallory-2', 'mallory')).toEqual([]);
    expect(surface.events.filter((e) => e.userId === 'mallory')).toEqual([]);
    expectAliceUnaffected(surface, alice);
  });

  it('a resume GET whose hook answers after revoke() is refused with 401 REVOKED', async () => {
    const probe = new HookProbe();
    const surface = await fixture(probe);
    const alice = await aliceStreaming(surface);
    const held = probe.hold('alice');
    const runId = String(alice.headers['x-agentwire-run-id']);
    const resume = new Exchange(surface.resumeUrl('alice-1', runId), { headers: { Authorization: 'Bearer tok-alice' } });
    cleanups.push(() => resume.destroy());
    await held.entered;
    // Alice's open stream is closed at once; the resume pending in her hook must not reopen one.
    expect(surface.handler.revoke('alice')).toBe(1);
    expect(await alice.ended).toBe('end');
    expect(closingCode(kind, alice)).toBe('REVOKED');
    held.release();
    await resume.ended;
    expect([resume.status, resume.error.code]).toEqual([401, 'REVOKED']);
    expect(surface.handler.stats().connections.open).toBe(0);
  });

  it('a request that starts after revoke() is served: the revocation only reaches requests pending at the time', async () => {
    const probe = new HookProbe();
    const surface = await fixture(probe);
    expect(surface.handler.revoke('mallory')).toBe(0);
    const later = send(surface, 'tok-mallory', surface.body('mallory-3', [{ think: 'hello' }]));
    await later.ended;
    expect(later.status).toBe(200);
    expect(surface.transport.read('mallory-3', 'mallory').map((e) => e.type)).toEqual(['agent_started', 'agent_thinking', 'agent_completed']);
  });
});

describe('SSE gateway: revoke() while a stream is authenticating', () => {
  it("a stream whose hook answers after revoke() gets 401 REVOKED and never opens; alice's stream goes on receiving", async () => {
    const transport = new MemoryTransport();
    const probe = new HookProbe();
    const gateway = new SseGateway({ log: transport, authenticate: probe.authenticate, heartbeatIntervalMs: 0 });
    cleanups.push(() => gateway.close());
    const base = await listen((req, res) => {
      if (!gateway.handle(req, res)) res.writeHead(404).end();
    });
    const url = (threadId: string, user: string) => `${base}/events?threadId=${threadId}&token=tok-${user}`;
    const aliceRun = scriptedRun(transport, 'alice', 'alice-t');
    aliceRun.start();
    const alice = await SseTestClient.open(url('alice-t', 'alice'));
    cleanups.push(() => alice.close());
    await alice.waitForEvent('agent_started');

    const malloryRun = scriptedRun(transport, 'mallory', 'mallory-t');
    malloryRun.start();
    const held = probe.hold('mallory');
    const pending = SseTestClient.open(url('mallory-t', 'mallory'));
    await held.entered;
    expect(gateway.revoke('mallory')).toBe(0);
    held.release();
    const mallory = await pending;
    cleanups.push(() => mallory.close());
    await mallory.ended;
    expect([mallory.status, mallory.error.code]).toEqual([401, 'REVOKED']);
    expect(mallory.messages).toEqual([]);
    expect(gateway.stats()).toMatchObject({ connections: { open: 1 }, refused: { revoked: 1 } });

    // Alice's stream was never touched: what her run emits next reaches her.
    aliceRun.think(2);
    aliceRun.complete();
    await alice.waitForEvent('agent_completed');
    expect(alice.events.map((e) => e.type)).toEqual(['agent_started', 'agent_thinking', 'agent_thinking', 'agent_completed']);
    expect(alice.outcome).toBeUndefined();
  });
});

describe('run endpoints: revoke() while a request is being admitted', () => {
  it('a submit whose body completes after revoke() gets 401 REVOKED and queues nothing; alice submits meanwhile', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const queue = new MemoryRunQueue();
    queue.serve({ agents: [new StepAgent({ bridge })] }, { concurrency: 2 });
    const probe = new HookProbe();
    const handler = new RunsHandler({ queue, authenticate: probe.authenticate, agents: ['steps'] });
    cleanups.push(async () => {
      await queue.close({ timeoutMs: 50 });
      await bridge.close();
    });
    const base = await listen((req, res) => {
      void handler.handle(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    const answered = probe.answeredFor('mallory');
    const mallory = slowPost(`${base}/runs`, { Authorization: 'Bearer tok-mallory' }, { agent: 'steps', input: { steps: 1, stepMs: 1 }, threadId: 'mallory-r' });
    await answered;
    expect(handler.revoke('mallory')).toBe(0);
    const alice = await fetch(`${base}/runs`, {
      method: 'POST',
      headers: { Authorization: 'Bearer tok-alice', 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent: 'steps', input: { steps: 1, stepMs: 1 }, threadId: 'alice-r' }),
    });
    expect(alice.status).toBe(202);
    mallory.finish();
    const reply = await mallory.reply;
    expect([reply.status, codeOf(reply.body)]).toEqual([401, 'REVOKED']);
    expect((await queue.stats()).submitted).toBe(1);
    await until(() => transport.read('alice-r', 'alice').some((e) => e.type === 'agent_completed'), "alice's run to end");
    expect(transport.read('mallory-r', 'mallory')).toEqual([]);
    expect((await handler.stats()).refused).toMatchObject({ revoked: 1 });
  });

  it('a cancel whose hook answers after revoke() gets 401 REVOKED and cancels nothing', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const queue = new MemoryRunQueue();
    queue.serve({ agents: [new StepAgent({ bridge })] }, { concurrency: 1 });
    const probe = new HookProbe();
    const handler = new RunsHandler({ queue, authenticate: probe.authenticate, agents: ['steps'] });
    cleanups.push(async () => {
      await queue.close({ timeoutMs: 50 });
      await bridge.close();
    });
    const base = await listen((req, res) => void handler.handle(req, res));
    const runId = await queue.submit('steps', { steps: 1, stepMs: 5_000 }, { userId: 'alice', threadId: 'long' });
    await until(() => transport.read('long', 'alice').length > 0, 'the run to start');
    const held = probe.hold('alice');
    const cancel = fetch(`${base}/runs/${encodeURIComponent(runId)}/cancel`, { method: 'POST', headers: { Authorization: 'Bearer tok-alice' } });
    await held.entered;
    handler.revoke('alice');
    held.release();
    const response = await cancel;
    expect([response.status, ((await response.json()) as { error: { code: string } }).error.code]).toEqual([401, 'REVOKED']);
    expect(transport.read('long', 'alice').some((e) => e.type === 'agent_completed')).toBe(false);
    expect((await queue.status(runId))?.state).toBe('running');
    await queue.cancel(runId, { userId: 'alice' });
  });
});

describe('answer endpoint: revocation and expiry while the body arrives', () => {
  async function waitingRun(authenticate: Authenticate, options: Partial<ConstructorParameters<typeof AnswerEndpoint>[0]> = {}) {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    await bridge.initialize();
    const agent = new BankAgent({ bridge });
    const endpoint = new AnswerEndpoint({ log: transport, authenticate, ...options });
    const run = agent.run({ transfer: 300 }, { userId: 'alice', threadId: 'bank' });
    cleanups.push(async () => {
      await bridge.close();
    });
    const base = await listen((req, res) => void endpoint.node(req, res));
    await until(() => pendingOf(transport.read('bank', 'alice')) !== undefined, 'the run to wait for its approval');
    const pending = pendingOf(transport.read('bank', 'alice'))!;
    const body = { threadId: 'bank', runId: pending.runId, requestId: pending.requestId, approved: true };
    return { transport, agent, endpoint, run, base, body };
  }
  const answeredTypes = (transport: MemoryTransport) => transport.read('bank', 'alice').map((e) => e.type);

  it('revoke() while the answer body arrives: 401 REVOKED, nothing appended, the tool does not run; a later answer is taken', async () => {
    const probe = new HookProbe();
    const setup = await waitingRun(probe.authenticate);
    const answered = probe.answeredFor('alice');
    const answer = slowPost(`${setup.base}/answer`, { Authorization: 'Bearer tok-alice' }, setup.body);
    await answered;
    expect(setup.endpoint.revoke('alice')).toBe(0);
    answer.finish();
    const reply = await answer.reply;
    expect([reply.status, codeOf(reply.body)]).toEqual([401, 'REVOKED']);
    expect(answeredTypes(setup.transport)).toEqual(['agent_started', 'tool_executing']);
    expect(setup.agent.executed).toEqual([]);
    // The revocation reached the requests pending then; refusing her next ones is the hook's job.
    const again = await fetch(`${setup.base}/answer`, { method: 'POST', headers: { Authorization: 'Bearer tok-alice', 'Content-Type': 'application/json' }, body: JSON.stringify(setup.body) });
    expect(again.status).toBe(200);
    await setup.run;
    expect(setup.agent.executed).toEqual([300]);
  });

  it('revoke() while the hook answers: 401 REVOKED, nothing appended', async () => {
    const probe = new HookProbe();
    const setup = await waitingRun(probe.authenticate);
    const held = probe.hold('alice');
    const answer = fetch(`${setup.base}/answer`, { method: 'POST', headers: { Authorization: 'Bearer tok-alice', 'Content-Type': 'application/json' }, body: JSON.stringify(setup.body) });
    await held.entered;
    setup.endpoint.revoke('alice');
    held.release();
    const response = await answer;
    expect([response.status, ((await response.json()) as { error: { code: string } }).error.code]).toEqual([401, 'REVOKED']);
    expect(answeredTypes(setup.transport)).toEqual(['agent_started', 'tool_executing']);
  });

  it('credentials that expire while the body arrives: 401 TOKEN_EXPIRED, nothing appended, the tool does not run', async () => {
    let expiresAt = Number.MAX_SAFE_INTEGER;
    const setup = await waitingRun((req) => (tokenFrom(req) === 'tok-alice' ? { userId: 'alice', expiresAt } : null));
    expiresAt = Date.now() + 100;
    const answer = slowPost(`${setup.base}/answer`, { Authorization: 'Bearer tok-alice' }, setup.body);
    await until(() => Date.now() > expiresAt, 'the credentials to expire');
    answer.finish();
    const reply = await answer.reply;
    expect([reply.status, codeOf(reply.body)]).toEqual([401, 'TOKEN_EXPIRED']);
    expect(reply.headers['www-authenticate']).toBe('Bearer');
    expect(answeredTypes(setup.transport)).toEqual(['agent_started', 'tool_executing']);
    expect(setup.agent.executed).toEqual([]);
  });

  it('a look-alike origin (a prefix of the allowed one) gets 403 ORIGIN_FORBIDDEN without CORS headers; nothing appended', async () => {
    const setup = await waitingRun(surfaceAuthenticate, { allowedOrigins: ['https://app.example.com'] });
    const send = (origin: string) =>
      new Promise<Reply>((resolve, reject) => {
        const text = JSON.stringify(setup.body);
        const req = httpRequest(`${setup.base}/answer`, {
          method: 'POST',
          agent: false,
          headers: { Origin: origin, Authorization: 'Bearer tok-alice', 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) },
        }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        });
        req.on('error', reject);
        req.end(text);
      });
    for (const origin of ['https://app.example.co', 'https://app.example.com.evil.example', 'https://example.com']) {
      const reply = await send(origin);
      expect([origin, reply.status, codeOf(reply.body)]).toEqual([origin, 403, 'ORIGIN_FORBIDDEN']);
      expect(reply.headers['access-control-allow-origin']).toBeUndefined();
      expect(reply.headers['access-control-allow-credentials']).toBeUndefined();
    }
    expect(answeredTypes(setup.transport)).toEqual(['agent_started', 'tool_executing']);
    const allowed = await send('https://app.example.com');
    expect(allowed.status).toBe(200);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    await setup.run;
    expect(setup.agent.executed).toEqual([300]);
  });
});
