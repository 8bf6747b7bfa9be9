import { isRunId, parseRunId } from '../../ids/run-id.js';
import type { RedisConnection } from './connection.js';
import type { RedisKeys } from './keys.js';
import { namesThread } from './run-claim.js';
import { HAS_RUN_SCRIPT } from './scripts.js';

/**
 * Whether the Redis log retains events of a run (see `HAS_RUN_SCRIPT`): looks in the thread a
 * standard run id names and in the thread that claimed a custom one (`claimRunId`). Shared by
 * `RedisStreamsTransport.hasRun` and `BullMQRunQueue.submit` (same keys, same answer).
 *
 * With `threadId` (where the caller means to start the run), a run id claimed by another thread
 * is in use too, retained or not: its start in `threadId` would be refused `RUN_ID_CONFLICT`.
 */
export async function logHasRun(connection: RedisConnection, keys: RedisKeys, runId: string, threadTtlSeconds: number, threadId?: string): Promise<boolean> {
  const ttl = String(threadTtlSeconds);
  const knows = (thread: string): Promise<boolean> =>
    HAS_RUN_SCRIPT.run<number>(connection, 2, [keys.stream(thread), keys.meta(thread), runId, ttl]).then((reply) => reply === 1);
  const named = isRunId(runId) ? parseRunId(runId).threadId : undefined;
  const [recorded, inNamed] = await Promise.all([
    connection.send<string | null>(['GET', keys.runThread(runId)]),
    named === undefined ? Promise.resolve(false) : knows(named),
  ]);
  if (inNamed) return true;
  if (recorded === null) return false;
  if (threadId !== undefined && recorded !== threadId && !namesThread(runId, threadId)) return true;
  return recorded !== named ? knows(recorded) : false;
}
