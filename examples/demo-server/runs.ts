import { generateRunId, type AgentBridge, type MemoryTransport, type RunResult } from '../../src/index.js';
import type { ResearchAgent } from '../research-agent.js';

/** Why a run could not be started. */
export class RunRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface StartedRun {
  runId: string;
  threadId: string;
  /** Settles when the run has ended (its `agent_completed` was emitted). */
  done: Promise<RunResult<string>>;
}

export interface RunServiceOptions {
  agent: ResearchAgent;
  bridge: AgentBridge;
  transport: MemoryTransport;
  /** Runs one user may have in progress. */
  maxRunsPerUser: number;
  /** Runs in progress across all users. */
  maxRuns: number;
}

interface ActiveRun {
  userId: string;
  threadId: string;
  controller: AbortController;
  done: Promise<RunResult<string>>;
}

/**
 * Starts research runs for users and keeps them bounded: a thread belongs to the user of its
 * first run (checked against the log, the bridge's registry and runs not yet started), a user
 * has at most `maxRunsPerUser` runs in progress, and `abortAll()` cancels everything on shutdown.
 */
export class RunService {
  private readonly active = new Map<string, ActiveRun>();
  private readonly perUser = new Map<string, number>();

  constructor(private readonly options: RunServiceOptions) {}

  get activeCount(): number {
    return this.active.size;
  }

  async start(userId: string, threadId: string, question: string): Promise<StartedRun> {
    const owner = (await this.options.transport.ownerOf(threadId)) ?? this.options.bridge.registry.ownerOf(threadId) ?? this.claimOf(threadId);
    if (owner !== undefined && owner !== userId) {
      throw new RunRefusal(403, 'THREAD_FORBIDDEN', `thread "${threadId}" belongs to another user`);
    }
    if ((this.perUser.get(userId) ?? 0) >= this.options.maxRunsPerUser) {
      throw new RunRefusal(429, 'TOO_MANY_RUNS', `at most ${this.options.maxRunsPerUser} runs in progress per user`);
    }
    if (this.active.size >= this.options.maxRuns) {
      throw new RunRefusal(503, 'SERVER_BUSY', 'too many runs in progress; try again shortly');
    }
    const runId = generateRunId(threadId);
    const controller = new AbortController();
    const done = this.options.agent.run({ question }, { userId, threadId, runId, signal: controller.signal });
    this.active.set(runId, { userId, threadId, controller, done });
    this.perUser.set(userId, (this.perUser.get(userId) ?? 0) + 1);
    void done.finally(() => this.release(runId, userId));
    return { runId, threadId, done };
  }

  /** Cancels one run of `userId` (the Stop button); false when it is not a run of theirs in progress. */
  cancel(userId: string, runId: string): boolean {
    const run = this.active.get(runId);
    if (!run || run.userId !== userId) return false;
    run.controller.abort();
    return true;
  }

  /** Cancels every run in progress and waits until each has emitted its `agent_completed`. */
  async abortAll(): Promise<void> {
    const runs = [...this.active.values()];
    for (const run of runs) run.controller.abort();
    await Promise.allSettled(runs.map((run) => run.done));
  }

  /** Owner of a thread whose run was accepted but may not have emitted yet. */
  private claimOf(threadId: string): string | undefined {
    for (const run of this.active.values()) if (run.threadId === threadId) return run.userId;
    return undefined;
  }

  private release(runId: string, userId: string): void {
    this.active.delete(runId);
    const count = (this.perUser.get(userId) ?? 1) - 1;
    if (count > 0) this.perUser.set(userId, count);
    else this.perUser.delete(userId);
  }
}
