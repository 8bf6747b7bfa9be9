import { ValidationError } from '../../errors/index.js';
import { isRunId, parseRunId } from '../../ids/run-id.js';
import type { RedisConnection } from './connection.js';
import type { RedisKeys } from './keys.js';
import { CLAIM_RUN_SCRIPT } from './scripts.js';

/** Whether a run id is a standard one naming this thread (its thread's own fencing sees every start of it). */
export function namesThread(runId: string, threadId: string): boolean {
  return isRunId(runId) && parseRunId(runId).threadId === threadId;
}

/**
 * Claims `runId` for `threadId` (see `CLAIM_RUN_SCRIPT`), for a run id that does not name its
 * thread: true when the thread holds the claim (now, or already: a retry), false when another
 * thread does. One round trip, on the run id's own key (its own slot on a Redis Cluster).
 */
export async function claimRunId(connection: RedisConnection, keys: RedisKeys, runId: string, threadId: string, ttlSeconds: number): Promise<boolean> {
  const holder = await CLAIM_RUN_SCRIPT.run<string>(connection, 1, [keys.runThread(runId), threadId, String(ttlSeconds)]);
  return holder === '';
}

/** The refusal of a run id claimed by another thread: the catalog's RUN_ID_CONFLICT (the other thread is not named: it may be another user's). */
export function claimedElsewhere(runId: string, details: Record<string, unknown>): ValidationError {
  return new ValidationError(`Run id ${runId} is in use by a run of another thread: a run id is used once`, {
    code: 'RUN_ID_CONFLICT',
    field: 'runId',
    details,
  });
}
