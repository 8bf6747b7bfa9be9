import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuthError, connect, reconnectDelay, type AgentwireError, type ConnectOptions } from '../../src/client/index.js';
import { recordClient } from '../helpers/client-recorder.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { FakeWebSocket, eventFrames, runEvents } from '../helpers/ws-fake-socket.js';

function start(options: Partial<ConnectOptions> = {}) {
  const client = connect('ws://gateway.test/ws', {
    threadId: 't',
    token: 'secret',
    WebSocket: FakeWebSocket,
    reconnect: { initialDelayMs: 100, maxDelayMs: 1_000, jitter: false },
    ...options,
  });
  return recordClient(client);
}

/** Opens the current fake socket and confirms the subscription. */
function subscribe(socket = FakeWebSocket.last()): FakeWebSocket {
  socket.open();
  socket.receive({ type: 'subscribed', threadId: 't', cursor: null, replayed: 0 });
  return socket;
}

beforeEach(() => {
  FakeWebSocket.reset();
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('reconnectDelay', () => {
  const options = { initialDelayMs: 250, maxDelayMs: 10_000, factor: 2, jitter: false, maxAttempts: Infinity };
  it('grows exponentially up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map((attempt) => reconnectDelay(attempt, options))).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  });
  it('with jitter picks a delay in [delay/2, delay]', () => {
    const jittered = { ...options, jitter: true };
    expect(reconnectDelay(3, jittered, () => 0)).toBe(500);
    expect(reconnectDelay(3, jittered, () => 0.999999)).toBeCloseTo(1000, 2);
  });
});

describe('client connection and resume', () => {
  it('sends the token in the URL, subscribes on open, and becomes open once subscribed', () => {
    const { client, statuses } = start({ after: 'e:7' });
    const socket = FakeWebSocket.last();
    expect(new URL(socket.url).searchParams.get('token')).toBe('secret');
    expect(client.status).toBe('connecting');
    socket.open();
    expect(socket.sent).toEqual([{ type: 'subscribe', threadId: 't', after: 'e:7' }]);
    socket.receive({ type: 'subscribed', threadId: 't', cursor: 'e:9', replayed: 2 });
    expect(statuses).toEqual(['open']);
    expect(client.userId).toBe('alice');
    client.close();
    expect(statuses).toEqual(['open', 'closed']);
  });

  it("emits 'connecting' to a listener attached right after connect(), before 'open'", async () => {
    const { client, statuses } = start();
    await Promise.resolve();
    expect(statuses).toEqual(['connecting']);
    subscribe();
    expect(statuses).toEqual(['connecting', 'open']);
    client.close();
  });

  it('with reconnect: false, a first connection that never opens fails CONNECT_FAILED; one that opened and closed, CONNECTION_LOST', () => {
    const never = start({ reconnect: false });
    FakeWebSocket.last().drop();
    expect(never.errors.map((e) => e.code)).toEqual(['CONNECT_FAILED']);
    expect(never.client.status).toBe('closed');
    const opened = start({ reconnect: false });
    subscribe();
    FakeWebSocket.last().drop();
    expect(opened.errors.map((e) => e.code)).toEqual(['CONNECTION_LOST']);
  });

  it('connectTimeoutMs: an attempt not subscribed in time fails; with reconnect: false CONNECT_FAILED, else a reconnect with backoff', async () => {
    const never = start({ reconnect: false, connectTimeoutMs: 500 });
    vi.advanceTimersByTime(499);
    expect(never.client.status).toBe('connecting');
    vi.advanceTimersByTime(1);
    expect(never.client.status).toBe('closed');
    expect(never.errors.map((e) => e.code)).toEqual(['CONNECT_FAILED']);
    expect(never.errors[0]!.message).toMatch(/no open connection within 500 ms/);
    expect(FakeWebSocket.last().closedWith).toBeDefined();

    // Opened, but the subscribe is never answered.
    const hung = start({ connectTimeoutMs: 500, reconnect: { initialDelayMs: 100, jitter: false, maxAttempts: 1 } });
    FakeWebSocket.last().open();
    vi.advanceTimersByTime(500);
    expect(hung.client.status).toBe('reconnecting');
    vi.advanceTimersByTime(100);
    expect(FakeWebSocket.instances).toHaveLength(3);
    FakeWebSocket.last().open();
    vi.advanceTimersByTime(500);
    expect(hung.client.status).toBe('closed');
    expect(hung.errors.map((e) => [e.code, e.message])).toEqual([['RECONNECT_FAILED', 'gave up reconnecting after 1 attempts (the last: no subscription within 500 ms (connectTimeoutMs))']]);

    // Subscribed in time: the timer is off; 0 disables it; a token arriving after its attempt timed out is not used.
    const fine = start({ connectTimeoutMs: 500 });
    subscribe();
    vi.advanceTimersByTime(10_000);
    expect(fine.client.status).toBe('open');
    fine.client.close();
    const off = start({ connectTimeoutMs: 0, reconnect: false });
    vi.advanceTimersByTime(60_000);
    expect(off.client.status).toBe('connecting');
    off.client.close();
    let release: (token: string) => void = () => {};
    const slow = start({ connectTimeoutMs: 500, reconnect: { initialDelayMs: 100, jitter: false }, token: () => new Promise<string>((resolve) => (release = resolve)) });
    const before = FakeWebSocket.instances.length;
    await vi.advanceTimersByTimeAsync(500);
    expect(slow.client.status).toBe('reconnecting');
    const late = release;
    await vi.advanceTimersByTimeAsync(100); // the second attempt asks for a token again
    late('tok-late');
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeWebSocket.instances).toHaveLength(before);
    release('tok-fresh');
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeWebSocket.instances).toHaveLength(before + 1);
    expect(new URL(FakeWebSocket.last().url).searchParams.get('token')).toBe('tok-fresh');
    slow.client.close();
    expect(() => start({ connectTimeoutMs: -1 })).toThrow(/connect\(\) option connectTimeoutMs must be/);
  });

  it('reconnects with backoff after a drop and resumes after the last cursor it received', () => {
    const { client, events, statuses } = start();
    const first = subscribe();
    const run = runEvents(4);
    first.receive(eventFrames(run.slice(0, 3)));
    expect(client.cursor).toBe('e:3');
    first.drop();
    expect(statuses).toEqual(['open', 'reconnecting']);

    vi.advanceTimersByTime(99);
    expect(FakeWebSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    const second = FakeWebSocket.last();
    expect(second).not.toBe(first);
    second.drop(); // the next attempt fails too: the delay doubles
    vi.advanceTimersByTime(199);
    expect(FakeWebSocket.instances).toHaveLength(2);
    vi.advanceTimersByTime(1);
    const third = FakeWebSocket.last();
    third.open();
    expect(third.sent).toEqual([{ type: 'subscribe', threadId: 't', after: 'e:3' }]);
    third.receive({ type: 'subscribed', threadId: 't', cursor: 'e:6', replayed: 3 });
    third.receive(eventFrames(run.slice(3), 3));
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(statuses).toEqual(['open', 'reconnecting', 'open']);
    expect(client.stats.reconnects).toBe(2);

    // A success resets the backoff.
    third.drop();
    vi.advanceTimersByTime(100);
    expect(FakeWebSocket.instances).toHaveLength(4);
    client.close();
  });

  it('drops repeats by id and remembers only a bounded window of ids', () => {
    const { client, events } = start({ dedupeWindow: 3, checkLifecycle: false });
    const socket = subscribe();
    const run = runEvents(6);
    const frames = eventFrames(run);
    socket.receive([frames[0]!, frames[1]!, frames[0]!, frames[1]!, frames[2]!]);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(client.stats.duplicates).toBe(2);
    // Beyond the window the oldest id is forgotten (memory stays bounded).
    socket.receive(eventFrames(run.slice(3, 5), 3));
    socket.receive(frames[0]!);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 1]);
    client.close();
  });

  it('gives up after maxAttempts with RECONNECT_FAILED, and stays closed after terminal close codes', () => {
    const limited = start({ reconnect: { initialDelayMs: 10, jitter: false, maxAttempts: 2 } });
    FakeWebSocket.last().drop();
    vi.advanceTimersByTime(10);
    FakeWebSocket.last().drop();
    vi.advanceTimersByTime(20);
    FakeWebSocket.last().drop();
    expect(limited.client.status).toBe('closed');
    expect(limited.errors.map((e) => e.code)).toEqual(['RECONNECT_FAILED']);

    for (const [code, name] of [[4029, 'TOO_MANY_CONNECTIONS'], [1007, 'INVALID_FRAME_PAYLOAD_DATA'], [1008, 'POLICY_VIOLATION'], [1009, 'MESSAGE_TOO_BIG']] as const) {
      FakeWebSocket.reset();
      const { client, errors } = start();
      subscribe().drop(code, 'because');
      vi.advanceTimersByTime(10_000);
      expect(FakeWebSocket.instances).toHaveLength(1);
      expect(client.status).toBe('closed');
      expect(errors.map((e) => e.code)).toEqual([name]);
    }
  });

  it('a flapping server (subscribed, then dropped) does not reset the backoff: the delay grows and maxAttempts ends it', () => {
    const { client, errors } = start({ reconnect: { initialDelayMs: 100, maxDelayMs: 1_000, jitter: false, maxAttempts: 3 } });
    const opened: number[] = [];
    for (const delay of [100, 200, 400]) {
      subscribe().drop(1011, 'boom');
      expect(client.status).toBe('reconnecting');
      vi.advanceTimersByTime(delay - 1);
      opened.push(FakeWebSocket.instances.length);
      vi.advanceTimersByTime(1);
    }
    expect(opened).toEqual([1, 2, 3]);
    subscribe().drop(1011, 'boom');
    expect(client.status).toBe('closed');
    expect(errors.map((e) => e.code)).toEqual(['RECONNECT_FAILED']);
    expect(FakeWebSocket.instances).toHaveLength(4);
  });

  it('a connection counts as healthy (attempts reset) once it delivers a new event or stays subscribed for maxDelayMs', () => {
    const { client } = start({ reconnect: { initialDelayMs: 100, maxDelayMs: 1_000, jitter: false } });
    subscribe().drop();
    vi.advanceTimersByTime(100);
    subscribe().drop(); // not healthy: attempt 2 waits 200 ms
    vi.advanceTimersByTime(199);
    expect(FakeWebSocket.instances).toHaveLength(2);
    vi.advanceTimersByTime(1);
    const steady = subscribe();
    vi.advanceTimersByTime(999);
    steady.drop(); // 999 ms up is not enough: attempt 3 waits 400 ms
    vi.advanceTimersByTime(399);
    expect(FakeWebSocket.instances).toHaveLength(3);
    vi.advanceTimersByTime(1);
    const long = subscribe();
    vi.advanceTimersByTime(1_000);
    long.drop(); // up for maxDelayMs: healthy, back to the first delay
    vi.advanceTimersByTime(100);
    expect(FakeWebSocket.instances).toHaveLength(5);
    subscribe().drop();
    vi.advanceTimersByTime(200);
    const eventful = subscribe();
    eventful.receive(eventFrames(runEvents(0).slice(0, 1)));
    eventful.drop(); // delivered a new event: healthy
    vi.advanceTimersByTime(100);
    expect(FakeWebSocket.instances).toHaveLength(7);
    client.close();
  });

  it('reconnects after server-side closes that a new connection can fix (1001, 1013, 4000, 4008)', () => {
    for (const code of [1001, 1013, 4000, 4008]) {
      FakeWebSocket.reset();
      const { client, errors } = start();
      subscribe().drop(code, 'x');
      vi.advanceTimersByTime(100);
      expect(FakeWebSocket.instances).toHaveLength(2);
      expect(errors).toEqual([]);
      client.close();
    }
  });

  it('stops with AUTH_FAILED when the upgrade is refused with 401 (ws reports the status in its error)', () => {
    const { client, errors } = start();
    FakeWebSocket.last().drop(1006, '', 'Unexpected server response: 401');
    expect(client.status).toBe('closed');
    expect(errors.map((e) => e.code)).toEqual(['AUTH_FAILED']);
  });

  it('throws a clear error where there is no WebSocket class', () => {
    const global = globalThis as { WebSocket?: unknown };
    const saved = global.WebSocket;
    delete global.WebSocket;
    try {
      expect(() => connect('ws://x/ws', { threadId: 't' })).toThrow(/pass one: connect\(url, \{ WebSocket \}\)/);
    } finally {
      if (saved !== undefined) global.WebSocket = saved;
    }
    expect(() => connect('not a url', { threadId: 't', WebSocket: FakeWebSocket })).toThrow(/invalid URL/);
  });
});

describe('client construction and tokens', () => {
  it('never emits from its constructor: a socket that cannot even be constructed is reported on a later tick, token redacted', () => {
    class Throwing {
      constructor(url: string) {
        throw new Error(`refusing ${url} (token secret-token-123 and again ${encodeURIComponent('secret-token-123')})`);
      }
    }
    const errors: AgentwireError[] = [];
    const client = connect('ws://gateway.test/ws?token=other-secret', {
      threadId: 't',
      token: 'secret-token-123',
      WebSocket: Throwing as unknown as ConnectOptions['WebSocket'],
    });
    // Attached after connect() returned: it must still see the failure.
    client.on('error', (error) => errors.push(error));
    expect(errors).toEqual([]);
    expect(client.status).toBe('connecting');
    vi.advanceTimersByTime(0);
    expect(errors.map((e) => e.code)).toEqual(['CONNECT_FAILED']);
    expect(client.status).toBe('closed');
    expect(errors[0]!.message).toMatch(/^cannot open a WebSocket to ws:\/\/gateway\.test\/ws\?token=\[redacted\]/);
    for (const text of [errors[0]!.message, errors[0]!.stack ?? '', JSON.stringify(errors[0])]) {
      expect(text).not.toContain('secret-token-123');
      expect(text).not.toContain('other-secret');
    }
  });

  it('an invalid URL throws (a programming error), with any token in it redacted', () => {
    expect(() => connect('nope?token=hunter2-secret', { threadId: 't', WebSocket: FakeWebSocket })).toThrow(/invalid URL "nope\?token=\[redacted\]"/);
  });

  it('never puts the token in an error message, whatever produced the message', () => {
    const { errors } = start({ token: 'tok-abcdef' });
    const socket = subscribe();
    socket.receive({ type: 'error', code: 'INVALID_FRAME', message: 'echo tok-abcdef and ws://x/ws?token=tok-abcdef' });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toBe('echo [redacted] and ws://x/ws?token=[redacted]');
  });

  it('never puts the token in error details, history_gap payloads or refused answers, whatever the server echoes', async () => {
    const { client, errors } = start({ token: 'tok-abcdef' });
    const gaps: unknown[] = [];
    client.on('history_gap', (gap) => gaps.push(gap));
    const socket = FakeWebSocket.last();
    socket.open();
    socket.receive({ type: 'error', code: 'bad auth Bearer tok-abcdef', message: 'm' } as never);
    socket.receive({ type: 'history_gap', threadId: 't', requested: 'Bearer tok-abcdef', reason: 'trimmed', message: 'for tok-abcdef' });
    socket.receive({ type: 'subscribed', threadId: 't', cursor: null, replayed: 0 });
    const refused = client.answer({ runId: 'r', requestId: 'q1', approved: true });
    socket.receive({ type: 'error', code: 'ANSWER_FORBIDDEN', message: 'not for tok-abcdef', requestId: 'q1' } as never);
    const rejection = await refused.catch((error: AgentwireError) => error);
    expect(errors.map((e) => e.code)).toEqual(['SERVER_ERROR', 'HISTORY_GAP']);
    expect(errors[0]!.details).toEqual({ serverCode: 'bad auth Bearer [redacted]' });
    expect(errors[1]!.details).toMatchObject({ requested: 'Bearer [redacted]', message: 'for [redacted]' });
    expect(gaps).toEqual([{ threadId: 't', requested: 'Bearer [redacted]', reason: 'trimmed', message: 'for [redacted]' }]);
    expect(rejection).toMatchObject({ code: 'ANSWER_FORBIDDEN', message: 'not for [redacted]' });
    for (const text of [JSON.stringify(errors.map((e) => [e.message, e.stack, e.details])), JSON.stringify(gaps), JSON.stringify(rejection)]) expect(text).not.toContain('tok-abcdef');
    client.close();
  });

  it("tokenIn 'header' sends Authorization: Bearer and keeps the token out of the URL", () => {
    const { client } = start({ token: 'tok-header', tokenIn: 'header' });
    const socket = FakeWebSocket.last();
    expect(socket.options).toEqual({ headers: { Authorization: 'Bearer tok-header' } });
    expect(socket.url).toBe('ws://gateway.test/ws');
    expect(socket.url).not.toContain('tok-header');
    client.close();
  });

  it('4401 with a fixed token and 4403 in any case are terminal: TOKEN_EXPIRED / REVOKED AuthErrors, no reconnect', () => {
    const cases = [
      [4401, 'TOKEN_EXPIRED', 'tok-fixed'],
      [4403, 'REVOKED', 'tok-fixed'],
      [4403, 'REVOKED', () => 'tok-fresh'],
    ] as const;
    for (const [code, name, token] of cases) {
      FakeWebSocket.reset();
      const { client, errors } = start({ token });
      subscribe().drop(code, 'bye');
      vi.advanceTimersByTime(10_000);
      expect(FakeWebSocket.instances).toHaveLength(1);
      expect(client.status).toBe('closed');
      expect(errors.map((e) => [e.code, e instanceof AuthError])).toEqual([[name, true]]);
    }
  });

  it('4401 with a token function: fetches a fresh token and reconnects, resuming after its cursor', async () => {
    const tokens = ['tok-1', 'tok-2'];
    let calls = 0;
    const { client, errors, events } = start({ token: async () => tokens[calls++]! });
    await vi.advanceTimersByTimeAsync(0);
    const first = subscribe();
    expect(new URL(first.url).searchParams.get('token')).toBe('tok-1');
    const run = runEvents(2);
    first.receive(eventFrames(run.slice(0, 2)));
    first.drop(4401, 'token expired');
    expect(client.status).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(100);
    const second = FakeWebSocket.last();
    expect(second).not.toBe(first);
    expect(calls).toBe(2);
    expect(new URL(second.url).searchParams.get('token')).toBe('tok-2');
    second.open();
    expect(second.sent).toEqual([{ type: 'subscribe', threadId: 't', after: 'e:2' }]);
    second.receive({ type: 'subscribed', threadId: 't', cursor: 'e:4', replayed: 2 });
    second.receive(eventFrames(run.slice(2), 2));
    expect(events.map((e) => e.id)).toEqual(run.map((e) => e.id));
    expect(errors).toEqual([]);
    expect(client.status).toBe('open');
    client.close();
  });

  it('a token function that throws or rejects fails that attempt (AUTH_FAILED, token-free message) and is retried with backoff', async () => {
    let calls = 0;
    const { client, errors, statuses } = start({
      token: () => {
        calls++;
        if (calls === 1) throw new Error('identity provider down');
        if (calls === 2) return Promise.reject(new Error('still down'));
        return 'tok-ok';
      },
    });
    expect(errors).toEqual([]); // nothing from the constructor
    await vi.advanceTimersByTimeAsync(0);
    expect(errors.map((e) => [e.code, e.message])).toEqual([['AUTH_FAILED', 'the token function failed: identity provider down']]);
    expect(statuses).toEqual(['connecting', 'reconnecting']);
    expect(FakeWebSocket.instances).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(errors.map((e) => e.message)).toEqual(['the token function failed: identity provider down', 'the token function failed: still down']);
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toBe(3);
    subscribe();
    expect(new URL(FakeWebSocket.last().url).searchParams.get('token')).toBe('tok-ok');
    expect(client.status).toBe('open');
    client.close();
  });
});

describe('client checks and surfaces problems', () => {
  it('reports a lifecycle violation as LIFECYCLE_VIOLATION once per run, and still delivers the events', () => {
    const { client, events, errors } = start();
    const socket = subscribe();
    const run = runEvents(3);
    socket.receive(eventFrames([run[0]!, run[1]!, run[3]!, run[4]!])); // seq 3 went missing
    expect(events.map((e) => e.seq)).toEqual([1, 2, 4, 5]);
    expect(errors.map((e) => e.code)).toEqual(['LIFECYCLE_VIOLATION']);
    expect(errors[0]!.details).toMatchObject({ violation: { rule: 'seq_gap', runId: run[0]!.runId } });
    // Another run that starts mid-way (no agent_started) is reported too.
    socket.receive(eventFrames(runEvents(2).slice(1), 10));
    expect(errors.map((e) => e.details?.violation)).toMatchObject([{ rule: 'seq_gap' }, { rule: 'started_first' }]);
    client.close();
  });

  it('a run with more than 10,000 open tool calls is reported once (LIFECYCLE_UNCHECKED) and still delivered', () => {
    const { client, events, errors } = start();
    const socket = subscribe();
    const [started] = runEvents(0);
    const frames: ServerFrame[] = [{ type: 'event', threadId: 't', cursor: 'e:1', event: started! }];
    for (let seq = 2; seq <= 10_003; seq++) {
      const event = { ...started!, id: `tool-${seq}`, seq, type: 'tool_executing', data: { toolCallId: `call-${seq}`, tool: 'x', args: {} } };
      frames.push({ type: 'event', threadId: 't', cursor: `e:${seq}`, event: event as never });
    }
    socket.receive(frames);
    expect(events).toHaveLength(10_003);
    expect(errors.map((e) => [e.code, e.details?.openTools])).toEqual([['LIFECYCLE_UNCHECKED', 10_001]]);
    client.close();
  });

  it('resuming from a saved cursor may join runs mid-way without a violation', () => {
    const { errors, client } = start({ after: 'e:2' });
    const socket = subscribe();
    socket.receive(eventFrames(runEvents(3).slice(2), 2));
    socket.receive(eventFrames(runEvents(1), 10));
    expect(errors).toEqual([]);
    client.close();
  });

  it('a subscription without a cursor may replay a run from mid-way (its start trimmed): unchecked; after the replay, a new run must start with agent_started', () => {
    const { client, events, errors } = start();
    const socket = FakeWebSocket.last();
    socket.open();
    const trimmed = runEvents(5);
    const whole = runEvents(1);
    // The retained tail: seq 4.. of a run whose start was trimmed, then a run from its start.
    socket.receive({ type: 'subscribed', threadId: 't', cursor: 'e:9', replayed: 6 });
    socket.receive(eventFrames([...trimmed.slice(3, 6), ...whole], 3));
    expect(errors).toEqual([]);
    // Live: the trimmed run completes (still unchecked); a run that starts mid-way now is reported.
    socket.receive(eventFrames(trimmed.slice(6), 9));
    const headless = runEvents(1);
    socket.receive(eventFrames(headless.slice(1), 10));
    expect(events).toHaveLength(3 + 3 + 1 + 2);
    expect(errors.map((e) => e.details?.violation)).toMatchObject([{ rule: 'started_first', runId: headless[0]!.runId }]);
    client.close();
  });

  it('the replay window counts repeats too, and starts again with each subscription', () => {
    const { client, errors } = start({ reconnect: { initialDelayMs: 10, jitter: false } });
    let socket = FakeWebSocket.last();
    socket.open();
    const run = runEvents(6);
    socket.receive({ type: 'subscribed', threadId: 't', cursor: 'e:4', replayed: 2 });
    socket.receive(eventFrames(run.slice(2, 4), 2)); // seq 3, 4: joined mid-way in the replay
    socket.drop();
    vi.advanceTimersByTime(10);
    expect(FakeWebSocket.last()).not.toBe(socket);
    socket = FakeWebSocket.last();
    socket.open();
    expect(socket.sent).toEqual([{ type: 'subscribe', threadId: 't', after: 'e:4' }]);
    // Resumed after e:4: a repeat of seq 4 (dropped by id), then seq 5 in the new replay.
    socket.receive({ type: 'subscribed', threadId: 't', cursor: 'e:5', replayed: 2 });
    socket.receive(eventFrames(run.slice(3, 5), 3));
    // Live: a run seen from its start, with a gap, is reported; the one joined mid-way stays unchecked.
    const gapped = runEvents(3);
    socket.receive(eventFrames([...run.slice(5), gapped[0]!, gapped[2]!], 5));
    expect(errors.map((e) => e.details?.violation)).toMatchObject([{ rule: 'seq_gap', runId: gapped[0]!.runId }]);
    client.close();
  });

  it('refuses an event frame whose cursor fails the cursor rule (PROTOCOL_ERROR): not delivered, cursor and resume after unchanged', async () => {
    const { client, events, errors } = start({ reconnect: { initialDelayMs: 10, jitter: false } });
    const socket = subscribe();
    const run = runEvents(1);
    socket.receive(eventFrames(run.slice(0, 1)));
    for (const cursor of ['bad cursor', 'x'.repeat(129), 'caf\u00e9', '', 'a\nb']) {
      socket.receive({ type: 'event', threadId: 't', cursor, event: run[1]! });
    }
    expect(events.map((e) => e.seq)).toEqual([1]);
    expect(errors.map((e) => e.code)).toEqual(Array(5).fill('PROTOCOL_ERROR'));
    expect(client.cursor).toBe('e:1');
    // The same event with a valid cursor (e.g. after a reconnect) is still delivered.
    socket.receive(eventFrames(run.slice(1, 2), 1));
    expect(events.map((e) => e.seq)).toEqual([1, 2]);
    socket.drop();
    vi.advanceTimersByTime(10);
    FakeWebSocket.last().open();
    expect(FakeWebSocket.last().sent).toEqual([{ type: 'subscribe', threadId: 't', after: 'e:2' }]);
    // An answer confirmed with a malformed cursor is rejected, not resolved with it.
    subscribe(FakeWebSocket.last());
    const answered = client.answer({ runId: 'r', requestId: 'q1', approved: true });
    FakeWebSocket.last().receive({ type: 'answered', threadId: 't', runId: 'r', requestId: 'q1', cursor: 'no good' } as never);
    await expect(answered).rejects.toMatchObject({ code: 'PROTOCOL_ERROR' });
    client.close();
  });

  it('refuses events whose ids are outside the event schema bounds (PROTOCOL_ERROR) before keeping them', () => {
    const { client, events, errors } = start();
    const socket = subscribe();
    const [started, thinking] = runEvents(1);
    const tool = { ...thinking!, type: 'tool_executing', data: { toolCallId: 'c1', tool: 'x', args: {} } } as unknown as typeof started;
    const bad = [
      { ...started!, id: 'x'.repeat(65) },
      { ...started!, id: '' },
      { ...started!, id: 'ok\ud800' },
      { ...started!, runId: 'r'.repeat(257) },
      { ...started!, agent: 'a'.repeat(129) },
      { ...tool!, data: { toolCallId: 'c'.repeat(129), tool: 'x', args: {} } },
      { ...tool!, data: { toolCallId: 'c1', tool: 'x', args: {}, pending: { requestId: 'q'.repeat(65), kind: 'approval', timeoutMs: 1 } } },
    ];
    socket.receive(bad.map((event, i) => ({ type: 'event', threadId: 't', cursor: `e:${i + 1}`, event }) as never));
    expect(events).toEqual([]);
    expect(errors.map((e) => e.code)).toEqual(Array(bad.length).fill('PROTOCOL_ERROR'));
    expect(errors[0]!.message).toMatch(/whose id \(1-64 characters/);
    expect(client.cursor).toBeUndefined();
    // A 64-character id is fine.
    socket.receive({ type: 'event', threadId: 't', cursor: 'e:9', event: { ...started!, id: 'x'.repeat(64) } });
    expect(events).toHaveLength(1);
    client.close();
  });

  it('refuses events of another user or thread (defence in depth) without showing them', () => {
    const { client, events, errors } = start();
    const socket = subscribe();
    socket.receive(eventFrames(runEvents(1, 'mallory').slice(0, 1)));
    socket.receive(eventFrames(runEvents(1, 'alice', 'other').slice(0, 1), 0, 'other'));
    expect(events).toEqual([]);
    expect(errors.map((e) => e.code)).toEqual(['FOREIGN_EVENT', 'FOREIGN_EVENT']);
    expect(client.stats.foreign).toBe(2);
    client.close();
  });

  it('only the first hello of a connection counts: a later one (other user or none) is a PROTOCOL_ERROR and delivers no event of another user', () => {
    for (const second of [{ type: 'hello', v: 1, connectionId: 'c2' }, { type: 'hello', v: 1, userId: 'mallory', connectionId: 'c3' }]) {
      FakeWebSocket.reset();
      const { client, events, errors } = start();
      const socket = subscribe();
      socket.receive(second as never);
      socket.receive(eventFrames(runEvents(1, 'mallory').slice(0, 1)));
      socket.receive(eventFrames(runEvents(1, 'alice').slice(0, 1), 5));
      expect(events.map((e) => e.userId)).toEqual(['alice']);
      expect(errors.map((e) => e.code)).toEqual(['PROTOCOL_ERROR', 'FOREIGN_EVENT']);
      expect(client.stats.foreign).toBe(1);
      expect(client.userId).toBe('alice');
      client.close();
    }
  });

  it('refuses events before any hello (PROTOCOL_ERROR); a first hello without a user id fails the attempt', () => {
    const { client, events, errors } = start({ reconnect: { initialDelayMs: 10, jitter: false } });
    const socket = FakeWebSocket.last();
    socket.readyState = 1;
    (socket.onopen as unknown as () => void)();
    socket.receive({ type: 'subscribed', threadId: 't', cursor: null, replayed: 0 });
    socket.receive(eventFrames(runEvents(1, 'mallory').slice(0, 1)));
    socket.receive(eventFrames(runEvents(1, 'alice').slice(0, 1), 1));
    expect(events).toEqual([]);
    expect(errors.map((e) => e.code)).toEqual(['PROTOCOL_ERROR', 'PROTOCOL_ERROR']);
    expect(client.stats.foreign).toBe(0);
    socket.receive({ type: 'hello', v: 1, connectionId: 'c' } as never);
    expect(errors.map((e) => e.code)).toEqual(['PROTOCOL_ERROR', 'PROTOCOL_ERROR', 'PROTOCOL_ERROR']);
    expect(socket.closedWith).toBeDefined();
    expect(client.status).toBe('reconnecting');
    vi.advanceTimersByTime(10);
    expect(FakeWebSocket.instances).toHaveLength(2);
    client.close();
  });

  it('history_gap with the default policy: emits it and an error, then re-subscribes without a cursor', () => {
    const { client, errors } = start({ after: 'old:5' });
    const gaps: unknown[] = [];
    client.on('history_gap', (gap) => gaps.push(gap));
    const socket = FakeWebSocket.last();
    socket.open();
    socket.receive({ type: 'history_gap', threadId: 't', requested: 'old:5', reason: 'epoch_changed', message: 'log recreated' });
    expect(gaps).toEqual([{ threadId: 't', requested: 'old:5', reason: 'epoch_changed', message: 'log recreated' }]);
    expect(errors.map((e) => e.code)).toEqual(['HISTORY_GAP']);
    expect(socket.sent).toEqual([
      { type: 'subscribe', threadId: 't', after: 'old:5' },
      { type: 'subscribe', threadId: 't' },
    ]);
    expect(client.cursor).toBeUndefined();
    expect(client.status).toBe('connecting');
    client.close();
  });

  it('a server answering every subscribe with history_gap is re-subscribed to with backoff, not in a loop; maxAttempts ends it', () => {
    const { client, errors } = start({ after: 'old:5', reconnect: { initialDelayMs: 100, maxDelayMs: 1_000, jitter: false, maxAttempts: 2 } });
    const gap = { type: 'history_gap', threadId: 't', requested: 'x', reason: 'trimmed', message: 'gone' } as const;
    let socket = FakeWebSocket.last();
    socket.open();
    socket.receive(gap); // the first gap: re-subscribe at once, without a cursor
    expect(socket.sent).toEqual([
      { type: 'subscribe', threadId: 't', after: 'old:5' },
      { type: 'subscribe', threadId: 't' },
    ]);
    socket.receive(gap); // a gap for a subscribe without a cursor: the attempt failed
    expect(socket.sent).toHaveLength(2);
    expect(socket.closedWith).toBeDefined();
    expect(client.status).toBe('reconnecting');
    vi.advanceTimersByTime(99);
    expect(FakeWebSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    socket = FakeWebSocket.last();
    socket.open();
    expect(socket.sent).toEqual([{ type: 'subscribe', threadId: 't' }]);
    socket.receive(gap);
    vi.advanceTimersByTime(199);
    expect(FakeWebSocket.instances).toHaveLength(2);
    vi.advanceTimersByTime(1);
    FakeWebSocket.last().open();
    FakeWebSocket.last().receive(gap);
    expect(client.status).toBe('closed');
    expect(errors.map((e) => e.code)).toEqual(['HISTORY_GAP', 'HISTORY_GAP', 'HISTORY_GAP', 'HISTORY_GAP', 'RECONNECT_FAILED']);
    expect(errors.at(-1)!.message).toMatch(/gave up reconnecting after 2 attempts \(the last: the server answered 4 subscribes in a row with history_gap\)/);
  });

  it('a new event between gaps makes the next gap a first one again; with reconnect: false a repeated gap stops the client', () => {
    const { client } = start({ after: 'old:5' });
    const gap = { type: 'history_gap', threadId: 't', requested: 'x', reason: 'trimmed', message: 'gone' } as const;
    const socket = FakeWebSocket.last();
    socket.open();
    socket.receive(gap);
    socket.receive({ type: 'subscribed', threadId: 't', cursor: null, replayed: 0 });
    socket.receive(eventFrames(runEvents(0).slice(0, 1)));
    socket.receive(gap);
    expect(socket.sent).toHaveLength(3);
    expect(FakeWebSocket.instances).toHaveLength(1);
    client.close();

    const stopped = start({ after: 'old:5', reconnect: false });
    FakeWebSocket.last().open();
    FakeWebSocket.last().receive(gap);
    FakeWebSocket.last().receive(gap);
    expect(stopped.client.status).toBe('closed');
    expect(stopped.errors.map((e) => e.code)).toEqual(['HISTORY_GAP', 'HISTORY_GAP', 'RECONNECT_FAILED']);
  });

  it('history_gap with onHistoryGap "stop": emits it, then closes', () => {
    const { client, errors, statuses } = start({ after: 'old:5', onHistoryGap: 'stop' });
    const socket = FakeWebSocket.last();
    socket.open();
    socket.receive({ type: 'history_gap', threadId: 't', requested: 'old:5', reason: 'trimmed', message: 'gone' });
    expect(errors.map((e) => e.code)).toEqual(['HISTORY_GAP']);
    expect(statuses).toEqual(['closed']);
    expect(socket.sent).toHaveLength(1);
    expect(client.status).toBe('closed');
  });

  it('reports malformed server messages and server error frames; a forbidden thread is terminal', () => {
    const { client, errors } = start();
    const socket = subscribe();
    socket.receive('not json');
    socket.receive({ type: 'event', threadId: 't', cursor: 'e:1', event: { nope: true } } as never);
    socket.receive({ type: 'error', code: 'INVALID_FRAME', message: 'bad' });
    socket.receive({ type: 'error', code: 'THREAD_FORBIDDEN', message: 'not yours', threadId: 't' });
    expect(errors.map((e) => e.code)).toEqual(['PROTOCOL_ERROR', 'PROTOCOL_ERROR', 'INVALID_FRAME', 'THREAD_FORBIDDEN']);
    expect(client.status).toBe('closed');
  });

  it('a throwing listener is reported as LISTENER_FAILED and does not stop delivery', () => {
    const { client, events, errors } = start();
    let calls = 0;
    client.on('agent_thinking', () => {
      calls++;
      throw new Error('listener bug');
    });
    const socket = subscribe();
    socket.receive(eventFrames(runEvents(2)));
    expect(events).toHaveLength(4);
    expect(calls).toBe(2);
    expect(errors.map((e) => e.code)).toEqual(['LISTENER_FAILED', 'LISTENER_FAILED']);
    expect(client.stats.listenerErrors).toBe(2);
    client.close();
  });

  it('emits each event type on its own channel with its typed payload', () => {
    const { client } = start();
    const thoughts: string[] = [];
    const completed: string[] = [];
    client.on('agent_thinking', (event) => thoughts.push(event.data.text));
    client.on('agent_completed', (event) => completed.push(event.data.status));
    subscribe().receive(eventFrames(runEvents(2)));
    expect(thoughts).toEqual(['t0', 't1']);
    expect(completed).toEqual(['succeeded']);
    client.close();
  });
});

describe('client async iteration', () => {
  it('yields events in order and ends when the client closes', async () => {
    vi.useRealTimers();
    const { client } = start();
    const socket = subscribe();
    const received: number[] = [];
    const loop = (async () => {
      for await (const event of client) received.push(event.seq);
    })();
    const run = runEvents(3);
    socket.receive(eventFrames(run.slice(0, 2)));
    socket.receive(eventFrames(run.slice(2), 2));
    client.close();
    await loop;
    expect(received).toEqual([1, 2, 3, 4, 5]);
    // Iterating a closed client ends at once.
    for await (const event of client) received.push(event.seq);
    expect(received).toHaveLength(5);
  });

  it('breaking out of the loop stops buffering for it', async () => {
    vi.useRealTimers();
    const { client } = start();
    const socket = subscribe();
    const run = runEvents(3);
    socket.receive(eventFrames(run));
    const iterator = client[Symbol.asyncIterator]();
    socket.receive(eventFrames(runEvents(1), 10));
    expect(await iterator.next()).toMatchObject({ done: false, value: { seq: 1 } });
    await iterator.return?.();
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
    client.close();
  });
});
