import { nanoid } from 'nanoid';
import { z } from 'zod/v4';
import { AgentwireError, StateError, ValidationError } from '../errors/index.js';
import { MAX_TIMER_MS, checker, given, shown } from '../errors/options.js';
import { describeIssue } from '../events/parse.js';
import { abortErrorFrom } from './abort.js';
import { DEFAULT_APPROVAL_TIMEOUT_MS, awaitAnswer, openRequest } from './approval.js';
import { emitEvent } from './emit.js';
import type { RunState } from './run-context.js';
import { closeTool, elapsed, requestOf, type ToolHost } from './tool-calls.js';
import { isInstance } from '../errors/guards.js';
import { jsonSchemaReady, jsonSchemaSync } from './json-schema.js';

/** The tool name a question to the user is shown as. */
export const ASK_TOOL_NAME = 'ask_user';

export interface AskOptions {
  /**
   * How long to wait for the answer; then `APPROVAL_TIMEOUT`. Whole ms from 1 to 2^31 - 1 (about
   * 24.8 days, the longest timer Node honours); anything else rejects the call with
   * `ValidationError` `INVALID_OPTION` before the question is shown. Default 300,000 (5 min).
   */
  timeoutMs?: number;
}

/** `BaseAgent.ask`: a call of `ask_user` that waits for the user's `user_answered` and completes with its value. */
export async function askUser<Schema extends z.ZodType>(
  host: ToolHost,
  state: RunState,
  question: string,
  schema: Schema,
  options: AskOptions,
): Promise<z.output<Schema>> {
  const check = checker('ask()');
  if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object (got ${shown(options)})`);
  // An integer: it travels as `pending.timeoutMs`, which the event schema wants whole.
  const timeoutMs = check.integer('timeoutMs', given(options.timeoutMs, DEFAULT_APPROVAL_TIMEOUT_MS), 1, MAX_TIMER_MS);
  const signal = state.ctx.signal;
  if (signal.aborted) throw abortErrorFrom(signal);
  const log = host.interaction;
  if (!log) throw new StateError('NO_ANSWER_LOG', `ask() needs a log to wait on for the answer; ${host.name} has none`);
  const toolCallId = `call_${nanoid(16)}`;
  const requestId = `req_${nanoid(16)}`;
  // JSON Schema of the expected answer for the front end (zod 3 or 4); left out when it cannot be
  // expressed. Synchronous (nothing else of the run can come first) once zod 3's converter is loaded.
  const loading = jsonSchemaReady(schema);
  if (loading !== undefined) {
    await loading;
    if (signal.aborted) throw abortErrorFrom(signal);
  }
  const shownSchema = jsonSchemaSync(schema, { io: 'input' });
  const pending = { requestId, kind: 'question' as const, question, timeoutMs, ...(shownSchema !== undefined && { schema: shownSchema }) };
  const startedAt = performance.now();
  const request = requestOf(state, pending, toolCallId, 'question');
  const recorded = openRequest(log, request);
  let opened: Promise<void>;
  try {
    opened = emitEvent(state, 'tool_executing', { toolCallId, tool: ASK_TOOL_NAME, args: { question }, pending });
  } catch (error) {
    void log.closeRequest(request).catch(() => undefined);
    throw error;
  }
  state.openTools.set(toolCallId, { tool: ASK_TOOL_NAME, startedAt, controller: undefined });
  try {
    await opened;
    const answer = await awaitAnswer(log, recorded, request, ASK_TOOL_NAME, timeoutMs, signal);
    const parsed = schema.safeParse(answer.data.value);
    if (!parsed.success) {
      const issue = describeIssue(parsed.error, 'value');
      throw new ValidationError(`The answer does not match the question's schema: ${issue.field}: ${issue.message}`, { code: 'ANSWER_INVALID', field: issue.field });
    }
    if (!state.openTools.has(toolCallId)) throw signal.aborted ? abortErrorFrom(signal) : new StateError('RUN_ENDED', 'The run finished before the answer arrived');
    const completed = emitEvent(state, 'tool_completed', { toolCallId, tool: ASK_TOOL_NAME, status: 'succeeded', result: answer.data.value, durationMs: elapsed(startedAt) });
    state.openTools.delete(toolCallId);
    await completed;
    return parsed.data as z.output<Schema>;
  } catch (error) {
    closeTool(host, state, toolCallId, error);
    throw isInstance(error, AgentwireError) ? error : new StateError('RUN_ENDED', 'ask() failed', { cause: error });
  }
}
