import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AuthError, GatewayError, TransportError, ValidationError, type AgentEvent } from '../../src/index.js';
import {
  Follower,
  OriginPolicy,
  authenticateRequest,
  fromWebRequest,
  parseJsonBody,
  problemOf,
  resolveFrontEndOptions,
  tokenFrom,
  valueExceedsDepth,
  type AuthRequest,
} from '../../src/gateway/index.js';
import { parseStreamRequest } from '../../src/gateway/sse/request.js';
import { eventBlock } from '../../src/gateway/sse/wire.js';
import type { EventLog, LogEntry, LogListener, SubscribeResult } from '../../src/transport/types.js';

/** An AuthRequest from a query string and headers, without going through a URL parser's normalisation of the query. */
function view(query: string, headers: Record<string, string> = {}): AuthRequest {
  const url = new URL('http://localhost/events');
  url.search = query;
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method: 'GET', url, headers: { get: (name) => lower.get(name.toLowerCase()) ?? null }, raw: new Request('http://localhost/') };
}

const hostileString = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom('', ' ', '\r\n', '\0', '%00', '%', '..', 'x'.repeat(129), 'x'.repeat(10_000), '💥', 'a:b', 'thread_x_run_1_y'),
);

describe('request parsers (property tests)', () => {
  it('parseStreamRequest: any query and Last-Event-ID yields a valid request or a 400 ValidationError, nothing else', () => {
    fc.assert(
      fc.property(hostileString, fc.option(hostileString), fc.option(hostileString), fc.option(hostileString), (threadId, after, lastEventId, extra) => {
        const params = new URLSearchParams();
        params.set('threadId', threadId);
        if (after !== null) params.set('after', after);
        if (extra !== null) params.append('threadId', extra);
        const headers: Record<string, string> = lastEventId !== null ? { 'Last-Event-ID': lastEventId } : {};
        try {
          const parsed = parseStreamRequest(view(params.toString(), headers));
          expect(parsed.threadId).toMatch(/^[A-Za-z0-9_.:-]{1,128}$/);
          if (parsed.after !== undefined) expect(parsed.after).toMatch(/^[\x21-\x7e]{1,128}$/);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
          expect(['MISSING_THREAD_ID', 'INVALID_THREAD_ID', 'INVALID_CURSOR']).toContain((error as ValidationError).code);
          expect((error as ValidationError).status).toBe(400);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('tokenFrom: any Authorization header and query never throws; a bearer token is trimmed and non-empty', () => {
    fc.assert(
      fc.property(fc.option(hostileString), hostileString, (authorization, query) => {
        const token = tokenFrom(view(`token=${encodeURIComponent(query)}`, authorization === null ? {} : { Authorization: authorization }));
        if (token !== undefined) expect(token.length).toBeGreaterThan(0);
        if (authorization !== null && /^bearer \S/i.test(authorization)) expect(token).toBe(authorization.slice(7).trim());
      }),
      { numRuns: 500 },
    );
  });

  it('fromWebRequest + the origin check: any Origin and Host header is served, refused with 403 or ignored, never thrown', () => {
    const policy = new OriginPolicy(['https://app.example.com'], ['GET']);
    fc.assert(
      fc.property(hostileString, fc.option(fc.string({ maxLength: 100 })), (origin, host) => {
        const headers = new Headers();
        try {
          headers.set('Origin', origin);
          if (host !== null) headers.set('Host', host);
        } catch {
          return; // not a header value a client can send
        }
        const request = fromWebRequest(new Request('http://gw.example.com/events', { headers }))!;
        const check = policy.check(request);
        if (check.ok) {
          const allowOrigin = check.headers['Access-Control-Allow-Origin'];
          if (allowOrigin !== undefined) expect(allowOrigin).toBe('https://app.example.com');
        } else {
          expect([check.error.code, check.error.status]).toEqual(['ORIGIN_FORBIDDEN', 403]);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('the origin check matches list entries exactly: a string that slipped past validation allows nothing, never a substring (f03)', () => {
    const check = (allowed: unknown, origin: string) =>
      new OriginPolicy(allowed as never, ['POST']).check(fromWebRequest(new Request('http://api.example.com/answer', { headers: { Origin: origin } }))!);
    for (const origin of ['https://app.example.co', 'https://app.example.com', 'https://app', 'app.example.com']) {
      expect(check('https://app.example.com', origin)).toMatchObject({ ok: false, error: { code: 'ORIGIN_FORBIDDEN' } });
    }
    expect(check(['https://app.example.com'], 'https://app.example.co')).toMatchObject({ ok: false });
    expect(check(['https://app.example.com'], 'https://app.example.com')).toMatchObject({ ok: true, headers: { 'Access-Control-Allow-Origin': 'https://app.example.com' } });
  });

  const deepJson = fc
    .tuple(fc.integer({ min: 0, max: 8_000 }), fc.constantFrom('[', '{"k":'), fc.boolean())
    .map(([depth, open, closed]) => open.repeat(depth) + '0' + (closed ? (open === '[' ? ']' : '}').repeat(depth) : ''));

  it('parseJsonBody: any text (hostile, deep to 8,000 levels, truncated) parses within the depth limit or is a 400 GatewayError; never a RangeError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json({ maxDepth: 20 }), fc.string({ maxLength: 500 }), deepJson), fc.integer({ min: 1, max: 100 }), (text, maxDepth) => {
        try {
          const value = parseJsonBody(text, maxDepth);
          expect(valueExceedsDepth(value, maxDepth)).toBe(false);
        } catch (error) {
          expect(error).toBeInstanceOf(GatewayError);
          expect(['INVALID_JSON', 'BODY_TOO_DEEP']).toContain((error as GatewayError).code);
          expect((error as GatewayError).status).toBe(400);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('valueExceedsDepth: matches the nesting of any value, including cycles, without recursion', () => {
    const nest = (depth: number): unknown => {
      let value: unknown = 1;
      for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { v: value };
      return value;
    };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 1, max: 200 }), (depth, max) => {
        expect(valueExceedsDepth(nest(depth), max)).toBe(depth > max);
      }),
      { numRuns: 100 },
    );
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(valueExceedsDepth(cycle, 64)).toBe(true);
  });

  it('eventBlock: any cursor and event type yields one SSE message (no line break can split it) or a ValidationError', () => {
    const event = { v: 1, id: 'e1', type: 'agent_thinking', runId: 'r', threadId: 't', userId: 'u', agent: 'a', seq: 1, ts: '2026-01-01T00:00:00.000Z', data: { text: 'x\r\ny' } };
    fc.assert(
      fc.property(hostileString, hostileString, fc.anything({ withBigInt: true, maxDepth: 4 }), (cursor, type, data) => {
        // No `json`: this checks what eventBlock does with an entry whose event it must serialize itself.
        const entry = { cursor, event: { ...event, type, data } as unknown as AgentEvent } as LogEntry;
        let block: string;
        try {
          block = eventBlock(entry);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
          return;
        }
        expect(block.endsWith('\n\n')).toBe(true);
        const lines = block.slice(0, -2).split(/\r\n|\r|\n/);
        expect(lines.map((line) => line.split(':')[0])).toEqual(['id', 'event', 'data']);
      }),
      { numRuns: 400 },
    );
  });
});

describe('authenticateRequest', () => {
  const request = view('threadId=t1');

  it('whatever the hook returns or throws, the outcome is a valid principal or an AuthError with a client-safe message', async () => {
    await fc.assert(
      fc.asyncProperty(fc.anything({ withBigInt: true, withNullPrototype: true }), fc.boolean(), async (value, throws) => {
        const reported: unknown[] = [];
        try {
          const principal = await authenticateRequest(
            () => {
              if (throws) throw value;
              return value as never;
            },
            request,
            { timeoutMs: 1_000, report: (error) => reported.push(error) },
          );
          expect(typeof principal.userId).toBe('string');
          expect(principal.userId.length).toBeGreaterThanOrEqual(1);
          expect(principal.userId.length).toBeLessThanOrEqual(256);
        } catch (error) {
          expect(error).toBeInstanceOf(AuthError);
          if (!(throws && value instanceof AuthError)) {
            expect(['AUTH_FAILED', 'TOKEN_EXPIRED']).toContain((error as AuthError).code);
          }
          if (throws && !(value instanceof AuthError)) {
            expect((error as AuthError).message).toBe('Authentication failed: missing or invalid credentials');
            expect(reported).toEqual([value]);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('problemOf: the one HTTP error answer', () => {
  it('takes the status from the catalog; only client-safe classes keep their message; unknown errors are INTERNAL_ERROR', () => {
    expect(problemOf(new GatewayError('TOO_MANY_RUNS', 'slow down', { headers: { 'Retry-After': '5' } }))).toEqual({
      status: 429,
      headers: { 'Retry-After': '5' },
      body: { error: { code: 'TOO_MANY_RUNS', message: 'slow down' } },
    });
    expect(problemOf(new ValidationError('bad id', { code: 'INVALID_THREAD_ID', field: 'threadId' })).body).toEqual({
      error: { code: 'INVALID_THREAD_ID', message: 'bad id', field: 'threadId' },
    });
    const internal = problemOf(new Error('ECONNREFUSED redis://:secret@10.0.0.1'));
    expect([internal.status, internal.body.error.code, JSON.stringify(internal)]).toEqual([500, 'INTERNAL_ERROR', expect.not.stringContaining('secret')]);
    const transport = problemOf(new TransportError('WRONGTYPE at key agentwire:secret-tenant', { code: 'REDIS_ERROR' }));
    expect(transport.body.error.message).not.toContain('secret');
  });
});

describe('options vocabulary', () => {
  const authenticate = () => null;
  it('resolves the shared defaults and names the bad option', () => {
    const resolved = resolveFrontEndOptions({ authenticate }, { name: 'Test', heartbeatIntervalMs: 15_000, closeTimeoutMs: 1_000 });
    expect(resolved).toMatchObject({
      authTimeoutMs: 10_000,
      maxConnectionsPerUser: 3,
      maxConnections: 10_000,
      userLimitPolicy: 'close-oldest',
      heartbeatIntervalMs: 15_000,
      closeTimeoutMs: 1_000,
    });
    const bad: Array<[Record<string, unknown>, string]> = [
      [{}, 'authenticate'],
      [{ authenticate, authTimeoutMs: 0 }, 'authTimeoutMs'],
      [{ authenticate, maxConnections: Infinity }, 'maxConnections'],
      [{ authenticate, maxConnectionsPerUser: 1.5 }, 'maxConnectionsPerUser'],
      [{ authenticate, heartbeatIntervalMs: -1 }, 'heartbeatIntervalMs'],
      [{ authenticate, userLimitPolicy: 'newest' }, 'userLimitPolicy'],
      [{ authenticate, allowedOrigins: ['app.example.com'] }, 'allowedOrigins'],
      [{ authenticate, onError: 'log' }, 'onError'],
    ];
    for (const [options, field] of bad) {
      let thrown: unknown;
      try {
        resolveFrontEndOptions(options as never, { name: 'Test', heartbeatIntervalMs: 0, closeTimeoutMs: 0 });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ValidationError);
      expect([(thrown as ValidationError).code, (thrown as ValidationError).field]).toEqual(['INVALID_OPTION', field]);
    }
  });
});

describe('Follower', () => {
  const entry = (n: number, userId = 'alice', threadId = 't1'): LogEntry =>
    ({
      cursor: `c:${n}`,
      event: { id: `e${n}`, userId, threadId, type: 'agent_thinking', seq: n, data: { text: 'x' } } as unknown as AgentEvent,
    }) as LogEntry;

  /** A log whose subscribe answers when the test says, delivering live entries meanwhile. */
  function slowLog() {
    let listener!: LogListener;
    let answer!: (result: SubscribeResult) => void;
    const log: EventLog = {
      ownerOf: async () => 'alice',
      subscribe: (_request, l) => {
        listener = l;
        return new Promise((resolve) => (answer = resolve));
      },
    };
    return { log, live: (...entries: LogEntry[]) => listener.onEntries(entries), answer: (result: SubscribeResult) => answer(result) };
  }

  const drain = (follower: Follower) => {
    const out: string[] = [];
    for (let e = follower.next(); e; e = follower.next()) out.push(e.event.id);
    return out;
  };

  it('replay first, then live entries held during subscribe (deduped by id), then live; foreign entries withheld', async () => {
    const { log, live, answer } = slowLog();
    const drops: string[] = [];
    let readable = 0;
    const follower = new Follower(
      { userId: 'alice', threadId: 't1' },
      { maxQueuedEntries: 100, maxQueuedChars: 1e6, readable: () => readable++, ended: () => undefined, isolationDrop: (e) => drops.push(e.event.id) },
    );
    const started = follower.start(log);
    live(entry(3), entry(4), entry(99, 'mallory'), entry(98, 'alice', 't2'));
    answer({ status: 'subscribed', replay: [entry(1), entry(2), entry(3)], cursor: 'c:3', subscription: { close: () => undefined } });
    expect(await started).toEqual({ status: 'following', cursor: 'c:3', replayed: 3 });
    expect(readable).toBe(0);
    live(entry(5));
    expect(readable).toBe(1);
    expect(drain(follower)).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);
    expect(drops).toEqual(['e99', 'e98']);
  });

  it('with a runId, follows that run only (other runs of the thread are skipped, not counted as drops)', async () => {
    const { log, live, answer } = slowLog();
    const drops: string[] = [];
    const ofRun = (n: number, runId: string) => ({ ...entry(n), event: { ...entry(n).event, runId } }) as LogEntry;
    const follower = new Follower(
      { userId: 'alice', threadId: 't1', runId: 'r2' },
      { maxQueuedEntries: 1, maxQueuedChars: 1e6, readable: () => undefined, ended: () => undefined, isolationDrop: (e) => drops.push(e.event.id) },
    );
    const started = follower.start(log);
    answer({ status: 'subscribed', replay: [ofRun(1, 'r1'), ofRun(2, 'r2'), ofRun(3, 'r1')], cursor: 'c:3', subscription: { close: () => undefined } });
    expect(await started).toMatchObject({ status: 'following', replayed: 1 });
    live(ofRun(4, 'r1'), ofRun(5, 'r1'), ofRun(6, 'r2'));
    expect(drain(follower)).toEqual(['e2', 'e6']);
    expect(drops).toEqual([]);
  });

  it('bounds what it holds: too many live entries during subscribe, or not taken after, end it with overflow', async () => {
    const { log, live, answer } = slowLog();
    let closed = 0;
    const early = new Follower({ userId: 'alice', threadId: 't1' }, { maxQueuedEntries: 2, maxQueuedChars: 1e6, readable: () => undefined, ended: () => undefined });
    const started = early.start(log);
    live(entry(1), entry(2), entry(3));
    answer({ status: 'subscribed', replay: [], cursor: null, subscription: { close: () => void closed++ } });
    expect(await started).toEqual({ status: 'ended', reason: 'overflow' });
    expect(closed).toBe(1);

    const second = slowLog();
    const ended: string[] = [];
    const late = new Follower({ userId: 'alice', threadId: 't1' }, { maxQueuedEntries: 2, maxQueuedChars: 1e6, readable: () => undefined, ended: (why) => ended.push(why) });
    const lateStarted = late.start(second.log);
    second.answer({ status: 'subscribed', replay: [entry(1), entry(2), entry(3)], cursor: 'c:3', subscription: { close: () => undefined } });
    await lateStarted;
    second.live(entry(4), entry(5)); // the replay does not count toward the bound
    expect(ended).toEqual([]);
    second.live(entry(6));
    expect(ended).toEqual(['overflow']);
    expect(late.next()).toBeUndefined();
  });

  it('surfaces history_gap and maps log refusals to THREAD_FORBIDDEN / SUBSCRIBE_FAILED', async () => {
    const gap = { threadId: 't1', requested: 'x', reason: 'unknown_cursor' as const, message: 'm' };
    const options = { maxQueuedEntries: 1, maxQueuedChars: 1, readable: () => undefined, ended: () => undefined };
    const gapLog: EventLog = { ownerOf: async () => undefined, subscribe: async () => ({ status: 'history_gap', gap }) };
    expect(await new Follower({ userId: 'alice', threadId: 't1', after: 'x' }, options).start(gapLog)).toEqual({ status: 'history_gap', gap });
    const refusing: EventLog = { ownerOf: async () => 'bob', subscribe: async () => Promise.reject(new AuthError('no', { code: 'THREAD_FORBIDDEN' })) };
    await expect(new Follower({ userId: 'alice', threadId: 't1' }, options).start(refusing)).rejects.toMatchObject({ code: 'THREAD_FORBIDDEN', status: 403 });
    const failing: EventLog = { ownerOf: async () => undefined, subscribe: async () => Promise.reject(new Error('redis down')) };
    await expect(new Follower({ userId: 'alice', threadId: 't1' }, options).start(failing)).rejects.toMatchObject({ code: 'SUBSCRIBE_FAILED', status: 503 });
  });
});
