/**
 * The scale-out scenario, shared by `run.ts` (which prints it) and the multi-process test
 * (which asserts on it): two gateway processes and one worker process on one Redis; a client
 * follows the thread on gateway A; A is killed mid-run; the client resumes on gateway B with its
 * last cursor. Returns what the client received on each gateway.
 */
import { nanoid } from 'nanoid';
import WebSocket from 'ws';
import { connect, type AgentEvent, type AgentwireClient } from '../../src/client/index.js';
import { demoToken } from './auth.js';
import { ExampleProcess } from './processes.js';

export interface ScenarioOptions {
  redisUrl: string;
  /** Keys of this scenario (the caller deletes them afterwards). */
  keyPrefix: string;
  /** Agent steps of the run (events ≈ 2 + steps × 1.5). Default 40. */
  steps?: number;
  /** Delay per step in the worker. Default 25 ms. */
  stepDelayMs?: number;
  /** Kill gateway A once the client has this many events from it. Default 12. */
  killAfter?: number;
  /** Lines of the child processes. Default: dropped. */
  log?: (line: string) => void;
}

export interface ScenarioResult {
  threadId: string;
  userId: string;
  /** What the client displayed while connected to gateway A, then to gateway B. */
  fromA: AgentEvent[];
  fromB: AgentEvent[];
  /** The cursor the client resumed from on gateway B. */
  resumedAfter: string;
  /** Repeats the clients dropped by id (the transports deliver at least once). */
  duplicatesDropped: number;
  worker: { status: unknown; delivered: unknown; failed: unknown };
}

export async function runScaleOutScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const threadId = `scale-out-${nanoid(6)}`;
  const userId = 'alice';
  const env = { REDIS_URL: options.redisUrl, AGENTWIRE_KEY_PREFIX: options.keyPrefix };
  const processes: ExampleProcess[] = [];
  const clients: AgentwireClient[] = [];
  const start = (name: string, script: string, extra: Record<string, string> = {}) => {
    const child = new ExampleProcess(name, script, { ...env, ...extra }, options.log);
    processes.push(child);
    return child;
  };
  try {
    const gatewayA = start('gateway-A', 'gateway.ts', { GATEWAY_NAME: 'A' });
    const gatewayB = start('gateway-B', 'gateway.ts', { GATEWAY_NAME: 'B' });
    const urlA = String((await gatewayA.message('listening')).url);
    const urlB = String((await gatewayB.message('listening')).url);

    // The client follows the thread on A (before the run exists: it waits for it).
    const token = demoToken(userId);
    const clientA = connect(urlA, { threadId, token, WebSocket, reconnect: false });
    clients.push(clientA);
    const fromA: AgentEvent[] = [];
    clientA.on('event', (event) => fromA.push(event));
    await until(() => clientA.status === 'open', 'the client to be connected to gateway A');

    const worker = start('worker', 'worker.ts', {
      THREAD_ID: threadId,
      USER_ID: userId,
      STEPS: String(options.steps ?? 40),
      STEP_DELAY_MS: String(options.stepDelayMs ?? 25),
    });
    const killAfter = options.killAfter ?? 12;
    await until(() => fromA.length >= killAfter, `${killAfter} events through gateway A`);

    // Gateway A dies mid-run; the client moves to gateway B with its last cursor.
    await gatewayA.stop('SIGKILL');
    await until(() => clientA.status === 'closed', 'the client to notice gateway A is gone');
    const resumedAfter = clientA.cursor!;
    const clientB = connect(urlB, { threadId, token, WebSocket, after: resumedAfter });
    clients.push(clientB);
    const fromB: AgentEvent[] = [];
    clientB.on('event', (event) => fromB.push(event));

    const finished = await worker.message('run_finished', 60_000);
    await until(() => fromB.at(-1)?.type === 'agent_completed', 'the run to complete on gateway B', 30_000);
    return {
      threadId,
      userId,
      fromA,
      fromB,
      resumedAfter,
      duplicatesDropped: clientA.stats.duplicates + clientB.stats.duplicates,
      worker: { status: finished.status, delivered: finished.delivered, failed: finished.failed },
    };
  } finally {
    for (const client of clients) client.close();
    await Promise.all(processes.map((child) => child.stop('SIGTERM')));
  }
}

async function until(predicate: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
