import { EventEmitter } from 'eventemitter3';
import type { AgentBridge } from '../bridge/agent-bridge.js';
import { AbortError, DeliveryError, StateError, ValidationError } from '../errors/index.js';
import { DEFAULT_JSON_LIMITS, resolveLimits, type EventLimits } from '../events/json.js';
import type { AgentEvent, AnyEventType, EventData, EventOfType, Usage } from '../events/schema.js';
import { NEVER_ABORTED, abortErrorFrom } from './abort.js';
import { containedController } from './contained-signal.js';
import { describeThrown } from './redaction.js';
import { BridgeAdapter } from './bridge-adapter.js';
import { checkBridge } from '../bridge/bridge-like.js';
import { RunDelivery, emitEvent } from './emit.js';
import { answerDeltaJson, thinkingJson } from './event-json.js';
import type { Redactor } from './redaction.js';
import { runStorage, type RunContext, type RunState } from './run-context.js';
import { prepareStarted, runLifecycle, type RunHost } from './run-lifecycle.js';
import { RUN_TERMINAL, checkRunOptions, checkUsage, type RunOptions, type RunResult, type RunTerminal } from './run-options.js';
import { callTool, type ToolCallInfo, type ToolHost } from './tool-calls.js';
import { checkTool, type AnyTool, type ToolDefinition } from './tool.js';
import { checker, given, shown } from '../errors/options.js';
import { interactionLogOf, isInteractionLog, type AnswerInput, type AnswerReceipt, type InteractionLog } from '../transport/interaction.js';
import { askUser, type AskOptions } from './ask.js';

export type { RunOptions, RunResult, RunStatus } from './run-options.js';
export type { Redactor, ErrorRedactionContext } from './redaction.js';
export type { ToolCallInfo } from './tool-calls.js';

export interface BaseAgentOptions {
  /** Shown in every event's `agent` field. Default: the class name. */
  name?: string;
  tools?: AnyTool[];
  bridge?: AgentBridge;
  /**
   * What events carry instead of the real values, for secrets in inputs, tool arguments and
   * results, and what errors leave the process with (`redact.error`, see `defaultErrorInfo`).
   * Only the emitted events are redacted; the agent and its tools see the real values.
   */
  redact?: Redactor;
  /** Check every event against its schema before emitting. Default true. (JSON safety is always checked.) */
  validateEvents?: boolean;
  /**
   * Size and depth limits of this agent's events (`maxEventBytes`, `maxDepth`). Each field left
   * out takes the bridge's value, and without a bridge the default: 1 MiB per event, 64 levels of
   * nesting in its data.
   */
  limits?: EventLimits;
  /** Wrappers around runs and tool calls (tracing, logging); see `AgentInstrumentation`. */
  instrumentation?: AgentInstrumentation;
  /**
   * The log runs of this agent record their requests to users in and follow for the answers
   * (approvals, `ask`). Default: the bridge's transport when it is one (`MemoryTransport`,
   * `RedisStreamsTransport`), or the log it writes to when it is a gateway (`WebSocketGateway`:
   * its `log`); with Redis the transport's own log lets answers arrive at any gateway reading it.
   */
  interaction?: InteractionLog;
}

/** Options of `BaseAgent.streamText`. */
export interface StreamTextOptions {
  /**
   * The answer message the delta belongs to (1–64 characters, unique within the run). Default: the
   * message the previous delta wrote to when it was the run's last event, else a new one (`m<seq>`).
   */
  messageId?: string;
  /** The model step the text belongs to (`agent_thinking.data.step`). Default none. */
  step?: number;
}

/**
 * Wraps runs and tool calls, e.g. to make a span active around them so that code inside
 * (the agent's `execute`, a tool's `execute`) nests its own instrumentation underneath.
 * `next()` must be called exactly once; its outcome is the run's result or the tool's.
 */
export interface AgentInstrumentation {
  run?(ctx: RunContext, next: () => Promise<RunResult<unknown>>): Promise<RunResult<unknown>>;
  tool?(call: ToolCallInfo, next: () => Promise<unknown>): Promise<unknown>;
}

const REDACT_HOOKS = ['input', 'toolArgs', 'toolResult', 'output', 'error'] as const;
const INSTRUMENTATION_HOOKS = ['run', 'tool'] as const;

const INTERACTION_METHODS = ['subscribe', 'answerRequest', 'openRequest', 'closeRequest'] as const;

/** An object whose `hooks` are functions when present (`redact`, `instrumentation`). */
function checkHooks<T>(check: ReturnType<typeof checker>, option: string, value: T, hooks: readonly string[]): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw check.fail(option, `must be an object of hooks (${hooks.join(', ')}) (got ${shown(value)})`);
  }
  for (const hook of hooks) {
    const fn = (value as Record<string, unknown>)[hook];
    if (fn !== undefined) check.fn(`${option}.${hook}`, fn);
  }
  return value;
}

/** One listener per event type (`user_answered`: the answer a waiting run of this agent received). */
type LifecycleListeners = { [K in AnyEventType]: (event: EventOfType<K>) => void };
export interface AgentListeners extends LifecycleListeners {
  /** Every event of every run, in emission order. */
  event: (event: AgentEvent) => void;
  /** An event of a run could not be delivered nor buffered. */
  delivery_error: (error: DeliveryError, event: AgentEvent) => void;
  /** A local listener threw; the run went on. */
  listener_error: (error: unknown, event: AgentEvent) => void;
}

/**
 * Subclass and implement `execute`. One instance serves any number of concurrent runs for any
 * number of users: run state lives in AsyncLocalStorage, so `think()` and `callTool()` always
 * land in the run whose code called them.
 */
export abstract class BaseAgent<Input = unknown, Output = unknown> {
  readonly name: string;
  private readonly tools = new Map<string, AnyTool>();
  private readonly listeners = new EventEmitter<AgentListeners>();
  private readonly adapter: BridgeAdapter;
  private readonly redact: Redactor;
  private readonly limits: EventLimits | undefined;
  private readonly toolHost: ToolHost;
  private readonly runHost: RunHost<Input, Output>;
  private instrumentation: AgentInstrumentation | undefined;
  private readonly interactionLog: InteractionLog | undefined;
  /** Whether any local listener is registered (kept by `on`/`off`). */
  private observed = false;
  /** Local listeners that threw (each also reported as `listener_error`). */
  listenerErrors = 0;

  constructor(options: BaseAgentOptions = {}) {
    const check = checker('BaseAgent');
    if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object (got ${shown(options)})`);
    // The name goes into every event's `agent` field (1-128 characters).
    this.name = options.name === undefined ? this.constructor.name : check.string('name', options.name, 128);
    this.redact = checkHooks(check, 'redact', given(options.redact, {}), REDACT_HOOKS);
    resolveLimits(options.limits, undefined, 'BaseAgent'); // throws INVALID_OPTION now rather than at the first run
    this.limits = options.limits;
    this.adapter = new BridgeAdapter((event) => this.observe(event), check.boolean('validateEvents', given(options.validateEvents, true)));
    this.instrumentation = options.instrumentation === undefined ? undefined : checkHooks(check, 'instrumentation', options.instrumentation, INSTRUMENTATION_HOOKS);
    if (options.tools !== undefined && !Array.isArray(options.tools)) throw check.fail('tools', `must be an array of tools (got ${shown(options.tools)})`);
    if (options.interaction !== undefined && !isInteractionLog(options.interaction)) {
      throw check.fail('interaction', `must be an InteractionLog with ${INTERACTION_METHODS.join(', ')} (got ${shown(options.interaction)})`);
    }
    this.interactionLog = options.interaction;
    const agent = this;
    this.toolHost = {
      name: this.name,
      tools: this.tools,
      redact: this.redact,
      get instrument() {
        const instrumentation = agent.instrumentation;
        return instrumentation?.tool ? (call: ToolCallInfo, next: () => Promise<unknown>) => instrumentation.tool!(call, next) : undefined;
      },
      get interaction() {
        return agent.interaction;
      },
    };
    this.runHost = { redact: this.redact, tools: this.toolHost, execute: (input, ctx) => this.execute(input, ctx) };
    for (const tool of options.tools ?? []) this.addTool(tool);
    if (options.bridge !== undefined) this.setBridge(checkBridge(check, 'bridge', options.bridge));
  }

  /** The agent's work. Use `this.think()` and `this.callTool()` inside; honour `ctx.signal`. */
  protected abstract execute(input: Input, ctx: RunContext): Promise<Output>;

  setBridge(bridge: AgentBridge | undefined): this {
    this.adapter.setBridge(bridge === undefined ? undefined : checkBridge(checker('BaseAgent setBridge()'), 'bridge', bridge));
    return this;
  }

  get bridge(): AgentBridge | undefined {
    return this.adapter.bridge;
  }

  /** Sets the run/tool wrappers (replacing previous ones). */
  instrument(instrumentation: AgentInstrumentation | undefined): this {
    this.instrumentation = instrumentation === undefined ? undefined : checkHooks(checker('BaseAgent'), 'instrumentation', instrumentation, INSTRUMENTATION_HOOKS);
    return this;
  }

  addTool(tool: AnyTool): this {
    checkTool(tool);
    if (this.tools.has(tool.name)) {
      throw new ValidationError(`Tool "${tool.name}" is already defined on ${this.name}`, { code: 'DUPLICATE_TOOL' });
    }
    this.tools.set(tool.name, tool);
    return this;
  }

  /** Declares and registers a tool; returns the definition. */
  protected defineTool<Schema extends import('./standard-schema.js').StandardSchemaV1, Result>(
    definition: ToolDefinition<Schema, Result>,
  ): ToolDefinition<Schema, Result> {
    this.addTool(definition);
    return definition;
  }

  /** The registered tools (for adapters that describe them to a model). */
  listTools(): AnyTool[] {
    return [...this.tools.values()];
  }

  on<K extends keyof AgentListeners>(type: K, listener: AgentListeners[K]): this {
    this.listeners.on(type, listener as never);
    this.observed = true;
    return this;
  }

  off<K extends keyof AgentListeners>(type: K, listener: AgentListeners[K]): this {
    this.listeners.off(type, listener as never);
    this.observed = this.listeners.eventNames().length > 0;
    return this;
  }

  /** The active run of this agent in the current async context, if any. */
  get currentRun(): RunContext | undefined {
    const state = runStorage.getStore();
    return state?.owner === this && !state.emitter.isClosed ? state.ctx : undefined;
  }

  /**
   * Runs the agent once. Rejects before any event (and without registering the run) when the
   * options are invalid, the bridge is `failed` (`StateError` `BRIDGE_FAILED`), the run id is
   * already used (`RUN_ID_CONFLICT`), or the input or metadata cannot be an event
   * (`INPUT_NOT_SERIALIZABLE`); and, with nothing of the run in the log nor at its local
   * listeners and without calling `execute`, when its `agent_started` is refused: by the log (the
   * thread is another user's: `THREAD_FORBIDDEN`; another process started that run id:
   * `RUN_ID_CONFLICT`), or because the bridge failed meanwhile (its lazy first health check
   * failed: `BRIDGE_FAILED`). The run's `ctx.signal` aborts when it is cancelled: the caller's
   * `signal` aborts, or the bridge closes (`AbortError` caused by `BRIDGE_CLOSED`). Local listeners
   * get `agent_started` once the log accepted it. Otherwise resolves with the result, whatever
   * `execute` did: `agent_completed` is always emitted exactly once.
   */
  async run(input: Input, options: RunOptions): Promise<RunResult<Output>> {
    const { userId, threadId, runId, runIdGiven, metadata } = checkRunOptions(options);
    const callerSignal = options.signal ?? NEVER_ABORTED;
    const identity = { runId, threadId, userId, agent: this.name };
    const bridge = this.bridge;
    // A failed bridge accepts no event: the run would be invisible to everyone. Refused before
    // anything happens (nothing registered, no event, execute() not called); initialize() starts over.
    if (bridge?.state === 'failed') {
      throw new StateError('BRIDGE_FAILED', `The bridge is failed: run ${runId} was not started (call bridge.initialize() to start over)`);
    }
    const limits = this.limits ? resolveLimits(this.limits, bridge?.limits) : (bridge?.limits ?? DEFAULT_JSON_LIMITS);
    const emitter = this.adapter.createEmitter(identity, limits);
    const started = prepareStarted(emitter, this.redact, input, metadata, limits);
    if (bridge) {
      if (runIdGiven) await bridge.claimRunId(runId);
      bridge.openRun(identity); // AuthError for another user's thread; ends the claim either way
    }
    // A run on a bridge has a signal of its own, so that bridge.close() can abort it (the caller's
    // signal is the caller's): it follows the caller's signal, with the caller's reason. So does a
    // run given a signal without a bridge. That signal contains its listeners: one the agent's code
    // added that throws is reported (listener_error, LISTENER_FAILED), never an uncaught exception.
    // A run with neither keeps NEVER_ABORTED: nothing can abort it, so no listener of it ever runs.
    const signalListenerFailed = (error: unknown) => this.signalListenerFailed(error, started);
    const controller = bridge || callerSignal !== NEVER_ABORTED ? containedController(signalListenerFailed) : undefined;
    const signal = controller ? controller.signal : callerSignal;
    const ctx: RunContext = { ...identity, signal, metadata };
    const deliveryErrors: DeliveryError[] = [];
    const onDeliveryError = (error: DeliveryError, event: AgentEvent) => this.notify('delivery_error', error, event);
    const state: RunState = {
      owner: this,
      ctx,
      emitter,
      openTools: new Map(),
      deliveryErrors,
      highWaterMark: bridge?.highWaterMark,
      onDeliveryError,
      delivery: new RunDelivery(deliveryErrors, onDeliveryError),
      abandon: bridge && (() => bridge.abandonRun(runId)),
      onTerminal: terminalSink(options),
      aborted: false,
      controller,
      callerSignal: callerSignal !== NEVER_ABORTED,
      signalListenerFailed,
    };
    // A plain flag for the per-event check (AbortSignal's getter is measurably slower on the hot path).
    const onAbort = () => abortRun(state, callerSignal.reason);
    if (callerSignal.aborted) onAbort();
    const abortable = callerSignal !== NEVER_ABORTED && !callerSignal.aborted;
    if (abortable) callerSignal.addEventListener('abort', onAbort, { once: true });
    // The caller's signal may outlive the run (one signal for many runs): never leave a listener on it.
    const body = () => {
      if (bridge) {
        // bridge.close() cancels the run and waits for its terminal event. Once it began, a new run
        // ends cancelled at once, without execute() (its events are refused: BRIDGE_CLOSED).
        state.tracked = bridge.trackRun(runId, () => stopRun(state));
        if (!state.tracked) stopRun(state);
      }
      return runStorage
        .run(state, () => runLifecycle(this.runHost, input, state, started))
        .finally(() => {
          if (abortable) callerSignal.removeEventListener('abort', onAbort);
          if (state.tracked) bridge!.untrackRun(runId);
        });
    };
    const wrap = this.instrumentation?.run;
    return wrap ? (wrap.call(this.instrumentation, ctx, body) as Promise<RunResult<Output>>) : body();
  }

  /**
   * Reports reasoning or progress as `agent_thinking`. Resolves once the event is delivered or
   * buffered. Never throws: outside a run of this agent it rejects with `StateError`
   * `NO_ACTIVE_RUN`, after the run ended with `RUN_CLOSED`, when aborted with `AbortError`, and
   * for text that is not a string or too large for an event with `ValidationError`
   * (`INVALID_EVENT`, `EVENT_TOO_LARGE`; no event is emitted and no seq is used).
   */
  think(text: string, step?: number): Promise<void> {
    try {
      const state = this.activeRun('think');
      if (state.aborted) return Promise.reject(abortErrorFrom(state.ctx.signal));
      return emitEvent(state, 'agent_thinking', step === undefined ? { text } : { text, step }, thinkingJson(text, step));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Streams a delta of the run's answer text as it is written: an `agent_thinking` with
   * `channel: 'answer'`, the delta as `text` and the `messageId` of the answer message it belongs to,
   * one event per call (coalesce yourself if you produce very small deltas). Front ends append the
   * deltas (AG-UI `TEXT_MESSAGE_CONTENT`, AI SDK `text-delta`); with seq and cursors a resumed client
   * never gets a delta twice nor misses one. Consecutive calls continue one message; any other event
   * of the run in between (a thought, a tool call) ends it and the next call starts a new one
   * (`messageId` `m<seq>`), as does a different `options.messageId`. An empty delta emits nothing.
   * The run's output (`agent_completed.result`) stays what `execute` returns. Resolves and rejects
   * like `think()`.
   */
  streamText(delta: string, options: StreamTextOptions = {}): Promise<void> {
    try {
      const state = this.activeRun('streamText');
      if (state.aborted) return Promise.reject(abortErrorFrom(state.ctx.signal));
      if (typeof delta !== 'string') {
        throw new ValidationError('streamText() takes a string delta', { code: 'INVALID_EVENT', field: 'data.text' });
      }
      if (delta.length === 0) return Promise.resolve();
      const seq = state.emitter.count;
      const current = state.answer;
      const continues = current !== undefined && current.seq === seq && (options.messageId === undefined || options.messageId === current.messageId);
      const messageId = continues ? current.messageId : (options.messageId ?? `m${seq + 1}`);
      const data: EventData<'agent_thinking'> =
        options.step === undefined ? { text: delta, channel: 'answer', messageId } : { text: delta, step: options.step, channel: 'answer', messageId };
      const delivered = emitEvent(state, 'agent_thinking', data, answerDeltaJson(delta, options.step, messageId));
      state.answer = { messageId, seq: seq + 1 };
      return delivered;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Adds token usage to the run's total, reported in `agent_completed.data.usage`. Synchronous,
   * and safe to call late: returns `true` when counted, `false` when there is no active run of this
   * agent in the current async context (outside a run, or after it ended: e.g. a timer that fires
   * late). Throws `ValidationError` only inside an active run, for counts that are not
   * non-negative integers.
   */
  reportUsage(usage: Usage): boolean {
    const state = runStorage.getStore();
    if (!state || state.owner !== this || state.emitter.isClosed) return false;
    checkUsage(usage);
    const total = state.usage ?? { inputTokens: 0, outputTokens: 0 };
    // Sums stay safe integers (the schema's bound): a total past 2^53 - 1 stays there.
    state.usage = {
      inputTokens: Math.min(total.inputTokens + usage.inputTokens, Number.MAX_SAFE_INTEGER),
      outputTokens: Math.min(total.outputTokens + usage.outputTokens, Number.MAX_SAFE_INTEGER),
    };
    return true;
  }

  /**
   * Calls a registered tool: validates `args` with its schema and emits `tool_executing` /
   * `tool_completed` around it with timing. Unknown tools (including `''`, names longer than 128
   * characters and non-strings), invalid args, timeouts, thrown errors and results that are not
   * JSON (`RESULT_NOT_SERIALIZABLE`) produce a failed `tool_completed` and reject with a
   * `ToolError` (or `AbortError`). Outside a run it rejects with `StateError` `NO_ACTIVE_RUN`,
   * after the run ended with `RUN_CLOSED`.
   */
  callTool<Result = unknown>(name: string, args: unknown): Promise<Result> {
    try {
      return callTool<Result>(this.toolHost, this.activeRun('callTool'), name, args);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The log answers are recorded in and followed from (see `BaseAgentOptions.interaction`). */
  get interaction(): InteractionLog | undefined {
    if (this.interactionLog) return this.interactionLog;
    return interactionLogOf(this.bridge?.transport);
  }

  /**
   * Asks the run's user a question and waits for the answer, inside a run (in `execute` or a
   * tool). Shown as a call of the tool `ask_user` (`tool_executing` with `pending` kind `question`,
   * the JSON Schema of `schema`); resolves with the answer's value parsed by `schema`, and the call
   * completes with it. Rejects with `ValidationError` `ANSWER_INVALID` for a value the schema
   * refuses, `ToolError` `APPROVAL_TIMEOUT` after `timeoutMs` (default 5 min), `AbortError` on cancel.
   */
  ask<Schema extends import('zod').ZodType>(question: string, schema: Schema, options: AskOptions = {}): Promise<import('zod').output<Schema>> {
    try {
      return askUser(this.toolHost, this.activeRun('ask'), question, schema, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Hands a user's answer to the agent's log (see `AnswerLog.answerRequest`): what a front end
   * calls with the authenticated user. Rejects with `NO_ANSWER_LOG` when the agent has none.
   */
  answer(input: AnswerInput): Promise<AnswerReceipt> {
    const log = this.interaction;
    if (!log) return Promise.reject(new StateError('NO_ANSWER_LOG', `${this.name} has no log to hand answers to`));
    return log.answerRequest(input);
  }

  private activeRun(operation: string): RunState {
    const state = runStorage.getStore();
    if (!state || state.owner !== this) {
      throw new StateError('NO_ACTIVE_RUN', `${operation}() must be called inside a run of ${this.name} (from execute or a tool)`);
    }
    if (state.emitter.isClosed) {
      throw new StateError('RUN_CLOSED', `${operation}() was called after run ${state.ctx.runId} completed`);
    }
    return state;
  }

  /** Local observation. Each listener is isolated: one that throws is counted and reported, the rest still run. */
  private observe(event: AgentEvent): void {
    if (!this.observed) return; // nobody listens: no lookups per event
    this.notify(event.type, event as never);
    this.notify('event', event);
  }

  /**
   * A listener the agent's code put on a run's signal (`ctx.signal`, a tool call's signal) threw or
   * rejected when the signal aborted: counted in `listenerErrors` and reported as `listener_error`
   * (`StateError` `LISTENER_FAILED`, the thrown value as its cause, with the run's `agent_started`).
   * The run goes on to its end as it would have; the process is not crashed.
   */
  private signalListenerFailed(error: unknown, started: AgentEvent): void {
    this.listenerErrors++;
    const failure = new StateError('LISTENER_FAILED', `An abort listener of run ${started.runId} threw: ${describeThrown(error)}`, { cause: error });
    this.notify('listener_error', failure, started);
  }

  private notify<K extends keyof AgentListeners>(type: K, ...args: Parameters<AgentListeners[K]>): void {
    if (this.listeners.listenerCount(type) === 0) return;
    for (const listener of this.listeners.listeners(type)) {
      try {
        (listener as (...a: unknown[]) => void)(...args);
      } catch (error) {
        this.listenerErrors++;
        if (type !== 'listener_error') this.notify('listener_error', error, args[args.length - 1] as AgentEvent);
      }
    }
  }
}

/** A run queue's `RUN_TERMINAL` callback on the run options, if any (read guarded: the options are the caller's). */
function terminalSink(options: RunOptions): ((terminal: RunTerminal) => void) | undefined {
  const sink = (options as RunOptions & { [RUN_TERMINAL]?: unknown })[RUN_TERMINAL];
  return typeof sink === 'function' ? (sink as (terminal: RunTerminal) => void) : undefined;
}

/**
 * Cancels the run: aborts its `ctx.signal` (a run on a bridge or given a signal has its own) with
 * `reason`. What the agent's code awaits with that signal (a model call, fetch(), a tool) is
 * aborted, the run stops waiting for `execute` and ends cancelled, its open tool calls closed
 * first. A listener of that signal that throws is reported, not rethrown (`containListeners`).
 */
function abortRun(state: RunState, reason: unknown): void {
  state.aborted = true;
  if (state.controller && !state.controller.signal.aborted) state.controller.abort(reason);
}

/**
 * The run's bridge is closing: the run is cancelled (`abortRun`) with an `AbortError` caused by
 * `StateError` `BRIDGE_CLOSED`, so its `ctx.signal` and its tools' signals abort with it; a run
 * whose `agent_started` is still being sent ends right after it settled, without running
 * `execute`. Nothing once its terminal event is out (it ends as it was).
 */
function stopRun(state: RunState): void {
  if (state.aborted || state.emitter.isClosed) return;
  const cause = new StateError('BRIDGE_CLOSED', 'The bridge is closed');
  abortRun(state, new AbortError('The run was cancelled: the bridge is closing', { cause }));
}
