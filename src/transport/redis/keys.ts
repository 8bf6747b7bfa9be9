/**
 * Key layout. Both keys of a thread share the hash tag `{threadId}`, so they live in one slot.
 *
 * - `<prefix>thread:{<threadId>}:events`  the thread's stream; each entry has `e` (event JSON) and `p` (epoch)
 * - `<prefix>thread:{<threadId>}:meta`    hash: `owner` (user id), `epoch` (incarnation of the stream)
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

  wake(gatewayId: string): string {
    return `${this.prefix}gateway:${gatewayId}:wake`;
  }
}

/** Field names of a stream entry. */
export const EVENT_FIELD = 'e';
export const EPOCH_FIELD = 'p';
