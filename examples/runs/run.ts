/**
 * `npm run example:runs`: Redis, two gateway processes and three worker processes. Three users
 * submit runs on gateway A and follow them over SSE on gateway B; one run is cancelled through
 * gateway B; one worker is killed with SIGKILL mid-run. Every run ends with exactly one
 * `agent_completed`: succeeded, cancelled, or failed `WORKER_LOST` for the killed worker's runs.
 *
 * Needs a Redis at REDIS_URL (default redis://127.0.0.1:6379); its keys go under a fresh prefix,
 * deleted at the end.
 */
import { nanoid } from 'nanoid';
import { deleteKeysWithPrefix } from '../../src/transport/redis/admin.js';
import { probeRedis } from '../../src/transport/redis/index.js';
import { demoToken } from '../scale-out/auth.js';
import { ExampleProcess } from '../scale-out/processes.js';

interface WireEvent {
  type: string;
  runId: string;
  seq: number;
  data: { status?: string; error?: { code?: string } };
}

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const probe = await probeRedis(url, 1_500);
if (!probe.ok) {
  console.error(`example:runs needs Redis at ${url}: ${probe.reason}`);
  process.exit(1);
}
const keyPrefix = `agentwire-example-runs:${nanoid(6)}:`;
const env = { REDIS_URL: url, AGENTWIRE_KEY_PREFIX: keyPrefix, LEASE_MS: '2000', REAP_INTERVAL_MS: '250' };
const processes: ExampleProcess[] = [];
const spawn = (name: string, script: string) => {
  const child = new ExampleProcess(name, script, { ...env, GATEWAY_NAME: name });
  processes.push(child);
  return child;
};

/** Follows a thread over SSE, calling `onEvent` per event. */
async function follow(base: string, user: string, threadId: string, onEvent: (event: WireEvent) => void, signal: AbortSignal) {
  const response = await fetch(`${base}/events?threadId=${threadId}`, { headers: { Authorization: `Bearer ${demoToken(user)}` }, signal });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame.split('\n').filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trim()).join('');
        if (data) onEvent(JSON.parse(data) as WireEvent);
      }
    }
  })();
}

const stopAll = new AbortController();
try {
  const [gatewayA, gatewayB] = [spawn('gateway-a', '../runs/gateway.ts'), spawn('gateway-b', '../runs/gateway.ts')];
  const workers = ['worker-1', 'worker-2', 'worker-3'].map((name) => spawn(name, '../runs/worker.ts'));
  const a = String((await gatewayA.message('listening')).url);
  const b = String((await gatewayB.message('listening')).url);
  await Promise.all(workers.map((worker) => worker.message('ready')));
  console.log(`gateways ${a} and ${b}, 3 workers, key prefix ${keyPrefix}`);

  const users = ['ada', 'bo', 'cy'];
  const terminals = new Map<string, WireEvent[]>();
  for (const user of users) {
    await follow(b, user, `chat-${user}`, (event) => {
      if (event.type === 'agent_completed') terminals.set(event.runId, [...(terminals.get(event.runId) ?? []), event]);
    }, stopAll.signal);
  }
  const submit = async (user: string) => {
    const started = performance.now();
    const response = await fetch(`${a}/runs`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${demoToken(user)}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent: 'steps', input: { steps: 8, stepMs: 150 }, threadId: `chat-${user}` }),
    });
    const body = (await response.json()) as { runId: string };
    console.log(`POST /runs on A → ${response.status} ${body.runId} in ${(performance.now() - started).toFixed(1)} ms`);
    return { user, runId: body.runId };
  };
  const runs = [];
  for (let round = 0; round < 3; round++) for (const user of users) runs.push(await submit(user));

  // Stop one run through the *other* gateway, once it runs.
  const target = runs[0]!;
  await workers[0]!.message('run_started').catch(() => undefined);
  const cancel = await fetch(`${b}/runs/${encodeURIComponent(target.runId)}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${demoToken(target.user)}` } });
  console.log(`POST /runs/…/cancel on B → ${cancel.status} ${JSON.stringify(await cancel.json())}`);

  // Kill a worker that holds a run.
  const victim = workers.find((worker) => worker.messages.some((message) => message.type === 'run_started' && message.runId !== target.runId)) ?? workers[1]!;
  await victim.stop('SIGKILL');
  const killedAt = Date.now();
  console.log(`SIGKILL ${victim.name}`);

  const deadline = Date.now() + 30_000;
  while (runs.some((run) => !terminals.has(run.runId)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  for (const run of runs) {
    const ends = terminals.get(run.runId) ?? [];
    const last = ends[0];
    console.log(`${run.user} ${run.runId}: ${ends.length} terminal event(s): ${last?.data.status ?? 'none'}${last?.data.error?.code ? ` (${last.data.error.code})` : ''}`);
  }
  const lost = runs.filter((run) => terminals.get(run.runId)?.[0]?.data.error?.code === 'WORKER_LOST');
  console.log(`${lost.length} run(s) of the killed worker ended WORKER_LOST; detection within ${Date.now() - killedAt} ms of the kill or less (lease 2,000 ms)`);
  const ok = runs.every((run) => terminals.get(run.runId)?.length === 1);
  console.log(ok ? 'every run ended exactly once' : 'SOME RUN DID NOT END EXACTLY ONCE');
  process.exitCode = ok ? 0 : 1;
} finally {
  stopAll.abort();
  await Promise.all(processes.map((child) => child.stop('SIGTERM')));
  await deleteKeysWithPrefix(url, keyPrefix).catch(() => undefined);
}
