/**
 * Key layout. Both keys of a thread share the hash tag `{threadId}`, so they live in one slot
 * (the append script touches only the keys of the threads in its batch: on a Redis Cluster a
 * batch is split by slot).
 *
 * - `<prefix>thread:{<threadId>}:events`  the thread's stream; each entry has `e` (event JSON) and `p` (epoch)
 * - `<prefix>thread:{<threadId>}:meta`    hash: `owner` (user id), `epoch` (incarnation of the stream), and
 *                                         the thread's run states: `r:<runId>` per run it knows, `n` their count
 * - `<prefix>run:{<runId>}:thread`        the thread of a run whose id does not name it (custom run ids), for
 *                                         `hasRun`; written after the run's `agent_started`, same TTL as a thread
 * - `<prefix>gateway:<id>:wake`           per-gateway stream that cuts a blocking `XREAD` short
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  stream(threadId: string): string {
    return `${this.prefix}thread:{${threadId}}:events`;
  }

  meta(threadId: string): string {
    return `${this.prefix}thread:{${threadId}}:meta`;
  }

  /** Hash of the thread's requests to users (`q:<requestId>`; see `RedisRequests`). */
  requests(threadId: string): string {
    return `${this.prefix}thread:{${threadId}}:requests`;
  }

  runThread(runId: string): string {
    return `${this.prefix}run:{${runId}}:thread`;
  }

  wake(gatewayId: string): string {
    return `${this.prefix}gateway:${gatewayId}:wake`;
  }
}

/** Field names of a stream entry. */
export const EVENT_FIELD = 'e';
export const EPOCH_FIELD = 'p';
