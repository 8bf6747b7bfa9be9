import { deleteKeysWithPrefix, probeRedis as probeRedisAt } from '../../src/transport/redis/admin.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nanoid } from 'nanoid';
import { createClient } from 'redis';
import { afterAll, afterEach, describe, it } from 'vitest';
import { z } from 'zod';
import { BaseAgent, defineTool, type AgentEvent, type BaseAgentOptions, type LogEntry, type LogListener } from '../../src/index.js';
import { RedisEventLog, RedisStreamsTransport, type RedisStreamsTransportOptions } from '../../src/transport/redis/index.js';

/** The Redis the tests use: `REDIS_URL`, default `redis://127.0.0.1:6379`. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Set by `.ci/run`: a missing Redis fails the tests instead of skipping them. */
export const REDIS_REQUIRED = process.env.AGENTWIRE_REQUIRE_REDIS === '1';

/** PINGs a Redis with one short connection attempt; the reason when it does not answer. */
export function probeRedis(url = REDIS_URL, timeoutMs = 1_500): Promise<{ ok: true } | { ok: false; reason: string }> {
  return probeRedisAt(url, timeoutMs);
}

/** Whether `redis-server` can be started by the tests (for restart scenarios). */
export function redisServerBinary(): { ok: true } | { ok: false; reason: string } {
  const result = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) return { ok: false, reason: `redis-server is not runnable: ${result.error?.message ?? result.stderr}` };
  return { ok: true };
}

/**
 * `describe` for suites that need Redis. Unavailable Redis: the suite is skipped with a loud
 * console.warn — or, with `AGENTWIRE_REQUIRE_REDIS=1` (CI), replaced by a failing test.
 */
export function describeWithRedis(
  name: string,
  availability: { ok: true } | { ok: false; reason: string },
  body: () => void,
): void {
  if (availability.ok) {
    describe(name, body);
    return;
  }
  const message = `${name}: ${availability.reason} (REDIS_URL=${REDIS_URL})`;
  if (REDIS_REQUIRED) {
    describe(name, () => {
      it('has the Redis it requires (AGENTWIRE_REQUIRE_REDIS=1)', () => {
        throw new Error(`Redis is required but unavailable — ${message}`);
      });
    });
    return;
  }
  console.warn(
    `\n${'!'.repeat(78)}\n!! SKIPPED: ${message}\n!! Start redis-server or set REDIS_URL; AGENTWIRE_REQUIRE_REDIS=1 turns this skip into a failure.\n${'!'.repeat(78)}\n`,
  );
  describe.skip(name, body);
}

/** A key prefix of its own for one test: `agentwire-test:<file>:<random>:`. */
export function testPrefix(file: string): string {
  return `agentwire-test:${file}:${nanoid(8)}:`;
}

/** Deletes every key under `prefix`. */
export async function deletePrefix(prefix: string, url = REDIS_URL): Promise<void> {
  // A server that is gone has nothing left to clean.
  await deleteKeysWithPrefix(url, prefix).catch(() => undefined);
}

/**
 * Inside a describe: transports and logs on the prefix (read when each is made), closed after
 * each test (plus whatever else is pushed to `closers`), and the prefix's keys deleted after all.
 */
export function useRedisLogs(prefix: () => string) {
  const closers: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  });
  afterAll(async () => {
    await deletePrefix(prefix());
  });
  return {
    closers,
    transport(options: RedisStreamsTransportOptions = {}): RedisStreamsTransport {
      const transport = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix: prefix(), ...options });
      closers.push(() => transport.close());
      return transport;
    },
    gateway(): RedisEventLog {
      const log = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix() });
      closers.push(() => log.close());
      return log;
    },
  };
}

export async function rawClient(url = REDIS_URL) {
  const client = createClient({ url, RESP: 2, socket: { reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** A port on loopback that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface RedisServerOptions {
  /** Append-only file with fsync on every write: an accepted entry survives a crash. Default false (nothing on disk). */
  persistent?: boolean;
}

/**
 * A `redis-server` owned by one test, on a free loopback port, that can be stopped (SIGTERM or
 * SIGKILL) and started again on the same port. `dispose()` kills it and removes its directory.
 */
export class OwnedRedisServer {
  readonly url: string;
  private child: ChildProcess | undefined;
  private readonly dir: string;

  private constructor(
    readonly port: number,
    private readonly options: RedisServerOptions,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
    this.dir = mkdtempSync(join(tmpdir(), 'agentwire-redis-'));
  }

  static async start(options: RedisServerOptions = {}): Promise<OwnedRedisServer> {
    const server = new OwnedRedisServer(await freePort(), options);
    await server.start();
    return server;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const persistence = this.options.persistent
      ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
      : ['--appendonly', 'no', '--save', ''];
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--daemonize', 'no', ...persistence, '--loglevel', 'warning'],
      { stdio: 'ignore' },
    );
    this.child = child;
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    for (let i = 0; i < 100; i++) {
      if ((await probeRedis(this.url, 200)).ok) return;
      if (!this.child) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await this.stop('SIGKILL');
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  /** Stops the server and waits until the process is gone. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    this.child = undefined;
  }

  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A LogListener that records what a subscriber received, replay and live alike, in order, the
 * way a client would see it (entries with their cursors).
 */
export class Collector implements LogListener {
  readonly entries: LogEntry[] = [];
  closed: { reason: Error | undefined } | undefined;

  onEntries(entries: readonly LogEntry[]): void {
    for (const entry of entries) this.entries.push(entry);
  }

  onClose(reason?: Error): void {
    this.closed = { reason };
  }

  /** Puts the replay of a subscribe result in front of any live entries received before it was handled (nothing is deduplicated). */
  takeReplay(replay: readonly LogEntry[]): void {
    this.entries.unshift(...replay);
  }

  get events(): AgentEvent[] {
    return this.entries.map((entry) => entry.event);
  }

  get lastCursor(): string | undefined {
    return this.entries[this.entries.length - 1]?.cursor;
  }
}

/** Drops repeated event ids, keeping the first (what a client does: display exactly once). */
export function dedupeById(events: readonly AgentEvent[]): AgentEvent[] {
  const seen = new Set<string>();
  return events.filter((event) => (seen.has(event.id) ? false : (seen.add(event.id), true)));
}

export interface StepInput {
  /** Thoughts to emit; every fifth one is followed by an `echo` tool call. */
  steps: number;
  /** Before step `at`, wait for `until` (lets a test act at a quiet moment mid-run). */
  pause?: { at: number; until: Promise<unknown> };
}

/** A real agent with a predictable number of events: 2 + steps + 2 × floor(steps / 5). */
export class StepAgent extends BaseAgent<StepInput, number> {
  constructor(options: BaseAgentOptions = {}) {
    super({ name: 'stepper', ...options });
    this.addTool(
      defineTool({ name: 'echo', description: 'returns its text', parameters: z.object({ text: z.string() }), execute: ({ text }) => text }),
    );
  }

  static eventCount(steps: number): number {
    return 2 + steps + 2 * Math.floor(steps / 5);
  }

  protected async execute(input: StepInput): Promise<number> {
    for (let i = 0; i < input.steps; i++) {
      if (input.pause && input.pause.at === i) await input.pause.until;
      await this.think(`step ${i}`);
      if (i % 5 === 4) await this.callTool('echo', { text: `tool after step ${i}` });
    }
    return input.steps;
  }
}
