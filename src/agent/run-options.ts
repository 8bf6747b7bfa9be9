import type { DeliveryError } from '../errors/index.js';
import { ValidationError } from '../errors/index.js';
import type { ErrorInfo, Usage } from '../events/schema.js';
import { generateRunId, isRunId, parseRunId } from '../ids/run-id.js';
import { assertThreadId, isValidRunIdShape } from '../ids/thread-id.js';
import { assertUserId } from '../ids/user-id.js';

export interface RunOptions {
  userId: string;
  threadId: string;
  /**
   * Defaults to `generateRunId(threadId)`. A standard run id must name the same thread. A run id
   * is used once: one the bridge's registry knows or its transport retains events of is refused
   * (`ValidationError` `RUN_ID_CONFLICT`) before any event.
   */
  runId?: string;
  /** Aborting it cancels the run: open tools are closed, then `agent_completed` is `cancelled`. */
  signal?: AbortSignal;
  /** Carried by `agent_started.data.metadata`; must be a plain object that is JSON (see `limits`). */
  metadata?: Record<string, unknown>;
}

export type RunStatus = 'succeeded' | 'failed' | 'cancelled';

export interface RunResult<Output> {
  runId: string;
  threadId: string;
  userId: string;
  status: RunStatus;
  /** Present when `status` is `succeeded`. */
  output?: Output;
  /** Present when `status` is `failed` or `cancelled`: the real error (events carry its redacted form). */
  error?: Error;
  durationMs: number;
  /** Events the run emitted (the last seq). */
  events: number;
  usage?: Usage;
  /** Events the bridge could neither deliver nor buffer. Empty when everything arrived. */
  deliveryErrors: DeliveryError[];
}

export interface CheckedRunOptions {
  userId: string;
  threadId: string;
  runId: string;
  /** Whether the caller chose the run id (only those are checked for reuse: generated ones are unique). */
  runIdGiven: boolean;
  metadata: Record<string, unknown>;
}

/** Checks `run()`'s options; throws `ValidationError` naming the field. */
/**
 * Internal (no entry point exports it): set to `true` on run options by a run queue's worker for a
 * run id the queue admitted once (its submit refused ids in use, its claim gives the run to one
 * worker) and whose transport refuses a second start of a run id at append (the Redis log's
 * fencing). Then `run()` skips the reuse check before `agent_started` (`Transport.hasRun`, a round
 * trip): the append's own refusal still rejects `RUN_ID_CONFLICT`.
 */
export const RUN_ID_ADMITTED: unique symbol = Symbol('agentwire.runIdAdmitted');

/**
 * Internal (no entry point exports it): a callback on run options, called once with what the run's
 * `agent_completed` carries (`status`, and `error` as `redact.error` or the default shows it) as
 * soon as that event is built. A run queue records a run's outcome from it, so its status shows
 * the same redacted error as the thread's log, never the raw thrown one (`RunResult.error`).
 */
export const RUN_TERMINAL: unique symbol = Symbol('agentwire.runTerminal');

/** What a run's `agent_completed` says about how it ended (see `RUN_TERMINAL`). */
export interface RunTerminal {
  status: RunStatus;
  error?: ErrorInfo;
}

export function checkRunOptions(options: RunOptions): CheckedRunOptions {
  if (options === null || typeof options !== 'object') {
    throw new ValidationError('run() needs options { userId, threadId }', { field: 'options', code: 'INVALID_RUN_OPTIONS' });
  }
  const { userId, threadId, metadata = {} } = options;
  assertUserId(userId);
  assertThreadId(threadId);
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new ValidationError('metadata must be a plain object', { field: 'metadata', code: 'INVALID_RUN_OPTIONS' });
  }
  const runId = options.runId;
  if (runId === undefined) return { userId, threadId, runId: generateRunId(threadId), runIdGiven: false, metadata };
  if (!isValidRunIdShape(runId)) parseRunId(runId); // throws the descriptive error
  // A custom run id is fine; a standard one must name this thread.
  const named = isRunId(runId) ? parseRunId(runId).threadId : threadId;
  if (named !== threadId) {
    throw new ValidationError(`Run id "${runId}" belongs to thread "${named}", not "${threadId}"`, {
      field: 'runId',
      code: 'RUN_THREAD_MISMATCH',
    });
  }
  const admitted = (options as RunOptions & { [RUN_ID_ADMITTED]?: boolean })[RUN_ID_ADMITTED] === true;
  return { userId, threadId, runId, runIdGiven: !admitted, metadata };
}

/** Checks a `reportUsage()` argument: non-negative integers. Throws `ValidationError` naming the field. */
export function checkUsage(usage: Usage): void {
  if (usage === null || typeof usage !== 'object') {
    throw new ValidationError('reportUsage() needs { inputTokens, outputTokens }', { field: 'usage', code: 'VALIDATION_FAILED' });
  }
  for (const field of ['inputTokens', 'outputTokens'] as const) {
    const value = usage[field];
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new ValidationError(`usage.${field} must be a non-negative integer`, { field: `usage.${field}`, code: 'VALIDATION_FAILED' });
    }
  }
}
