/**
 * The gateway's own per-event work without sockets or a client process: `WebSocketGateway.send()`
 * → memory log → follower → send queue → the per-tick flush → `socket.send()`, into stub sockets
 * that only count what they are given. Next to it, in the same process, the raw batched
 * ceiling's own work (`JSON.stringify` per event, one queue per connection, `join` per tick).
 * The kernel and ws are left out on purpose: what is left is ours, and stable enough to compare
 * commits on a busy machine, or to count instructions under valgrind:
 *
 *   npx tsx bench/hot-path.ts [connections=1000] [perTick=1] [ticks=200]   (least CPU of 5 rounds per side)
 *   node bench/.build/hot-path.js …            (after a `npm run bench` build; esbuild output)
 *   valgrind --tool=callgrind node bench/.build/hot-path.js 1000 1 50
 */
import { EventEmitter } from 'node:events';
import { Connection, type ConnectionContext } from '../src/gateway/websocket/connection.js';
import { MemoryTransport } from '../src/index.js';
import { WebSocketGateway } from '../src/gateway/websocket/index.js';
import { authenticate } from './lib/servers.js';
import { groupFeeds } from './lib/events.js';

const [connections = 1000, perTick = 1, ticks = 200] = process.argv.slice(2).map(Number);
/** Measured rounds per side; the least CPU time of them is reported (the one least disturbed by other processes). */
const ROUNDS = Number(process.env.HOT_ROUNDS ?? 5);
/** `gateway` or `raw`: run one side only (instruction counts under valgrind). */
const ONLY = process.env.HOT_ONLY;

/**
 * What the gateway calls on a `ws` WebSocket, counting bytes: `send()` measures the message's
 * UTF-8 length (the first thing ws's sender does), and the internals the outbox's direct write
 * looks for (an idle sender, the TCP socket's `write`) are there, so both paths do their own
 * framing work and nothing of ws or the kernel.
 */
class StubSocket extends EventEmitter {
  bytes = 0;
  messages = 0;
  readonly bufferedAmount = 0;
  readonly readyState = 1;
  readonly _isServer = true;
  readonly _extensions = {};
  readonly _sender = { _state: 0, _firstFragment: true, _queue: [] };
  readonly _socket = {
    write: (data: string): boolean => {
      this.bytes += data.length;
      this.messages++;
      return true;
    },
  };
  send(message: string): void {
    this.bytes += Buffer.byteLength(message);
    this.messages++;
  }
  ping(): void {}
  close(): void {}
  terminate(): void {}
}

async function gatewayRun(): Promise<{ cpuUs: number; events: number; bytes: number }> {
  const transport = new MemoryTransport({ maxThreads: connections + 16, ...(process.env.TINY_LOG ? { maxEventsPerThread: 2 } : {}) });
  const gateway = new WebSocketGateway({ authenticate, transport, maxConnections: connections + 16, heartbeatIntervalMs: 0 });
  const context = (gateway as unknown as { context: ConnectionContext }).context;
  const feeds = groupFeeds('hot', connections);
  const sockets: StubSocket[] = [];
  for (let c = 0; c < connections; c++) {
    const socket = new StubSocket();
    sockets.push(socket);
    const connection = new Connection(`c${c}`, feeds[c]!.userId, socket as never, context);
    await connection.subscribe(feeds[c]!.threadId, undefined);
  }
  context.scheduler.flushAll();
  const measure = (rounds: number): number => {
    const before = process.cpuUsage();
    for (let t = 0; t < rounds; t++) {
      for (let c = 0; c < connections; c++) for (let k = 0; k < perTick; k++) void gateway.send(feeds[c]!.next());
      context.scheduler.flushAll();
    }
    const used = process.cpuUsage(before);
    return used.user + used.system;
  };
  measure(Math.max(1, ticks >> 2)); // warm-up
  const cpu = Math.min(...Array.from({ length: ROUNDS }, () => measure(ticks)));
  const bytes = sockets.reduce((sum, s) => sum + s.bytes, 0);
  await transport.close();
  return { cpuUs: cpu, events: ticks * connections * perTick, bytes };
}

function rawBatchedRun(): { cpuUs: number; events: number } {
  const feeds = groupFeeds('raw', connections);
  const sockets = feeds.map(() => new StubSocket());
  const queues: string[][] = feeds.map(() => []);
  const measure = (rounds: number): number => {
    const before = process.cpuUsage();
    for (let t = 0; t < rounds; t++) {
      for (let c = 0; c < connections; c++) for (let k = 0; k < perTick; k++) queues[c]!.push(JSON.stringify(feeds[c]!.next()));
      for (let c = 0; c < connections; c++) {
        const queue = queues[c]!;
        sockets[c]!.send(queue.length === 1 ? queue[0]! : `[${queue.join(',')}]`);
        queue.length = 0;
      }
    }
    const used = process.cpuUsage(before);
    return used.user + used.system;
  };
  measure(Math.max(1, ticks >> 2));
  return { cpuUs: Math.min(...Array.from({ length: ROUNDS }, () => measure(ticks))), events: ticks * connections * perTick };
}

const none = { cpuUs: NaN, events: 1 };
const raw = ONLY === 'gateway' ? none : rawBatchedRun();
const gw = ONLY === 'raw' ? none : await gatewayRun();
const us = (run: { cpuUs: number; events: number }): string => (run.cpuUs / run.events).toFixed(3);
console.log(`${connections} connections, ${perTick}/tick, ${ticks} ticks: gateway ${us(gw)} µs/event, raw batched ${us(raw)} µs/event (${(gw.cpuUs / gw.events / (raw.cpuUs / raw.events)).toFixed(2)}×)`);
process.exit(0);
