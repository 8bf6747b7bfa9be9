export * from './schema.js';
export { parseEvent, safeParseEvent, assertEventData, describeIssue } from './parse.js';
export {
  LifecycleChecker,
  validateLifecycle,
  type LifecycleResult,
  type LifecycleRule,
  type LifecycleViolation,
} from './lifecycle.js';
export {
  eventJson,
  isNotSerializableMarker,
  DEFAULT_JSON_LIMITS,
  type EventLimits,
  type JsonLimits,
  type NotJsonReason,
  type NotSerializableMarker,
} from './json.js';
