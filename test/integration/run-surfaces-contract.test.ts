import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTransport, ThreadRegistry, ValidationError, tokenFrom, validateLifecycle, type Authenticate } from '../../src/index.js';
import { AgentBridge } from '../../src/index.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { Exchange, closingCode, post, startSurface, surfaceAuthenticate, type Mount, type SurfaceFixture, type SurfaceKind, type SurfaceOptions } from '../helpers/run-surfaces.js';
import { createAguiHandler } from '../../src/agui/index.js';
import { until } from '../helpers/wait.js';

/**
 * The front-end contract on the two HTTP surfaces that start runs (AG-UI and useChat), each
 * through its node handler and its web handler in a real Hono app: one auth path (generic 401,
 * principal checks, timeout, expiry), admission in the order auth → body → validation → run slot,
 * body limits, run limits, the origin policy with preflight, revocation, shutdown. Every
 * assertion is on what the receiving client got.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const GENERIC_401 = 'Authentication failed: missing or invalid credentials';
const SECRET = 'postgres://app:hunter2@db.internal:5432/users';

describe.each([
  ['agui', 'node'],
  ['agui', 'hono'],
  ['chat', 'node'],
  ['chat', 'hono'],
] as Array<[SurfaceKind, Mount]>)('%s surface through the %s handler', (kind, mount) => {
  async function fixture(options: SurfaceOptions = {}, transport?: MemoryTransport): Promise<SurfaceFixture> {
    const surface = await startSurface(kind, mount, options, transport);
    cleanups.push(() => surface.close());
    return surface;
  }
  const exchange = (...args: ConstructorParameters<typeof Exchange>) => {
    const x = new Exchange(...args);
    cleanups.push(() => x.destroy());
    return x;
  };
  const send = (surface: SurfaceFixture, token: string | undefined, body: unknown, options?: Parameters<typeof post>[3]) => {
    const x = post(surface, token, body, options);
    cleanups.push(() => x.destroy());
    return x;
  };
  /** A run that waits until it is cancelled. */
  const waiting = (surface: SurfaceFixture, threadId: string) => surface.body(threadId, [{ think: 'waiting' }, { wait: 'abort' }]);
  const firstFrame = (x: Exchange) => x.waitFor((e) => e.frames.length > 0, 'the first frame');

  describe('authentication', () => {
    it('a generic 401; only an AuthError message passes; what the hook threw (a DB URL with a password) is never echoed', async () => {
      const reported: unknown[] = [];
      const surface = await fixture({
        onError: (error) => reported.push(error),
        authenticate: (req) => {
          const token = tokenFrom(req);
          if (token === 'crash') throw new Error(`connect ECONNREFUSED ${SECRET}`);
          if (token === 'string') throw `the hook threw a string with ${SECRET}`;
          return surfaceAuthenticate(req);
        },
      });
      for (const token of [undefined, 'nope', 'crash', 'string']) {
        const x = send(surface, token, surface.body('t1', []));
        await x.ended;
        expect({ token, status: x.status, error: x.error }).toEqual({ token, status: 401, error: { code: 'AUTH_FAILED', message: GENERIC_401 } });
        expect(x.body).not.toContain('hunter2');
        expect(x.headers['www-authenticate']).toBe('Bearer');
      }
      const suspended = send(surface, 'suspended', surface.body('t1', []));
      await suspended.ended;
      expect([suspended.status, suspended.error]).toEqual([401, { code: 'AUTH_FAILED', message: 'Your account is suspended' }]);
      // The resume path authenticates the same way.
      const resume = exchange(surface.resumeUrl('t1', 'r1'), { headers: { Authorization: 'Bearer crash' } });
      await resume.ended;
      expect([resume.status, resume.error]).toEqual([401, { code: 'AUTH_FAILED', message: GENERIC_401 }]);
      expect(reported.map((error) => (error instanceof Error ? error.message : String(error)))).toEqual([
        `connect ECONNREFUSED ${SECRET}`,
        `the hook threw a string with ${SECRET}`,
        `connect ECONNREFUSED ${SECRET}`,
      ]);
      expect(surface.handler.stats()).toMatchObject({ refused: { auth_failed: 6 }, errors: 3, connections: { open: 0, authenticating: 0 } });
      expect(surface.events).toEqual([]);
    });

    it('checks the principal (user id of 1-256 characters, finite expiresAt): anything else is the generic 401', async () => {
      const principals: Record<string, unknown> = {
        empty: { userId: '' },
        long: { userId: 'u'.repeat(257) },
        number: { userId: 42 },
        missing: {},
        string: 'alice',
        badExpiry: { userId: 'alice', expiresAt: 'tomorrow' },
        max: { userId: 'u'.repeat(256) },
      };
      const reported: unknown[] = [];
      const surface = await fixture({ onError: (error) => reported.push(error), authenticate: ((req) => principals[tokenFrom(req) ?? '']) as Authenticate });
      const statuses: Record<string, number> = {};
      for (const token of Object.keys(principals)) {
        const x = send(surface, token, surface.body(`t-${token}`, [{ think: 'ok' }]));
        await x.ended;
        statuses[token] = x.status;
        if (x.status !== 200) expect(x.error).toEqual({ code: 'AUTH_FAILED', message: GENERIC_401 });
      }
      expect(statuses).toEqual({ empty: 401, long: 401, number: 401, missing: 401, string: 401, badExpiry: 401, max: 200 });
      expect(reported.length).toBe(6);
      expect(reported.every((error) => error instanceof ValidationError && error.code === 'INVALID_USER_ID')).toBe(true);
    });

    it('a hook that does not answer in time: 503 AUTH_TIMEOUT, its place freed', async () => {
      const surface = await fixture({
        authTimeoutMs: 100,
        maxConnections: 1,
        authenticate: (req) => (tokenFrom(req) === 'hang' ? new Promise<null>(() => undefined) : surfaceAuthenticate(req)),
      });
      const hanging = send(surface, 'hang', surface.body('t1', []));
      await hanging.ended;
      expect([hanging.status, hanging.error.code]).toEqual([503, 'AUTH_TIMEOUT']);
      const ok = send(surface, 'tok-alice', surface.body('t1', [{ think: 'hi' }]));
      await ok.ended;
      expect(ok.status).toBe(200);
      expect(surface.handler.stats()).toMatchObject({ refused: { auth_timeout: 1 }, connections: { authenticating: 0 } });
    });

    it("a stream ends when the principal's expiresAt passes (closing TOKEN_EXPIRED); an expired principal is refused", async () => {
      const surface = await fixture({
        authenticate: (req) => {
          const token = tokenFrom(req) ?? '';
          if (token === 'past') return { userId: 'alice', expiresAt: Date.now() - 1 };
          if (token === 'soon') return { userId: 'alice', expiresAt: Date.now() + 300 };
          return surfaceAuthenticate(req);
        },
      });
      const expired = send(surface, 'past', surface.body('t1', []));
      await expired.ended;
      expect([expired.status, expired.error.code]).toEqual([401, 'TOKEN_EXPIRED']);
      const soon = send(surface, 'soon', waiting(surface, 't1'));
      await firstFrame(soon);
      const bystander = send(surface, 'tok-bob', waiting(surface, 't2'));
      await firstFrame(bystander);
      expect(await soon.ended).toBe('end');
      expect(closingCode(kind, soon)).toBe('TOKEN_EXPIRED');
      expect(bystander.outcome).toBeUndefined();
      expect(surface.handler.stats().disconnects).toEqual({ token_expired: 1 });
    });

    it('credentials that expire while the body is arriving start no run: 401 TOKEN_EXPIRED once the body is read (fourth attack round)', async () => {
      let expiresAt = 0;
      const surface = await fixture({ authenticate: () => ({ userId: 'alice', expiresAt }) });
      const body = JSON.stringify(surface.body('t-late', [{ think: 'should not run' }]));
      expiresAt = Date.now() + 100;
      const late = send(surface, 'any', body.slice(0, 5), { hold: true, length: Buffer.byteLength(body) });
      await until(() => Date.now() > expiresAt, 'the credentials expired');
      late.finishBody(body.slice(5));
      await late.ended;
      expect([late.status, late.error.code]).toEqual([401, 'TOKEN_EXPIRED']);
      expect(surface.events).toEqual([]);
      expect(surface.transport.read('t-late', 'alice')).toEqual([]);
    });
  });

  describe('admission: body limits, then run limits, slots taken after the body', () => {
    it('413 past maxBodyBytes (declared or streamed), 400 BODY_TOO_DEEP at 6,000 levels, 400 INVALID_JSON; runs go on', async () => {
      const surface = await fixture({ maxBodyBytes: 64 * 1024 });
      const big = JSON.stringify(surface.body('t1', [], { padding: 'x'.repeat(70_000) }));
      const declared = send(surface, 'tok-alice', big);
      await declared.ended;
      expect([declared.status, declared.error.code]).toEqual([413, 'BODY_TOO_LARGE']);
      const streamed = send(surface, 'tok-alice', [big.slice(0, 40_000), big.slice(40_000)]);
      await streamed.ended;
      expect([streamed.status, streamed.error.code]).toEqual([413, 'BODY_TOO_LARGE']);
      // Deep bodies: raw nesting, and nesting where the surface reads it (AG-UI forwardedProps with the
      // default toInput; a useChat history part) — refused before JSON.parse, a schema or JSON.stringify.
      const deepValue = '['.repeat(6_000) + ']'.repeat(6_000);
      const deepPart =
        kind === 'agui'
          ? `{"threadId":"t1","messages":[],"forwardedProps":{"steps":[],"x":${deepValue}}}`
          : `{"id":"t1","trigger":"submit-message","messages":[{"id":"m1","role":"assistant","parts":[{"type":"data-x","data":${deepValue}}]}]}`;
      for (const deep of [deepValue, '{"a":'.repeat(6_000) + '1' + '}'.repeat(6_000), deepPart]) {
        const x = send(surface, 'tok-alice', deep);
        await x.ended;
        expect([x.status, x.error.code]).toEqual([400, 'BODY_TOO_DEEP']);
      }
      for (const bad of ['{nope', '', '   ']) {
        const x = send(surface, 'tok-alice', bad);
        await x.ended;
        expect([bad, x.status, x.error.code]).toEqual([bad, 400, 'INVALID_JSON']);
      }
      const ok = send(surface, 'tok-alice', surface.body('t1', [{ think: 'still here' }]));
      await ok.ended;
      expect(ok.status).toBe(200);
      expect(surface.handler.stats().refused).toEqual({ body_too_large: 2, body_too_deep: 3, invalid_json: 3 });
    });

    it('runs per user and in total: 429 TOO_MANY_RUNS, slots freed when runs end', async () => {
      const surface = await fixture({ maxRunsPerUser: 2, maxRuns: 4, maxConnectionsPerUser: 10 });
      const a1 = send(surface, 'tok-alice', waiting(surface, 'a1'));
      const a2 = send(surface, 'tok-alice', waiting(surface, 'a2'));
      await Promise.all([firstFrame(a1), firstFrame(a2)]);
      const a3 = send(surface, 'tok-alice', waiting(surface, 'a3'));
      await a3.ended;
      expect([a3.status, a3.error.code, a3.headers['retry-after']]).toEqual([429, 'TOO_MANY_RUNS', '5']);
      const others = ['bob', 'carol'].map((user) => send(surface, `tok-${user}`, waiting(surface, `${user}-1`)));
      await Promise.all(others.map(firstFrame));
      const full = send(surface, 'tok-dave', waiting(surface, 'd1'));
      await full.ended;
      expect([full.status, full.error.code]).toEqual([429, 'TOO_MANY_RUNS']);
      // A refused run started nothing.
      expect(surface.events.filter((e) => e.type === 'agent_started').map((e) => e.threadId).sort()).toEqual(['a1', 'a2', 'bob-1', 'carol-1']);
      // Alice revoked: her runs are cancelled, their slots come back.
      expect(surface.handler.revoke('alice')).toBe(2);
      await until(() => surface.events.filter((e) => e.type === 'agent_completed').length === 2, 'the revoked runs to end');
      const again = send(surface, 'tok-dave', surface.body('d2', [{ think: 'my turn' }]));
      await again.ended;
      expect(again.status).toBe(200);
    });

    it('a slow body gets 408 BODY_TIMEOUT and never holds a run slot: its user starts runs meanwhile', async () => {
      const surface = await fixture({ maxRunsPerUser: 2, bodyTimeoutMs: 400 });
      const slow = [
        send(surface, 'tok-alice', '{"threa', { hold: true, length: 100 }),
        send(surface, 'tok-alice', '{"th', { hold: true, length: 100 }),
      ];
      const meanwhile = [send(surface, 'tok-alice', surface.body('m1', [{ think: 'one' }])), send(surface, 'tok-alice', surface.body('m2', [{ think: 'two' }]))];
      await Promise.all(meanwhile.map((x) => x.ended));
      expect(meanwhile.map((x) => x.status)).toEqual([200, 200]);
      await Promise.all(slow.map((x) => x.ended));
      expect(slow.map((x) => [x.status, x.error.code])).toEqual([
        [408, 'BODY_TIMEOUT'],
        [408, 'BODY_TIMEOUT'],
      ]);
    });

    it('an invalid body is 400 naming the field, before a slot or a run', async () => {
      const surface = await fixture({ maxRunsPerUser: 1 });
      const invalid = send(surface, 'tok-alice', kind === 'agui' ? { threadId: 'a/b', runId: 'r1', messages: [] } : { id: 'a/b', messages: [] });
      await invalid.ended;
      expect([invalid.status, invalid.error.code]).toEqual([400, 'INVALID_THREAD_ID']);
      const refusedInput = send(surface, 'tok-alice', surface.body('t1', [], { ...(kind === 'agui' ? { forwardedProps: { steps: 'nope' } } : { steps: 'nope' }) }));
      await refusedInput.ended;
      expect([refusedInput.status, refusedInput.error]).toEqual([400, { code: 'VALIDATION_FAILED', field: 'steps', message: 'steps must be a list of steps' }]);
      expect(surface.events).toEqual([]);
    });
  });

  describe('origins, revocation, the user limit, shutdown', () => {
    it('allowed origins get CORS (preflight included); others are refused with 403 before authentication', async () => {
      const surface = await fixture({ allowedOrigins: ['https://app.example.com'] });
      const preflight = exchange(surface.url, {
        method: 'OPTIONS',
        headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' },
      });
      await preflight.ended;
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example.com');
      expect(preflight.headers['access-control-allow-methods']).toBe('GET, POST');
      expect(String(preflight.headers['access-control-allow-headers'])).toContain('Authorization');
      const evilPreflight = exchange(surface.url, { method: 'OPTIONS', headers: { Origin: 'https://evil.example.com', 'Access-Control-Request-Method': 'POST' } });
      await evilPreflight.ended;
      expect([evilPreflight.status, evilPreflight.error.code]).toEqual([403, 'ORIGIN_FORBIDDEN']);
      const evil = send(surface, 'tok-alice', surface.body('t1', [{ think: 'x' }]), { headers: { Origin: 'https://evil.example.com' } });
      await evil.ended;
      expect([evil.status, evil.error.code]).toEqual([403, 'ORIGIN_FORBIDDEN']);
      const allowed = send(surface, 'tok-alice', surface.body('t1', [{ think: 'x' }]), { headers: { Origin: 'https://app.example.com' } });
      await allowed.ended;
      expect([allowed.status, allowed.headers['access-control-allow-origin'], allowed.headers['access-control-expose-headers']]).toEqual([
        200,
        'https://app.example.com',
        'X-Agentwire-Run-Id, Retry-After',
      ]);
      // A refusal to an allowed origin carries CORS, so the page can read it.
      const unauthorized = send(surface, 'nope', surface.body('t1', []), { headers: { Origin: 'https://app.example.com' } });
      await unauthorized.ended;
      expect([unauthorized.status, unauthorized.headers['access-control-allow-origin']]).toEqual([401, 'https://app.example.com']);
      expect(surface.events.filter((e) => e.type === 'agent_started')).toHaveLength(1);
    });

    it("revoke(userId) ends that user's streams (closing REVOKED) and cancels their runs; other users go on", async () => {
      const surface = await fixture({ maxConnectionsPerUser: 5, maxRunsPerUser: 5 });
      const alice = [send(surface, 'tok-alice', waiting(surface, 'a1')), send(surface, 'tok-alice', waiting(surface, 'a2'))];
      const bob = send(surface, 'tok-bob', waiting(surface, 'b1'));
      await Promise.all([...alice, bob].map(firstFrame));
      expect(surface.handler.revoke('alice')).toBe(2);
      for (const x of alice) {
        expect(await x.ended).toBe('end');
        expect(closingCode(kind, x)).toBe('REVOKED');
      }
      await until(() => surface.events.filter((e) => e.type === 'agent_completed').length === 2, 'the revoked runs to be cancelled');
      const ended = surface.events.filter((e) => e.type === 'agent_completed');
      expect(ended.map((e) => [e.userId, e.type === 'agent_completed' && e.data.status])).toEqual([
        ['alice', 'cancelled'],
        ['alice', 'cancelled'],
      ]);
      expect(bob.outcome).toBeUndefined();
      expect(surface.handler.stats()).toMatchObject({ connections: { open: 1 }, disconnects: { revoked: 2 } });
      for (const threadId of ['a1', 'a2']) expect(validateLifecycle(surface.transport.read(threadId, 'alice')).ok).toBe(true);
    });

    it("past maxConnectionsPerUser the user's oldest stream is closed (TOO_MANY_CONNECTIONS); its run goes on", async () => {
      const surface = await fixture({ maxConnectionsPerUser: 1, maxRunsPerUser: 2, abortOnDisconnect: true });
      const first = send(surface, 'tok-alice', waiting(surface, 'o1'));
      await firstFrame(first);
      const second = send(surface, 'tok-alice', waiting(surface, 'o2'));
      await firstFrame(second);
      expect(await first.ended).toBe('end');
      expect(closingCode(kind, first)).toBe('TOO_MANY_CONNECTIONS');
      // Closed by the server, not left by its client: the run is not cancelled.
      expect(surface.events.filter((e) => e.type === 'agent_completed')).toEqual([]);
      expect(surface.handler.stats().disconnects).toEqual({ user_limit: 1 });
    });

    it('close() cancels the runs it started (their streams carry it to the end) and refuses new requests with 503', async () => {
      const surface = await fixture();
      const running = send(surface, 'tok-alice', waiting(surface, 'c1'));
      await firstFrame(running);
      await surface.handler.close();
      expect(await running.ended).toBe('end');
      const last = running.data.filter((d) => d.type !== '[DONE]' && d.type !== 'message-metadata').at(-1);
      expect(last?.type).toBe(kind === 'agui' ? 'RUN_FINISHED' : 'abort');
      const after = send(surface, 'tok-alice', surface.body('c2', []));
      await after.ended;
      expect([after.status, after.error.code]).toEqual([503, 'GATEWAY_CLOSED']);
      expect(validateLifecycle(surface.transport.read('c1', 'alice')).ok).toBe(true);
    });
  });
});

describe('AG-UI client run ids are used once', () => {
  it('409 RUN_ID_CONFLICT for a run id retained in the log, after the registry forgot it, and in another thread', async () => {
    const transport = new MemoryTransport();
    // A registry whose clock the test moves: past its TTL only the log remembers the run.
    let now = Date.now();
    const bridge = new AgentBridge({ transport, registry: new ThreadRegistry({ finishedRunTtlMs: 60_000, now: () => now }) });
    const agent = new ScriptedAgent({ bridge });
    const handler = createAguiHandler({ agent, log: transport, authenticate: surfaceAuthenticate, heartbeatIntervalMs: 0, toInput: () => [{ think: 'x' }] });
    const server = await handler.listen();
    cleanups.push(async () => {
      await handler.close();
      await bridge.close();
    });
    const url = `http://127.0.0.1:${server.port}/agui`;
    const run = (threadId: string, runId: string) => {
      const x = post({ url }, 'tok-alice', { threadId, runId, messages: [] });
      cleanups.push(() => x.destroy());
      return x;
    };
    const first = run('t1', 'client-run-1');
    await first.ended;
    expect(first.status).toBe(200);
    now += 61_000;
    const other = run('t3', 'client-run-2'); // a registration sweeps the expired runs
    await other.ended;
    expect(bridge.registry.has('client-run-1')).toBe(false);
    for (const threadId of ['t1', 't2']) {
      const again = run(threadId, 'client-run-1');
      await again.ended;
      expect([threadId, again.status, again.error.code]).toEqual([threadId, 409, 'RUN_ID_CONFLICT']);
    }
    expect(transport.read('t1', 'alice').filter((e) => e.type === 'agent_started')).toHaveLength(1);
    expect(transport.read('t2', 'alice')).toEqual([]);
    expect(handler.stats().refused).toEqual({ run_id_conflict: 2 });
  });

  it("agent.run()'s own RUN_ID_CONFLICT (its transport knows the id, the log the handler reads does not) is answered 409", async () => {
    const log = new MemoryTransport();
    // The bridge writes through a transport that also remembers an id from elsewhere (another region, a restart).
    const transport = Object.assign(Object.create(log) as MemoryTransport, { hasRun: (runId: string) => runId === 'taken-elsewhere' || log.hasRun(runId) });
    const bridge = new AgentBridge({ transport });
    const agent = new ScriptedAgent({ bridge });
    const handler = createAguiHandler({ agent, log, authenticate: surfaceAuthenticate, heartbeatIntervalMs: 0, toInput: () => [{ think: 'x' }] });
    const server = await handler.listen();
    cleanups.push(async () => {
      await handler.close();
      await bridge.close();
    });
    const x = post({ url: `http://127.0.0.1:${server.port}/agui` }, 'tok-alice', { threadId: 't1', runId: 'taken-elsewhere', messages: [] });
    cleanups.push(() => x.destroy());
    await x.ended;
    expect([x.status, x.error.code, x.error.field]).toEqual([409, 'RUN_ID_CONFLICT', 'runId']);
    expect(log.read('t1', 'alice')).toEqual([]);
  });

  it('two concurrent POSTs with one run id: exactly one runs', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const agent = new ScriptedAgent({ bridge });
    const handler = createAguiHandler({ agent, log: transport, authenticate: surfaceAuthenticate, heartbeatIntervalMs: 0, toInput: () => [{ think: 'x' }] });
    const server = await handler.listen();
    cleanups.push(async () => {
      await handler.close();
      await bridge.close();
    });
    const url = `http://127.0.0.1:${server.port}/agui`;
    const racing = Array.from({ length: 8 }, () => post({ url }, 'tok-alice', { threadId: 't1', runId: 'same-id', messages: [] }));
    await Promise.all(racing.map((x) => x.ended));
    expect(racing.map((x) => x.status).sort()).toEqual([200, 409, 409, 409, 409, 409, 409, 409]);
    expect(transport.read('t1', 'alice').filter((e) => e.type === 'agent_started')).toHaveLength(1);
  });
});
