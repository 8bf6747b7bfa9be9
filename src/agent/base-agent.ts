import { EventEmitter } from 'eventemitter3';
import { nanoid } from 'nanoid';
import type { AgentBridge } from '../bridge/agent-bridge.js';
import {
  AgentwireError,
  DeliveryError,
  StateError,
  ToolError,
  ToolTimeoutError,
  ValidationError,
  serializeError,
} from '../errors/index.js';
import { describeIssue } from '../events/parse.js';
import type { AgentEvent, EventData, EventOfType, EventType, Usage } from '../events/schema.js';
import { generateRunId, isRunId, parseRunId } from '../ids/run-id.js';
import { assertThreadId, isValidRunIdShape } from '../ids/thread-id.js';
import { NEVER_ABORTED, abortErrorFrom, raceAbort } from './abort.js';
import { BridgeAdapter } from './bridge-adapter.js';
import { runStorage, type RunContext, type RunState } from './run-context.js';
import type { AnyTool, ToolContext, ToolDefinition } from './tool.js';

export interface RunOptions {
  userId: string;
  threadId: string;
  /** Defaults to `generateRunId(threadId)`. A standard run id must name the same thread. */
  runId?: string;
  /** Aborting it cancels the run: open tools are closed, then `agent_completed` is `cancelled`. */
  signal?: AbortSignal;
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
  /** Present when `status` is `failed` or `cancelled`. */
  error?: Error;
  durationMs: number;
  /** Events the run emitted (the last seq). */
  events: number;
  usage?: Usage;
  /** Events the bridge could neither deliver nor buffer. Empty when everything arrived. */
  deliveryErrors: DeliveryError[];
}

/** Redaction hooks; each returns what the event should carry (undefined omits the value). */
export interface Redactor {
  /** `agent_started.data.input`. */
  input?(input: unknown): unknown;
  /** `tool_executing.data.args`. */
  toolArgs?(tool: string, args: unknown): unknown;
  /** `tool_completed.data.result` of a successful call. */
  toolResult?(tool: string, result: unknown): unknown;
  /** `agent_completed.data.result` of a successful run. */
  output?(output: unknown): unknown;
}

export interface BaseAgentOptions {
  /** Shown in every event's `agent` field. Default: the class name. */
  name?: string;
  tools?: AnyTool[];
  bridge?: AgentBridge;
  /**
   * What events carry instead of the real values, for secrets in inputs, tool arguments and
   * results. Only the emitted events are redacted; the agent and its tools see the real values.
   */
  redact?: Redactor;
  /** Check every event against its schema before emitting. Default true. */
  validateEvents?: boolean;
  /** Wrappers around runs and tool calls (tracing, logging); see `AgentInstrumentation`. */
  instrumentation?: AgentInstrumentation;
}

/** What an instrumentation sees about a tool call. */
export interface ToolCallInfo extends RunContext {
  toolCallId: string;
  tool: string;
  args: unknown;
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

type LifecycleListeners = { [K in EventType]: (event: EventOfType<K>) => void };
export interface AgentListeners extends LifecycleListeners {
  /** Every event of every run, in emission order. */
  event: (event: AgentEvent) => void;
  /** An event of a run could not be delivered nor buffered. */
  delivery_error: (error: DeliveryError, event: AgentEvent) => void;
  /** A local listener threw; the run went on. */
  listener_error: (error: unknown, event: AgentEvent) => void;
}

const DELIVERED = Promise.resolve();
const ignoreOutcome = (): void => undefined;

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
  private instrumentation: AgentInstrumentation | undefined;
  /** Local listeners that threw (each also reported as `listener_error`). */
  listenerErrors = 0;

  constructor(options: BaseAgentOptions = {}) {
    this.name = options.name ?? this.constructor.name;
    this.redact = options.redact ?? {};
    this.adapter = new BridgeAdapter((event) => this.observe(event), options.validateEvents ?? true);
    this.instrumentation = options.instrumentation;
    for (const tool of options.tools ?? []) this.addTool(tool);
    if (options.bridge) this.setBridge(options.bridge);
  }

  /** The agent's work. Use `this.think()` and `this.callTool()` inside; honour `ctx.signal`. */
  protected abstract execute(input: Input, ctx: RunContext): Promise<Output>;

  setBridge(bridge: AgentBridge | undefined): this {
    this.adapter.setBridge(bridge);
    return this;
  }

  get bridge(): AgentBridge | undefined {
    return this.adapter.bridge;
  }

  /** Sets the run/tool wrappers (replacing previous ones). */
  instrument(instrumentation: AgentInstrumentation | undefined): this {
    this.instrumentation = instrumentation;
    return this;
  }

  addTool(tool: AnyTool): this {
    if (this.tools.has(tool.name)) {
      throw new ValidationError(`Tool "${tool.name}" is already defined on ${this.name}`, { code: 'DUPLICATE_TOOL' });
    }
    this.tools.set(tool.name, tool);
    return this;
  }

  /** Declares and registers a tool; returns the definition. */
  protected defineTool<Schema extends import('zod').ZodType, Result>(
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
    return this;
  }

  off<K extends keyof AgentListeners>(type: K, listener: AgentListeners[K]): this {
    this.listeners.off(type, listener as never);
    return this;
  }

  /** The active run of this agent in the current async context, if any. */
  get currentRun(): RunContext | undefined {
    const state = runStorage.getStore();
    return state?.owner === this ? state.ctx : undefined;
  }

  async run(input: Input, options: RunOptions): Promise<RunResult<Output>> {
    const { userId, threadId, runId, metadata } = this.checkRunOptions(options);
    const signal = options.signal ?? NEVER_ABORTED;
    const ctx: RunContext = { runId, threadId, userId, agent: this.name, signal, metadata };
    const emitter = this.adapter.openRun({ runId, threadId, userId, agent: this.name });
    const state: RunState = {
      owner: this,
      ctx,
      emitter,
      openTools: new Map(),
      deliveryErrors: [],
      aborted: signal.aborted,
    };
    // A plain flag for the per-event check (AbortSignal's getter is measurably slower on the hot path).
    const onAbort = () => (state.aborted = true);
    const abortable = signal !== NEVER_ABORTED && !state.aborted;
    if (abortable) signal.addEventListener('abort', onAbort, { once: true });
    // The caller's signal may outlive the run (one signal for many runs): never leave a listener on it.
    const body = () =>
      runStorage.run(state, () => this.runBody(input, state)).finally(() => abortable && signal.removeEventListener('abort', onAbort));
    const wrap = this.instrumentation?.run;
    return wrap ? (wrap.call(this.instrumentation, ctx, body) as Promise<RunResult<Output>>) : body();
  }

  private async runBody(input: Input, state: RunState): Promise<RunResult<Output>> {
    const { ctx, emitter } = state;
    const { runId, threadId, userId, signal, metadata } = ctx;
    const startedAt = performance.now();
    {
      const redactInput = this.redact.input;
      this.emitEvent(state, 'agent_started', { input: redactInput ? redactInput(input) : input, metadata });
      let status: RunStatus = 'succeeded';
      let output: Output | undefined;
      let error: Error | undefined;
      try {
        const work = Promise.resolve().then(() => this.execute(input, ctx));
        output = await (signal === NEVER_ABORTED ? work : raceAbort(work, signal));
      } catch (caught) {
        status = signal.aborted ? 'cancelled' : 'failed';
        error = signal.aborted ? abortErrorFrom(signal) : toError(caught);
      }
      // No run ever leaves an orphaned tool_executing: close what is still open first.
      if (state.openTools.size > 0) {
        const closeWith = error ?? new StateError('RUN_ENDED', 'The run finished before this tool call did');
        for (const toolCallId of [...state.openTools.keys()]) this.closeTool(state, toolCallId, closeWith);
      }
      const durationMs = elapsed(startedAt);
      const usage = state.usage;
      const data: EventData<'agent_completed'> =
        status === 'succeeded'
          ? { status, result: this.redact.output ? this.redact.output(output) : output, durationMs, ...(usage && { usage }) }
          : { status, error: serializeError(error), durationMs, ...(usage && { usage }) };
      // The run's queue is ordered: once the terminal event settled, every earlier one has too.
      await this.emitEvent(state, 'agent_completed', data);
      return {
        runId,
        threadId,
        userId,
        status,
        ...(status === 'succeeded' ? { output } : { error }),
        durationMs,
        events: emitter.count,
        ...(usage && { usage }),
        deliveryErrors: state.deliveryErrors,
      };
    }
  }

  /** Reports reasoning or progress as `agent_thinking`. Resolves once the event is delivered or buffered. */
  think(text: string, step?: number): Promise<void> {
    const state = this.activeRun('think');
    if (state.aborted) return Promise.reject(abortErrorFrom(state.ctx.signal));
    return this.emitEvent(state, 'agent_thinking', step === undefined ? { text } : { text, step });
  }

  /** Adds token usage to the run's total, reported in `agent_completed.data.usage`. */
  reportUsage(usage: Usage): void {
    const state = this.activeRun('reportUsage');
    const total = state.usage ?? { inputTokens: 0, outputTokens: 0 };
    state.usage = { inputTokens: total.inputTokens + usage.inputTokens, outputTokens: total.outputTokens + usage.outputTokens };
  }

  /**
   * Calls a registered tool: validates `args` with its schema and emits `tool_executing` /
   * `tool_completed` around it with timing. Unknown tools, invalid args, timeouts and thrown
   * errors produce a failed `tool_completed` and reject with a `ToolError` (or `AbortError`).
   */
  async callTool<Result = unknown>(name: string, args: unknown): Promise<Result> {
    const state = this.activeRun('callTool');
    const runSignal = state.ctx.signal;
    if (runSignal.aborted) throw abortErrorFrom(runSignal);
    const toolCallId = `call_${nanoid(16)}`;
    const wrap = this.instrumentation?.tool;
    const body = () => this.invokeTool<Result>(state, toolCallId, name, args);
    return wrap ? (wrap.call(this.instrumentation, { ...state.ctx, toolCallId, tool: name, args }, body) as Promise<Result>) : body();
  }

  private async invokeTool<Result>(state: RunState, toolCallId: string, name: string, args: unknown): Promise<Result> {
    const runSignal = state.ctx.signal;
    // A controller (and its listeners) only when something can abort this call: the run's signal or a timeout.
    const controller =
      runSignal !== NEVER_ABORTED || this.tools.get(name)?.timeoutMs !== undefined ? new AbortController() : undefined;
    const startedAt = performance.now();
    const shownArgs = this.redact.toolArgs ? this.redact.toolArgs(name, args) : args;
    const opened = this.emitEvent(state, 'tool_executing', { toolCallId, tool: name, args: shownArgs });
    state.openTools.set(toolCallId, { tool: name, startedAt, controller });
    try {
      await opened;
      const tool = this.tools.get(name);
      if (!tool) {
        const known = [...this.tools.keys()].join(', ') || 'none';
        throw new ToolError(name, `Unknown tool "${name}" (tools of ${this.name}: ${known})`, { code: 'TOOL_NOT_FOUND' });
      }
      const parsed = tool.parameters.safeParse(args);
      if (!parsed.success) {
        const issue = describeIssue(parsed.error, 'args');
        throw new ToolError(name, `Invalid arguments for tool "${name}": ${issue.field}: ${issue.message}`, {
          code: 'TOOL_INVALID_ARGS',
          cause: parsed.error,
          details: { field: issue.field },
        });
      }
      const toolCtx: ToolContext = { ...state.ctx, toolCallId, signal: controller?.signal ?? runSignal };
      const result = (await this.executeTool(tool, parsed.data, toolCtx, controller, runSignal)) as Result;
      const call = state.openTools.get(toolCallId);
      if (!call) throw abortErrorFrom(runSignal); // the run closed it while it finished
      state.openTools.delete(toolCallId);
      await this.emitEvent(state, 'tool_completed', {
        toolCallId,
        tool: name,
        status: 'succeeded',
        result: this.redact.toolResult ? this.redact.toolResult(name, result) : result,
        durationMs: elapsed(startedAt),
      });
      return result;
    } catch (error) {
      this.closeTool(state, toolCallId, error);
      throw error instanceof AgentwireError ? error : new ToolError(name, `Tool "${name}" failed: ${toError(error).message}`, { cause: error });
    }
  }

  private async executeTool(
    tool: AnyTool,
    args: unknown,
    ctx: ToolContext,
    controller: AbortController | undefined,
    runSignal: AbortSignal,
  ): Promise<unknown> {
    if (!controller) return tool.execute(args, ctx);
    const onRunAbort = () => controller.abort(runSignal.reason);
    // Runs started without a signal share NEVER_ABORTED: listening on it would pile up one listener per
    // concurrent timed tool call on that one signal (a MaxListenersExceededWarning past 10) for nothing.
    const abortable = runSignal !== NEVER_ABORTED;
    if (abortable) runSignal.addEventListener('abort', onRunAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    if (tool.timeoutMs !== undefined) {
      timer = setTimeout(() => controller.abort(new ToolTimeoutError(tool.name, tool.timeoutMs!)), tool.timeoutMs);
    }
    try {
      const work = Promise.resolve().then(() => tool.execute(args, ctx));
      return await raceAbort(work, controller.signal);
    } catch (error) {
      // A timeout surfaces as the ToolTimeoutError itself, not as a generic abort.
      if (controller.signal.aborted && controller.signal.reason instanceof ToolTimeoutError && !runSignal.aborted) {
        throw controller.signal.reason;
      }
      throw error;
    } finally {
      if (timer) clearTimeout(timer);
      if (abortable) runSignal.removeEventListener('abort', onRunAbort);
    }
  }

  /** Emits the failed `tool_completed` for a still-open call; returns whether it was open. */
  private closeTool(state: RunState, toolCallId: string, error: unknown): boolean {
    const call = state.openTools.get(toolCallId);
    if (!call) return false;
    state.openTools.delete(toolCallId);
    if (call.controller && !call.controller.signal.aborted) call.controller.abort(error);
    this.emitEvent(state, 'tool_completed', {
      toolCallId,
      tool: call.tool,
      status: 'failed',
      error: serializeError(error instanceof ToolError && error.cause instanceof Error && error.code === 'TOOL_FAILED' ? error.cause : error),
      durationMs: elapsed(call.startedAt),
    });
    return true;
  }

  private activeRun(operation: string): RunState {
    const state = runStorage.getStore();
    if (!state || state.owner !== this) {
      throw new StateError('NO_ACTIVE_RUN', `${operation}() must be called inside a run of ${this.name} (from execute or a tool)`);
    }
    return state;
  }

  /**
   * Emits an event of the run. The returned promise never rejects (delivery failures are recorded
   * on the run) and resolves once the bridge accepted the event into the run's ordered queue; when
   * the run has more than `highWaterMark` events queued, or for the terminal event, it resolves
   * only once this event was delivered or buffered (backpressure).
   */
  private emitEvent<T extends EventType>(state: RunState, type: T, data: EventData<T>): Promise<void> {
    const bridge = this.bridge;
    if (!bridge) {
      state.emitter.push(type, data, ignoreOutcome);
      return DELIVERED;
    }
    let done: (() => void) | undefined;
    let settledAlready = false; // refused and buffered events settle synchronously
    const queued = state.emitter.push(type, data, (error, _receipt, event) => {
      if (error) {
        state.deliveryErrors.push(error);
        this.notify('delivery_error', error, event);
      }
      if (done) done();
      else settledAlready = true;
    });
    if (settledAlready || (queued <= bridge.highWaterMark && type !== 'agent_completed')) return DELIVERED;
    return new Promise<void>((resolve) => (done = resolve));
  }

  /** Local observation. Each listener is isolated: one that throws is counted and reported, the rest still run. */
  private observe(event: AgentEvent): void {
    this.notify(event.type, event as never);
    this.notify('event', event);
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

  private checkRunOptions(options: RunOptions): { userId: string; threadId: string; runId: string; metadata: Record<string, unknown> } {
    if (options === null || typeof options !== 'object') {
      throw new ValidationError('run() needs options { userId, threadId }', { field: 'options', code: 'INVALID_RUN_OPTIONS' });
    }
    const { userId, threadId, metadata = {} } = options;
    if (typeof userId !== 'string' || userId.length === 0 || userId.length > 256) {
      throw new ValidationError(`Invalid userId ${JSON.stringify(userId)}: expected a non-empty string of at most 256 characters`, {
        field: 'userId',
        code: 'INVALID_USER_ID',
      });
    }
    assertThreadId(threadId);
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw new ValidationError('metadata must be a plain object', { field: 'metadata', code: 'INVALID_RUN_OPTIONS' });
    }
    const runId = options.runId;
    if (runId === undefined) return { userId, threadId, runId: generateRunId(threadId), metadata };
    if (!isValidRunIdShape(runId)) parseRunId(runId); // throws the descriptive error
    // A custom run id is fine; a standard one must name this thread.
    const named = isRunId(runId) ? parseRunId(runId).threadId : threadId;
    if (named !== threadId) {
      throw new ValidationError(`Run id "${runId}" belongs to thread "${named}", not "${threadId}"`, {
        field: 'runId',
        code: 'RUN_THREAD_MISMATCH',
      });
    }
    return { userId, threadId, runId, metadata };
  }
}

function elapsed(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 1000) / 1000;
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(typeof error === 'string' ? error : 'Non-error thrown', { cause: error });
}

