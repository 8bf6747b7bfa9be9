import { nanoid } from 'nanoid';
import { ValidationError } from '../errors/index.js';
import { eventJson } from '../events/json.js';
import { describeIssue } from '../events/parse.js';
import { WIRE_VERSION, userAnsweredDataSchema, type UserAnsweredEvent } from '../events/schema.js';
import { parseRunId } from '../ids/run-id.js';
import type { EventLog } from './types.js';

/**
 * Requests to the user and their answers, kept by the thread's log so that one answer, by the
 * run's user, is accepted whichever process receives it, and the waiting run (on any process)
 * learns it by following the thread.
 */

/** A request a run waits on, as the log records it (made by the run, see `InteractionLog.openRequest`). */
export interface PendingRequest {
  readonly requestId: string;
  readonly runId: string;
  readonly threadId: string;
  /** The run's user: the only one who may answer. */
  readonly userId: string;
  readonly agent: string;
  /** The waiting call (`tool_executing.data.toolCallId`). */
  readonly toolCallId: string;
  /** Seq of that `tool_executing`; the answer event carries it. */
  readonly seq: number;
  readonly kind: 'approval' | 'question';
}

/** An answer as a front end hands it over: approvals give `approved`, questions `value`. */
export interface AnswerInput {
  runId: string;
  /** Default: the thread named by a standard run id (`parseRunId`); required for custom run ids on Redis. */
  threadId?: string | undefined;
  requestId: string;
  /** The authenticated user answering (never taken from the request body). */
  userId: string;
  approved?: boolean | undefined;
  value?: unknown;
  reason?: string | undefined;
}

/** What an accepted answer became: the event appended to the thread's log and its cursor. */
export interface AnswerReceipt {
  event: UserAnsweredEvent;
  cursor: string;
}

/** Where front ends hand answers over. The built-in logs refuse a second answer and a foreign user. */
export interface AnswerLog {
  /**
   * Appends the answer event once. Refuses, nothing appended: another user (`AuthError`
   * `ANSWER_FORBIDDEN`), a request answered before (`StateError` `ANSWER_ALREADY_GIVEN`), one closed
   * without an answer (`REQUEST_CLOSED`), one the log does not know (`ANSWER_UNKNOWN_REQUEST`), an
   * answer of the wrong shape (`ValidationError` `ANSWER_INVALID`), a run that ended (`RUN_CLOSED`).
   */
  answerRequest(input: AnswerInput): Promise<AnswerReceipt>;
}

/** A log a waiting run can use: it records requests, accepts answers and is followed for them. */
export interface InteractionLog extends EventLog, AnswerLog {
  /** Records a request right after its `tool_executing` was emitted; from then on it can be answered. */
  openRequest(request: PendingRequest): void | Promise<void>;
  /**
   * Closes a request without an answer (timeout, cancel). Returns the answer instead when one was
   * accepted first: the run then acts on it (an answer and a timeout never both win).
   */
  closeRequest(request: PendingRequest): Promise<UserAnsweredEvent | undefined>;
}

export function isInteractionLog(value: unknown): value is InteractionLog {
  const log = value as Partial<InteractionLog> | undefined;
  return (
    typeof log === 'object' &&
    log !== null &&
    typeof log.subscribe === 'function' &&
    typeof log.answerRequest === 'function' &&
    typeof log.openRequest === 'function' &&
    typeof log.closeRequest === 'function'
  );
}

/**
 * The interaction log a transport offers a run: the transport itself when it is one (a
 * `MemoryTransport`, a `RedisStreamsTransport`), else the log it appends to, when it exposes one
 * as `log` and that is one (a `WebSocketGateway` over either). Either way requests are recorded in
 * the log the run's events are appended to, so no user can see a request that log does not know.
 */
export function interactionLogOf(transport: unknown): InteractionLog | undefined {
  if (isInteractionLog(transport)) return transport;
  if (typeof transport !== 'object' || transport === null) return undefined;
  const log = (transport as { readonly log?: unknown }).log;
  return isInteractionLog(log) ? log : undefined;
}

/** The thread of an answer: given, or named by its standard run id. */
export function answerThreadId(input: AnswerInput): string {
  if (input.threadId !== undefined) return input.threadId;
  return parseRunId(input.runId).threadId;
}

/**
 * The `user_answered` event of an answer to `request`, and its JSON. An approval needs `approved`,
 * a question `value` (JSON, within the event limits): anything else is `ANSWER_INVALID`.
 */
export function buildAnswerEvent(request: PendingRequest, input: AnswerInput): { event: UserAnsweredEvent; json: string } {
  const invalid = (message: string, field: string) => new ValidationError(message, { code: 'ANSWER_INVALID', field });
  if (request.kind === 'approval' && typeof input.approved !== 'boolean') {
    throw invalid('An answer to an approval request needs "approved": true or false', 'approved');
  }
  if (request.kind === 'question' && input.value === undefined) {
    throw invalid('An answer to a question needs a "value"', 'value');
  }
  const data = {
    requestId: request.requestId,
    toolCallId: request.toolCallId,
    kind: request.kind,
    ...(request.kind === 'approval' ? { approved: input.approved } : { value: input.value }),
    ...(input.reason !== undefined && { reason: input.reason }),
  };
  const checked = userAnsweredDataSchema.safeParse(data);
  if (!checked.success) {
    const issue = describeIssue(checked.error, 'data');
    throw invalid(`Invalid answer: ${issue.field}: ${issue.message}`, issue.field);
  }
  const event: UserAnsweredEvent = {
    v: WIRE_VERSION,
    id: nanoid(),
    type: 'user_answered',
    runId: request.runId,
    threadId: request.threadId,
    userId: request.userId,
    agent: request.agent,
    seq: request.seq,
    ts: Date.now(),
    data: checked.data,
  };
  try {
    return { event, json: eventJson(event) };
  } catch (error) {
    throw new ValidationError(`The answer cannot be an event: ${error instanceof Error ? error.message : String(error)}`, {
      code: 'ANSWER_INVALID',
      field: 'value',
      cause: error,
    });
  }
}
