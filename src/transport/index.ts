export type {
  Transport,
  TransportHealth,
  EventLog,
  LogEntry,
  LogListener,
  HistoryGap,
  HistoryGapReason,
  SubscribeRequest,
  SubscribeResult,
  Subscription,
} from './types.js';
export { MemoryTransport, type MemoryTransportOptions } from './memory/memory-transport.js';
export {
  isInteractionLog,
  buildAnswerEvent,
  answerThreadId,
  type AnswerInput,
  type AnswerReceipt,
  type AnswerLog,
  type InteractionLog,
  type PendingRequest,
} from './interaction.js';
