import { z } from 'zod/v4';
import { discriminatedUnion } from './discriminated-union.js';
import { runIdSchema, threadIdSchema } from '../ids/thread-id.js';

/** Wire format version carried by every event. */
export const WIRE_VERSION = 1 as const;

export const EVENT_TYPES = [
  'agent_started',
  'agent_thinking',
  'tool_executing',
  'tool_completed',
  'agent_completed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** `{name, message, code?}`: how an error travels inside an event. */
export const errorInfoSchema = z.object({
  name: z.string(),
  message: z.string(),
  code: z.string().optional(),
});

export const usageSchema = z.object({
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
});

const durationMs = z.number().nonnegative();
const toolCallId = z.string().min(1).max(128);
const toolName = z.string().min(1).max(128);

export const agentStartedDataSchema = z.object({
  input: z.unknown().optional(),
  metadata: z.record(z.string(), z.unknown()),
});

export const agentThinkingDataSchema = z.object({
  text: z.string(),
  step: z.number().int().nonnegative().optional(),
});

/**
 * Values from the agent's code (`args`, `result`) may be absent on the wire: JSON has no
 * `undefined`, so a tool called with no arguments, or returning nothing, arrives without the field.
 */
export const toolExecutingDataSchema = z.object({
  toolCallId,
  tool: toolName,
  args: z.unknown().optional(),
});

export const toolCompletedDataSchema = discriminatedUnion('status', [
  z.object({ toolCallId, tool: toolName, status: z.literal('succeeded'), result: z.unknown().optional(), durationMs }),
  z.object({ toolCallId, tool: toolName, status: z.literal('failed'), error: errorInfoSchema, durationMs }),
]);

export const agentCompletedDataSchema = discriminatedUnion('status', [
  z.object({ status: z.literal('succeeded'), result: z.unknown().optional(), durationMs, usage: usageSchema.optional() }),
  z.object({
    status: z.enum(['failed', 'cancelled']),
    error: errorInfoSchema,
    durationMs,
    usage: usageSchema.optional(),
  }),
]);

/** Fields shared by every event (the envelope of wire format version 1). */
export const envelopeShape = {
  v: z.literal(WIRE_VERSION),
  /** Unique per event: the client's dedupe key. */
  id: z.string().min(1).max(64),
  runId: runIdSchema,
  threadId: threadIdSchema,
  userId: z.string().min(1).max(256),
  /** Name of the agent that produced the event. */
  agent: z.string().min(1).max(128),
  /** Per run, starts at 1, gapless. */
  seq: z.number().int().positive(),
  /** Epoch milliseconds when the event was created. */
  ts: z.number().nonnegative(),
};

export const agentStartedEventSchema = z.object({
  ...envelopeShape,
  type: z.literal('agent_started'),
  data: agentStartedDataSchema,
});
export const agentThinkingEventSchema = z.object({
  ...envelopeShape,
  type: z.literal('agent_thinking'),
  data: agentThinkingDataSchema,
});
export const toolExecutingEventSchema = z.object({
  ...envelopeShape,
  type: z.literal('tool_executing'),
  data: toolExecutingDataSchema,
});
export const toolCompletedEventSchema = z.object({
  ...envelopeShape,
  type: z.literal('tool_completed'),
  data: toolCompletedDataSchema,
});
export const agentCompletedEventSchema = z.object({
  ...envelopeShape,
  type: z.literal('agent_completed'),
  data: agentCompletedDataSchema,
});

export const agentEventSchema = discriminatedUnion('type', [
  agentStartedEventSchema,
  agentThinkingEventSchema,
  toolExecutingEventSchema,
  toolCompletedEventSchema,
  agentCompletedEventSchema,
]);

/** Per-type data schemas, used to check what an emitter is about to send. */
export const eventDataSchemas = {
  agent_started: agentStartedDataSchema,
  agent_thinking: agentThinkingDataSchema,
  tool_executing: toolExecutingDataSchema,
  tool_completed: toolCompletedDataSchema,
  agent_completed: agentCompletedDataSchema,
} as const;

export type ErrorInfo = z.infer<typeof errorInfoSchema>;
export type Usage = z.infer<typeof usageSchema>;
export type AgentStartedEvent = z.infer<typeof agentStartedEventSchema>;
export type AgentThinkingEvent = z.infer<typeof agentThinkingEventSchema>;
export type ToolExecutingEvent = z.infer<typeof toolExecutingEventSchema>;
export type ToolCompletedEvent = z.infer<typeof toolCompletedEventSchema>;
export type AgentCompletedEvent = z.infer<typeof agentCompletedEventSchema>;
export type AgentEvent = z.infer<typeof agentEventSchema>;
export type EventOfType<T extends EventType> = Extract<AgentEvent, { type: T }>;
export type EventData<T extends EventType> = EventOfType<T>['data'];
/** The routing part of an event: who produced it and who may see it. */
export type EventIdentity = Pick<AgentEvent, 'runId' | 'threadId' | 'userId' | 'agent'>;
