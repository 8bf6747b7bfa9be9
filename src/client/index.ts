/**
 * `agentwire/client`: follow an agent thread from a browser or from Node. Browser-safe: no Node
 * built-ins and no server code. In Node 20 pass `WebSocket` from `ws` (or use `./node.js`).
 *
 * @module agentwire/client
 */
export {
  AgentwireClient,
  connect,
  type CancelOutcome,
  type ClientEvents,
  type ClientStats,
  type ClientStatus,
  type ConnectOptions,
  type HistoryGapInfo,
  type HistoryGapPolicy,
  type TokenSource,
} from './client.js';
export { CloseCode, PROTOCOL_VERSION } from '../protocol/constants.js';
export { reconnectDelay, type ReconnectOptions } from './backoff.js';
export type { WebSocketConstructor, WebSocketLike } from './socket.js';
export { validateLifecycle, LifecycleChecker, type LifecycleViolation } from '../events/lifecycle.js';
export { AgentwireError, AuthError, HistoryGapError, TransportError, ValidationError } from '../errors/index.js';
export type { AgentEvent, AnyEventType, EventType, EventOfType, UserAnsweredEvent, PendingInput, ThinkingChannel } from '../events/schema.js';
export type { ClientAnswer } from './pending-replies.js';
export { AnswerText, type AnswerMessage } from './answer-text.js';
