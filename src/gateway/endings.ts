import { GatewayError, errorFromCode, type AgentwireError, type ErrorCode } from '../errors/index.js';
import type { DisconnectReason } from './stats.js';

/**
 * What a client is told when the server ends its stream, by reason: the code and message of the
 * closing message of an open stream (SSE `close` event, AG-UI `RUN_ERROR`, useChat `error` chunk).
 * One table for every surface, so a reason reads the same everywhere.
 */
export const SERVER_ENDINGS: Readonly<Partial<Record<DisconnectReason, readonly [ErrorCode, string]>>> = {
  revoked: ['REVOKED', "The user's access was revoked"],
  token_expired: ['TOKEN_EXPIRED', 'The credentials have expired'],
  user_limit: ['TOO_MANY_CONNECTIONS', 'Replaced by a newer stream of the same user'],
  shutdown: ['GATEWAY_CLOSED', 'The server is shutting down; retry later'],
  log_closed: ['SUBSCRIPTION_ENDED', 'The event log ended the subscription; resume from the last event id'],
};

/**
 * The refusal (an HTTP status) of a request whose stream the server ended before it opened: the
 * ending of the same reason where the request can be told why, else `SUBSCRIBE_FAILED`.
 */
export function refusalOf(reason: DisconnectReason | 'completed'): AgentwireError {
  const ending = reason === 'completed' || reason === 'log_closed' ? undefined : SERVER_ENDINGS[reason];
  if (ending) return errorFromCode(ending[0], ending[1]);
  if (reason === 'slow_consumer') return new GatewayError('SUBSCRIBE_FAILED', 'Too many events arrived before the stream opened; resume the run');
  return new GatewayError('SUBSCRIBE_FAILED', 'The stream ended before it opened; retry');
}
