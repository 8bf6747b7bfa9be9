/**
 * What the WebSocket gateway does with what it cannot do normally, seen by real clients: a cut
 * (4008) still answers the frames read before it; acks and unsubscribes of threads a connection
 * does not follow reveal nothing; an event log that breaks its contract, a throwing
 * `authenticate` or a throwing `onError` cost at most one answer or one connection, reported
 * through `onError`, never the process or another user.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AuthError, MemoryTransport, TransportError, generateRunId, type AgentEvent, type LogEntry, type LogListener, type SubscribeRequest, type SubscribeResult } from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import type { GatewayErrorContext } from '../../src/transport/websocket/index.js';
import { useCleanup } from '../helpers/cleanup.js';
import { RawClient, authenticate, follow, startGateway, until, type GatewaySetupOptions } from '../helpers/ws-harness.js';

const cleanup = useCleanup();
async function gateway(options: GatewaySetupOptions = {}) {
  const harness = await startGateway(options);
  cleanup.push(() => harness.stop());
  return harness;
}
async function raw(url: string, userId: string): Promise<RawClient> {
  const client = await RawClient.open(url, userId);
  cleanup.push(() => client.ws.terminate());
  return client;
}

/** The status and body an upgrade to `url` was refused with. */
function refusal(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('a socket opened'));
    });
    ws.on('error', () => undefined);
  });
}

/** Appends a finished run of `thoughts` thoughts to the log; returns its events. */
function appendRun(transport: MemoryTransport, userId: string, threadId: string, thoughts: number): AgentEvent[] {
  const emitter = new RunEmitter({ runId: generateRunId(threadId), threadId, userId, agent: 'a' });
  const events: AgentEvent[] = [emitter.emit('agent_started', { metadata: {} }).event];
  for (let i = 0; i < thoughts; i++) events.push(emitter.emit('agent_thinking', { text: `t${i}` }).event);
  events.push(emitter.emit('agent_completed', { status: 'succeeded', result: null, durationMs: 1 }).event);
  for (const event of events) transport.append(event);
  return events;
}

describe('a cut for the frames a client sent', () => {
  it('4008 still answers the subscribes read before it (subscribed and the whole replay), then closes; later frames are not read', async () => {
    const { url, transport, gateway: gw } = await gateway({ rateLimit: { framesPerSecond: 0.001, burst: 5 } });
    const threads = ['h0', 'h1', 'h2', 'h3', 'h4'];
    const stored = threads.map((threadId) => appendRun(transport, 'alice', threadId, 20));
    const alice = await raw(url, 'alice');
    // One message burst: five subscribes within the bucket, then frames past it.
    for (const threadId of threads) alice.subscribe(threadId);
    for (let i = 0; i < 5; i++) alice.subscribe(`late-${i}`);
    expect(await alice.waitForClose()).toMatchObject({ code: 4008 });

    // The close frame is the barrier: everything before it arrived.
    expect(alice.ofType('subscribed').map((f) => [f.threadId, f.replayed])).toEqual(threads.map((threadId) => [threadId, 22]));
    for (const [i, threadId] of threads.entries()) {
      expect(alice.ofType('event').filter((f) => f.threadId === threadId).map((f) => f.event.id)).toEqual(stored[i]!.map((e) => e.id));
    }
    // In order: each thread's `subscribed` before its replay.
    const order = alice.frames.filter((f) => f.type === 'subscribed' || f.type === 'event').map((f) => `${f.type}:${f.threadId}`);
    for (const threadId of threads) expect(order.indexOf(`subscribed:${threadId}`)).toBeLessThan(order.indexOf(`event:${threadId}`));
    expect(alice.frames.some((f) => 'threadId' in f && String(f.threadId).startsWith('late-'))).toBe(false);
    expect(gw.stats()).toMatchObject({ closedRateLimited: 1, subscriptions: 0, connections: 0 });
  });

  it('1008: the error frames of the invalid frames and the answers to the valid ones before them arrive in the order of the frames', async () => {
    const { url, transport } = await gateway({ maxInvalidFrames: 2 });
    appendRun(transport, 'alice', 'h', 3);
    const alice = await raw(url, 'alice');
    alice.subscribe('h');
    alice.send('not json');
    alice.send({ type: 'nope' });
    alice.send('the third invalid frame closes');
    expect(await alice.waitForClose()).toMatchObject({ code: 1008 });
    expect(alice.frames.map((f) => (f.type === 'error' ? f.code : f.type))).toEqual([
      'hello',
      'subscribed',
      'event',
      'event',
      'event',
      'event',
      'event',
      'INVALID_JSON',
      'UNKNOWN_FRAME_TYPE',
    ]);
  });
});

describe('acks and unsubscribes of threads a connection does not follow', () => {
  it('an unsubscribe gets NOT_SUBSCRIBED, the same for another user\'s thread as for one that does not exist; an ack gets nothing; neither touches the owner\'s stream', async () => {
    const { url, transport, agent, gateway: gw } = await gateway();
    const alice = follow(url, 'alice', 'alice-thread');
    cleanup.push(() => alice.client.close());
    await until(() => alice.client.status === 'open', 'alice open');
    await agent.run([{ think: 'private' }], { userId: 'alice', threadId: 'alice-thread' });
    await until(() => alice.events.length === 3, 'alice has her run');
    const realCursor = transport.read('alice-thread', 'alice').length > 0 ? alice.client.cursor! : 'x:1';

    const mallory = await raw(url, 'mallory');
    mallory.send({ type: 'unsubscribe', threadId: 'alice-thread' });
    mallory.send({ type: 'unsubscribe', threadId: 'no-such-thread' });
    mallory.send({ type: 'ack', threadId: 'alice-thread', cursor: realCursor });
    mallory.send({ type: 'ack', threadId: 'no-such-thread', cursor: realCursor });
    // Barrier: answers keep the order of frames, so once this is answered the ones before it were too.
    mallory.subscribe('mallory-thread');
    await mallory.waitFor(() => mallory.ofType('subscribed').length === 1, 'subscribed');

    const answers = mallory.frames.filter((f) => f.type !== 'hello');
    expect(answers).toEqual([
      { type: 'error', code: 'NOT_SUBSCRIBED', message: 'not subscribed to thread "alice-thread"', threadId: 'alice-thread' },
      { type: 'error', code: 'NOT_SUBSCRIBED', message: 'not subscribed to thread "no-such-thread"', threadId: 'no-such-thread' },
      { type: 'subscribed', threadId: 'mallory-thread', cursor: null, replayed: 0 },
    ]);
    expect(gw.stats()).toMatchObject({ acks: 0, acksIgnored: 2 });

    // Alice's own stream went on untouched.
    await agent.run([{ think: 'still private' }], { userId: 'alice', threadId: 'alice-thread' });
    await until(() => alice.events.length === 6, 'alice has her second run');
    expect(alice.events.map((e) => e.id)).toEqual(transport.read('alice-thread', 'alice').map((e) => e.id));
    expect(alice.errors).toEqual([]);
    expect(mallory.events()).toEqual([]);
  });
});

/** A log that breaks its contract on chosen threads (and behaves elsewhere). */
class BrokenLog extends MemoryTransport {
  override async subscribe(request: SubscribeRequest, listener: LogListener): Promise<SubscribeResult> {
    if (request.threadId === 'garbage-answer') return { status: 'subscribed', replay: null } as unknown as SubscribeResult;
    // A log's own refusals may name its internals: the client must get a fixed message (third attack round).
    if (request.threadId === 'secret-refusal') throw new TransportError('connect ECONNREFUSED redis://admin:S3cr3t@10.0.0.5:6379');
    if (request.threadId === 'full-log') throw new TransportError('Too many threads (10) to open a new one: internals', { code: 'TOO_MANY_THREADS', retryable: false });
    const result = await super.subscribe(request, listener);
    if (result.status !== 'subscribed') return result;
    switch (request.threadId) {
      case 'throwing-close':
        return { ...result, subscription: { close: () => { throw new Error('close refuses'); } } };
      case 'bad-entries':
        setImmediate(() => listener.onEntries([undefined, { cursor: 'c', event: null }, 7, { cursor: 'c', event: { userId: 'mallory', threadId: 'bad-entries' } }] as unknown as LogEntry[]));
        return result;
      case 'throwing-cursor': {
        const emitter = new RunEmitter({ runId: generateRunId('throwing-cursor'), threadId: 'throwing-cursor', userId: request.userId, agent: 'a' });
        const event = emitter.emit('agent_started', { metadata: {} }).event;
        const entry = { event, json: JSON.stringify(event), get cursor(): string { throw new Error('cursor refuses'); } };
        setImmediate(() => listener.onEntries([entry]));
        return result;
      }
      default:
        return result;
    }
  }
}

describe('an event log that breaks its contract, hooks that throw', () => {
  it('costs one answer or that one connection (1011), reported through onError; the process and a bystander go on', async () => {
    const reports: Array<{ error: unknown; context: GatewayErrorContext }> = [];
    const log = new BrokenLog();
    cleanup.push(() => log.close());
    const { url, agent, gateway: gw } = await gateway({
      transport: log,
      authenticate: (request) => {
        if (request.url.searchParams.get('token') === 'token-db-down') throw new Error('connect ECONNREFUSED postgres://admin:hunter2@db');
        return authenticate(request);
      },
      onError: (error, context) => {
        reports.push({ error, context });
        throw new Error('the hook itself throws');
      },
    });
    const bystander = follow(url, 'bystander', 'b-thread');
    cleanup.push(() => bystander.client.close());
    await until(() => bystander.client.status === 'open', 'bystander open');
    const eve = await raw(url, 'eve');

    eve.subscribe('garbage-answer');
    await eve.waitFor(() => eve.ofType('error').length === 1, 'an answer');
    expect(eve.ofType('error')[0]).toMatchObject({ code: 'SUBSCRIBE_FAILED', threadId: 'garbage-answer', message: 'could not subscribe to thread "garbage-answer": the event log failed' });
    eve.subscribe('secret-refusal');
    eve.subscribe('full-log');
    await eve.waitFor(() => eve.ofType('error').length === 3, 'two refusals');
    expect(eve.ofType('error').slice(1)).toEqual([
      { type: 'error', code: 'SUBSCRIBE_FAILED', threadId: 'secret-refusal', message: 'could not subscribe to thread "secret-refusal": the event log failed; retry later' },
      {
        type: 'error',
        code: 'SUBSCRIBE_FAILED',
        threadId: 'full-log',
        message: 'could not subscribe to thread "full-log": the event log holds as many threads as it may (TOO_MANY_THREADS); a new thread opens once idle ones expire',
      },
    ]);

    eve.subscribe('throwing-close');
    eve.send({ type: 'unsubscribe', threadId: 'throwing-close' });
    await eve.waitFor(() => eve.ofType('unsubscribed').length === 1, 'unsubscribed');

    eve.subscribe('bad-entries');
    await eve.waitFor(() => gw.stats().isolationDrops === 4, 'bad entries dropped');
    // The one that fails while being written costs this connection only.
    eve.subscribe('throwing-cursor');
    expect(await eve.waitForClose()).toMatchObject({ code: 1011, reason: 'internal error' });
    expect(eve.events()).toEqual([]);

    // The hook's own 401 message stays generic; what it threw goes to onError.
    expect(await refusal(`${url}?token=token-db-down`)).toEqual({ status: 401, body: 'authentication failed' });

    expect(reports.map((r) => [r.context.stage, r.context.threadId, (r.error as Error).message])).toEqual([
      ['message', 'garbage-answer', expect.any(String)],
      ['flush', undefined, 'cursor refuses'],
      ['authenticate', undefined, 'connect ECONNREFUSED postgres://admin:hunter2@db'],
    ]);
    expect(reports.slice(0, 2).every((r) => r.context.userId === 'eve' && typeof r.context.connectionId === 'string')).toBe(true);
    expect(gw.stats()).toMatchObject({ internalErrors: 2, closedInternalError: 1, subscribeFailures: 3, rejectedUnauthorized: 1 });

    const run = await agent.run([{ think: 'unaffected' }, { tool: 'echo', args: { text: 'x' } }], { userId: 'bystander', threadId: 'b-thread' });
    await until(() => bystander.events.length === run.events, 'the bystander received the run');
    expect(bystander.events.map((e) => e.id)).toEqual(log.read('b-thread', 'bystander').map((e) => e.id));
    expect(bystander.errors).toEqual([]);
    expect(await gw.health()).toMatchObject({ ok: true });
  });

  it('an AuthError from authenticate is the only message a refused client sees', async () => {
    const { url } = await gateway({
      authenticate: () => {
        throw new AuthError('your session ended');
      },
    });
    expect(await refusal(url)).toEqual({ status: 401, body: 'your session ended' });
  });
});
