import { nanoid } from 'nanoid';
import { isInstance } from '../errors/guards.js';
import { AgentwireError, StateError, ToolError, ToolTimeoutError } from '../errors/index.js';
import { notJsonReasonOf, notSerializableMarker } from '../events/json.js';
import { validateStandard } from './standard-schema.js';
import { NEVER_ABORTED, abortErrorFrom, raceAbort } from './abort.js';
import { containedController, listenRaw, unlistenRaw } from './contained-signal.js';
import { DELIVERED, emitEvent } from './emit.js';
import { executingJson, succeededJson } from './event-json.js';
import { bound, errorInfoFor, shownToolName, toolFailure, type Redactor } from './redaction.js';
import type { RunContext, RunState } from './run-context.js';
import type { AnyTool, ToolContext } from './tool.js';
import type { PendingInput } from '../events/schema.js';
import type { InteractionLog } from '../transport/interaction.js';
import { DEFAULT_APPROVAL_TIMEOUT_MS, awaitAnswer, deniedError, openRequest } from './approval.js';
import type { PendingRequest } from '../transport/interaction.js';

/** What an instrumentation sees about a tool call. */
export interface ToolCallInfo extends RunContext {
  toolCallId: string;
  /** The tool's name as events show it (see `shownToolName`). */
  tool: string;
  args: unknown;
}

/** What tool calls need from their agent. */
export interface ToolHost {
  readonly name: string;
  readonly tools: ReadonlyMap<string, AnyTool>;
  readonly redact: Redactor;
  readonly instrument: ((call: ToolCallInfo, next: () => Promise<unknown>) => Promise<unknown>) | undefined;
  /** Where calls that need an answer record their request and wait for it (undefined: no such log). */
  readonly interaction: InteractionLog | undefined;
}

/**
 * Calls a registered tool inside a run: validates `args` with its schema and emits
 * `tool_executing` / `tool_completed` around it with timing. Unknown tools (any name that is not
 * a registered one: empty, too long, not a string), invalid args, timeouts, thrown errors and
 * results that are not JSON produce a failed `tool_completed` and reject with a `ToolError`
 * (or `AbortError`).
 */
export function callTool<Result>(host: ToolHost, state: RunState, name: unknown, args: unknown): Promise<Result> {
  const runSignal = state.ctx.signal;
  if (runSignal.aborted) return Promise.reject(abortErrorFrom(runSignal));
  const toolCallId = state.emitter.nextCallId();
  const tool = shownToolName(name);
  const wrap = host.instrument;
  if (!wrap) return invokeTool<Result>(host, state, toolCallId, name, tool, args);
  const { runId, threadId, userId, agent, signal, metadata } = state.ctx;
  const body = () => invokeTool<Result>(host, state, toolCallId, name, tool, args);
  return wrap({ runId, threadId, userId, agent, signal, metadata, toolCallId, tool, args }, body) as Promise<Result>;
}

async function invokeTool<Result>(host: ToolHost, state: RunState, toolCallId: string, name: unknown, tool: string, args: unknown): Promise<Result> {
  const runSignal = state.ctx.signal;
  const registered = typeof name === 'string' ? host.tools.get(name) : undefined;
  // A controller (and its listeners) only when something can abort this call but the run's own
  // signal: the caller's signal (the call is then aborted when the run closes it) or a timeout.
  // Otherwise the tool gets the run's signal itself (aborted when the bridge closes).
  // Its signal contains its listeners like the run's (a throwing one is reported, not uncaught).
  const controller = state.callerSignal || registered?.timeoutMs !== undefined ? containedController(state.signalListenerFailed) : undefined;
  const startedAt = performance.now();
  let redactFailure: { error: unknown } | undefined;
  let shownArgs = args;
  if (host.redact.toolArgs) {
    try {
      shownArgs = host.redact.toolArgs(tool, args);
    } catch (error) {
      // The args cannot be shown safely: the event carries the marker, and the call fails.
      shownArgs = notSerializableMarker('unserializable');
      redactFailure = { error };
    }
  }
  // Only tools that may need approval take this detour (the usual call stays synchronous up to its event).
  let approval: { pending: PendingInput } | { error: unknown } | undefined;
  if (registered?.needsApproval !== undefined && !redactFailure) approval = await approvalOf(host, registered, state, args);
  const pending = approval && 'pending' in approval ? approval.pending : undefined;
  // The log knows the request before anyone can see it: recorded right before its event, in one turn.
  const request = pending && requestOf(state, pending, toolCallId, 'approval');
  const recorded = request && openRequest(host.interaction!, request);
  let opened: Promise<void>;
  try {
    opened = emitExecuting(state, toolCallId, tool, shownArgs, pending);
  } catch (error) {
    if (request) void host.interaction!.closeRequest(request).catch(() => undefined);
    throw error;
  }
  state.openTools.set(toolCallId, { tool, startedAt, controller });
  try {
    // Only what is still pending is awaited: a call whose event was accepted at once, with a
    // synchronous schema and tool, makes no promise of its own but the one it returns.
    if (opened !== DELIVERED) await opened;
    if (redactFailure) throw redactFailure.error;
    if (approval && 'error' in approval) throw approval.error;
    if (!registered) {
      const known = [...host.tools.keys()].join(', ') || 'none';
      const shown = typeof name === 'string' ? JSON.stringify(bound(name, 128)) : `of type ${name === null ? 'null' : typeof name}`;
      throw new ToolError(tool, `Unknown tool ${shown} (tools of ${host.name}: ${bound(known, 512)})`, { code: 'TOOL_NOT_FOUND' });
    }
    const validated = validateStandard(registered.parameters, args, 'args');
    const parsed = validated instanceof Promise ? await validated : validated;
    if (!parsed.ok) {
      throw new ToolError(tool, `Invalid arguments for tool "${tool}": ${parsed.field}: ${parsed.message}`, {
        code: 'TOOL_INVALID_ARGS',
        details: { field: parsed.field, issues: parsed.issues.slice(0, 5) },
      });
    }
    if (request && recorded && pending) {
      const answer = await awaitAnswer(host.interaction!, recorded, request, tool, pending.timeoutMs, runSignal);
      if (answer.data.approved !== true) throw deniedError(tool, answer);
    }
    // Field by field, not a spread: copying the context with `...` took the slow generic path (≈ 1 µs a call).
    const { ctx } = state;
    const toolCtx: ToolContext = {
      runId: ctx.runId,
      threadId: ctx.threadId,
      userId: ctx.userId,
      agent: ctx.agent,
      signal: controller?.signal ?? runSignal,
      metadata: ctx.metadata,
      toolCallId,
    };
    // Without a controller nothing can abort the call: the tool runs here, its throw caught below.
    const running = controller ? executeTool(registered, parsed.value, toolCtx, controller, runSignal) : registered.execute(parsed.value, toolCtx);
    const result = (isThenable(running) ? await running : running) as Result;
    if (!state.openTools.has(toolCallId)) {
      // The run closed the call while it finished (aborted, or ended without waiting for it).
      throw runSignal.aborted ? abortErrorFrom(runSignal) : new StateError('RUN_ENDED', 'The run finished before this tool call did');
    }
    const shownResult = host.redact.toolResult ? host.redact.toolResult(tool, result) : result;
    const completed = emitSucceeded(state, toolCallId, tool, shownResult, startedAt);
    state.openTools.delete(toolCallId);
    if (completed !== DELIVERED) await completed;
    return result;
  } catch (error) {
    // A request the call no longer waits for (invalid args, unknown tool, args not shown) takes no answer.
    if (request) void host.interaction!.closeRequest(request).catch(() => undefined);
    closeTool(host, state, toolCallId, error);
    throw isInstance(error, AgentwireError) ? error : toolFailure(tool, error);
  }
}

/** `tool_executing`; arguments that are not JSON (or too large or deep) are shown as the not-serializable marker. */
function emitExecuting(state: RunState, toolCallId: string, tool: string, args: unknown, pending?: PendingInput): Promise<void> {
  try {
    if (pending) return emitEvent(state, 'tool_executing', { toolCallId, tool, args, pending });
    return emitEvent(state, 'tool_executing', { toolCallId, tool, args }, executingJson(toolCallId, tool, args, state.emitter.limits.maxDepth));
  } catch (error) {
    const reason = notJsonReasonOf(error);
    if (reason === undefined) throw error;
    const shown = notSerializableMarker(reason);
    if (!pending) return emitEvent(state, 'tool_executing', { toolCallId, tool, args: shown });
    // Nobody can approve what they cannot see: the call is shown without a request and fails.
    const notShown = new ToolError(tool, `Tool "${tool}" needs approval but its arguments cannot be shown as JSON (${reason})`, {
      code: 'APPROVAL_ARGS_NOT_SHOWN',
      details: { reason },
    });
    return emitEvent(state, 'tool_executing', { toolCallId, tool, args: shown }).then(() => Promise.reject(notShown));
  }
}

/**
 * Whether this call waits for its user's approval: the request it shows, undefined (no approval,
 * or the args are invalid: the call fails on them as usual), or the error the call fails with (the
 * decision threw, or there is no log to wait on).
 */
async function approvalOf(host: ToolHost, tool: AnyTool, state: RunState, args: unknown): Promise<{ pending: PendingInput } | { error: unknown } | undefined> {
  const parsed = tool.parameters.safeParse(args);
  if (!parsed.success) return undefined;
  try {
    const rule = tool.needsApproval;
    const needed = typeof rule === 'function' ? await rule(parsed.data, state.ctx) : rule === true;
    if (!needed) return undefined;
    if (!host.interaction) {
      throw new StateError('NO_ANSWER_LOG', `Tool "${tool.name}" needs approval but ${host.name} has no log to wait on for the answer`);
    }
    return { pending: { requestId: `req_${nanoid(16)}`, kind: 'approval', timeoutMs: tool.approvalTimeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS } };
  } catch (error) {
    return { error };
  }
}

/** The succeeded `tool_completed`; a result that is not JSON (or too large or deep) fails the call instead. */
function emitSucceeded(state: RunState, toolCallId: string, tool: string, result: unknown, startedAt: number): Promise<void> {
  try {
    const durationMs = elapsed(startedAt);
    const dataJson = succeededJson(toolCallId, tool, result, durationMs, state.emitter.limits.maxDepth);
    return emitEvent(state, 'tool_completed', { toolCallId, tool, status: 'succeeded', result, durationMs }, dataJson);
  } catch (error) {
    const reason = notJsonReasonOf(error);
    if (reason === undefined) throw error;
    const why = reason === 'size' ? 'is too large for an event' : `cannot be represented as JSON (${reason})`;
    throw new ToolError(tool, `The result of tool "${tool}" ${why}`, { code: 'RESULT_NOT_SERIALIZABLE', cause: error, details: { reason } });
  }
}

async function executeTool(tool: AnyTool, args: unknown, ctx: ToolContext, controller: AbortController, runSignal: AbortSignal): Promise<unknown> {
  const onRunAbort = () => controller.abort(runSignal.reason);
  // Runs started without a signal share NEVER_ABORTED: listening on it would pile up one listener per
  // concurrent timed tool call on that one signal (a MaxListenersExceededWarning past 10) for nothing.
  const abortable = runSignal !== NEVER_ABORTED;
  if (abortable) listenRaw(runSignal, onRunAbort);
  let timer: NodeJS.Timeout | undefined;
  if (tool.timeoutMs !== undefined) {
    timer = setTimeout(() => controller.abort(new ToolTimeoutError(tool.name, tool.timeoutMs!)), tool.timeoutMs);
  }
  try {
    const work = Promise.resolve().then(() => tool.execute(args, ctx));
    return await raceAbort(work, controller.signal);
  } catch (error) {
    // A timeout surfaces as the ToolTimeoutError itself, not as a generic abort.
    if (controller.signal.aborted && isInstance(controller.signal.reason, ToolTimeoutError) && !runSignal.aborted) {
      throw controller.signal.reason;
    }
    throw error;
  } finally {
    if (timer) clearTimeout(timer);
    if (abortable) unlistenRaw(runSignal, onRunAbort);
  }
}

/**
 * Emits the failed `tool_completed` of a still-open call, with the error as `Redactor.error` (or
 * the default) shows it; returns whether it was open.
 */
export function closeTool(host: ToolHost, state: RunState, toolCallId: string, error: unknown): boolean {
  const call = state.openTools.get(toolCallId);
  if (!call) return false;
  state.openTools.delete(toolCallId);
  if (call.controller && !call.controller.signal.aborted) call.controller.abort(error);
  const { runId, threadId, userId, agent } = state.ctx;
  const info = errorInfoFor(host.redact.error, error, { event: 'tool_completed', runId, threadId, userId, agent, tool: call.tool, toolCallId });
  void emitEvent(state, 'tool_completed', { toolCallId, tool: call.tool, status: 'failed', error: info, durationMs: elapsed(call.startedAt) });
  return true;
}

/** The log's record of a request shown by the run's next event (its seq is the next one). */
export function requestOf(state: RunState, pending: PendingInput, toolCallId: string, kind: PendingRequest['kind']): PendingRequest {
  const { runId, threadId, userId, agent } = state.ctx;
  return { requestId: pending.requestId, runId, threadId, userId, agent, toolCallId, seq: state.emitter.count + 1, kind };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

export function elapsed(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 1000) / 1000;
}
