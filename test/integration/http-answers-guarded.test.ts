/**
 * HTTP answers that are not JSON (sixth attack round, f4): a `RunQueue` or an answer log of your
 * own may hand back a value JSON cannot write (a BigInt, a cycle, a throwing `toJSON`) or a run id
 * node refuses as a header. The answer is 500 `INTERNAL_ERROR` with the contract's error body, the
 * error goes to `onError`, the node handler's promise resolves (no unhandled rejection, the
 * process keeps serving) and the next request is served. Real servers on loopback and the web
 * handlers with real `Request`s; assertions on what the client received.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { tokenFrom, type Authenticate } from '../../src/index.js';
import { AnswerEndpoint, type ErrorContext } from '../../src/gateway/index.js';
import { RunsHandler } from '../../src/gateway/runs/index.js';
import type { RunInfo, RunQueue } from '../../src/runs/index.js';
import type { AnswerLog } from '../../src/transport/interaction.js';
import { listenHttp } from '../helpers/http-listen.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const authenticate: Authenticate = (req) => {
  const token = tokenFrom(req);
  return token ? { userId: token } : null;
};

const cycle = (): Record<string, unknown> => {
  const value: Record<string, unknown> = {};
  value.self = value;
  return value;
};

const HOSTILE: Array<[string, () => unknown]> = [
  ['a BigInt', () => 10n],
  ['a cycle', cycle],
  ['a throwing toJSON', () => ({ toJSON: () => { throw new Error('toJSON secret'); } })],
];

const RUN_ID = 'thread_t_run_1_aaaaaaaaaaaa';

/** A queue of your own (the `RunQueue` contract) whose status carries `waitMs: hostile()` for alice's run. */
function hostileQueue(hostile: () => unknown, submitted: () => string = () => RUN_ID): RunQueue {
  return {
    submit: async () => submitted(),
    status: async (runId) => ({ runId, threadId: 't', userId: 'alice', agent: 'steps', state: 'running', queuedAt: 1, cancelRequested: false, waitMs: hostile() }) as unknown as RunInfo,
    cancel: async () => 'requested',
    stats: async () => ({}) as never,
    serve: () => {
      throw new Error('not a worker');
    },
    close: async () => undefined,
  };
}

interface Reported {
  error: unknown;
  context: ErrorContext;
}

/** Serves the runs handler's node handler, keeping every `handle()` promise to check it resolved. */
async function serveNode(handler: RunsHandler): Promise<{ base: string; handled: Array<Promise<boolean>> }> {
  const handled: Array<Promise<boolean>> = [];
  const base = await listenHttp((req: IncomingMessage, res: ServerResponse) => {
    const promise = handler.handle(req, res);
    handled.push(promise);
    void promise.then(
      (ours) => {
        if (!ours) res.writeHead(404).end();
      },
      () => undefined,
    );
  }, cleanups);
  return { base, handled };
}

const body = async (res: Response): Promise<{ error: { code: string; message: string } }> => (await res.json()) as { error: { code: string; message: string } };

describe.each(HOSTILE)('RunsHandler: a queue whose status holds %s', (_name, hostile) => {
  it('node handler: 500 INTERNAL_ERROR with the error body, onError told, handle() resolves, the next request is served', async () => {
    const reported: Reported[] = [];
    const handler = new RunsHandler({ queue: hostileQueue(hostile), authenticate, onError: (error, context) => reported.push({ error, context }) });
    const { base, handled } = await serveNode(handler);
    const res = await fetch(`${base}/runs/${RUN_ID}`, { headers: { Authorization: 'Bearer alice' } });
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await body(res)).toEqual({ error: { code: 'INTERNAL_ERROR', message: 'The answer could not be written' } });
    expect(reported.map((r) => r.context)).toEqual([{ surface: 'runs', stage: 'respond' }]);
    expect(reported[0]!.error).toBeInstanceOf(Error);
    expect(await Promise.all(handled)).toEqual([true]);

    // The process still serves: another user's request, and a submit.
    const bob = await fetch(`${base}/runs/${RUN_ID}`, { headers: { Authorization: 'Bearer bob' } });
    expect([bob.status, (await body(bob)).error.code]).toEqual([403, 'THREAD_FORBIDDEN']);
    const submit = await fetch(`${base}/runs`, {
      method: 'POST',
      headers: { Authorization: 'Bearer alice', 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent: 'steps', threadId: 't' }),
    });
    expect([submit.status, await submit.json()]).toEqual([202, { runId: RUN_ID, threadId: 't', state: 'queued' }]);
    expect(await Promise.all(handled)).toEqual([true, true, true]);
    expect((await handler.stats()).refused).toMatchObject({ internal_error: 1 });
  });

  it('web handler: fetch() resolves with 500 INTERNAL_ERROR, onError told, the next request is served', async () => {
    const reported: Reported[] = [];
    const handler = new RunsHandler({ queue: hostileQueue(hostile), authenticate, onError: (error, context) => reported.push({ error, context }) });
    const res = await handler.fetch(new Request(`http://runs.test/runs/${RUN_ID}`, { headers: { Authorization: 'Bearer alice', Origin: 'http://runs.test' } }));
    expect(res.status).toBe(500);
    expect(await body(res)).toEqual({ error: { code: 'INTERNAL_ERROR', message: 'The answer could not be written' } });
    expect(reported.map((r) => r.context.stage)).toEqual(['respond']);
    const next = await handler.fetch(new Request(`http://runs.test/runs/${RUN_ID}/cancel`, { method: 'POST', headers: { Authorization: 'Bearer alice' } }));
    expect([next.status, await next.json()]).toEqual([202, { runId: RUN_ID, result: 'requested' }]);
  });
});

describe('RunsHandler: a queue whose submit answers a run id that is no header value', () => {
  it.each([
    ['a run id with a line break', () => 'thread_t_run_1_a\r\nSet-Cookie: x=1'],
    ['not a string', () => 42 as unknown as string],
  ])('%s: 500 INTERNAL_ERROR on both handlers, nothing else written, the process serves on', async (_name, submitted) => {
    const reported: Reported[] = [];
    const handler = new RunsHandler({ queue: hostileQueue(() => 1, submitted), authenticate, onError: (error, context) => reported.push({ error, context }) });
    const { base, handled } = await serveNode(handler);
    const post = { method: 'POST', headers: { Authorization: 'Bearer alice', 'Content-Type': 'application/json' }, body: JSON.stringify({ agent: 'steps', threadId: 't' }) };
    const res = await fetch(`${base}/runs`, post);
    expect([res.status, (await body(res)).error.code]).toEqual([500, 'INTERNAL_ERROR']);
    expect(res.headers.get('set-cookie')).toBeNull();
    const web = await handler.fetch(new Request('http://runs.test/runs', post));
    expect([web.status, (await body(web)).error.code]).toEqual([500, 'INTERNAL_ERROR']);
    expect(reported).toHaveLength(2);
    const status = await fetch(`${base}/runs/${RUN_ID}`, { headers: { Authorization: 'Bearer alice' } });
    expect(status.status).toBe(200);
    expect(await Promise.all(handled)).toEqual([true, true]);
  });
});

describe.each(HOSTILE)('AnswerEndpoint: a log whose receipt holds %s', (_name, hostile) => {
  it('500 INTERNAL_ERROR on the node and the web handler, onError told, the next answer is served', async () => {
    const reported: Reported[] = [];
    let calls = 0;
    const log: AnswerLog = {
      answerRequest: async () => {
        calls++;
        const cursor = calls === 1 ? hostile() : 'c-2';
        return { cursor, event: { id: `e-${calls}` } } as never;
      },
    };
    const endpoint = new AnswerEndpoint({ log, authenticate, onError: (error, context) => reported.push({ error, context }) });
    const base = await listenHttp((req, res) => void endpoint.node(req, res), cleanups);
    const answer = { threadId: 't', runId: RUN_ID, requestId: 'r1', approved: true };
    const post = { method: 'POST', headers: { Authorization: 'Bearer alice', 'Content-Type': 'application/json' }, body: JSON.stringify(answer) };
    const res = await fetch(`${base}/answers`, post);
    expect(res.status).toBe(500);
    expect(await body(res)).toEqual({ error: { code: 'INTERNAL_ERROR', message: 'The answer could not be written' } });
    expect(reported.map((r) => r.context)).toEqual([{ surface: 'answers', stage: 'respond' }]);
    const next = await fetch(`${base}/answers`, post);
    expect([next.status, await next.json()]).toEqual([200, { requestId: 'r1', cursor: 'c-2', eventId: 'e-2' }]);

    calls = 0;
    const web = await endpoint.web(new Request('http://answers.test/answers', post));
    expect([web.status, (await body(web)).error.code]).toEqual([500, 'INTERNAL_ERROR']);
    expect(reported).toHaveLength(2);
  });
});
