import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { freePort, probeRedis } from './redis-env.js';

/** Whether a local Redis Cluster can be started: `redis-server` and `redis-cli` (with `--cluster`) are runnable. */
export function redisClusterBinaries(): { ok: true } | { ok: false; reason: string } {
  for (const binary of ['redis-server', 'redis-cli']) {
    const result = spawnSync(binary, ['--version'], { encoding: 'utf8' });
    if (result.error || result.status !== 0) return { ok: false, reason: `${binary} is not runnable: ${result.error?.message ?? result.stderr}` };
  }
  return { ok: true };
}

/** One master of an owned cluster, with the slots `redis-cli --cluster create` gave it. */
export interface ClusterMaster {
  readonly port: number;
  readonly url: string;
  /** Inclusive slot ranges. */
  readonly slots: ReadonlyArray<readonly [number, number]>;
}

/**
 * A Redis Cluster of three masters (no replicas) owned by one test file: three `redis-server
 * --cluster-enabled yes` on free loopback ports, joined with `redis-cli --cluster create`, ready
 * once every node reports `cluster_state:ok`. Nothing is persisted; `dispose()` kills the nodes
 * and removes their directory.
 */
export class OwnedRedisCluster {
  readonly masters: ClusterMaster[] = [];
  private readonly children: ChildProcess[] = [];

  private constructor(
    readonly ports: number[],
    private readonly dir: string,
  ) {}

  /** URLs of the nodes (what `cluster.rootNodes` takes). */
  get rootNodes(): string[] {
    return this.ports.map((port) => `redis://127.0.0.1:${port}`);
  }

  /** Starts a cluster; a second attempt on other ports when the first fails (a port taken meanwhile, its bus port in use). */
  static async start(masters = 3): Promise<OwnedRedisCluster> {
    for (let attempt = 1; ; attempt++) {
      const ports: number[] = [];
      while (ports.length < masters) {
        const port = await freePort();
        // The cluster bus listens on port + 10000: it must be a valid port too.
        if (port + 10_000 < 65_536 && !ports.includes(port)) ports.push(port);
      }
      const cluster = new OwnedRedisCluster(ports, mkdtempSync(join(tmpdir(), 'agentwire-cluster-')));
      try {
        await cluster.boot();
        return cluster;
      } catch (error) {
        await cluster.dispose();
        if (attempt >= 2) throw error;
      }
    }
  }

  private async boot(): Promise<void> {
    for (const port of this.ports) {
      const child = spawn(
        'redis-server',
        [
          '--port', String(port),
          '--bind', '127.0.0.1',
          '--cluster-enabled', 'yes',
          '--cluster-config-file', `nodes-${port}.conf`,
          '--cluster-node-timeout', '5000',
          '--save', '',
          '--appendonly', 'no',
          '--dir', this.dir,
          '--daemonize', 'no',
          '--loglevel', 'warning',
        ],
        { stdio: 'ignore' },
      );
      this.children.push(child);
    }
    for (const port of this.ports) await waitFor(async () => (await probeRedis(`redis://127.0.0.1:${port}`, 200)).ok, `redis-server on port ${port}`);
    const create = await run('redis-cli', [
      '--cluster', 'create',
      ...this.ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas', '0',
      '--cluster-yes',
    ]);
    if (create.code !== 0) throw new Error(`redis-cli --cluster create failed (${create.code}): ${create.output}`);
    for (const port of this.ports) {
      await waitFor(async () => (await clusterInfo(port)).includes('cluster_state:ok'), `cluster_state:ok on port ${port}`);
    }
    const shards = await command<Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>>(this.ports[0]!, ['CLUSTER', 'SLOTS']);
    for (const port of this.ports) {
      const slots = shards.filter((shard) => Number(shard[2][1]) === port).map((shard) => [Number(shard[0]), Number(shard[1])] as const);
      this.masters.push({ port, url: `redis://127.0.0.1:${port}`, slots });
    }
  }

  /** The master serving a hash slot. */
  masterOf(slot: number): ClusterMaster {
    const master = this.masters.find((m) => m.slots.some(([from, to]) => slot >= from && slot <= to));
    if (!master) throw new Error(`no master serves slot ${slot}`);
    return master;
  }

  /** Keys under `prefix` held by each master (SCAN on every node), by port. */
  async keysByMaster(prefix: string): Promise<Map<number, string[]>> {
    const out = new Map<number, string[]>();
    for (const master of this.masters) {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, page] = await command<[string, string[]]>(master.port, ['SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000']);
        cursor = next;
        keys.push(...page);
      } while (cursor !== '0');
      out.set(master.port, keys);
    }
    return out;
  }

  /** Runs a command on one node (no redirection). */
  command<T>(port: number, args: string[]): Promise<T> {
    return command<T>(port, args);
  }

  async dispose(): Promise<void> {
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function command<T>(port: number, args: string[]): Promise<T> {
  const client = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 2, socket: { reconnectStrategy: false, connectTimeout: 1_000 } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.sendCommand(args)) as T;
  } finally {
    if (client.isOpen) client.destroy();
  }
}

async function clusterInfo(port: number): Promise<string> {
  return command<string>(port, ['CLUSTER', 'INFO']).catch(() => '');
}

function run(binary: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', (error) => resolve({ code: -1, output: error.message }));
    child.once('exit', (code) => resolve({ code: code ?? -1, output }));
  });
}

/** Polls a condition (a server starting up: there is no event to wait for) for up to 10 s. */
async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
