/**
 * `npm run demo`: starts the demo server (chat page, WebSocket gateway at /ws, SSE gateway at
 * /events, POST /api/runs) on 127.0.0.1:4173, runs the research agent for two users at once and
 * prints each user's stream as that user's WebSocket client receives it, then keeps serving
 * the page until Ctrl-C.
 *
 * Environment: PORT (default 4173; 0 picks a free port), HOST (default 127.0.0.1),
 * TOOL_DELAY_MS (extra latency per tool call, default 0). Flag `--no-serve`: exit after the
 * terminal demo instead of serving the page.
 */
import { connect, validateLifecycle, type AgentEvent, type AgentwireClient } from '../src/client/node.js';
import { demoTokenFor, startDemoServer, type DemoServer } from './demo-server/index.js';

const colors = { alice: '\x1b[36m', bob: '\x1b[35m' } as const;
const reset = '\x1b[0m';
const bold = (text: string) => `\x1b[1m${text}${reset}`;

function describe(event: AgentEvent): string {
  switch (event.type) {
    case 'agent_started':
      return `input=${JSON.stringify(event.data.input)}`;
    case 'agent_thinking':
      return `"${event.data.text}"`;
    case 'tool_executing':
      return `${event.data.tool} args=${JSON.stringify(event.data.args)}`;
    case 'tool_completed':
      return event.data.status === 'succeeded'
        ? `${event.data.tool} ✓ ${event.data.durationMs.toFixed(1)} ms`
        : `${event.data.tool} ✗ ${event.data.durationMs.toFixed(1)} ms (${event.data.error.message})`;
    case 'agent_completed':
      return `${event.data.status} in ${event.data.durationMs.toFixed(1)} ms` +
        (event.data.status === 'succeeded' ? ` → ${String(event.data.result)}` : ` (${event.data.error.message})`);
    case 'user_answered':
      return event.data.kind === 'approval' ? (event.data.approved ? 'allowed' : 'denied') : `answered ${JSON.stringify(event.data.value)}`;
  }
}

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

/** Follows a user's thread over the WebSocket gateway, printing each event as it arrives. */
function follow(server: DemoServer, userId: 'alice' | 'bob', threadId: string) {
  const events: AgentEvent[] = [];
  const wsUrl = `${server.url.replace(/^http/, 'ws')}ws`;
  const client: AgentwireClient = connect(wsUrl, { threadId, token: demoTokenFor(userId) });
  const tag = `${colors[userId]}${userId.padEnd(5)}${reset}`;
  const subscribed = new Promise<void>((resolve) => client.on('status', (status) => status === 'open' && resolve()));
  const completed = new Promise<void>((resolve) => {
    client.on('event', (event) => {
      events.push(event);
      console.log(`${tag} #${String(event.seq).padStart(2)} ${event.type.padEnd(15)} ${describe(event)}`);
      if (event.type === 'agent_completed') resolve();
    });
  });
  client.on('error', (error) => console.error(`${tag} client error ${error.code}: ${error.message}`));
  return { userId, client, events, subscribed, completed };
}

async function askOverHttp(server: DemoServer, userId: string, threadId: string, question: string): Promise<string> {
  const response = await fetch(new URL('/api/runs', server.url), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${demoTokenFor(userId)}` },
    body: JSON.stringify({ question, threadId }),
  });
  const body = (await response.json()) as { runId?: string; error?: { message: string } };
  if (response.status !== 202 || !body.runId) throw new Error(`POST /api/runs: ${response.status} ${body.error?.message ?? ''}`);
  return body.runId;
}

async function main(): Promise<void> {
  const serve = !process.argv.includes('--no-serve');
  const server = await startDemoServer({
    port: envNumber('PORT', 4173),
    host: process.env.HOST || '127.0.0.1',
    toolDelayMs: envNumber('TOOL_DELAY_MS', 0),
  });
  const wsUrl = `${server.url.replace(/^http/, 'ws')}ws`;
  console.log(`agentwire demo: ${server.agent.name}, two users, two concurrent runs (WebSocket gateway ${wsUrl})\n`);

  const users = [
    { userId: 'alice', threadId: 'thread-alice-1', question: 'What is Redis Streams?' },
    { userId: 'bob', threadId: 'thread-bob-1', question: 'How do WebSockets reconnect?' },
  ] as const;
  const followers = users.map(({ userId, threadId }) => follow(server, userId, threadId));
  await Promise.all(followers.map((f) => f.subscribed));
  const runIds = await Promise.all(users.map(({ userId, threadId, question }) => askOverHttp(server, userId, threadId, question)));
  await Promise.all(followers.map((f) => f.completed));

  console.log('');
  followers.forEach((follower, i) => {
    const check = validateLifecycle(follower.events);
    const foreign = follower.events.filter((e) => e.userId !== follower.userId).length;
    console.log(
      `${follower.userId}: run ${runIds[i]} ${follower.events.at(-1)?.type === 'agent_completed' ? 'completed' : 'incomplete'}, ` +
        `${follower.events.length} events received over WebSocket, lifecycle ${check.ok ? 'valid' : `INVALID (${check.violation.message})`}, ` +
        `foreign events ${foreign}, duplicates dropped ${follower.client.stats.duplicates}`,
    );
    follower.client.close();
  });
  const m = server.bridge.metrics();
  console.log(`bridge: emitted ${m.emitted}, delivered ${m.delivered}, failed ${m.failed}, p99 delivery ${m.deliveryLatencyMs.p99.toFixed(3)} ms`);

  if (!serve) {
    await server.close();
    return;
  }
  console.log(`\n${bold('Open the chat page:')} ${server.url}?user=alice   (as bob: ${server.url}?user=bob, over SSE: add &transport=sse)`);
  console.log('Ask a question and watch the five events arrive; reload mid-run and nothing is lost or repeated. Ctrl-C to stop.');

  const stop = (): void => {
    console.log('\nstopping…');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
    console.error(`agentwire demo: port ${process.env.PORT ?? 4173} is in use; run with PORT=<free port> npm run demo`);
  } else {
    console.error(error);
  }
  process.exitCode = 1;
});
