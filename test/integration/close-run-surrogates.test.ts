/**
 * A run a lost worker leaves open is ended in its log by `closeRunInLog` (the reaper's path), a
 * Lua script that reads the run's events back with cjson. cjson refuses an escaped lone surrogate,
 * which JSON.stringify writes for a text cut mid-pair: such an event used to be skipped, so the
 * closing events reused its seq and left its tool call open. Judged by what a subscriber reads.
 */
import { nanoid } from 'nanoid';
import { afterAll, afterEach, expect, it } from 'vitest';
import { generateRunId, validateLifecycle, type AgentEvent } from '../../src/index.js';
import { closeRunInLog } from '../../src/runs/bullmq/close-run.js';
import { RedisConnection } from '../../src/transport/redis/connection.js';
import { RedisEventLog, RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { Collector, REDIS_URL, deletePrefix, describeWithRedis, probeRedis } from '../helpers/redis-env.js';

const availability = await probeRedis();

describeWithRedis('closeRunInLog with lone surrogates in the run’s events (real Redis)', availability, () => {
  const prefix = `aw-close-surrogates-${nanoid(8)}:`;
  const closers: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  });
  afterAll(async () => {
    await deletePrefix(prefix);
  });

  it('closes the open tool call after the last seq and ends the run once: a valid lifecycle, nothing skipped', async () => {
    const transport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix: prefix });
    const log = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix });
    closers.push(() => transport.close(), () => log.close());
    const threadId = 't-surrogates';
    const runId = generateRunId(threadId);
    const base = { v: 1, runId, threadId, userId: 'ivy', agent: 'a', ts: Date.now() } as const;
    const sent = [
      { ...base, id: 'e1', seq: 1, type: 'agent_started', data: { metadata: {} } },
      { ...base, id: 'e2', seq: 2, type: 'agent_thinking', data: { text: 'cut \ud83d here' } },
      { ...base, id: 'e3', seq: 3, type: 'tool_executing', data: { toolCallId: 'call-1', tool: 'search', args: { q: '\udc00 lone low, \ud83d\ude00 a pair' } } },
      { ...base, id: 'e4', seq: 4, type: 'agent_thinking', data: { text: 'still \udbff going' } },
    ] as AgentEvent[];
    for (const event of sent) await transport.send(event);

    const connection = new RedisConnection(transport.options, 'close-surrogates');
    closers.push(() => connection.close());
    expect(await connection.waitReady(5_000)).toBe(true);
    const result = await closeRunInLog(connection, transport.keys, { maxLenPerThread: 1000, threadTtlSeconds: 600 }, {
      runId,
      userId: 'ivy',
      threadId,
      agent: 'a',
      status: 'failed',
      error: { name: 'WorkerLost', message: 'the worker is gone', code: 'WORKER_LOST' },
      metadata: {},
    });
    expect(result).toMatchObject({ kind: 'ended', toolsClosed: 1 });

    const subscribed = await log.subscribe({ userId: 'ivy', threadId }, new Collector());
    if (subscribed.status !== 'subscribed') throw new Error(`expected subscribed, got ${subscribed.status}`);
    subscribed.subscription.close();
    const events = subscribed.replay.map((entry) => entry.event);
    expect(events.map((event) => [event.type, event.seq])).toEqual([
      ['agent_started', 1],
      ['agent_thinking', 2],
      ['tool_executing', 3],
      ['agent_thinking', 4],
      ['tool_completed', 5],
      ['agent_completed', 6],
    ]);
    expect(events[4]!.data).toMatchObject({ toolCallId: 'call-1', tool: 'search', status: 'failed' });
    // The events the run wrote come back as sent, lone surrogates included.
    expect(events.slice(0, 4)).toEqual(sent);
    expect(validateLifecycle(events)).toEqual({ ok: true, runs: 1 });
  });
});
