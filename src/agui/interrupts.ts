import { EventType, type Interrupt, type ResumeEntry } from '@ag-ui/core';
import type { EventOfType, PendingInput } from '../events/schema.js';
import { ValidationError } from '../errors/index.js';

/** `Interrupt.reason` of a call waiting for approval. */
export const APPROVAL_INTERRUPT_REASON = 'tool_approval';
/** `Interrupt.reason` of a question (`this.ask`). */
export const QUESTION_INTERRUPT_REASON = 'question';

/** The answer an approval interrupt expects in `ResumeEntry.payload`. */
const APPROVAL_RESPONSE_SCHEMA = {
  type: 'object',
  properties: { approved: { type: 'boolean' }, reason: { type: 'string' } },
  required: ['approved'],
} as const;

/**
 * The AG-UI interrupt of a call that waits for its user (`tool_executing` with `data.pending`):
 * `id` = the request id (what a `ResumeEntry.interruptId` answers), `toolCallId`, `reason`
 * (`tool_approval` / `question`), `message`, `responseSchema` (approvals: `{ approved, reason? }`;
 * questions: the question's JSON Schema), `expiresAt` (ISO 8601: the event's time + the request's
 * timeout) and `metadata.agentwire` `{ runId, requestId, kind, tool }`.
 */
export function interruptOf(event: EventOfType<'tool_executing'>): Interrupt {
  const pending = event.data.pending!;
  const approval = pending.kind === 'approval';
  const schema = !approval && isObject(pending.schema) ? { responseSchema: pending.schema } : approval ? { responseSchema: { ...APPROVAL_RESPONSE_SCHEMA } } : {};
  const expires = new Date(event.ts + pending.timeoutMs);
  return {
    id: pending.requestId,
    reason: approval ? APPROVAL_INTERRUPT_REASON : QUESTION_INTERRUPT_REASON,
    message: approval ? `Allow ${event.data.tool}?` : (pending.question ?? 'The agent asks a question'),
    toolCallId: event.data.toolCallId,
    ...schema,
    ...(Number.isFinite(expires.getTime()) && { expiresAt: expires.toISOString() }),
    metadata: { agentwire: { runId: event.runId, requestId: pending.requestId, kind: pending.kind, tool: event.data.tool } },
  };
}

/** `RUN_FINISHED` with the `interrupt` outcome: the stream ends while the run waits for `event`'s answer. */
export function interruptFrame(event: EventOfType<'tool_executing'>): Record<string, unknown> {
  return {
    type: EventType.RUN_FINISHED,
    threadId: event.threadId,
    runId: event.runId,
    outcome: { type: 'interrupt', interrupts: [interruptOf(event)] },
    timestamp: event.ts,
  };
}

/**
 * The answer a resolved `ResumeEntry` gives a request. Approvals: `payload` `{ approved: boolean,
 * reason?: string }` (or a bare boolean); questions: `payload` is the value (checked by the run
 * against the question's schema). Throws `ValidationError` `ANSWER_INVALID` (400) for an approval
 * payload without `approved`.
 */
export function answerOfResume(entry: ResumeEntry, pending: PendingInput): { approved?: boolean; value?: unknown; reason?: string } {
  const payload: unknown = entry.payload;
  if (pending.kind === 'question') return { value: payload };
  if (typeof payload === 'boolean') return { approved: payload };
  const record = isObject(payload) ? payload : {};
  if (typeof record.approved !== 'boolean') {
    throw new ValidationError(`The resume of approval interrupt "${entry.interruptId}" needs payload { approved: true | false }`, {
      code: 'ANSWER_INVALID',
      field: 'resume.payload.approved',
    });
  }
  return { approved: record.approved, ...(typeof record.reason === 'string' && { reason: record.reason }) };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
