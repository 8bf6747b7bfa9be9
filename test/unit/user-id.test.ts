/**
 * A user id is 1-256 characters of well-formed UTF-16 at every place one enters (attack 6, f3):
 * Redis stores UTF-8, where a lone surrogate becomes U+FFFD, so `alice\ud800`, `alice\udbff` and
 * `alice\ufffd` were three users in the process and one owner in Redis. The oracle below is an
 * independent scan of code units (not the predicate under test).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AgentBridge,
  AuthError,
  BaseAgent,
  MemoryTransport,
  ThreadRegistry,
  ValidationError,
  assertUserId,
  generateRunId,
  isValidUserId,
  parseEvent,
  type AgentEvent,
} from '../../src/index.js';
import { authenticateRequest, principalProblem, type AuthRequest } from '../../src/gateway/index.js';
import { userIdSchema } from '../../src/ids/index.js';
import { answerFrameSchema, cancelFrameSchema } from '../../src/protocol/frames.js';
import { MemoryRunQueue } from '../../src/runs/index.js';

/** Reference: no high surrogate without a low one right after it, no low one without a high one right before it. */
function wellFormed(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = i + 1 < value.length ? value.charCodeAt(i + 1) : -1;
      if (next < 0xdc00 || next > 0xdfff) return false;
      i++;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      return false;
    }
  }
  return true;
}

const high = fc.integer({ min: 0xd800, max: 0xdbff }).map((unit) => String.fromCharCode(unit));
const low = fc.integer({ min: 0xdc00, max: 0xdfff }).map((unit) => String.fromCharCode(unit));
const part = fc.string({ unit: 'binary', maxLength: 100 });
const notLow = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter((c) => c.charCodeAt(0) < 0xdc00 || c.charCodeAt(0) > 0xdfff);
const notHigh = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter((c) => c.charCodeAt(0) < 0xd800 || c.charCodeAt(0) > 0xdbff);

/** Strings of 1-256 code units that always hold a lone surrogate: a high one at the end or before a non-low, a low one at the start or after a non-high. */
const withLoneSurrogate = fc.oneof(
  fc.tuple(part, high).map(([a, h]) => a + h),
  fc.tuple(low, part).map(([l, b]) => l + b),
  fc.tuple(part, high, notLow, part).map(([a, h, c, b]) => a + h + c + b),
  fc.tuple(part, notHigh, low, part).map(([a, c, l, b]) => a + c + l + b),
  fc.constantFrom('alice\ud800', 'alice\udbff', '\udfffalice', 'a\udc00\ud800b'),
);
/** Well-formed strings of 1-256 code units, astral characters (surrogate pairs) and U+FFFD included. */
const wellFormedId = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 256 }).filter(wellFormed),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }).filter((s) => s.length <= 256),
  fc.constantFrom('alice', 'alice\ufffd', 'alice\ud83d\ude00', '\u{10ffff}', 'u'.repeat(256)),
);

function event(userId: string): unknown {
  const threadId = 't-1';
  return {
    v: 1,
    id: 'e1',
    type: 'agent_started',
    runId: generateRunId(threadId),
    threadId,
    userId,
    agent: 'a',
    seq: 1,
    ts: 0,
    data: { metadata: {} },
  };
}

class Echo extends BaseAgent<string, string> {
  constructor(bridge: AgentBridge) {
    super({ name: 'echo', bridge });
  }
  protected execute(input: string): Promise<string> {
    return Promise.resolve(input);
  }
}

const request: AuthRequest = { method: 'GET', url: new URL('http://localhost/events'), headers: { get: () => null }, raw: {} as Request };

async function codeOf(work: () => unknown): Promise<string | undefined> {
  try {
    await work();
    return undefined;
  } catch (error) {
    return error instanceof ValidationError || error instanceof AuthError ? `${error.name}:${error.code}` : `untyped:${String(error)}`;
  }
}

describe('user ids: well-formed UTF-16 at every entry point', () => {
  it('the oracle: every generated id with a lone surrogate is ill-formed, every other one well-formed', () => {
    fc.assert(fc.property(withLoneSurrogate, (id) => !wellFormed(id) && id.length >= 1 && id.length <= 256));
    fc.assert(fc.property(wellFormedId, (id) => wellFormed(id) && id.length >= 1 && id.length <= 256));
  });

  it('isValidUserId, assertUserId, userIdSchema, principalProblem and the event schema agree with the oracle on any string', () => {
    fc.assert(
      fc.property(fc.oneof(withLoneSurrogate, wellFormedId, fc.string({ unit: 'binary', maxLength: 300 })), (id) => {
        const valid = id.length >= 1 && id.length <= 256 && wellFormed(id);
        expect(isValidUserId(id)).toBe(valid);
        expect(userIdSchema.safeParse(id).success).toBe(valid);
        expect(principalProblem({ userId: id }) === undefined).toBe(valid);
        let thrown: unknown;
        try {
          assertUserId(id);
        } catch (error) {
          thrown = error;
        }
        if (valid) expect(thrown).toBeUndefined();
        else expect(thrown).toMatchObject({ name: 'ValidationError', code: 'INVALID_USER_ID', field: 'userId' });
        let parsed: unknown;
        try {
          parsed = parseEvent(event(id));
        } catch (error) {
          parsed = error;
        }
        if (valid) expect((parsed as AgentEvent).userId).toBe(id);
        else expect(parsed).toMatchObject({ name: 'ValidationError', code: 'INVALID_EVENT', field: 'userId' });
      }),
      { numRuns: 500 },
    );
  });

  it('run(), the auth hook, the run queue (submit and cancel) and the ThreadRegistry refuse any id with a lone surrogate, before any event', async () => {
    await fc.assert(
      fc.asyncProperty(withLoneSurrogate, async (userId) => {
        const transport = new MemoryTransport();
        const agent = new Echo(new AgentBridge({ transport }));
        expect(await codeOf(() => agent.run('x', { userId, threadId: 'victim' }))).toBe('ValidationError:INVALID_USER_ID');
        expect(transport.eventCount).toBe(0);

        const reported: unknown[] = [];
        const auth = () => authenticateRequest(() => ({ userId }), request, { timeoutMs: 1_000, report: (error) => reported.push(error) });
        expect(await codeOf(auth)).toBe('AuthError:AUTH_FAILED');
        expect(reported).toEqual([expect.objectContaining({ name: 'ValidationError', code: 'INVALID_USER_ID' })]);

        const queue = new MemoryRunQueue();
        expect(await codeOf(() => queue.submit('echo', 'x', { userId, threadId: 'victim' }))).toBe('ValidationError:INVALID_USER_ID');
        const victimRun = await queue.submit('echo', 'x', { userId: 'alice\ufffd', threadId: 'victim' });
        expect(await codeOf(() => queue.cancel(victimRun, { userId }))).toBe('ValidationError:INVALID_USER_ID');
        expect(await queue.status(victimRun)).toMatchObject({ state: 'queued', cancelRequested: false, userId: 'alice\ufffd' });
        await queue.close();

        const registry = new ThreadRegistry();
        expect(await codeOf(() => registry.register(generateRunId('victim'), 'victim', userId))).toBe('ValidationError:INVALID_USER_ID');
        expect(registry.size).toEqual({ runs: 0, threads: 0 });
        await transport.close();
      }),
      { numRuns: 60 },
    );
  });

  it('the same entry points accept every well-formed id (U+FFFD and astral characters included), and the run reaches that user', async () => {
    await fc.assert(
      fc.asyncProperty(wellFormedId, async (userId) => {
        const transport = new MemoryTransport();
        const agent = new Echo(new AgentBridge({ transport }));
        const result = await agent.run('x', { userId, threadId: 'own' });
        expect(result.status).toBe('succeeded');
        expect(transport.read('own', userId).map((e) => e.userId)).toEqual([userId, userId]);

        const principal = await authenticateRequest(() => ({ userId }), request, { timeoutMs: 1_000, report: () => undefined });
        expect(principal.userId).toBe(userId);

        const queue = new MemoryRunQueue();
        const runId = await queue.submit('echo', 'x', { userId, threadId: 'own' });
        expect(await queue.cancel(runId, { userId })).toBe('requested'); // queued, no worker: ends when one is served
        await queue.close();

        const registry = new ThreadRegistry();
        registry.register(generateRunId('own'), 'own', userId);
        expect(registry.size.runs).toBe(1);
        await transport.close();
      }),
      { numRuns: 60 },
    );
  });

  it('the answer and cancel frames refuse a run or request id with a lone surrogate and take well-formed ones', () => {
    fc.assert(
      fc.property(withLoneSurrogate.filter((s) => s.length <= 64), wellFormedId.filter((s) => s.length <= 64), (bad, good) => {
        const answer = { type: 'answer', threadId: 't', runId: good, requestId: good, approved: true };
        expect(answerFrameSchema.safeParse(answer).success).toBe(true);
        expect(answerFrameSchema.safeParse({ ...answer, runId: bad }).success).toBe(false);
        expect(answerFrameSchema.safeParse({ ...answer, requestId: bad }).success).toBe(false);
        expect(cancelFrameSchema.safeParse({ type: 'cancel', runId: good }).success).toBe(true);
        expect(cancelFrameSchema.safeParse({ type: 'cancel', runId: bad }).success).toBe(false);
      }),
    );
  });
});
