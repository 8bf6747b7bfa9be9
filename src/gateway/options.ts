import type { ErrorCode } from '../errors/index.js';
import { MAX_TIMER_MS, checker, given, shown, type OptionChecker } from '../errors/options.js';
import type { EventLog } from '../transport/types.js';
import type { Authenticate } from './auth.js';
import type { AllowedOrigins } from './origin.js';

// The shared option validator (moved to src/errors/options.ts); re-exported here, where the surfaces import it from.
export { MAX_TIMER_MS, checker, given, shown, type OptionChecker } from '../errors/options.js';

/**
 * The one options vocabulary of every front end (WebSocket, SSE, AG-UI, useChat, run endpoints).
 * Same name, same meaning, same unit on every surface; a surface documents only its defaults
 * where they differ (heartbeat and close timeout) and the options of its own (e.g. `path`).
 *
 * | option | meaning | default |
 * | --- | --- | --- |
 * | `authenticate` | the auth hook, `(request: AuthRequest) => Principal \| null` (sync or async) | required |
 * | `authTimeoutMs` | longest wait for `authenticate`; then 503 `AUTH_TIMEOUT` | 10,000 |
 * | `maxConnectionsPerUser` | open connections/streams of one user | 3 |
 * | `maxConnections` | open connections/streams in total, incl. those authenticating; then 503 `SERVER_AT_CAPACITY` | 10,000 |
 * | `userLimitPolicy` | past `maxConnectionsPerUser`: `'close-oldest'` (the oldest is closed, reason `user_limit`) or `'refuse-newest'` (429 `TOO_MANY_CONNECTIONS`) | `'close-oldest'` |
 * | `heartbeatIntervalMs` | keep-alive interval (SSE comment, WS ping); 0 disables | surface's |
 * | `closeTimeoutMs` | how long `close()` waits for streams to end before cutting them | surface's |
 * | `onError` | errors the surface absorbed (auth hook, log, poisoned event) | none (counted in `stats().errors`) |
 * | `log` | the `EventLog` the surface reads threads from | required where the surface reads a log |
 * | `allowedOrigins` | browser origins allowed (CORS, WS upgrade check) | none: no CORS headers, Origin not checked |
 * | `maxBodyBytes` | largest request body; then 413 `BODY_TOO_LARGE` | 1 MiB |
 * | `maxBodyDepth` | deepest nesting of a JSON body; then 400 `BODY_TOO_DEEP` | 64 |
 * | `bodyTimeoutMs` | longest wait for a whole body; then 408 `BODY_TIMEOUT` | 10,000 |
 * | `maxRunsPerUser` | runs one user may have in progress (surfaces that start runs); then 429 `TOO_MANY_RUNS` | 3 |
 * | `maxRuns` | runs in progress in total; then 429 `TOO_MANY_RUNS` | 1,000 |
 */
export type UserLimitPolicy =
  /** The user's oldest connection is closed (reason `user_limit`) and the new one is served. Default for streams. */
  | 'close-oldest'
  /** The new connection is refused (HTTP 429 `TOO_MANY_CONNECTIONS`; WebSocket close 4029). */
  | 'refuse-newest';

/** Where an absorbed error happened. */
export interface ErrorContext {
  /** The surface that reports it: `'sse'`, `'websocket'`, `'agui'`, `'ai-sdk'`, … */
  surface: string;
  userId?: string;
  threadId?: string;
  runId?: string;
  /** What was going on: `'authenticate'`, `'subscribe'`, `'serialize'`, `'request'`, … */
  stage?: string;
}

export type OnError = (error: unknown, context: ErrorContext) => void;

/** Hands `error` to a surface's `onError` hook, if any. Never throws: a throwing hook must not take the surface down. */
export function callOnError<C extends ErrorContext>(hook: ((error: unknown, context: C) => void) | undefined, error: unknown, context: C): void {
  if (!hook) return;
  try {
    hook(error, context);
  } catch {
    // The hook's failure must not become the surface's.
  }
}

/** Options shared by every surface. */
export interface FrontEndOptions {
  authenticate: Authenticate;
  authTimeoutMs?: number;
  maxConnectionsPerUser?: number;
  maxConnections?: number;
  userLimitPolicy?: UserLimitPolicy;
  heartbeatIntervalMs?: number;
  closeTimeoutMs?: number;
  onError?: OnError;
  allowedOrigins?: AllowedOrigins;
}

/** Options of surfaces that read request bodies. */
export interface BodyOptions {
  maxBodyBytes?: number;
  maxBodyDepth?: number;
  bodyTimeoutMs?: number;
}

/** Options of surfaces that start runs. */
export interface RunLimitOptions {
  maxRunsPerUser?: number;
  maxRuns?: number;
}

/** Options of surfaces that read a thread's log. */
export interface LogOptions {
  log: EventLog;
}

export interface ResolvedFrontEndOptions {
  authenticate: Authenticate;
  authTimeoutMs: number;
  maxConnectionsPerUser: number;
  maxConnections: number;
  userLimitPolicy: UserLimitPolicy;
  heartbeatIntervalMs: number;
  closeTimeoutMs: number;
  onError: OnError | undefined;
  allowedOrigins: AllowedOrigins | undefined;
}

export interface ResolvedBodyOptions {
  maxBodyBytes: number;
  maxBodyDepth: number;
  bodyTimeoutMs: number;
}

export interface ResolvedRunLimitOptions {
  maxRunsPerUser: number;
  maxRuns: number;
}

/** Defaults a surface may set for itself (only these differ between surfaces). */
export interface SurfaceDefaults {
  /** Name used in error messages (`SseGateway`, `WebSocketGateway`, …). */
  name: string;
  heartbeatIntervalMs: number;
  closeTimeoutMs: number;
}

export const DEFAULTS = Object.freeze({
  authTimeoutMs: 10_000,
  maxConnectionsPerUser: 3,
  maxConnections: 10_000,
  userLimitPolicy: 'close-oldest' as UserLimitPolicy,
  maxBodyBytes: 1024 * 1024,
  maxBodyDepth: 64,
  bodyTimeoutMs: 10_000,
  maxRunsPerUser: 3,
  maxRuns: 1_000,
});

/** Resolves and validates the shared options; throws `ValidationError` `INVALID_OPTION` naming the option. */
export function resolveFrontEndOptions(options: FrontEndOptions, defaults: SurfaceDefaults): ResolvedFrontEndOptions {
  const check = checker(defaults.name);
  if (typeof options !== 'object' || options === null) throw check.fail('options', `must be an object (got ${shown(options)})`);
  if (typeof options.authenticate !== 'function') {
    throw check.fail('authenticate', 'is required: a function (request: AuthRequest) => { userId } | null');
  }
  const resolved: ResolvedFrontEndOptions = {
    authenticate: options.authenticate,
    authTimeoutMs: check.integer('authTimeoutMs', given(options.authTimeoutMs, DEFAULTS.authTimeoutMs), 1, MAX_TIMER_MS),
    maxConnectionsPerUser: check.integer('maxConnectionsPerUser', given(options.maxConnectionsPerUser, DEFAULTS.maxConnectionsPerUser), 1),
    maxConnections: check.integer('maxConnections', given(options.maxConnections, DEFAULTS.maxConnections), 1),
    userLimitPolicy: given(options.userLimitPolicy, DEFAULTS.userLimitPolicy),
    heartbeatIntervalMs: check.integer('heartbeatIntervalMs', given(options.heartbeatIntervalMs, defaults.heartbeatIntervalMs), 0, MAX_TIMER_MS),
    closeTimeoutMs: check.integer('closeTimeoutMs', given(options.closeTimeoutMs, defaults.closeTimeoutMs), 0, MAX_TIMER_MS),
    onError: options.onError,
    allowedOrigins: options.allowedOrigins,
  };
  if (resolved.userLimitPolicy !== 'close-oldest' && resolved.userLimitPolicy !== 'refuse-newest') {
    throw check.fail('userLimitPolicy', `must be "close-oldest" or "refuse-newest" (got ${shown(resolved.userLimitPolicy)})`);
  }
  if (resolved.onError !== undefined) check.fn('onError', resolved.onError);
  const origins = resolved.allowedOrigins;
  if (
    origins !== undefined &&
    origins !== '*' &&
    typeof origins !== 'function' &&
    !(Array.isArray(origins) && origins.every((origin) => typeof origin === 'string' && isOrigin(origin)))
  ) {
    throw check.fail('allowedOrigins', `must be "*", an array of origins like "https://app.example.com", or a function (origin) => boolean (got ${shown(origins)})`);
  }
  return resolved;
}

/** Resolves and validates the body limits; `defaults`: a surface's own defaults where they differ (the answer endpoint's smaller `maxBodyBytes`). */
export function resolveBodyOptions(options: BodyOptions, name: string, defaults: Partial<ResolvedBodyOptions> = {}): ResolvedBodyOptions {
  const check = checker(name);
  return {
    maxBodyBytes: check.integer('maxBodyBytes', given(options.maxBodyBytes, defaults.maxBodyBytes ?? DEFAULTS.maxBodyBytes), 1),
    maxBodyDepth: check.integer('maxBodyDepth', given(options.maxBodyDepth, defaults.maxBodyDepth ?? DEFAULTS.maxBodyDepth), 1),
    bodyTimeoutMs: check.integer('bodyTimeoutMs', given(options.bodyTimeoutMs, defaults.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs), 1, MAX_TIMER_MS),
  };
}

export function resolveRunLimitOptions(options: RunLimitOptions, name: string): ResolvedRunLimitOptions {
  const check = checker(name);
  return {
    maxRunsPerUser: check.integer('maxRunsPerUser', given(options.maxRunsPerUser, DEFAULTS.maxRunsPerUser), 1),
    maxRuns: check.integer('maxRuns', given(options.maxRuns, DEFAULTS.maxRuns), 1),
  };
}

/** A surface's URL path: a string starting with "/" (`undefined`: `fallback`). */
export function resolvePath(check: OptionChecker, path: unknown, fallback: string): string {
  const resolved = given(path, fallback);
  if (typeof resolved !== 'string' || !resolved.startsWith('/')) throw check.fail('path', `must be a path starting with "/" (got ${shown(resolved)})`);
  return resolved;
}

/** Checks that `log` is an `EventLog`. */
export function resolveLog(log: unknown, name: string): EventLog {
  const candidate = log as Partial<EventLog> | null | undefined;
  if (typeof candidate?.subscribe !== 'function' || typeof candidate.ownerOf !== 'function') {
    throw checker(name).fail('log', 'is required: an EventLog (subscribe, ownerOf), e.g. a MemoryTransport');
  }
  return candidate as EventLog;
}

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return url.origin === value;
  } catch {
    return false;
  }
}

/** The code a refusal is counted under in `stats().refused` (lowercase: `auth_failed`, `too_many_runs`, …). */
export function reasonOf(code: ErrorCode): string {
  return code.toLowerCase();
}
