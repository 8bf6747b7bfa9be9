/**
 * Redis Cluster support: which node a command goes to, and how thread keys are grouped into slots.
 *
 * On a cluster every command that names keys must name keys of one hash slot (`CROSSSLOT`
 * otherwise), a blocking `XREAD` included. So that one gateway does not need a blocking
 * connection per thread, thread keys carry the hash tag of a **slot group** (`{aw<n>}`, n =
 * CRC16(threadId) mod `slotGroups`) instead of their thread's own tag: every thread of a group
 * lives in one slot, one `XREAD BLOCK` follows all of a group's threads, and a batch of appends
 * is split per group. Without `cluster`, keys keep their per-thread tag and nothing changes.
 */

/** How to reach a Redis Cluster (see `RedisConnectionOptions.cluster`). */
export interface RedisClusterConfig {
  /**
   * URLs of some of the cluster's nodes (`redis[s]://[[user][:password]@]host[:port]`); the
   * topology (masters, slots) is discovered from the first that answers. At least one.
   */
  rootNodes: string[];
  /**
   * Hash-tag groups the thread keys are spread over: each group is one slot, so one master.
   * A gateway opens at most one blocking connection per group it follows. Use several per master
   * (the default spreads evenly over 3 masters: 5, 5 and 6 groups on `redis-cli --cluster create`'s
   * slot ranges). Every process of a deployment must use the same value. Default 16.
   */
  slotGroups?: number;
}

export const DEFAULT_SLOT_GROUPS = 16;

/** CRC16/XMODEM, the checksum Redis Cluster hashes keys with. */
function crc16(value: string): number {
  let crc = 0;
  const bytes = Buffer.from(value, 'utf8');
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The hash slot of a key (the part inside its first non-empty `{…}`, when there is one). */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % 16_384;
  }
  return crc16(key) % 16_384;
}

/** The slot group of a thread: which `{aw<n>}` tag its keys carry. */
export function slotGroupOf(threadId: string, groups: number): number {
  return crc16(threadId) % groups;
}

export function slotGroupTag(group: number): string {
  return `aw${group}`;
}

/**
 * The key a command is routed by on a cluster: the first key it names, or undefined for a
 * command without keys (any node answers it; `PUBLISH` reaches every node's subscribers).
 */
export function routingKey(args: readonly string[]): string | undefined {
  const name = args[0]?.toUpperCase();
  switch (name) {
    case 'EVAL':
    case 'EVALSHA':
      return Number(args[2]) > 0 ? args[3] : undefined;
    case 'XREAD': {
      const at = args.findIndex((arg) => arg.toUpperCase() === 'STREAMS');
      return at === -1 ? undefined : args[at + 1];
    }
    case 'PUBLISH':
    case 'PING':
      return undefined;
    default:
      return args[1];
  }
}
