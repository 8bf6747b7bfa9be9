/**
 * Connection faults with real servers and real sockets: the network dropped mid-burst (a TCP
 * proxy cut), a client replaced mid-burst by one resuming from its cursor, and the gateway
 * process killed with SIGKILL and restarted on the same port. Judged by what each real client
 * (`agentwire/client/node`) received.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LifecycleChecker, validateLifecycle, type AgentEvent } from '../../src/index.js';
import type { HistoryGapInfo } from '../../src/client/node.js';
import type { ChildMessage, RunRequest } from '../fixtures/gateway-process.js';
import { checkStream, figures, loadEvents, pause, perfect, startStack, type LoadInput, type Stack } from '../helpers/reliability-harness.js';
import { follow, until } from '../helpers/ws-harness.js';
import { TcpProxy } from '../helpers/ws-proxy.js';
import { useCleanup } from '../helpers/cleanup.js';

const cleanup = useCleanup();

async function stack(): Promise<Stack> {
  const started = await startStack();
  cleanup.push(() => started.stop());
  return started;
}

describe('connection dropped mid-burst', () => {
  it('clients cut off repeatedly while 30 users burst, and one replaced by a client resuming from its cursor, each get every event once, in order', async () => {
    const s = await stack();
    const proxy = await TcpProxy.start(s.port);
    cleanup.push(() => proxy.close());
    const users = Array.from({ length: 30 }, (_, i) => `u${i}`);
    const clients = users.map((userId) => follow(proxy.url(), userId, `thread-${userId}`));
    cleanup.push(() => clients.forEach((f) => f.client.close()));
    await until(() => clients.every((f) => f.client.status === 'open'), 'all subscribed');

    const run: LoadInput = { thoughts: 80, tools: 12, parallel: true, failEvery: 4 };
    const perUser = 2 * loadEvents(run);
    const runs = Promise.all(users.flatMap((userId) => [0, 1].map(() => s.load.run(run, { userId, threadId: `thread-${userId}` }))));
    const total = (): number => clients.reduce((sum, f) => sum + f.events.length, 0);
    const goal = users.length * perUser;

    // u0's client goes away mid-burst; a new client takes over from its cursor (a page reload).
    await until(() => clients[0]!.events.length >= 40, 'u0 mid-burst');
    clients[0]!.client.close();
    const resumed = follow(proxy.url(), 'u0', 'thread-u0', { after: clients[0]!.client.cursor! });
    cleanup.push(() => resumed.client.close());
    for (const fraction of [0.2, 0.45, 0.7]) {
      await until(() => total() + resumed.events.length >= goal * fraction, `${fraction * 100}% delivered`, 4_000);
      proxy.cut();
    }
    await runs;
    const others = clients.slice(1);
    await until(
      () => others.every((f) => f.events.length === perUser) && clients[0]!.events.length + resumed.events.length === perUser,
      'every event after the cuts',
      4_000,
    );
    await pause(20);

    expect(proxy.cuts).toBe(3);
    for (const f of others) {
      const report = checkStream(f, s.emitted.expected(f.userId, f.threadId));
      expect(report).toEqual(perfect(report, 2));
      expect(f.client.stats.reconnects).toBeGreaterThanOrEqual(1); // a client still reconnecting at a cut misses that cut
      expect(f.errors).toEqual([]);
    }
    // The page before the reload plus the page after it: the thread, exactly once, in order.
    const joined = { ...resumed, events: [...clients[0]!.events, ...resumed.events] };
    const report = checkStream(joined, s.emitted.expected('u0', 'thread-u0'));
    expect(report).toEqual(perfect(report, 2));
    const reconnects = others.reduce((sum, f) => sum + f.client.stats.reconnects, 0);
    const dropped = clients.reduce((sum, f) => sum + f.client.stats.duplicates, 0) + resumed.client.stats.duplicates;
    figures('connection dropped mid-burst', { users: users.length, events: goal, cuts: proxy.cuts, reconnects, droppedByDedupe: dropped });
  });
});

describe('a client away while its thread was evicted and started again', () => {
  it('resumes with an explicit history_gap and then the whole new run, never the new log from the middle', async () => {
    // A log that keeps 4 threads: alice's thread is evicted while she is away, then used again.
    const s = await startStack({ memory: { maxThreads: 4 } });
    cleanup.push(() => s.stop());
    const away = follow(s.url, 'alice', 'chat');
    cleanup.push(() => away.client.close());
    await until(() => away.client.status === 'open', 'subscribed');
    await s.scripted.run([{ think: 'first question' }], { userId: 'alice', threadId: 'chat' });
    await until(() => away.events.length === 3, 'first run');
    const cursor = away.client.cursor!;
    away.client.close(); // the laptop lid closes

    // Other users' threads push alice's out of the log (her cursor's history is gone) …
    for (let i = 0; i < 6; i++) await s.load.run({ thoughts: 20, tools: 4 }, { userId: `other${i}`, threadId: `other-${i}` });
    expect(s.transport.read('chat', 'alice')).toEqual([]);
    // … then she asks again: the same thread id gets a new log.
    const second = await s.load.run({ thoughts: 20, tools: 4 }, { userId: 'alice', threadId: 'chat' });

    const back = follow(s.url, 'alice', 'chat', { after: cursor });
    cleanup.push(() => back.client.close());
    const gaps: HistoryGapInfo[] = [];
    back.client.on('history_gap', (gap) => gaps.push(gap));
    await until(() => back.events.length >= second.events, 'the new run');
    await pause(20);
    // The cursor of the evicted log is refused explicitly …
    expect(gaps).toEqual([expect.objectContaining({ threadId: 'chat', reason: 'trimmed', requested: cursor })]);
    expect(back.errors.map((e) => e.code)).toEqual(['HISTORY_GAP']);
    // … and the new run arrives whole, from its agent_started (not from the old cursor's offset on).
    const newRun = s.emitted.expected('alice', 'chat').filter((e) => e.runId === second.runId);
    expect(back.events.map((e) => e.id)).toEqual(newRun.map((e) => e.id));
    expect(validateLifecycle(back.events)).toEqual({ ok: true, runs: 1 });
  });
});

// ---------------------------------------------------------------------------------------------

const fixture = fileURLToPath(new URL('../fixtures/gateway-process.ts', import.meta.url));

interface GatewayProcess {
  child: ChildProcess;
  port: number;
  epoch: string;
  run(userId: string, threadId: string, input: LoadInput): { started: Promise<string>; done: Promise<{ runId: string; status: string; ids: string[] }> };
  kill(): Promise<void>;
}

/** Starts the fixture on `port` (0: any); retries while the port is still taken by the previous process. */
async function startProcess(port: number, attempts = 20): Promise<GatewayProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnProcess(port);
    } catch (error) {
      if (attempt >= attempts) throw error;
      await pause(100);
    }
  }
}

function spawnProcess(port: number): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  cleanup.push(kill); // on every exit path
  const waiting = new Map<number, { started: (runId: string) => void; done: (result: { runId: string; status: string; ids: string[] }) => void }>();
  let nextId = 0;
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => {
      void kill();
      reject(new Error(`gateway process did not start: ${stderr}`));
    }, 20_000);
    child.once('exit', (code) => {
      clearTimeout(guard);
      reject(new Error(`gateway process exited (${code}) before it was ready: ${stderr.slice(-500)}`));
    });
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') {
        clearTimeout(guard);
        resolve({
          child,
          port: message.port,
          epoch: message.epoch,
          kill,
          run(userId, threadId, input) {
            const id = nextId++;
            const request: RunRequest = { type: 'run', id, userId, threadId, input };
            let started!: (runId: string) => void;
            let done!: (result: { runId: string; status: string; ids: string[] }) => void;
            const result = {
              started: new Promise<string>((r) => (started = r)),
              done: new Promise<{ runId: string; status: string; ids: string[] }>((r) => (done = r)),
            };
            waiting.set(id, { started, done });
            child.send(request);
            return result;
          },
        });
      } else if (message.type === 'started') {
        waiting.get(message.id)?.started(message.runId);
      } else {
        waiting.get(message.id)?.done(message);
        waiting.delete(message.id);
      }
    });
  });
}

describe('gateway process killed and restarted', () => {
  it('clients reconnect to the new process, get an explicit history_gap (never a partial replay), then every event of the new runs exactly once', async () => {
    const first = await startProcess(0);
    const port = first.port;
    const url = `ws://127.0.0.1:${port}/ws`;
    const users = ['alice', 'bob', 'carol', 'dave'];
    const clients = users.map((userId) => {
      const f = follow(url, userId, `chat-${userId}`, { reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
      // One timeline per client: events and gaps in the order the application saw them.
      const timeline: Array<{ event: AgentEvent } | { gap: HistoryGapInfo }> = [];
      f.client.on('event', (event) => timeline.push({ event }));
      f.client.on('history_gap', (gap) => timeline.push({ gap }));
      return { ...f, timeline };
    });
    cleanup.push(() => clients.forEach((f) => f.client.close()));
    await until(() => clients.every((f) => f.client.status === 'open'), 'all subscribed');

    // Before the crash: one complete run per user …
    const short: LoadInput = { thoughts: 20, tools: 5, parallel: true };
    const before = await Promise.all(clients.map((f) => first.run(f.userId, f.threadId, short).done));
    await until(() => clients.every((f, i) => f.events.length === before[i]!.ids.length), 'the runs before the crash');
    // … and one long run per user, under way when the process is killed.
    const long: LoadInput = { thoughts: 400, tools: 100, toolDelayMs: 10 };
    const killed = await Promise.all(clients.map((f) => first.run(f.userId, f.threadId, long).started));
    await until(() => clients.every((f) => f.events.filter((e) => killed.includes(e.runId)).length >= 20), 'the long runs under way');
    await first.kill();
    await until(() => clients.every((f) => f.client.status === 'reconnecting'), 'clients noticed');

    const second = await startProcess(port);
    expect(second.port).toBe(port);
    expect(second.epoch).not.toBe(first.epoch);
    await until(() => clients.every((f) => f.errors.length > 0 && f.client.status === 'open'), 'clients back, gap reported', 4_000);
    const after = await Promise.all(clients.map((f) => second.run(f.userId, f.threadId, short).done));
    await until(() => clients.every((f, i) => f.events.length === before[i]!.ids.length + countOf(f.events, killed[i]!) + after[i]!.ids.length), 'the runs after the restart');
    await pause(30);

    for (const [i, f] of clients.entries()) {
      // The gap is explicit: reported once, as an epoch change, and as an error the application sees.
      expect(f.errors.map((e) => [e.code, (e.details as { reason?: string } | undefined)?.reason])).toEqual([['HISTORY_GAP', 'epoch_changed']]);
      const gapAt = f.timeline.findIndex((entry) => 'gap' in entry);
      const seen = f.timeline.map((entry) => ('event' in entry ? entry.event.id : 'GAP'));
      // Before the gap: the complete run and a prefix of the killed one, nothing repeated, nothing replayed after it.
      const beforeGap = f.timeline.slice(0, gapAt).map((entry) => (entry as { event: AgentEvent }).event);
      expect(beforeGap.map((e) => e.id).slice(0, before[i]!.ids.length)).toEqual(before[i]!.ids);
      const prefix = beforeGap.filter((e) => e.runId === killed[i]);
      expect(prefix.length).toBeGreaterThanOrEqual(20);
      expect(prefix.map((e) => e.seq)).toEqual(prefix.map((_, k) => k + 1));
      expect(prefix.some((e) => e.type === 'agent_completed')).toBe(false); // the run died with the process
      const checker = new LifecycleChecker();
      beforeGap.forEach((e) => checker.push(e));
      expect(checker.firstViolation).toBeUndefined();
      expect(checker.finish().map((v) => [v.rule, v.runId])).toEqual([['incomplete', killed[i]]]);
      // After the gap: exactly the runs started after the restart, once each, in order.
      expect(seen.slice(gapAt + 1)).toEqual(after[i]!.ids);
      expect(validateLifecycle(f.events.slice(beforeGap.length))).toEqual({ ok: true, runs: 1 });
      expect(new Set(f.events.map((e) => e.id)).size).toBe(f.events.length);
      expect(f.events.every((e) => e.userId === f.userId && e.threadId === f.threadId)).toBe(true);
      expect(f.client.stats.reconnects).toBeGreaterThanOrEqual(1);
    }
    figures('gateway process killed and restarted', {
      users: users.length,
      eventsBeforeKill: clients.map((f, i) => before[i]!.ids.length + countOf(f.events, killed[i]!)),
      eventsAfterRestart: after.map((r) => r.ids.length),
      reconnectAttempts: clients.map((f) => f.client.stats.reconnects),
    });
  });
});

function countOf(events: AgentEvent[], runId: string): number {
  return events.filter((e) => e.runId === runId).length;
}
