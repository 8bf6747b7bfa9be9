import { ValidationError } from '../errors/index.js';
import { shown } from '../errors/options.js';
import type { AgentEvent } from './schema.js';

/** Which rule of the run grammar an event broke. */
export type LifecycleRule =
  | 'started_first' // the first event of a run must be agent_started
  | 'started_once' // agent_started appears once
  | 'after_completed' // nothing may follow agent_completed
  | 'seq_gap' // seq starts at 1 and increases by exactly 1
  | 'run_identity' // threadId/userId/agent never change within a run
  | 'tool_not_open' // tool_completed without a matching open tool_executing
  | 'tool_reopened' // a toolCallId is opened twice
  | 'tools_open_at_completion' // agent_completed while a tool call is still open
  | 'answer_unknown' // user_answered for no pending request of the run (never asked, or already closed)
  | 'answer_repeated' // a second user_answered for one request
  | 'incomplete'; // the stream ended without agent_completed

export interface LifecycleViolation {
  rule: LifecycleRule;
  runId: string;
  /** Id and seq of the offending event (absent for `incomplete`). */
  eventId?: string;
  seq?: number;
  /** Position in the checked sequence (absent for `incomplete`). */
  index?: number;
  message: string;
}

interface RunState {
  threadId: string;
  userId: string;
  agent: string;
  lastSeq: number;
  completed: boolean;
  openTools: Set<string>;
  /** Pending requests (`tool_executing.data.pending`) by request id; made on the first one. */
  requests?: Map<string, { toolCallId: string; seq: number; answered: boolean }>;
}

/**
 * Incremental checker of the per-run grammar: `agent_started` first, gapless `seq`,
 * every `tool_executing` closed by one `tool_completed`, `agent_completed` last and once.
 * Events of many runs may be interleaved; each run is checked on its own.
 */
export class LifecycleChecker {
  private readonly runs = new Map<string, RunState>();
  private index = 0;
  /** The first violation seen, kept so callers can check once at the end. */
  firstViolation: LifecycleViolation | undefined;

  /**
   * Checks one event; returns the violation it causes, if any. A value that is not an object, or
   * whose fields cannot be read (a throwing getter or proxy trap, a field that cannot be shown),
   * throws `ValidationError` `INVALID_EVENT` (field `events[<index>]`, the cause attached): never
   * what reading it threw. The grammar reads only the fields it checks: it does not schema-check
   * events (`parseEvent` does).
   */
  push(event: AgentEvent): LifecycleViolation | undefined {
    const index = this.index++;
    const notAnEvent = (cause?: unknown) =>
      new ValidationError(`events[${index}] is not an event (got ${shown(event)})`, { field: `events[${index}]`, code: 'INVALID_EVENT', cause });
    if (typeof event !== 'object' || event === null) throw notAnEvent();
    let violation: LifecycleViolation | undefined;
    try {
      violation = this.check(event, index);
    } catch (cause) {
      throw notAnEvent(cause);
    }
    if (violation && !this.firstViolation) this.firstViolation = violation;
    return violation;
  }

  /** Violations for runs that never completed. Call when the stream is over. */
  finish(): LifecycleViolation[] {
    const violations: LifecycleViolation[] = [];
    for (const [runId, run] of this.runs) {
      if (!run.completed) {
        violations.push({ rule: 'incomplete', runId, message: `run ${text(runId)} ended without agent_completed` });
      }
    }
    if (violations[0] && !this.firstViolation) this.firstViolation = violations[0];
    return violations;
  }

  /** Runs seen so far, and how many of them completed. */
  stats(): { runs: number; completed: number } {
    let completed = 0;
    for (const run of this.runs.values()) if (run.completed) completed++;
    return { runs: this.runs.size, completed };
  }

  /** Forgets a completed run so long-lived checkers (clients) stay bounded. */
  forget(runId: string): void {
    this.runs.delete(runId);
  }

  private checkAnswer(run: RunState, event: Extract<AgentEvent, { type: 'user_answered' }>, fail: Fail): LifecycleViolation | undefined {
    return answerViolation(run, event, fail);
  }

  private check(event: AgentEvent, index: number): LifecycleViolation | undefined {
    const fail = (rule: LifecycleRule, message: string): LifecycleViolation => ({
      rule,
      runId: event.runId,
      eventId: event.id,
      seq: event.seq,
      index,
      message: `${text(event.type)} #${text(event.seq)} of run ${text(event.runId)}: ${message}`,
    });
    let run = this.runs.get(event.runId);
    if (!run) {
      if (event.type !== 'agent_started') return fail('started_first', 'the first event of a run must be agent_started');
      if (event.seq !== 1) return fail('seq_gap', `expected seq 1, got ${text(event.seq)}`);
      run = {
        threadId: event.threadId,
        userId: event.userId,
        agent: event.agent,
        lastSeq: 1,
        completed: false,
        openTools: new Set(),
      };
      this.runs.set(event.runId, run);
      return undefined;
    }
    if (run.completed) return fail('after_completed', 'event after agent_completed');
    if (event.type === 'user_answered') return this.checkAnswer(run, event, fail);
    if (event.seq !== run.lastSeq + 1) return fail('seq_gap', `expected seq ${run.lastSeq + 1}, got ${text(event.seq)}`);
    if (event.threadId !== run.threadId || event.userId !== run.userId || event.agent !== run.agent) {
      return fail('run_identity', 'threadId, userId or agent changed within the run');
    }
    run.lastSeq = event.seq;
    switch (event.type) {
      case 'agent_started':
        return fail('started_once', 'agent_started appeared twice');
      case 'tool_executing':
        if (run.openTools.has(event.data.toolCallId)) {
          return fail('tool_reopened', `tool call ${text(event.data.toolCallId)} opened twice`);
        }
        run.openTools.add(event.data.toolCallId);
        if (event.data.pending) {
          run.requests ??= new Map();
          run.requests.set(event.data.pending.requestId, { toolCallId: event.data.toolCallId, seq: event.seq, answered: false });
        }
        return undefined;
      case 'tool_completed':
        if (!run.openTools.delete(event.data.toolCallId)) {
          return fail('tool_not_open', `tool call ${text(event.data.toolCallId)} was not open`);
        }
        if (run.requests) {
          for (const [id, request] of run.requests) if (request.toolCallId === event.data.toolCallId) run.requests.delete(id);
        }
        return undefined;
      case 'agent_completed':
        run.completed = true;
        if (run.openTools.size > 0) {
          return fail('tools_open_at_completion', `tool calls still open: ${[...run.openTools].map(text).join(', ')}`);
        }
        return undefined;
      default:
        return undefined;
    }
  }
}

type Fail = (rule: LifecycleRule, message: string) => LifecycleViolation;

/** A field of an event in a message: strings as they are, anything else by `shown` (never converted: its toString may throw). */
function text(value: unknown): string {
  return typeof value === 'string' ? value : shown(value);
}

/**
 * `user_answered` is not a run event: it answers a pending request of the run, once, while that
 * call is open, by the run's user, and carries the seq of the `tool_executing` it answers.
 */
function answerViolation(run: RunState, event: Extract<AgentEvent, { type: 'user_answered' }>, fail: Fail): LifecycleViolation | undefined {
  if (event.threadId !== run.threadId || event.userId !== run.userId || event.agent !== run.agent) {
    return fail('run_identity', 'threadId, userId or agent of the answer differ from its run');
  }
  const request = run.requests?.get(event.data.requestId);
  if (!request || request.toolCallId !== event.data.toolCallId || request.seq !== event.seq) {
    return fail('answer_unknown', `request ${text(event.data.requestId)} is not pending in this run`);
  }
  if (request.answered) return fail('answer_repeated', `request ${text(event.data.requestId)} was answered twice`);
  request.answered = true;
  return undefined;
}

export type LifecycleResult =
  | { ok: true; runs: number }
  | { ok: false; violation: LifecycleViolation; violations: LifecycleViolation[] };

/**
 * Validates a whole event sequence (any number of interleaved runs). By default every run must
 * also have completed; pass `{ requireComplete: false }` to check a stream still in progress.
 * Only `ValidationError` comes out: `events` that is not iterable (`null`, `{}`), or whose
 * iteration throws, is `VALIDATION_FAILED` (field `events`); an element that is not an event
 * object is `INVALID_EVENT` (see `LifecycleChecker.push`); `options` that is not an object, or a
 * `requireComplete` that is not a boolean, is `INVALID_OPTION`.
 */
export function validateLifecycle(
  events: Iterable<AgentEvent>,
  options: { requireComplete?: boolean } = {},
): LifecycleResult {
  const requireComplete = requireCompleteOf(options);
  const checker = new LifecycleChecker();
  const violations: LifecycleViolation[] = [];
  for (const event of iterate(events)) {
    const violation = checker.push(event);
    if (violation) violations.push(violation);
  }
  if (requireComplete) violations.push(...checker.finish());
  if (violations[0]) return { ok: false, violation: violations[0], violations };
  return { ok: true, runs: checker.stats().runs };
}

function requireCompleteOf(options: unknown): boolean {
  const invalid = (problem: string, cause?: unknown) =>
    new ValidationError(`validateLifecycle() option ${problem}`, { field: 'requireComplete', code: 'INVALID_OPTION', cause });
  if (options === undefined) return true;
  if (typeof options !== 'object' || options === null) throw invalid(`options must be an object (got ${shown(options)})`);
  let value: unknown;
  try {
    value = (options as { requireComplete?: unknown }).requireComplete;
  } catch (cause) {
    throw invalid('requireComplete cannot be read', cause);
  }
  if (value === undefined) return true;
  if (typeof value !== 'boolean') throw invalid(`requireComplete must be a boolean (got ${shown(value)})`);
  return value;
}

/** The elements of `events`, each read through a guard: a non-iterable or a throwing iterator is `VALIDATION_FAILED`. */
function* iterate(events: unknown): Generator<AgentEvent> {
  const invalid = (problem: string, cause?: unknown) =>
    new ValidationError(`validateLifecycle() needs an iterable of events: ${problem}`, { field: 'events', code: 'VALIDATION_FAILED', cause });
  let iterator: Iterator<unknown>;
  try {
    const method: unknown = events === null || events === undefined ? undefined : (events as { [Symbol.iterator]?: unknown })[Symbol.iterator];
    if (typeof method !== 'function') throw invalid(`got ${shown(events)}`);
    iterator = (method as () => Iterator<unknown>).call(events);
    if (typeof iterator !== 'object' || iterator === null) throw invalid('its iterator is not an object');
  } catch (error) {
    throw error instanceof ValidationError ? error : invalid('reading its iterator threw', error);
  }
  for (;;) {
    let step: IteratorResult<unknown>;
    let done: boolean;
    try {
      step = iterator.next();
      if (typeof step !== 'object' || step === null) throw invalid('its iterator returned a non-object');
      done = step.done === true;
    } catch (error) {
      throw error instanceof ValidationError ? error : invalid('iterating it threw', error);
    }
    if (done) return;
    let value: unknown;
    try {
      value = step.value;
    } catch (error) {
      throw invalid('iterating it threw', error);
    }
    yield value as AgentEvent;
  }
}
