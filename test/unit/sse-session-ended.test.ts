/**
 * SseSession.open() given an `ended` follow result (the log ended the subscription while it
 * answered): the gateway refuses such a request before its response starts; a session opened with
 * one anyway (its headers out) must end its stream with a `close` event, never hang.
 */
import { describe, expect, it } from 'vitest';
import { AuthError } from '../../src/index.js';
import type { FollowResult } from '../../src/gateway/follower.js';
import { SseSession, type SseSink } from '../../src/gateway/sse/session.js';

function opened(result: FollowResult) {
  const finished: string[] = [];
  const session = new SseSession('eve', 't1', undefined, { retryMs: 2000, maxQueuedChars: 1 << 20, maxQueuedEntries: 100 }, {
    finished: (_session, reason) => finished.push(reason),
    poisoned: () => undefined,
    isolationDrop: () => undefined,
    framesSent: () => undefined,
  });
  const sink = { text: '', ended: false, destroyed: false } as { text: string; ended: boolean; destroyed: boolean } & SseSink;
  sink.write = (text: string) => ((sink.text += text), true);
  sink.end = () => {
    sink.ended = true;
    session.finished();
  };
  sink.destroy = () => {
    sink.destroyed = true;
    session.finished();
  };
  session.open(sink, result);
  return { sink, finished };
}

const closeFrames = (text: string) =>
  text
    .split('\n\n')
    .filter((block) => block.startsWith('event: close\n'))
    .map((block) => JSON.parse(block.slice(block.indexOf('data: ') + 6)) as { code: string });

describe('SseSession.open() with an ended result', () => {
  it('another user’s thread: the stream ends with close THREAD_FORBIDDEN', () => {
    const { sink, finished } = opened({ status: 'ended', reason: 'log_closed', error: new AuthError('not yours', { code: 'THREAD_FORBIDDEN' }) });
    expect(sink.text.startsWith('retry: 2000\n\n')).toBe(true);
    expect(closeFrames(sink.text)).toMatchObject([{ code: 'THREAD_FORBIDDEN' }]);
    expect(sink.ended).toBe(true);
    expect(finished).toEqual(['log_closed']);
  });

  it('closed by the log or past the live bound: the stream ends with close SUBSCRIPTION_ENDED', () => {
    for (const reason of ['log_closed', 'overflow'] as const) {
      const { sink, finished } = opened({ status: 'ended', reason });
      expect(closeFrames(sink.text), reason).toMatchObject([{ code: 'SUBSCRIPTION_ENDED' }]);
      expect(sink.ended, reason).toBe(true);
      expect(finished, reason).toEqual(['log_closed']);
    }
  });

  it('closed by the gateway meanwhile (no reason known): the stream still ends', () => {
    const { sink, finished } = opened({ status: 'ended', reason: 'closed' });
    expect(closeFrames(sink.text)).toMatchObject([{ code: 'GATEWAY_CLOSED' }]);
    expect(sink.ended).toBe(true);
    expect(finished).toHaveLength(1);
  });
});
