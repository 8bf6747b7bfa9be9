import type { z } from 'zod/v4';
import { ValidationError } from '../errors/index.js';
import { agentEventSchema, eventDataSchemas, type AgentEvent, type EventData, type EventType } from './schema.js';

/** Dotted path (`data.toolCallId`) of the first issue, and a readable message. */
export function describeIssue(error: z.ZodError, prefix = ''): { field: string; message: string } {
  const issue = error.issues[0];
  if (!issue) return { field: prefix || '(root)', message: 'invalid value' };
  const path = issue.path.map(String).join('.');
  const field = [prefix, path].filter(Boolean).join('.') || '(root)';
  return { field, message: issue.message };
}

function toValidationError(what: string, error: z.ZodError, prefix = ''): ValidationError {
  const { field, message } = describeIssue(error, prefix);
  return new ValidationError(`Invalid ${what}: ${field}: ${message}`, {
    field,
    code: 'INVALID_EVENT',
    cause: error,
    details: { issues: error.issues.slice(0, 5) },
  });
}

/** Parses an unknown value into a typed event; throws `ValidationError` naming the failing field. */
export function parseEvent(value: unknown): AgentEvent {
  const result = agentEventSchema.safeParse(value);
  if (result.success) return result.data;
  throw toValidationError('event', result.error);
}

/** Non-throwing variant. */
export function safeParseEvent(
  value: unknown,
): { success: true; event: AgentEvent } | { success: false; error: ValidationError } {
  const result = agentEventSchema.safeParse(value);
  if (result.success) return { success: true, event: result.data };
  return { success: false, error: toValidationError('event', result.error) };
}

/** Checks the `data` of an event about to be emitted; throws `ValidationError` naming the field. */
export function assertEventData<T extends EventType>(type: T, data: unknown): asserts data is EventData<T> {
  const result = eventDataSchemas[type].safeParse(data);
  if (!result.success) throw toValidationError(`${type} event`, result.error, 'data');
}
