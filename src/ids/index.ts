export { generateRunId, parseRunId, isRunId, type ParsedRunId } from './run-id.js';
export {
  threadIdSchema,
  runIdSchema,
  assertThreadId,
  isValidThreadId,
  MAX_THREAD_ID_LENGTH,
  MAX_RUN_ID_LENGTH,
} from './thread-id.js';
export { ThreadRegistry, type ThreadRegistryOptions, type ThreadRoute } from './thread-registry.js';
export {
  userIdSchema,
  assertUserId,
  isValidUserId,
  isWellFormed,
  userIdProblem,
  wellFormedString,
  MAX_USER_ID_LENGTH,
} from './user-id.js';
