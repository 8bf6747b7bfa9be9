import type { RunEmitter } from '../bridge/run-emitter.js';
import { isInstance, readThrown } from '../errors/guards.js';
import { AgentwireError, StateError, ValidationError } from '../errors/index.js';
import { notJsonReasonOf, toJson, type JsonLimits } from '../events/json.js';
import type { AgentStartedEvent, ErrorInfo } from '../events/schema.js';
import { NEVER_ABORTED, abortErrorFrom, raceAbort } from './abort.js';
import { dispatchStarted, emitEvent } from './emit.js';
import { errorInfoFor, type Redactor } from './redaction.js';
import type { RunContext, RunState } from './run-context.js';
import type { RunResult, RunStatus } from './run-options.js';
import { closeTool, elapsed, type ToolHost } from './tool-calls.js';

/** What a run needs from its agent. */
export interface RunHost<Input, Output> {
  readonly redact: Redactor;
  readonly tools: ToolHost;
  execute(input: Input, ctx: RunContext): Promise<Output>;
}

/**
 * The run's `agent_started`, built and serialized before anything else happens (before the run
 * is registered): an input or metadata that cannot be an event rejects `run()` with
 * `ValidationError` `INPUT_NOT_SERIALIZABLE` (`field` names which one, `details.reason` why).
 */
export function prepareStarted(
  emitter: RunEmitter,
  redact: Redactor,
  input: unknown,
  metadata: Record<string, unknown>,
  limits: Readonly<JsonLimits>,
): AgentStartedEvent {
  const shown = redact.input ? redact.input(input) : input; // a throwing hook rejects run() with its error
  try {
    return emitter.prepare('agent_started', { input: shown, metadata });
  } catch (error) {
    // Which one: `{ metadata }` sits where the event's data does (level 1), so its check is exact.
    const field = toJson({ metadata }, limits).ok ? 'input' : 'metadata';
    const reason = notJsonReasonOf(error) ?? 'unserializable';
    throw new ValidationError(`The run's ${field} cannot be carried by agent_started: ${messageOf(error)}`, {
      code: 'INPUT_NOT_SERIALIZABLE',
      field,
      cause: error,
      details: { reason },
    });
  }
}

/**
 * A run from `agent_started` to `agent_completed`: runs `execute`, closes the tool calls it left
 * open, and always emits exactly one terminal event: succeeded; failed with the error (or
 * `OUTPUT_NOT_SERIALIZABLE` when the output cannot be an event); cancelled on abort.
 */
export async function runLifecycle<Input, Output>(
  host: RunHost<Input, Output>,
  input: Input,
  state: RunState,
  started: AgentStartedEvent,
): Promise<RunResult<Output>> {
  const { ctx, emitter } = state;
  const { runId, threadId, userId, signal } = ctx;
  const startedAt = performance.now();
  const refusal = await dispatchStarted(state, started);
  if (refusal) {
    state.abandon?.();
    throw refusal;
  }
  let status: RunStatus = 'succeeded';
  let output: Output | undefined;
  let error: Error | undefined;
  try {
    // Cancelled before it began (a queued run cancelled, a queue closed, its bridge closing): the agent's code never runs.
    const work = signal.aborted ? Promise.reject(abortErrorFrom(signal)) : Promise.resolve().then(() => host.execute(input, ctx));
    output = await (signal === NEVER_ABORTED ? work : raceAbort(work, signal));
  } catch (caught) {
    status = signal.aborted ? 'cancelled' : 'failed';
    error = signal.aborted ? abortErrorFrom(signal) : toError(caught);
  }
  // No run ever leaves an orphaned tool_executing: close what is still open first.
  if (state.openTools.size > 0) {
    const closeWith = error ?? new StateError('RUN_ENDED', 'The run finished before this tool call did');
    for (const toolCallId of [...state.openTools.keys()]) closeTool(host.tools, state, toolCallId, closeWith);
  }
  const durationMs = elapsed(startedAt);
  const usage = state.usage;
  let delivered: Promise<void> | undefined;
  if (status === 'succeeded') {
    try {
      const result = host.redact.output ? host.redact.output(output) : output;
      delivered = emitEvent(state, 'agent_completed', { status, result, durationMs, ...(usage && { usage }) });
    } catch (caught) {
      // The output cannot be an event (or the output hook threw): the run fails with that error.
      status = 'failed';
      error = outputError(caught);
      output = undefined;
    }
  }
  let terminal: Promise<void>;
  if (delivered) {
    terminal = delivered;
    state.onTerminal?.({ status });
  } else {
    const failed = emitFailed(host.redact, state, status as 'failed' | 'cancelled', error, durationMs);
    terminal = failed.delivered;
    state.onTerminal?.({ status, error: failed.info });
  }
  // The run's queue is ordered: once the terminal event settled, every earlier one has too.
  await terminal;
  return {
    runId,
    threadId,
    userId,
    status,
    ...(status === 'succeeded' ? { output } : { error }),
    durationMs,
    events: emitter.count,
    ...(usage && { usage }),
    // A copy: an event given up on after the run resolved (it was buffered) reaches the listeners, not this result.
    deliveryErrors: state.deliveryErrors.slice(),
  };
}

/** The failed or cancelled `agent_completed`, with the error as `redact.error` (or the default) shows it. */
function emitFailed(
  redact: Redactor,
  state: RunState,
  status: 'failed' | 'cancelled',
  error: unknown,
  durationMs: number,
): { delivered: Promise<void>; info: ErrorInfo } {
  const { runId, threadId, userId, agent } = state.ctx;
  const info = errorInfoFor(redact.error, error, { event: 'agent_completed', runId, threadId, userId, agent });
  const usage = state.usage;
  try {
    return { delivered: emitEvent(state, 'agent_completed', { status, error: info, durationMs, ...(usage && { usage }) }), info };
  } catch {
    // Cannot happen with bounded error fields and the minimum limits; the terminal event must go out regardless.
    const fallback: ErrorInfo = { name: 'Error', message: `Agent "${agent}" failed` };
    return { delivered: emitEvent(state, 'agent_completed', { status, error: fallback, durationMs }), info: fallback };
  }
}

function toError(error: unknown): Error {
  return isInstance(error, Error) ? error : new Error(typeof error === 'string' ? error : 'Non-error thrown', { cause: error });
}

/** The error of a run whose output cannot be carried by `agent_completed`. */
function outputError(caught: unknown): Error {
  const reason = notJsonReasonOf(caught);
  if (reason === undefined) return toError(caught); // the output hook threw
  const why = reason === 'size' ? 'is too large for an event' : `cannot be represented as JSON (${reason})`;
  return new ValidationError(`The run's output ${why}`, { code: 'OUTPUT_NOT_SERIALIZABLE', field: 'output', cause: caught, details: { reason } });
}

function messageOf(error: unknown): string {
  const message = isInstance(error, AgentwireError) ? readThrown(error).message : undefined;
  return message ?? 'it cannot be serialized';
}
