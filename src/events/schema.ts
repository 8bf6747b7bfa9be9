import { z } from 'zod/v4';
import { discriminatedUnion } from './discriminated-union.js';
import { runIdSchema, threadIdSchema } from '../ids/thread-id.js';
import { userIdSchema, wellFormedString } from '../ids/user-id.js';
import { MAX_AGENT_NAME_LENGTH, MAX_EVENT_ID_LENGTH, MAX_REQUEST_ID_LENGTH, MAX_TOOL_CALL_ID_LENGTH } from './id-format.js';

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
/** Id of a request to the user (`tool_executing.data.pending.requestId`, `user_answered.data.requestId`). */
const requestId = wellFormedString(1, MAX_REQUEST_ID_LENGTH, 'request id');

/**
 * What a `tool_executing` waiting for its user carries: the request to answer (an `approval` of the
 * call, or a `question` with the JSON Schema of the expected value) and how long the run waits.
 * Additive: clients that do not know it ignore the field and see an ordinary tool call.
 */
export const pendingInputSchema = z.object({
  requestId,
  kind: z.enum(['approval', 'question']),
  /** The question shown to the user (questions; approvals show the tool and its args). */
  question: z.string().max(4096).optional(),
  /** JSON Schema of the value a question expects. */
  schema: z.unknown().optional(),
  /** How long the run waits for the answer, from the event's `ts`. */
  timeoutMs: z.number().int().positive(),
});
const toolCallId = z.string().min(1).max(MAX_TOOL_CALL_ID_LENGTH);
const toolName = z.string().min(1).max(128);

export const agentStartedDataSchema = z.object({
  input: z.unknown().optional(),
  metadata: z.record(z.string(), z.unknown()),
});

/**
 * Which text an `agent_thinking` carries: `'reasoning'` (the default when absent: what every
 * `think()` emits, coalesced) or `'answer'` (a delta of the text the user reads, streamed as it is
 * written: `BaseAgent.streamText`, `ModelAgent`'s `textStreaming`). Additive: an old client ignores
 * the field and shows answer deltas as thinking.
 */
export const THINKING_CHANNELS = ['reasoning', 'answer'] as const;
export type ThinkingChannel = (typeof THINKING_CHANNELS)[number];

/** Id of a streamed answer message, unique within its run (`agent_thinking.data.messageId`). */
export const messageIdSchema = z.string().min(1).max(64);

export const agentThinkingDataSchema = z.object({
  /** The thought, or with `channel: 'answer'` the next delta of the answer message (append it). */
  text: z.string(),
  step: z.number().int().nonnegative().optional(),
  /** `'answer'`: a delta of answer text; absent or `'reasoning'`: reasoning/progress, as before. */
  channel: z.enum(THINKING_CHANNELS).optional(),
  /** Answer deltas: the message they belong to (consecutive deltas of one run with one id form one message). */
  messageId: messageIdSchema.optional(),
});

/**
 * Values from the agent's code (`args`, `result`) may be absent on the wire: JSON has no
 * `undefined`, so a tool called with no arguments, or returning nothing, arrives without the field.
 */
export const toolExecutingDataSchema = z.object({
  toolCallId,
  tool: toolName,
  args: z.unknown().optional(),
  /** Present when the call waits for its user (an approval or a question) before it runs; see `pendingInputSchema`. */
  pending: pendingInputSchema.optional(),
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

/**
 * The answer to a pending request, appended to the thread's log by whoever received it (any gateway
 * process), never by the run. Its `seq` is the seq of the `tool_executing` it answers: it is not a
 * run event and takes no place in the run's gapless sequence.
 */
export const userAnsweredDataSchema = z.object({
  requestId,
  toolCallId,
  kind: z.enum(['approval', 'question']),
  /** Approvals: whether the user allowed the call. */
  approved: z.boolean().optional(),
  /** Questions: the user's answer (checked against the question's schema by the run). */
  value: z.unknown().optional(),
  /** Optional words of the user (e.g. why a call was denied). */
  reason: z.string().max(1024).optional(),
});

/** Fields shared by every event (the envelope of wire format version 1). */
export const envelopeShape = {
  v: z.literal(WIRE_VERSION),
  /** Unique per event: the client's dedupe key. */
  id: wellFormedString(1, MAX_EVENT_ID_LENGTH, 'event id'),
  runId: runIdSchema,
  threadId: threadIdSchema,
  /** 1-256 characters of well-formed UTF-16 (see `userIdProblem`). */
  userId: userIdSchema,
  /** Name of the agent that produced the event. */
  agent: z.string().min(1).max(MAX_AGENT_NAME_LENGTH),
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

/** Type of the answer event (not one of the five lifecycle events: see `userAnsweredDataSchema`). */
export const ANSWER_EVENT_TYPE = 'user_answered' as const;
export const userAnsweredEventSchema = z.object({
  ...envelopeShape,
  type: z.literal(ANSWER_EVENT_TYPE),
  data: userAnsweredDataSchema,
});

export const agentEventSchema = discriminatedUnion('type', [
  agentStartedEventSchema,
  agentThinkingEventSchema,
  toolExecutingEventSchema,
  toolCompletedEventSchema,
  agentCompletedEventSchema,
  userAnsweredEventSchema,
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
export type UserAnsweredEvent = z.infer<typeof userAnsweredEventSchema>;
export type PendingInput = z.infer<typeof pendingInputSchema>;
export type AgentEvent = z.infer<typeof agentEventSchema>;
/** The five lifecycle events a run emits (every event but `user_answered`). */
export type RunEvent = Exclude<AgentEvent, UserAnsweredEvent>;
/** Every type an event on the wire can have: the five lifecycle types and `user_answered`. */
export type AnyEventType = AgentEvent['type'];
export type EventOfType<T extends AnyEventType> = Extract<AgentEvent, { type: T }>;
export type EventData<T extends AnyEventType> = EventOfType<T>['data'];
/** The routing part of an event: who produced it and who may see it. */
export type EventIdentity = Pick<AgentEvent, 'runId' | 'threadId' | 'userId' | 'agent'>;
