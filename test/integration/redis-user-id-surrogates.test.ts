/**
 * Attack 6, f3 / f3b / f3c on real Redis: user ids that differ only in lone surrogates
 * (`alice\ud800`, `alice\udbff`) were stored by Redis as `alice\ufffd`, so they shared one owner
 * there: a worker of `alice\udbff` wrote into `alice\ud800`'s thread, `alice\ufffd` followed it,
 * and on BullMQ + RunsHandler read the run's status and cancelled it. Now a user id is well-formed
 * UTF-16 wherever one enters: the intruders are refused before anything reaches Redis, and the
 * well-formed `alice\ufffd` keeps its thread and its run to itself. Asserted on what the SSE client
 * and the run endpoints' caller received, and on what the Redis stream holds.
 */
import { nanoid } from 'nanoid';
import { afterAll, afterEach, expect, it } from 'vitest';
import {
  AgentBridge,
  BaseAgent,
  ValidationError,
  generateRunId,
  validateLifecycle,
  type AgentEvent,
  type AuthRequest,
  type RunContext,
} from '../../src/index.js';
import { tokenFrom } from '../../src/gateway/index.js';
import { RunsHandler } from '../../src/gateway/runs/index.js';
import { SseGateway } from '../../src/gateway/sse/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisEventLog, RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { RedisKeys } from '../../src/transport/redis/keys.js';
import { REDIS_URL, deletePrefix, describeWithRedis, probeRedis, rawClient } from '../helpers/redis-env.js';
import { SseTestClient } from '../helpers/sse-client.js';

const availability = await probeRedis();

/** The victim: a well-formed id (U+FFFD is a character like any other). */
const VICTIM = 'alice\ufffd';
/** The intruders: each encodes to the victim's bytes in UTF-8 (a lone surrogate becomes U+FFFD). */
const HIGH = 'alice\ud800';
const LOW = 'alice\udbff';
const USERS: Record<string, string> = { victim: VICTIM, high: HIGH, low: LOW };
const authenticate = (request: AuthRequest) => {
  const user = USERS[tokenFrom(request) ?? ''];
  return user === undefined ? null : { userId: user };
};

class Secretive extends BaseAgent<{ who: string }, string> {
  protected async execute({ who }: { who: string }, _ctx: RunContext): Promise<string> {
    await this.think(`SECRET of ${who}`);
    return 'ok';
  }
}

function codeOf(error: unknown): string {
  return error instanceof ValidationError ? `ValidationError:${error.code}` : `other:${String(error)}`;
}

describeWithRedis('user ids with lone surrogates never share an owner in Redis (attack 6, f3)', availability, () => {
  const prefixes: string[] = [];
  const closers: Array<() => Promise<unknown> | unknown> = [];
  const newPrefix = () => {
    const prefix = `aw-ids-${nanoid(8)}:`;
    prefixes.push(prefix);
    return prefix;
  };
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  afterAll(async () => {
    for (const prefix of prefixes) await deletePrefix(prefix);
  });

  it("the intruders' runs, forged events and subscriptions are refused; the victim's SSE client gets its own events only and the stream holds only the victim", async () => {
    const prefix = newPrefix();
    const victimTransport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix: prefix });
    const intruderTransport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix: prefix }); // another process's worker
    const victimAgent = new Secretive({ name: 'secretive', bridge: new AgentBridge({ transport: victimTransport }) });
    const intruderAgent = new Secretive({ name: 'secretive', bridge: new AgentBridge({ transport: intruderTransport }) });
    const log = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix, blockMs: 200 });
    const reported: unknown[] = [];
    const sse = new SseGateway({ log, authenticate, onError: (error) => reported.push(error) });
    const { port } = await sse.listen(0);
    closers.push(
      () => victimTransport.close(),
      () => intruderTransport.close(),
      () => log.close(),
      () => sse.close(),
    );
    const url = (token: string) => `http://127.0.0.1:${port}/events?threadId=victim-thread&token=${token}`;

    // The original victim of the report, alice\ud800, can no longer own a thread at all: refused before any event.
    const surrogateFirst = await victimAgent.run({ who: 'high' }, { userId: HIGH, threadId: 'surrogate-thread' }).catch((error: unknown) => error);
    expect(codeOf(surrogateFirst)).toBe('ValidationError:INVALID_USER_ID');

    const first = await victimAgent.run({ who: 'victim' }, { userId: VICTIM, threadId: 'victim-thread' });
    expect(first.status).toBe('succeeded');
    const victim = await SseTestClient.open(url('victim'));
    closers.push(() => victim.close());
    expect(victim.status).toBe(200);
    await victim.waitFor((client) => client.events.filter((e) => e.type === 'agent_completed').length === 1, "the victim's first run");

    // The intruders' SSE streams: the generic 401, the reason reported to onError.
    for (const token of ['high', 'low']) {
      const intruder = await SseTestClient.open(url(token));
      closers.push(() => intruder.close());
      expect(intruder.status).toBe(401);
      await intruder.ended;
      expect(intruder.error.code).toBe('AUTH_FAILED');
      expect(intruder.raw).not.toContain('SECRET');
    }
    expect(reported.map(codeOf)).toEqual(['ValidationError:INVALID_USER_ID', 'ValidationError:INVALID_USER_ID']);

    // A worker of each intruder runs into the victim's thread: refused before any event.
    for (const userId of [LOW, HIGH]) {
      const refused = await intruderAgent.run({ who: 'intruder' }, { userId, threadId: 'victim-thread' }).catch((error: unknown) => error);
      expect(codeOf(refused)).toBe('ValidationError:INVALID_USER_ID');
    }
    // An integrator's forged event straight to the transport: refused, not appended.
    const forged: AgentEvent = {
      v: 1,
      id: nanoid(),
      type: 'agent_started',
      runId: generateRunId('victim-thread'),
      threadId: 'victim-thread',
      userId: LOW,
      agent: 'forger',
      seq: 1,
      ts: Date.now(),
      data: { metadata: {} },
    };
    const sent = await intruderTransport.send(forged).then(
      () => 'appended',
      (error: unknown) => error,
    );
    expect(sent).toMatchObject({ name: 'TransportError', code: 'TRANSPORT_REFUSED', cause: { code: 'INVALID_USER_ID' } });
    // Following the victim's thread as an intruder, straight on the log: refused.
    const followed = await log.subscribe({ userId: LOW, threadId: 'victim-thread' }, { onEntries: () => undefined }).catch((error: unknown) => error);
    expect(codeOf(followed)).toBe('ValidationError:INVALID_USER_ID');

    // The victim still owns its thread: a second run goes through and its open stream gets it.
    const second = await victimAgent.run({ who: 'victim again' }, { userId: VICTIM, threadId: 'victim-thread' });
    expect(second.status).toBe('succeeded');
    await victim.waitFor((client) => client.events.filter((e) => e.type === 'agent_completed').length === 2, "the victim's second run");
    const received = victim.events;
    expect(new Set(received.map((e) => e.userId))).toEqual(new Set([VICTIM]));
    expect(received.filter((e) => e.type === 'agent_thinking').map((e) => (e.data as { text: string }).text)).toEqual(['SECRET of victim', 'SECRET of victim again']);
    expect(validateLifecycle(received).ok).toBe(true);

    // What Redis holds: the victim's events only, and nothing of the refused surrogate owner.
    const keys = new RedisKeys(prefix);
    const redis = await rawClient();
    closers.push(() => redis.quit());
    const entries = (await redis.xRange(keys.stream('victim-thread'), '-', '+')) ?? [];
    const users = entries.flatMap((entry) => Object.values(entry.message).filter((v) => v.startsWith('{')).map((v) => (JSON.parse(v) as AgentEvent).userId));
    expect(users.length).toBe(received.length);
    expect(new Set(users)).toEqual(new Set([VICTIM]));
    expect(await redis.exists(keys.stream('surrogate-thread'))).toBe(0);
  });

  it("on BullMQ + RunsHandler the intruders neither read the victim's run status nor cancel it, nor submit or cancel through the queue", async () => {
    const prefix = newPrefix();
    const queue = new BullMQRunQueue({ url: REDIS_URL, keyPrefix: prefix, leaseMs: 2_000 });
    const reported: unknown[] = [];
    const runs = new RunsHandler({ queue, authenticate, onError: (error) => reported.push(error) });
    closers.push(
      () => queue.close(),
      () => runs.close(),
    );
    const call = async (token: string, method: string, path: string, body?: unknown) => {
      const response = await runs.fetch(
        new Request(`http://127.0.0.1${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          ...(body !== undefined && { body: JSON.stringify(body) }),
        }),
      );
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };

    const submitted = await call('victim', 'POST', '/runs', { agent: 'research', threadId: 'victim-thread', input: { q: 'private question' } });
    expect(submitted.status).toBeLessThan(300);
    const runId = submitted.body.runId as string;
    expect(typeof runId).toBe('string');

    for (const token of ['high', 'low']) {
      const status = await call(token, 'GET', `/runs/${runId}`);
      expect(status).toEqual({ status: 401, body: { error: expect.objectContaining({ code: 'AUTH_FAILED' }) } });
      expect(JSON.stringify(status.body)).not.toContain('private question');
      const cancel = await call(token, 'POST', `/runs/${runId}/cancel`);
      expect(cancel).toEqual({ status: 401, body: { error: expect.objectContaining({ code: 'AUTH_FAILED' }) } });
      const submit = await call(token, 'POST', '/runs', { agent: 'research', threadId: 'victim-thread', input: {} });
      expect(submit.status).toBe(401);
    }
    expect(reported.length).toBe(6);
    expect(reported.every((error) => codeOf(error) === 'ValidationError:INVALID_USER_ID')).toBe(true);

    // The queue itself, called by an integrator with such an id: refused before any script runs.
    expect(codeOf(await queue.cancel(runId, { userId: LOW }).catch((error: unknown) => error))).toBe('ValidationError:INVALID_USER_ID');
    expect(codeOf(await queue.submit('research', {}, { userId: HIGH, threadId: 'victim-thread' }).catch((error: unknown) => error))).toBe(
      'ValidationError:INVALID_USER_ID',
    );

    // The victim's run is untouched: still queued, no cancel requested, the victim's alone.
    const mine = await call('victim', 'GET', `/runs/${runId}`);
    expect(mine.status).toBe(200);
    expect(mine.body).toMatchObject({ runId, userId: VICTIM, state: 'queued', cancelRequested: false });
    expect(await queue.stats()).toMatchObject({ queued: 1 });
  });
});
