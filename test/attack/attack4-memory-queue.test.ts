/**
 * Outside attacks (round 4) on MemoryRunQueue: a client-given run id the log already holds (F1),
 * close() with runs still waiting for a slot (F4), cancel of a run queued behind a busy worker (F5).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, BaseAgent, MemoryTransport, generateRunId, tokenFrom, validateLifecycle, type Authenticate } from '../../src/index.js';
import { RunsHandler } from '../../src/gateway/runs/index.js';
import { MemoryRunQueue } from '../../src/runs/index.js';
import { StepAgent, followThread } from '../helpers/runs-agents.js';
import { until, untilAsync } from '../helpers/wait.js';

const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** A memory log, a bridge, a queue and its StepAgent worker (closed after each test). */
function setup(options: { maxFinished?: number; concurrency?: number; serve?: boolean } = {}) {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  const queue = new MemoryRunQueue({ maxRunsPerUser: 100, ...(options.maxFinished !== undefined && { maxFinished: options.maxFinished }) });
  const agent = new StepAgent({ bridge });
  if (options.serve !== false) queue.serve({ agents: [agent] }, { concurrency: options.concurrency ?? 1 });
  stops.push(async () => {
    await queue.close({ timeoutMs: 50 });
    await bridge.close();
  });
  const follow = (userId: string, threadId: string) => followThread(transport, userId, threadId, stops);
  const finished = async (runId: string) => {
    for (let i = 0; i < 300 && (await queue.status(runId))?.state !== 'finished'; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    return queue.status(runId);
  };
  return { transport, bridge, queue, agent, follow, finished };
}

describe('attack F1: submit with a run id the workers’ log already holds', () => {
  it('is refused RUN_ID_CONFLICT before anything is queued; the log keeps its one run, the status stays unknown', async () => {
    const { transport, queue, agent, follow } = setup();
    const runId = generateRunId('known');
    const log = await follow('alice', 'known');
    expect((await agent.run({ steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'known', runId })).status).toBe('succeeded');
    expect(transport.hasRun(runId)).toBe(true);
    await expect(queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'known', runId })).rejects.toMatchObject({
      name: 'ValidationError',
      code: 'RUN_ID_CONFLICT',
      field: 'runId',
    });
    expect(await queue.status(runId)).toBeUndefined();
    expect(await queue.stats()).toMatchObject({ queued: 0, running: 0, submitted: 0 });
    // Barrier: a later run of the thread ends after anything a wrongly admitted run could have written.
    const marker = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'known' });
    await until(() => log.terminal(marker).length === 1, 'the marker run', 10_000);
    expect(log.terminal(runId)).toHaveLength(1);
    expect(log.terminal(runId)[0]).toMatchObject({ data: { status: 'succeeded' } });
    expect(validateLifecycle(log.events)).toEqual({ ok: true, runs: 2 });
  });

  it('a generated run id costs no log round trip; a client-given one asks the log once; a failing look-up refuses the submit', async () => {
    const { transport, queue } = setup();
    const asked: string[] = [];
    const hasRun = transport.hasRun.bind(transport);
    let fail = false;
    transport.hasRun = (runId: string) => {
      asked.push(runId);
      if (fail) throw new Error('log down');
      return hasRun(runId);
    };
    // The worker is busy: what asks the log below is the submit, not a worker starting the run.
    const busy = await queue.submit('steps', { steps: 100, stepMs: 50 }, { userId: 'bob', threadId: 'busy' });
    await untilAsync(async () => (await queue.status(busy))?.state === 'running', 'the busy run to start', 5_000);
    asked.length = 0;
    const generated = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'bob', threadId: 'gen' });
    expect((await queue.status(generated))?.state).toBe('queued');
    expect(asked).toEqual([]);
    const given = generateRunId('gen');
    await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'bob', threadId: 'gen', runId: given });
    expect(asked).toEqual([given]);
    fail = true;
    const unchecked = generateRunId('gen');
    await expect(queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'bob', threadId: 'gen', runId: unchecked })).rejects.toThrow('log down');
    expect(await queue.status(unchecked)).toBeUndefined();
  });

  it('over POST /runs: a run id whose status maxFinished pushed out while the log retains its events is 409 RUN_ID_CONFLICT', async () => {
    const { queue, follow, finished } = setup({ maxFinished: 1, concurrency: 2 });
    const authenticate: Authenticate = (req) => {
      const token = tokenFrom(req);
      return token ? { userId: token } : null;
    };
    const handler = new RunsHandler({ queue, authenticate, agents: ['steps'] });
    const server: Server = createServer((req, res) => {
      void handler.handle(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    stops.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/runs`;
    const post = (body: unknown) => fetch(base, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json', Authorization: 'Bearer alice' } });
    const runId = generateRunId('r1');
    const log = await follow('alice', 'r1');
    expect((await post({ agent: 'steps', threadId: 'r1', runId, input: { steps: 1, stepMs: 1 } })).status).toBe(202);
    expect(await finished(runId)).toMatchObject({ outcome: 'succeeded' });
    // Two more runs end: with maxFinished 1 the first run's status is forgotten.
    for (const threadId of ['r2', 'r3']) {
      const response = await post({ agent: 'steps', threadId, input: { steps: 1, stepMs: 1 } });
      expect(response.status).toBe(202);
      await finished(((await response.json()) as { runId: string }).runId);
    }
    expect(await queue.status(runId)).toBeUndefined();
    const again = await post({ agent: 'steps', threadId: 'r1', runId });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: { code: 'RUN_ID_CONFLICT', field: 'runId' } });
    expect(await queue.status(runId)).toBeUndefined();
    expect(log.terminal(runId)).toHaveLength(1);
    expect(log.terminal(runId)[0]).toMatchObject({ data: { status: 'succeeded' } });
  });
});

describe('attack F4: close() with runs still waiting for a worker slot', () => {
  it('ends each waiting run as a cancelled queued run: agent_started, agent_completed cancelled; status finished; the subscriber sees its end', async () => {
    const { queue, follow, finished } = setup({ concurrency: 1 });
    const busy = await queue.submit('steps', { steps: 100, stepMs: 50 }, { userId: 'erin', threadId: 'busy' });
    const waiting = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'erin', threadId: 'waiting' });
    const log = await follow('erin', 'waiting');
    await untilAsync(async () => (await queue.status(busy))?.state === 'running', 'the busy run to start', 5_000);
    expect((await queue.status(waiting))?.state).toBe('queued');
    await queue.close({ timeoutMs: 50 });
    expect(await finished(waiting)).toMatchObject({
      state: 'finished',
      outcome: 'cancelled',
      cancelRequested: false,
      error: { code: 'ABORTED', message: 'The run queue closed before a worker took it' },
    });
    expect(log.events.map((event) => event.type)).toEqual(['agent_started', 'agent_completed']);
    expect(log.events[1]).toMatchObject({ data: { status: 'cancelled', error: { code: 'ABORTED' } } });
    expect(await finished(busy)).toMatchObject({ state: 'finished', outcome: 'cancelled' });
    expect(await queue.stats()).toMatchObject({ queued: 0, running: 0 });
  });

  it('with no worker ever served, a waiting run’s status says it ended cancelled (no bridge wrote events)', async () => {
    const { queue, transport } = setup({ serve: false });
    const waiting = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'erin', threadId: 'nobody' });
    await queue.close({ timeoutMs: 50 });
    expect(await queue.status(waiting)).toMatchObject({ state: 'finished', outcome: 'cancelled', error: { code: 'ABORTED' } });
    expect(transport.read('nobody', 'erin')).toEqual([]);
    expect((await queue.stats()).queued).toBe(0);
  });
});

describe('attack F5: cancel of a run queued behind a busy worker', () => {
  it("answers 'cancelled' once the run has ended: status finished, terminal event in the log, never started", async () => {
    const { queue, follow } = setup({ concurrency: 1 });
    const busy = await queue.submit('steps', { steps: 100, stepMs: 50 }, { userId: 'bob', threadId: 'busy' });
    await untilAsync(async () => (await queue.status(busy))?.state === 'running', 'the busy run to start', 5_000);
    const queued = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'qb' });
    const log = await follow('alice', 'qb');
    expect(await queue.cancel(queued, { userId: 'alice' })).toBe('cancelled');
    expect(await queue.status(queued)).toMatchObject({ state: 'finished', outcome: 'cancelled', cancelRequested: true });
    expect(log.events.map((event) => event.type)).toEqual(['agent_started', 'agent_completed']);
    expect(log.events[1]).toMatchObject({ data: { status: 'cancelled' } });
    expect(await queue.cancel(queued, { userId: 'alice' })).toBe('already_finished');
    expect((await queue.status(busy))?.state).toBe('running');
  });

  it("with no worker to write its events it answers 'requested' and ends once one is served", async () => {
    const { queue, agent, follow } = setup({ serve: false });
    const queued = await queue.submit('steps', { steps: 1, stepMs: 1 }, { userId: 'alice', threadId: 'later' });
    const log = await follow('alice', 'later');
    expect(await queue.cancel(queued, { userId: 'alice' })).toBe('requested');
    queue.serve({ agents: [agent] });
    await until(() => log.terminal(queued).length === 1, 'the cancelled terminal event', 5_000);
    expect(log.terminal(queued)[0]).toMatchObject({ data: { status: 'cancelled' } });
  });
});

describe('a run cancelled before it began never runs the agent’s code', () => {
  it('a queued run cancelled, and one waiting when the queue closes, end cancelled without execute() being called', async () => {
    const calls: string[] = [];
    class Recording extends BaseAgent<{ id: string; ms?: number }, string> {
      constructor(bridge: AgentBridge) {
        super({ name: 'recording', bridge });
      }
      protected async execute(input: { id: string; ms?: number }): Promise<string> {
        calls.push(input.id);
        await new Promise((resolve) => setTimeout(resolve, input.ms ?? 1));
        return 'ok';
      }
    }
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const queue = new MemoryRunQueue();
    queue.serve({ agents: [new Recording(bridge)] }, { concurrency: 1 });
    stops.push(() => bridge.close());
    await queue.submit('recording', { id: 'busy', ms: 200 }, { userId: 'u', threadId: 't1' });
    const cancelled = await queue.submit('recording', { id: 'cancelled-queued' }, { userId: 'u', threadId: 't2' });
    const waiting = await queue.submit('recording', { id: 'waiting-at-close' }, { userId: 'u', threadId: 't3' });
    await until(() => calls.includes('busy'), 'the busy run started');
    expect(await queue.cancel(cancelled, { userId: 'u' })).toBe('cancelled');
    await queue.close({ timeoutMs: 1_000 });
    expect(calls).toEqual(['busy']);
    for (const [runId, threadId] of [[cancelled, 't2'], [waiting, 't3']] as const) {
      expect(await queue.status(runId)).toMatchObject({ state: 'finished', outcome: 'cancelled' });
      expect(transport.read(threadId, 'u').map((event) => event.type)).toEqual(['agent_started', 'agent_completed']);
    }
  });
});
