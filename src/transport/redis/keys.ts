import { slotGroupOf, slotGroupTag } from './cluster.js';

/**
 * Key layout. Every key of a thread shares one hash tag, so they live in one slot: the thread's
 * own tag `{threadId}`, or on a Redis Cluster its slot group's `{aw<n>}` (keys
 * `<prefix>thread:{aw<n>}:<threadId>:events`, …; see `cluster.ts`). Every script declares the
 * keys it touches; a batch of appends is split per slot group.
 *
 * - `<prefix>thread:{<threadId>}:events`  the thread's stream; each entry has `e` (event JSON) and `p` (epoch)
 * - `<prefix>thread:{<threadId>}:meta`    hash: `owner` (user id), `epoch` (incarnation of the stream), and
 *                                         the thread's run states: `r:<runId>` per run it knows, `n` their count
 * - `<prefix>run:{<runId>}:thread`        the claim of a run id that does not name its thread (custom run ids):
 *                                         the thread that holds it, set before the run's `agent_started` is
 *                                         appended (`CLAIM_RUN_SCRIPT`, its own slot), refreshed by the run's
 *                                         `agent_completed`, TTL `threadTtlSeconds`; read by `hasRun`
 * - `<prefix>gateway:<id>:wake`           per-gateway stream that cuts a blocking `XREAD` short
 *                                         (on a cluster one per slot group: `<prefix>gateway:<id>:{aw<n>}:wake`)
 */
export class RedisKeys {
  /**
   * @param slotGroups On a Redis Cluster, the number of slot groups thread keys are spread over
   *   (`RedisClusterConfig.slotGroups`); undefined: per-thread hash tags (one Redis server).
   */
  constructor(
    readonly prefix: string,
    readonly slotGroups?: number,
  ) {}

  /** The slot group of a thread (0 without slot groups). */
  group(threadId: string): number {
    return this.slotGroups === undefined ? 0 : slotGroupOf(threadId, this.slotGroups);
  }

  private thread(threadId: string): string {
    if (this.slotGroups === undefined) return `${this.prefix}thread:{${threadId}}`;
    return `${this.prefix}thread:{${slotGroupTag(this.group(threadId))}}:${threadId}`;
  }

  stream(threadId: string): string {
    return `${this.thread(threadId)}:events`;
  }

  meta(threadId: string): string {
    return `${this.thread(threadId)}:meta`;
  }

  /** Hash of the thread's requests to users (`q:<requestId>`; see `RedisRequests`). */
  requests(threadId: string): string {
    return `${this.thread(threadId)}:requests`;
  }

  runThread(runId: string): string {
    return `${this.prefix}run:{${runId}}:thread`;
  }

  /** The wake-up stream of a gateway (on a cluster, of one of its slot groups). */
  wake(gatewayId: string, group = 0): string {
    if (this.slotGroups === undefined) return `${this.prefix}gateway:${gatewayId}:wake`;
    return `${this.prefix}gateway:${gatewayId}:{${slotGroupTag(group)}}:wake`;
  }
}

/** Field names of a stream entry. */
export const EVENT_FIELD = 'e';
export const EPOCH_FIELD = 'p';
