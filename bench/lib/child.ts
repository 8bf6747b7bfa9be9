import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { compiledScript } from './build.js';
import { nowMs } from './clock.js';
import { ROOT } from './root.js';

export { ROOT };

/** Every child still running; killed on any exit path of the bench process. */
const running = new Set<ChildProcess>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const child of running) child.kill('SIGKILL');
      process.exit(130);
    });
  }
}

/** Soft and hard limits on open files of processes started from here (`ulimit -n`). */
export function fileLimits(): { soft: number; hard: number } {
  const result = spawnSync('/bin/sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' });
  const [soft, hard] = (result.stdout ?? '').trim().split('\n').map((line) => (line.trim() === 'unlimited' ? Infinity : Number(line)));
  return { soft: soft ?? 1024, hard: hard ?? soft ?? 1024 };
}

export interface ChildOptions {
  /** Shown in errors. */
  name: string;
  /** Extra node flags, e.g. `--expose-gc`, `--cpu-prof`. */
  execArgv?: string[];
  /** Open files the child needs; its soft limit is raised (up to the hard limit) when lower. */
  files?: number;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** A bench child process (the compiled script, or the source under tsx) driven over IPC. */
export class BenchChild {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly waiters = new Map<string, Array<{ resolve: (message: Record<string, unknown>) => void; reject: (error: Error) => void }>>();
  private exited: string | undefined;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (message: Record<string, unknown>) => this.onMessage(message));
    child.once('exit', (code, signal) => {
      running.delete(child);
      this.exited = `${this.name} exited (${signal ?? code})`;
      for (const [, pending] of this.pending) {
        clearTimeout(pending.timer);
        pending.reject(new Error(this.exited));
      }
      this.pending.clear();
      for (const list of this.waiters.values()) for (const waiter of list.splice(0)) waiter.reject(new Error(this.exited));
    });
  }

  /** Starts `script` (`bench/….ts`, relative to the repository) and waits for its `ready` notification. */
  static async start(script: string, options: ChildOptions): Promise<BenchChild> {
    hookExit();
    // BENCH_CHILD_NODE_OPTIONS: extra node flags for every child (e.g. `--cpu-prof` when profiling).
    const extra = process.env.BENCH_CHILD_NODE_OPTIONS?.split(' ').filter(Boolean) ?? [];
    // Compiled by bench/run.ts (AGENTWIRE_BENCH_BUILD set): plain node; otherwise the TypeScript source under tsx.
    const entry = process.env.AGENTWIRE_BENCH_BUILD ? ['--enable-source-maps', compiledScript(script)] : ['--import', 'tsx', join(ROOT, script)];
    const nodeArgs = [...(options.execArgv ?? []), ...extra, ...entry];
    let command = process.execPath;
    let args = nodeArgs;
    const limits = fileLimits();
    if (options.files !== undefined && limits.soft < options.files) {
      if (limits.hard < options.files) {
        throw new Error(`${options.name} needs ${options.files} open files; ulimit -Hn is ${limits.hard}`);
      }
      // Node cannot raise its own soft limit: start it from a shell that does.
      command = '/bin/sh';
      args = ['-c', `ulimit -Sn ${options.files} && exec "$0" "$@"`, process.execPath, ...nodeArgs];
    }
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    running.add(child);
    const wrapper = new BenchChild(options.name, child);
    await wrapper.next('ready', 30_000);
    return wrapper;
  }

  /** Sends a command and resolves with the child's result. */
  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.child.send({ id, cmd, args });
    });
  }

  /** The next unsolicited `{ event }` message of this kind. */
  next<T = Record<string, unknown>>(event: string, timeoutMs = 120_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    return new Promise<T>((resolve, reject) => {
      const list = this.waiters.get(event) ?? [];
      const waiter = {
        resolve: (message: Record<string, unknown>): void => {
          clearTimeout(timer);
          resolve(message as T);
        },
        reject: (error: Error): void => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        list.splice(list.indexOf(waiter), 1);
        reject(new Error(`${this.name}: no "${event}" within ${timeoutMs} ms`));
      }, timeoutMs);
      list.push(waiter);
      this.waiters.set(event, list);
    });
  }

  /**
   * Offset of the child's `nowMs()` clock from ours (child − parent), from timestamps echoed
   * over IPC: of `samples` round trips, the one with the shortest round trip is used, so the
   * estimate is off by at most half of that round trip (returned as `uncertaintyMs`).
   */
  async clockOffset(samples = 40): Promise<{ offsetMs: number; uncertaintyMs: number }> {
    let best = { offsetMs: 0, uncertaintyMs: Infinity };
    for (let i = 0; i < samples; i++) {
      const sent = nowMs();
      const { now } = await this.call<{ now: number }>('clock');
      const back = nowMs();
      const rtt = back - sent;
      if (rtt / 2 < best.uncertaintyMs) best = { offsetMs: now - (sent + back) / 2, uncertaintyMs: rtt / 2 };
    }
    return best;
  }

  /** Asks the child to exit, then kills it if it has not within `graceMs`. */
  async stop(graceMs = 3_000): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }

  private onMessage(message: Record<string, unknown>): void {
    if (typeof message.event === 'string') {
      this.waiters.get(message.event)?.shift()?.resolve(message);
      return;
    }
    const pending = this.pending.get(message.id as number);
    if (!pending) return;
    this.pending.delete(message.id as number);
    clearTimeout(pending.timer);
    if (message.ok) pending.resolve(message.result);
    else pending.reject(new Error(`${this.name}: ${String(message.error)}`));
  }
}
