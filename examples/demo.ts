/**
 * `npm run demo`: a research agent runs two concurrent runs for two users on the embedded
 * in-memory transport. Each user's stream is printed as that user's subscriber receives it.
 */
import { AgentBridge, MemoryTransport, validateLifecycle, type AgentEvent } from '../src/index.js';
import { ResearchAgent } from './research-agent.js';

const colors = { alice: '\x1b[36m', bob: '\x1b[35m' } as const;
const reset = '\x1b[0m';

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
  }
}

async function main(): Promise<void> {
  const transport = new MemoryTransport();
  const bridge = new AgentBridge({ transport });
  await bridge.initialize();
  const agent = new ResearchAgent({ bridge });

  const users = [
    { userId: 'alice', threadId: 'thread-alice-1', question: 'What is Redis Streams?' },
    { userId: 'bob', threadId: 'thread-bob-1', question: 'How do WebSockets reconnect?' },
  ] as const;

  const received = new Map<string, AgentEvent[]>();
  for (const { userId, threadId } of users) {
    const events: AgentEvent[] = [];
    received.set(userId, events);
    // What a client of this user receives: its own thread, nothing else.
    transport.subscribeSync({ userId, threadId }, {
      onEntries(entries) {
        for (const { event } of entries) {
          events.push(event);
          const tag = `${colors[userId]}${userId.padEnd(5)}${reset}`;
          console.log(`${tag} #${String(event.seq).padStart(2)} ${event.type.padEnd(15)} ${describe(event)}`);
        }
      },
    });
  }

  console.log(`agentwire demo: ${agent.name}, two users, two concurrent runs (in-memory transport)\n`);
  const results = await Promise.all(users.map(({ userId, threadId, question }) => agent.run({ question }, { userId, threadId })));

  console.log('');
  for (const result of results) {
    const events = received.get(result.userId) ?? [];
    const check = validateLifecycle(events);
    const foreign = events.filter((e) => e.userId !== result.userId).length;
    console.log(
      `${result.userId}: run ${result.runId} ${result.status}, ${events.length} events received, ` +
        `lifecycle ${check.ok ? 'valid' : `INVALID (${check.violation.message})`}, foreign events ${foreign}`,
    );
  }
  const m = bridge.metrics();
  console.log(`bridge: emitted ${m.emitted}, delivered ${m.delivered}, failed ${m.failed}, p99 delivery ${m.deliveryLatencyMs.p99.toFixed(3)} ms`);
  await bridge.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
