import { request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError, tokenFrom, type Authenticate } from '../../src/index.js';
import {
  RunAdmission,
  fromNodeRequest,
  fromWebRequest,
  resolveBodyOptions,
  resolveRunLimitOptions,
  respondNode,
  respondWeb,
  type AuthRequest,
} from '../../src/gateway/index.js';
import { until } from '../helpers/wait.js';
import { listenHttp } from '../helpers/http-listen.js';

/**
 * Admission of surfaces that start runs (auth → body → validate → run slot), through a reference
 * run endpoint built from the contract only, on a node:http server and in a Hono app on Node.
 * `POST /runs {"threadId"}` admits a run that lasts as long as its response stays open.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const authenticate: Authenticate = (request) => {
  const token = tokenFrom(request);
  return token?.startsWith('tok-') ? { userId: token.slice(4) } : null;
};

function admission() {
  const reported: unknown[] = [];
  const runs = new RunAdmission({
    authenticate,
    authTimeoutMs: 1_000,
    body: resolveBodyOptions({ maxBodyBytes: 64 * 1024, bodyTimeoutMs: 300 }, 'test'),
    runs: resolveRunLimitOptions({ maxRunsPerUser: 2, maxRuns: 5 }, 'test'),
    report: (error) => reported.push(error),
  });
  const parse = (body: unknown) => {
    const threadId = (body as { threadId?: unknown } | null)?.threadId;
    if (typeof threadId !== 'string') throw new ValidationError('threadId is required', { code: 'INVALID_REQUEST', field: 'threadId' });
    return { threadId };
  };
  return { runs, parse, reported };
}

async function nodeEndpoint(): Promise<{ base: string; runs: RunAdmission }> {
  const { runs, parse } = admission();
  const base = await listenHttp((req, res) => {
    void (async () => {
      try {
        const admitted = await runs.admit(fromNodeRequest(req)!, parse);
        res.on('close', admitted.release);
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.write(`started ${admitted.principal.userId} ${admitted.input.threadId}\n`);
      } catch (error) {
        respondNode(res, error);
      }
    })();
  }, cleanups);
  return { base, runs };
}

async function honoEndpoint(): Promise<{ base: string; runs: RunAdmission }> {
  const { runs, parse } = admission();
  const app = new Hono();
  app.post('/runs', async (c) => {
    try {
      const request: AuthRequest = fromWebRequest(c.req.raw)!;
      const admitted = await runs.admit(request, parse);
      const body = new ReadableStream<Uint8Array>({
        start: (controller) => controller.enqueue(new TextEncoder().encode(`started ${admitted.principal.userId} ${admitted.input.threadId}\n`)),
        cancel: () => admitted.release(),
      });
      c.req.raw.signal.addEventListener('abort', () => admitted.release());
      return new Response(body, { status: 200, headers: { 'Content-Type': 'text/plain' } });
    } catch (error) {
      return respondWeb(error);
    }
  });
  let server: ReturnType<typeof serve> | undefined;
  const address = await new Promise<AddressInfo>((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, resolve);
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        const http = server as Server;
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  );
  return { base: `http://127.0.0.1:${address.port}`, runs };
}

interface Answer {
  status: number;
  body: string;
  /** The run's response stays open: this ends it (the run ends, its slot is released). */
  close(): void;
}

/**
 * POSTs `body` (a string, or parts written `partDelayMs` apart; `hold` leaves the body unfinished).
 * Resolves with the status and what arrived first: an error body completely, a run's first line.
 */
function post(url: string, token: string | undefined, body: string | string[], options: { length?: number; hold?: boolean } = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (options.length !== undefined) headers['Content-Length'] = String(options.length);
    const req = httpRequest(url, { method: 'POST', headers, agent: false }, (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      const close = () => res.destroy();
      res.on('data', (chunk: string) => {
        text += chunk;
        if (res.statusCode === 200 && text.includes('\n')) resolve({ status: 200, body: text, close });
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, close }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: text, close }));
    });
    req.on('error', (error) => (options.hold ? undefined : reject(error)));
    for (const part of Array.isArray(body) ? body : [body]) req.write(part);
    if (!options.hold) req.end();
    cleanups.push(() => void req.destroy());
  });
}

const codeOf = (answer: Answer) => (JSON.parse(answer.body) as { error: { code: string } }).error.code;

describe.each([
  ['node', nodeEndpoint],
  ['hono', honoEndpoint],
] as const)('run admission through the %s handler', (_mount, start) => {
  it('body limits: 413 past maxBodyBytes (declared or streamed), 400 BODY_TOO_DEEP at 6,000 levels, 400 INVALID_JSON; the server lives on', async () => {
    const { base } = await start();
    const url = `${base}/runs`;
    const big = JSON.stringify({ threadId: 't1', padding: 'x'.repeat(70_000) });
    const declared = await post(url, 'tok-alice', big);
    expect([declared.status, codeOf(declared)]).toEqual([413, 'BODY_TOO_LARGE']);
    // Chunked, no Content-Length: counted while it streams.
    const streamed = await post(url, 'tok-alice', [big.slice(0, 40_000), big.slice(40_000)], {});
    expect([streamed.status, codeOf(streamed)]).toEqual([413, 'BODY_TOO_LARGE']);

    for (const deep of ['['.repeat(6_000) + ']'.repeat(6_000), '{"a":'.repeat(6_000) + '1' + '}'.repeat(6_000)]) {
      const answer = await post(url, 'tok-alice', deep);
      expect([answer.status, codeOf(answer)]).toEqual([400, 'BODY_TOO_DEEP']);
    }
    for (const bad of ['{nope', '', '   ']) {
      const answer = await post(url, 'tok-alice', bad);
      expect([bad, answer.status, codeOf(answer)]).toEqual([bad, 400, 'INVALID_JSON']);
    }
    const invalid = await post(url, 'tok-alice', '{"thread":1}');
    expect([invalid.status, codeOf(invalid)]).toEqual([400, 'INVALID_REQUEST']);
    const ok = await post(url, 'tok-alice', '{"threadId":"t1"}');
    expect([ok.status, ok.body]).toEqual([200, 'started alice t1\n']);
    ok.close();
  });

  it('runs per user and in total (429 TOO_MANY_RUNS), slots freed when runs end', async () => {
    const { base, runs } = await start();
    const url = `${base}/runs`;
    const a1 = await post(url, 'tok-alice', '{"threadId":"t1"}');
    const a2 = await post(url, 'tok-alice', '{"threadId":"t2"}');
    const a3 = await post(url, 'tok-alice', '{"threadId":"t3"}');
    expect([a1.status, a2.status, a3.status, codeOf(a3)]).toEqual([200, 200, 429, 'TOO_MANY_RUNS']);
    const others = await Promise.all(['bob', 'carol', 'dave'].map((user) => post(url, `tok-${user}`, '{"threadId":"t1"}')));
    expect(others.map((a) => a.status)).toEqual([200, 200, 200]);
    const full = await post(url, 'tok-erin', '{"threadId":"t1"}');
    expect([full.status, codeOf(full)]).toEqual([429, 'TOO_MANY_RUNS']);
    a1.close();
    await until(() => runs.slots.size === 4, 'the ended run to give its slot back');
    const again = await post(url, 'tok-alice', '{"threadId":"t4"}');
    expect(again.status).toBe(200);
    for (const answer of [a2, again, ...others]) answer.close();
  });

  it('a slow body gets 408 BODY_TIMEOUT and never holds a run slot: its user starts runs meanwhile', async () => {
    const { base, runs } = await start();
    const url = `${base}/runs`;
    const unauthorized = await post(url, 'nope', '{"threadId":"t1"}');
    expect(unauthorized.status).toBe(401);
    // Two slow bodies of alice (her run limit is 2), each stalled after a few bytes.
    const slow = [post(url, 'tok-alice', '{"threa', { length: 100, hold: true }), post(url, 'tok-alice', '{"th', { length: 100, hold: true })];
    const runsMeanwhile = [await post(url, 'tok-alice', '{"threadId":"t1"}'), await post(url, 'tok-alice', '{"threadId":"t2"}')];
    expect(runsMeanwhile.map((a) => a.status)).toEqual([200, 200]);
    const timedOut = await Promise.all(slow);
    expect(timedOut.map((a) => [a.status, codeOf(a)])).toEqual([
      [408, 'BODY_TIMEOUT'],
      [408, 'BODY_TIMEOUT'],
    ]);
    expect(runs.slots.size).toBe(2);
    for (const answer of runsMeanwhile) answer.close();
    await until(() => runs.slots.size === 0, 'the runs to end');
  });
});
