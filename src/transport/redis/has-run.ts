import { isRunId, parseRunId } from '../../ids/run-id.js';
import type { RedisConnection } from './connection.js';
import type { RedisKeys } from './keys.js';
import { HAS_RUN_SCRIPT } from './scripts.js';

/**
 * Whether the Redis log retains events of a run (see `HAS_RUN_SCRIPT`): looks in the thread a
 * standard run id names and in the thread recorded for a custom one. Shared by
 * `RedisStreamsTransport.hasRun` and `BullMQRunQueue.submit` (same keys, same answer).
 */
export async function logHasRun(connection: RedisConnection, keys: RedisKeys, runId: string, threadTtlSeconds: number): Promise<boolean> {
  const ttl = String(threadTtlSeconds);
  const knows = (threadId: string): Promise<boolean> =>
    HAS_RUN_SCRIPT.run<number>(connection, 2, [keys.stream(threadId), keys.meta(threadId), runId, ttl]).then((reply) => reply === 1);
  const named = isRunId(runId) ? parseRunId(runId).threadId : undefined;
  const [recorded, inNamed] = await Promise.all([
    connection.send<string | null>(['GET', keys.runThread(runId)]),
    named === undefined ? Promise.resolve(false) : knows(named),
  ]);
  if (inNamed) return true;
  return recorded !== null && recorded !== named ? knows(recorded) : false;
}
