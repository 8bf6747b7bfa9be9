/**
 * Child processes of the scale-out example: each prints one JSON object per line on stdout
 * (`{"type":"listening",…}`, `{"type":"run_finished",…}`), which the parent waits for.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const EXAMPLE_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = join(EXAMPLE_DIR, '..', '..');

export interface ProcessMessage {
  type: string;
  [key: string]: unknown;
}

/** One example process (`node --import tsx <script>`), with its JSON-lines output. */
export class ExampleProcess {
  readonly messages: ProcessMessage[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private readonly waiters = new Set<() => void>();
  private stderr = '';
  private exitCode: number | null | undefined;

  constructor(
    readonly name: string,
    script: string,
    env: Record<string, string>,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', join(EXAMPLE_DIR, script)], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.messages.push(JSON.parse(line) as ProcessMessage);
      } catch {
        // Not a protocol line: just show it.
      }
      this.log(`[${name}] ${line}`);
      this.notify();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4_000);
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code) => {
        this.exitCode = code;
        this.notify();
        resolve(code);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** The first message of this type (waits for it, bounded). */
  async message(type: string, timeoutMs = 20_000): Promise<ProcessMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find((message) => message.type === type);
      if (found) return found;
      if (!this.running) throw new Error(`${this.name} exited (code ${this.exitCode}) before "${type}"; stderr: ${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no "${type}" within ${timeoutMs} ms; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 1_000));
        this.waiters.add(done);
        function done() {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  }

  /** Sends a signal and waits for the process to exit (SIGKILL after 5 s). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
  }

  private notify(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }
}
