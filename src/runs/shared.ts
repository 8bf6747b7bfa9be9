import { BaseAgent } from '../agent/base-agent.js';
import type { RunContext } from '../agent/run-context.js';
import type { AgentBridge } from '../bridge/agent-bridge.js';
import { Histogram } from '../bridge/histogram.js';
import { ValidationError } from '../errors/index.js';
import { MAX_TIMER_MS, checker, given, shown } from '../errors/options.js';
import { toJson } from '../events/json.js';
import type { ErrorInfo } from '../events/schema.js';
import { RUN_ID_ADMITTED, RUN_TERMINAL, checkRunOptions, type RunTerminal } from '../agent/run-options.js';
import { defaultErrorInfo } from '../agent/redaction.js';
import type { AdmissionLimits, AgentSet, CloseOptions, RunOutcome, ServeOptions, SubmitOptions } from './types.js';
import { checkBridge } from '../bridge/bridge-like.js';
import { assertSubmitterMetadata } from './reserved-metadata.js';

/** Waits in ms: from one to ten minutes, coarse (queue waits are not sub-millisecond). */
export const WAIT_BUCKETS_MS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000] as const;

export const DEFAULT_MAX_RUNS_PER_USER = 10;
export const DEFAULT_MAX_QUEUED = 10_000;
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

export function resolveAdmission(limits: AdmissionLimits = {}, owner = 'Run queue'): Required<AdmissionLimits> {
  if (typeof limits !== 'object' || limits === null) throw checker(owner).fail('options', `must be an object (got ${shown(limits)})`);
  const resolved = { maxRunsPerUser: given(limits.maxRunsPerUser, DEFAULT_MAX_RUNS_PER_USER), maxQueued: given(limits.maxQueued, DEFAULT_MAX_QUEUED) };
  for (const [name, value] of Object.entries(resolved)) positiveInt(name, value, 1, owner);
  return resolved;
}

/**
 * The `timeoutMs` of a queue's or worker's `close(options)`: 0 to 2^31 - 1 ms (a timer waits for
 * it), default 10,000; `null` or another value is `ValidationError` `INVALID_OPTION`
 * (`<owner> close() option timeoutMs must be …`).
 */
export function closeTimeout(options: CloseOptions | undefined, owner: string): number {
  const check = checker(`${owner} close()`);
  if (options === undefined) return DEFAULT_CLOSE_TIMEOUT_MS;
  if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object { timeoutMs? } (got ${shown(options)})`);
  return check.duration('timeoutMs', given(options.timeoutMs, DEFAULT_CLOSE_TIMEOUT_MS), { min: 0, max: MAX_TIMER_MS });
}

/** A safe integer >= `min`, else `ValidationError` `INVALID_OPTION` naming the option and `owner` (the shared option checker). */
export function positiveInt(name: string, value: number, min = 1, owner = 'Run queue', max?: number): number {
  return checker(owner).integer(name, value, min, max);
}

/** A submitted run, as it travels to a worker. */
export interface RunJob {
  runId: string;
  threadId: string;
  userId: string;
  agent: string;
  input: unknown;
  metadata: Record<string, unknown>;
  queuedAt: number;
}

/**
 * Checks `submit()`'s arguments like `run()` does (typed errors before anything is queued) and names
 * the run. Metadata carrying a key only the queue sets (`retryOf`, `attempt`) is refused
 * (`INVALID_RUN_OPTIONS`, see `assertSubmitterMetadata`).
 */
export function prepareJob(agent: string, input: unknown, options: SubmitOptions): RunJob {
  if (typeof agent !== 'string' || agent.length === 0 || agent.length > 128) {
    throw new ValidationError('submit() needs the name of an agent (1-128 characters)', { field: 'agent', code: 'UNKNOWN_AGENT' });
  }
  const checked = checkRunOptions(options);
  // The job crosses processes as JSON: refuse what cannot be carried now, not in a worker.
  const json = toJson({ input, metadata: checked.metadata });
  if (!json.ok) {
    throw new ValidationError(`The run's input or metadata cannot be represented as JSON: ${json.message}`, {
      field: 'input',
      code: 'INPUT_NOT_SERIALIZABLE',
      details: { reason: json.reason },
    });
  }
  // The metadata the run carries is its JSON form (what crosses to a BullMQ worker, what
  // agent_started holds): checked for the queue's reserved keys, and kept, so a toJSON() or a
  // getter cannot answer the check one way and the run another.
  const carried = toJson(checked.metadata);
  if (!carried.ok) {
    throw new ValidationError(`The run's input or metadata cannot be represented as JSON: ${carried.message}`, {
      field: 'metadata',
      code: 'INPUT_NOT_SERIALIZABLE',
      details: { reason: carried.reason },
    });
  }
  const metadata = JSON.parse(carried.json) as unknown;
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new ValidationError('metadata must be a plain object', { field: 'metadata', code: 'INVALID_RUN_OPTIONS' });
  }
  assertSubmitterMetadata(metadata as Record<string, unknown>);
  return { runId: checked.runId, threadId: checked.threadId, userId: checked.userId, agent, input, metadata: metadata as Record<string, unknown>, queuedAt: Date.now() };
}

/**
 * `serve()`'s options, checked before a worker exists: `concurrency` a positive integer, `bridge` an
 * `AgentBridge` (a number reached the agents' `setBridge`; `null` was taken as none).
 */
export function resolveServeOptions(options: ServeOptions | undefined): ServeOptions {
  const check = checker('serve()');
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object { concurrency?, bridge? } (got ${shown(options)})`);
  return {
    concurrency: check.integer('concurrency', given(options.concurrency, 1)),
    ...(options.bridge !== undefined && { bridge: checkBridge(check, 'bridge', options.bridge) }),
  };
}

/** `serve()`'s first argument, `{ agents }`. */
export function agentSetOf(set: { agents: AgentSet }): AgentSet {
  if (typeof set !== 'object' || set === null) throw checker('serve()').fail('options', `must be an object { agents } (got ${shown(set)})`);
  return set.agents;
}

/** The agents of `serve({ agents })` by name. */
export function agentsByName(agents: AgentSet): Map<string, BaseAgent<never, unknown>> {
  if (typeof agents !== 'object' || agents === null) {
    throw checker('serve()').fail('agents', `must be an array of agents or an object of them by name (got ${shown(agents)})`);
  }
  const map = new Map<string, BaseAgent<never, unknown>>();
  const entries: Array<[string, BaseAgent<never, unknown>]> = Array.isArray(agents)
    ? (agents as ReadonlyArray<BaseAgent<never, unknown>>).map((agent) => [agent.name, agent])
    : Object.entries(agents as Record<string, BaseAgent<never, unknown>>);
  for (const [name, agent] of entries) {
    if (!(agent instanceof BaseAgent)) throw new ValidationError(`serve(): "${name}" is not a BaseAgent`, { field: `agents.${name}`, code: 'INVALID_OPTION' });
    map.set(name, agent);
  }
  if (map.size === 0) throw new ValidationError('serve() needs at least one agent', { field: 'agents', code: 'INVALID_OPTION' });
  return map;
}

/** Ends a run through the normal pipeline without an agent to run it: `agent_started`, then `agent_completed` failed or cancelled. */
class StandInAgent extends BaseAgent<unknown, never> {
  constructor(
    name: string,
    bridge: AgentBridge,
    private readonly error: Error,
  ) {
    super({ name, bridge });
  }
  protected execute(_input: unknown, ctx: RunContext): Promise<never> {
    // An aborted signal makes the run `cancelled`; otherwise it fails with the error.
    return Promise.reject(ctx.signal.aborted ? (ctx.signal.reason as Error) : this.error);
  }
}

export interface RunEnd {
  outcome: RunOutcome;
  error?: ErrorInfo;
}

/**
 * Runs one job on its agent (or a stand-in that ends it with `UNKNOWN_AGENT`) and reports how it
 * ended: the outcome and error its `agent_completed` carries (`RUN_TERMINAL`: the error as
 * `redact.error` or the default shows it, never the raw thrown one, which stays in the worker).
 * `run()` refusing before any event (a run id in use) is reported as failed with no event, its
 * error as the default shows it (`defaultErrorInfo`: the SDK's own refusals keep their message,
 * anything else, e.g. a throwing `redact.input` hook, gets a generic one).
 */
export async function executeJob(
  job: RunJob,
  agent: BaseAgent<never, unknown> | undefined,
  bridge: AgentBridge | undefined,
  signal: AbortSignal,
  admitted = false,
): Promise<RunEnd & { emitted: boolean }> {
  let terminal: RunTerminal | undefined;
  const onTerminal = (shown: RunTerminal) => {
    terminal ??= shown;
  };
  const options = {
    userId: job.userId,
    threadId: job.threadId,
    runId: job.runId,
    metadata: job.metadata,
    signal,
    [RUN_TERMINAL]: onTerminal,
    ...(admitted && { [RUN_ID_ADMITTED]: true }),
  };
  const runner: BaseAgent<never, unknown> | undefined =
    agent ??
    (bridge && new StandInAgent(job.agent, bridge, new ValidationError(`No worker serves agent "${job.agent}"`, { field: 'agent', code: 'UNKNOWN_AGENT' })));
  if (!runner) return { outcome: 'failed', error: jobErrorInfo(job, new ValidationError(`No worker serves agent "${job.agent}"`, { code: 'UNKNOWN_AGENT' })), emitted: false };
  let refusal: unknown;
  try {
    await runner.run(job.input as never, options);
  } catch (error) {
    refusal = error;
  }
  // Once the terminal event was built, it says how the run ended (also when an instrumentation
  // wrapper rejected after it): the status and the thread's log show the same error.
  const ended = terminal as RunTerminal | undefined;
  if (ended) return { outcome: ended.status, ...(ended.error && { error: ended.error }), emitted: true };
  return { outcome: 'failed', error: jobErrorInfo(job, refusal ?? new Error('The run emitted no terminal event')), emitted: false };
}

/** How a run's status (and, on Redis, the terminal event a worker writes for it) shows an error of a run that emitted nothing. */
export function jobErrorInfo(job: RunJob, error: unknown): ErrorInfo {
  return defaultErrorInfo(error, { event: 'agent_completed', runId: job.runId, threadId: job.threadId, userId: job.userId, agent: job.agent });
}

export function emptyFinished(): Record<RunOutcome, number> {
  return { succeeded: 0, failed: 0, cancelled: 0 };
}

export function newWaitHistogram(): Histogram {
  return new Histogram(WAIT_BUCKETS_MS);
}
