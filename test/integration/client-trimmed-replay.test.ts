/**
 * A client that subscribes without a cursor gets the retained tail of the thread, which may begin in
 * the middle of a run (retention trimmed its agent_started): no LIFECYCLE_VIOLATION for that run, in
 * the replay or when it goes on live. Real gateway, real MemoryTransport, real client over loopback;
 * genuine violations (a seq gap, a live run without its start, a replayed run whose start was
 * retained and whose seq jumps) are still reported.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../src/index.js';
import { runEvents } from '../helpers/ws-fake-socket.js';
import { follow, startGateway, until } from '../helpers/ws-harness.js';

type Setup = Awaited<ReturnType<typeof startGateway>>;
let setup: Setup | undefined;
const clients: { client: { close(): void } }[] = [];

afterEach(async () => {
  for (const { client } of clients.splice(0)) client.close();
  await setup?.stop();
  setup = undefined;
});

async function sendAll(events: AgentEvent[]): Promise<void> {
  for (const event of events) await setup!.bridge.send(event);
}

function followThread(threadId: string) {
  const followed = follow(setup!.url, 'alice', threadId);
  clients.push(followed);
  return followed;
}

const violations = (errors: { code: string; details?: Record<string, unknown> }[]) =>
  errors.filter((e) => e.code === 'LIFECYCLE_VIOLATION').map((e) => (e.details as { violation: { rule: string; runId: string } }).violation);

describe('client lifecycle check over a trimmed replay', () => {
  it('a run whose agent_started was trimmed is left unchecked, in the replay and live; runs seen from their start are checked', async () => {
    setup = await startGateway({ memory: { maxEventsPerThread: 10 } });
    const long = runEvents(30, 'alice', 'th'); // agent_started, 30 thoughts, agent_completed: seq 1..32
    await sendAll(long.slice(0, 25)); // the log keeps seq 16..25
    const { client, events, errors } = followThread('th');
    await until(() => events.length === 10, 'the retained tail');
    expect(events.map((e) => e.seq)).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
    expect(client.status).toBe('open');

    await sendAll(long.slice(25)); // the long run goes on live and completes
    await until(() => events.length === 17, 'the live rest of the long run');
    expect(events.at(-1)).toMatchObject({ type: 'agent_completed', seq: 32 });
    expect(errors).toEqual([]);

    // A live run that the client saw start: a seq gap is still a violation.
    const gapped = runEvents(3, 'alice', 'th');
    await sendAll([gapped[0]!, gapped[1]!, gapped[3]!, gapped[4]!]);
    // A live run that began after the subscription and arrives without its agent_started.
    const headless = runEvents(2, 'alice', 'th');
    await sendAll(headless.slice(1));
    await until(() => events.length === 17 + 4 + 3, 'the two broken runs');
    expect(violations(errors)).toEqual([
      expect.objectContaining({ rule: 'seq_gap', runId: gapped[0]!.runId }),
      expect.objectContaining({ rule: 'started_first', runId: headless[0]!.runId }),
    ]);
    expect(errors.map((e) => e.code)).toEqual(['LIFECYCLE_VIOLATION', 'LIFECYCLE_VIOLATION']);
  });

  it('in the replay itself, a run whose agent_started was retained is checked (seq gap reported); the trimmed one is not', async () => {
    setup = await startGateway({ memory: { maxEventsPerThread: 10 } });
    const trimmed = runEvents(20, 'alice', 'th2');
    await sendAll(trimmed.slice(0, 18)); // seq 1..18: the log will keep only the last few
    const broken = runEvents(5, 'alice', 'th2');
    await sendAll([broken[0]!, broken[1]!, broken[2]!, broken[4]!, broken[5]!]); // seq 4 missing
    const { events, errors, client } = followThread('th2');
    await until(() => events.length === 10, 'the retained tail');
    // The tail: seq 14..18 of the trimmed run, then the broken run from its agent_started.
    expect(events.map((e) => [e.runId === broken[0]!.runId ? 'broken' : 'trimmed', e.seq])).toEqual([
      ['trimmed', 14],
      ['trimmed', 15],
      ['trimmed', 16],
      ['trimmed', 17],
      ['trimmed', 18],
      ['broken', 1],
      ['broken', 2],
      ['broken', 3],
      ['broken', 5],
      ['broken', 6],
    ]);
    await until(() => errors.length > 0, 'the violation');
    expect(violations(errors)).toEqual([expect.objectContaining({ rule: 'seq_gap', runId: broken[0]!.runId, seq: 5 })]);
    // The trimmed run finishes live: still unchecked, no violation.
    await sendAll(trimmed.slice(18));
    await until(() => events.length === 14, 'the end of the trimmed run');
    expect(violations(errors)).toHaveLength(1);
    expect(client.status).toBe('open');
  });

  it('a run first seen mid-way in the replay is left unchecked even where nothing was trimmed (the client cannot tell); a new live one is reported', async () => {
    setup = await startGateway();
    // A run whose agent_started never reached the log (sent without it): in the replay the client
    // cannot tell it from a trimmed start, so it is not reported there ...
    const headless = runEvents(2, 'alice', 'th3');
    await sendAll(headless.slice(1, 2));
    const { events, errors } = followThread('th3');
    await until(() => events.length === 1, 'the replay');
    // ... nor later (it is remembered as joined mid-way), while a new live run without its start is.
    await sendAll(headless.slice(2));
    const late = runEvents(1, 'alice', 'th3');
    await sendAll(late.slice(1));
    await until(() => events.length === 5, 'the live events');
    expect(violations(errors)).toEqual([expect.objectContaining({ rule: 'started_first', runId: late[0]!.runId })]);
  });
});
