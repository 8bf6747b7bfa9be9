/**
 * Server process of the memory suite, started with `--expose-gc`: one WebSocketGateway (or a bare
 * `ws` server, silent or exchanging the opening messages) whose memory is read after full garbage collections, before and after the bench
 * client process opens its idle connections. A fresh process per case keeps the figures clean.
 */
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { serve, notify } from '../lib/ipc.js';
import { sleep } from '../lib/clock.js';
import { startGateway, startHandshakeServer, startRawServer } from '../lib/servers.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('memory-server needs node --expose-gc');

let close: (() => Promise<void>) | undefined;
let connections: () => number = () => 0;

serve({
  async start(args) {
    const { kind, maxConnections } = args as { kind: 'gateway' | 'raw' | 'raw-handshake'; maxConnections: number };
    if (kind === 'gateway') {
      // Defaults, except the limits the case needs: one user per connection, `maxConnections`
      // above the default 10,000, and a thread map that holds one thread per connection.
      const fixture = await startGateway({ maxConnections }, { maxThreads: maxConnections });
      close = fixture.close;
      connections = () => fixture.gateway.stats().connections.open;
      return { url: fixture.url };
    }
    const fixture = await (kind === 'raw' ? startRawServer() : startHandshakeServer());
    close = fixture.close;
    connections = () => fixture.sockets.size;
    return { url: fixture.url };
  },

  /** Memory after full collections (settled: three collections with pauses between). */
  async measure() {
    for (let i = 0; i < 3; i++) {
      gc();
      await sleep(50);
    }
    const usage = process.memoryUsage();
    return { rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external, arrayBuffers: usage.arrayBuffers, connections: connections() };
  },

  /** `measure` plus where the RSS goes: each V8 space's committed and used bytes, /proc/self/status (bench/heap-per-connection.ts `spaces`). */
  async spaces() {
    for (let i = 0; i < 3; i++) {
      gc();
      await sleep(50);
    }
    const usage = process.memoryUsage();
    return {
      rss: usage.rss,
      heapUsed: usage.heapUsed,
      spaces: Object.fromEntries(getHeapSpaceStatistics().map((space) => [space.space_name, { committed: space.space_size, used: space.space_used_size }])),
      status: procStatus(),
    };
  },

  /** A heap snapshot after full collections (finding what each connection holds). */
  async snapshot(args) {
    for (let i = 0; i < 3; i++) {
      gc();
      await sleep(50);
    }
    return { file: writeHeapSnapshot((args as { file: string }).file) };
  },

  async stop() {
    await close?.();
    return {};
  },
});

/** RssAnon, RssFile … of /proc/self/status in bytes (Linux; empty elsewhere). */
function procStatus(): Record<string, number> {
  try {
    const out: Record<string, number> = {};
    for (const line of readFileSync('/proc/self/status', 'utf8').split('\n')) {
      const match = /^(Rss\w+|VmRSS|VmData):\s+(\d+) kB/.exec(line);
      if (match) out[match[1]!] = Number(match[2]) * 1024;
    }
    return out;
  } catch {
    return {};
  }
}

notify('ready');
