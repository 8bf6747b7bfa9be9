import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { AgentInstrumentation, RunResult, ToolCallInfo } from '../agent/base-agent.js';
import type { RunContext } from '../agent/run-context.js';
import { AGENTWIRE, ERROR_TYPE, errorType, GEN_AI, OPERATION, USER_ID } from './attributes.js';
import { isInstance } from '../errors/guards.js';
import { checker, given, shown } from '../errors/options.js';

export interface OtelInstrumentationOptions {
  /** Where spans go. Default `trace.getTracer('agentwire')`: a no-op until the application registers an SDK. */
  tracer?: Tracer;
  /** `gen_ai.provider.name` on every span (the model provider, e.g. `'openai'`). Default: not set. */
  providerName?: string;
  /**
   * Record tool arguments and results as `gen_ai.tool.call.arguments` / `gen_ai.tool.call.result`
   * (JSON, cut at `maxContentLength`). They may hold personal data. Default false.
   */
  captureToolContent?: boolean;
  /** Longest captured argument/result string, in characters. Default 4,096. */
  maxContentLength?: number;
  /** Record the run's user as `user.id`. Default false (user ids are personal data). */
  recordUserId?: boolean;
  /**
   * Record a failed run's or tool's exception (message and stack, `span.recordException`) and its
   * message as the span status message. Messages often quote arguments (personal data, secrets):
   * false keeps only `error.type` and status ERROR. Default true (what tracing backends expect).
   */
  recordExceptions?: boolean;
}

/**
 * Traces runs and tool calls following the OpenTelemetry GenAI agent conventions:
 *
 * - a span `invoke_agent {agent}` (INTERNAL) per run, a child of whatever span is active when
 *   `run()` is called;
 * - a span `execute_tool {tool}` (INTERNAL) per tool call, a child of the span active where
 *   `callTool()` was called (the run span, or a span of your own inside `execute`); without a
 *   context manager it still nests under its run span.
 *
 * Both spans are active while their work runs, so a tool's own instrumentation (HTTP clients,
 * DB drivers, `tracer.startActiveSpan`) nests under `execute_tool` — given a context manager,
 * which every OpenTelemetry Node SDK setup registers. Failed runs and tools get status ERROR,
 * `error.type` and the recorded exception; a cancelled run is ERROR with `error.type` `ABORTED`.
 *
 * Pass it as `new MyAgent({ instrumentation: otelInstrumentation() })` or `agent.instrument(…)`.
 */
export function otelInstrumentation(options: OtelInstrumentationOptions = {}): AgentInstrumentation {
  // Checked now, not at the first span: a wrong value throws ValidationError INVALID_OPTION naming it.
  const check = checker('otelInstrumentation()');
  if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object (got ${shown(options)})`);
  if (options.tracer !== undefined && typeof (options.tracer as Partial<Tracer> | null)?.startActiveSpan !== 'function') {
    throw check.fail('tracer', `must be an OpenTelemetry Tracer (got ${shown(options.tracer)})`);
  }
  if (options.providerName !== undefined) check.string('providerName', options.providerName, 128);
  check.boolean('captureToolContent', given(options.captureToolContent, false));
  check.boolean('recordUserId', given(options.recordUserId, false));
  const tracer = options.tracer ?? trace.getTracer('agentwire');
  const maxContentLength = check.integer('maxContentLength', given(options.maxContentLength, 4_096), 0);
  const recordExceptions = check.boolean('recordExceptions', given(options.recordExceptions, true));
  /** Open run spans by run id: the parent of tool spans when no context manager carries it. */
  const runSpans = new Map<string, Span>();

  const common = (ctx: RunContext): Attributes => ({
    [GEN_AI.AGENT_NAME]: ctx.agent,
    [GEN_AI.CONVERSATION_ID]: ctx.threadId,
    [AGENTWIRE.THREAD_ID]: ctx.threadId,
    [AGENTWIRE.RUN_ID]: ctx.runId,
    ...(options.providerName !== undefined && { [GEN_AI.PROVIDER_NAME]: options.providerName }),
    ...(options.recordUserId && { [USER_ID]: ctx.userId }),
  });

  const content = (value: unknown): string => {
    const text = toJson(value);
    return text.length > maxContentLength ? text.slice(0, maxContentLength) : text;
  };

  return {
    run(ctx: RunContext, next: () => Promise<RunResult<unknown>>): Promise<RunResult<unknown>> {
      const attributes = { [GEN_AI.OPERATION_NAME]: OPERATION.INVOKE_AGENT, ...common(ctx) };
      return tracer.startActiveSpan(`${OPERATION.INVOKE_AGENT} ${ctx.agent}`, { kind: SpanKind.INTERNAL, attributes }, async (span) => {
        runSpans.set(ctx.runId, span);
        try {
          const result = await next();
          span.setAttribute(AGENTWIRE.RUN_STATUS, result.status);
          if (result.usage) {
            span.setAttribute(GEN_AI.USAGE_INPUT_TOKENS, result.usage.inputTokens);
            span.setAttribute(GEN_AI.USAGE_OUTPUT_TOKENS, result.usage.outputTokens);
          }
          if (result.status !== 'succeeded') fail(span, result.error, recordExceptions);
          return result;
        } catch (error) {
          fail(span, error, recordExceptions);
          throw error;
        } finally {
          runSpans.delete(ctx.runId);
          span.end();
        }
      });
    },

    tool(call: ToolCallInfo, next: () => Promise<unknown>): Promise<unknown> {
      const attributes: Attributes = {
        [GEN_AI.OPERATION_NAME]: OPERATION.EXECUTE_TOOL,
        [GEN_AI.TOOL_NAME]: call.tool,
        [GEN_AI.TOOL_CALL_ID]: call.toolCallId,
        [GEN_AI.TOOL_TYPE]: 'function',
        ...common(call),
        ...(options.captureToolContent && { [GEN_AI.TOOL_CALL_ARGUMENTS]: content(call.args) }),
      };
      const parent = parentOf(context.active(), runSpans.get(call.runId));
      return tracer.startActiveSpan(`${OPERATION.EXECUTE_TOOL} ${call.tool}`, { kind: SpanKind.INTERNAL, attributes }, parent, async (span) => {
        try {
          const result = await next();
          if (options.captureToolContent) span.setAttribute(GEN_AI.TOOL_CALL_RESULT, content(result));
          return result;
        } catch (error) {
          fail(span, error, recordExceptions);
          throw error;
        } finally {
          span.end();
        }
      });
    },
  };
}

/** The active context when it carries a span (a context manager is at work), else one with the run's span. */
function parentOf(active: Context, runSpan: Span | undefined): Context {
  if (trace.getSpan(active) || !runSpan) return active;
  return trace.setSpan(active, runSpan);
}

/** Marks the span failed. Never throws: a thrown value's getters (or toString) may, and the run's own error must go on. */
function fail(span: Span, error: unknown, recordExceptions: boolean): void {
  let type = '_OTHER';
  let message: string | undefined;
  try {
    type = errorType(error);
    if (recordExceptions) message = error instanceof Error ? String(error.message) : String(error);
  } catch {
    // A hostile value: the span says it failed, with what could be read.
  }
  span.setAttribute(ERROR_TYPE, type);
  span.setStatus(message === undefined ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.ERROR, message });
  if (!recordExceptions || !isInstance(error, Error)) return;
  try {
    span.recordException(error);
  } catch {
    // As above.
  }
}

function toJson(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
