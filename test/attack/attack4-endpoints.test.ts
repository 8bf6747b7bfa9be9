/**
 * Outside attacks (round 4) on the HTTP endpoints: RunsHandler's `agents` option (F7) and the
 * AnswerEndpoint's code for an answer of the wrong shape (F8).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport, tokenFrom, type Authenticate } from '../../src/index.js';
import { RunsHandler } from '../../src/gateway/runs/index.js';
import { MemoryRunQueue } from '../../src/runs/index.js';
import { AnswerEndpoint } from '../../src/gateway/sse/index.js';
import { BankAgent, pendingOf } from '../helpers/interactive.js';
import { until } from '../helpers/wait.js';
import { listenHttp } from '../helpers/http-listen.js';

const authenticate: Authenticate = (req) => {
  const token = tokenFrom(req);
  return token ? { userId: token } : null;
};

const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

const listen = (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> => listenHttp(handler, stops);

const post = (url: string, user: string, body: unknown) =>
  fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${user}` } });

describe('attack F7: RunsHandler option agents', () => {
  it('refuses a string, an empty list, and non-names with INVALID_OPTION naming agents; a list of names still limits POST /runs', async () => {
    const queue = new MemoryRunQueue();
    stops.push(() => queue.close({ timeoutMs: 10 }));
    const refused = (agents: unknown) => {
      try {
        new RunsHandler({ queue, authenticate, agents: agents as string[] });
        return undefined;
      } catch (error) {
        return error;
      }
    };
    for (const agents of ['research', [], [''], ['a'.repeat(129)], ['research', 7], null, new Set(['research']), { 0: 'research', length: 1 }]) {
      expect(refused(agents), `agents ${String(agents)}`).toMatchObject({ name: 'ValidationError', code: 'INVALID_OPTION', field: 'agents' });
    }
    expect(String((refused('research') as Error).message)).toContain('RunsHandler option agents must be a non-empty array');
    expect(refused(undefined)).toBeUndefined();
    const handler = new RunsHandler({ queue, authenticate, agents: ['research'] });
    const base = await listen((req, res) => void handler.handle(req, res).then((handled) => handled || res.writeHead(404).end()));
    expect((await post(`${base}/runs`, 'u1', { agent: 'r', threadId: 't-r' })).status).toBe(400);
    const ok = await post(`${base}/runs`, 'u1', { agent: 'research', threadId: 't-research' });
    expect(ok.status).toBe(202);
  });
});

describe('attack F8: AnswerEndpoint codes', () => {
  it('a reason over 1,024 characters (or approved not a boolean) is 400 ANSWER_INVALID, as the log answers; a malformed address stays INVALID_REQUEST; nothing appended', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const bank = new BankAgent({ bridge, approvalTimeoutMs: 20_000 });
    const running = bank.run({ transfer: 500 }, { userId: 'alice', threadId: 'answers' });
    stops.push(async () => {
      await running;
      await bridge.close();
    });
    await until(() => pendingOf(transport.read('answers', 'alice')) !== undefined, 'the pending approval');
    const pending = pendingOf(transport.read('answers', 'alice'))!;
    const answers = new AnswerEndpoint({ authenticate, log: transport });
    const base = await listen((req, res) => void answers.node(req, res));
    const body = { threadId: 'answers', runId: pending.runId, requestId: pending.requestId };
    const code = async (answer: Record<string, unknown>) => {
      const response = await post(`${base}/answer`, 'alice', { ...body, ...answer });
      return { status: response.status, ...((await response.json()) as { error?: { code: string; field?: string } }).error };
    };
    expect(await code({ approved: true, reason: 'x'.repeat(1025) })).toMatchObject({ status: 400, code: 'ANSWER_INVALID', field: 'reason' });
    expect(await code({ approved: 'yes' })).toMatchObject({ status: 400, code: 'ANSWER_INVALID', field: 'approved' });
    expect(await code({})).toMatchObject({ status: 400, code: 'ANSWER_INVALID', field: 'approved' });
    // The log refuses the same answer with the same code.
    await expect(transport.answerRequest({ ...body, userId: 'alice', approved: true, reason: 'x'.repeat(1025) })).rejects.toMatchObject({ code: 'ANSWER_INVALID' });
    expect(await code({ requestId: '', approved: true })).toMatchObject({ status: 400, code: 'INVALID_REQUEST', field: 'requestId' });
    expect(transport.read('answers', 'alice').some((event) => event.type === 'user_answered')).toBe(false);
    expect(await code({ approved: false, reason: 'x'.repeat(1024) })).toMatchObject({ status: 200 });
    expect((await running).status).toBe('succeeded');
  });
});
