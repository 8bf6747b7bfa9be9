/**
 * The front-end contract shared by every surface (WebSocket, SSE, AG-UI, useChat, run
 * endpoints): one options vocabulary, one auth path, admission (connections and runs), body
 * limits, the origin policy, one follower (replay → live), one stats shape and one HTTP error path.
 */
export {
  DEFAULTS,
  checker,
  reasonOf,
  resolveBodyOptions,
  resolveFrontEndOptions,
  resolveLog,
  resolveRunLimitOptions,
  type BodyOptions,
  type ErrorContext,
  type FrontEndOptions,
  type LogOptions,
  type OnError,
  type ResolvedBodyOptions,
  type ResolvedFrontEndOptions,
  type ResolvedRunLimitOptions,
  type RunLimitOptions,
  type SurfaceDefaults,
  type UserLimitPolicy,
} from './options.js';
export {
  MAX_USER_ID_LENGTH,
  authFailed,
  authenticateRequest,
  principalProblem,
  tokenFrom,
  type AuthenticateOptions,
  type Authenticate,
  type Principal,
} from './auth.js';
export { fromNodeRequest, fromWebRequest, type AuthRequest, type HeaderReader } from './request.js';
export { parseJsonBody, readNodeBody, readNodeText, readWebBody, readWebText, valueExceedsDepth, type ReadBodyOptions } from './body.js';
export { RunSlots } from './run-slots.js';
export { RunAdmission, readBody, type AdmittedRun, type RunAdmissionOptions } from './admission.js';
export { ConnectionTracker, type ConnectionLimits, type TrackedConnection } from './connections.js';
export { Revocations, revokedError, type RevocationWatch } from './revocations.js';
export { OriginPolicy, type AllowedOrigins, type OriginCheck } from './origin.js';
export { Follower, entryChars, type FollowResult, type FollowTarget, type FollowerOptions } from './follower.js';
export { StatsRecorder, type DisconnectReason, type GatewayStats } from './stats.js';
export { problemOf, respondNode, respondWeb, toAgentwireError, type HttpErrorBody, type Problem } from './respond.js';
export { SseGateway, type SseGatewayOptions } from './sse/index.js';
export { AnswerEndpoint, answerBodySchema, type AnswerEndpointOptions, type AnswerResponseBody } from './answers/index.js';
