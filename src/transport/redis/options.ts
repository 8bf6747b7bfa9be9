import type { RedisClientOptions } from 'redis';
import { MAX_TIMER_MS, checker, given, shown, type OptionChecker } from '../../errors/options.js';
import { DEFAULT_SLOT_GROUPS, type RedisClusterConfig } from './cluster.js';

/** How to reach Redis. Shared by the write side (`RedisStreamsTransport`) and the read side (`RedisEventLog`). */
export interface RedisConnectionOptions {
  /** Redis server URL (`redis[s]://[[user][:password]@]host[:port][/db]`). Default `'redis://127.0.0.1:6379'`. */
  url?: string;
  /**
   * Connect to a Redis Cluster instead (then `url` is not used): its root nodes and how thread
   * keys are grouped into slots (see `RedisClusterConfig`). Every process of a deployment uses
   * the same `cluster.slotGroups` and `keyPrefix`. Default: none (one Redis server).
   */
  cluster?: RedisClusterConfig;
  /**
   * Prefix of every key written or read. Processes that must see each other's threads use the
   * same prefix; tests use one of their own. Default `'agentwire:'`.
   */
  keyPrefix?: string;
  /** First delay before reconnecting after the connection is lost; doubles per attempt (with jitter). 1 to 2^31 - 1 ms. Default 50 ms. */
  reconnectMinDelayMs?: number;
  /** Upper bound of the reconnect delay, from `reconnectMinDelayMs` to 2^31 - 1 ms. Reconnecting never gives up until `close()`. Default 2,000 ms (or `reconnectMinDelayMs` when that is larger). */
  reconnectMaxDelayMs?: number;
  /** Timeout of one connection attempt, and how long `health()` waits for the first connection. Default 5,000 ms. */
  connectTimeoutMs?: number;
  /**
   * Further node-redis client options (TLS, credentials, database, …). `url`, `RESP`, the
   * reconnect strategy and `disableOfflineQueue` are set by agentwire and win. On a cluster they
   * are the options of every node's connection (node-redis `defaults`). Default none.
   */
  clientOptions?: RedisClientOptions;
  /**
   * Called with connection and read errors that agentwire handles itself (reconnects, skipped
   * unreadable entries). For logging only. Default: none (they are counted and shown by `health()`).
   */
  onError?: (error: Error) => void;
}

/** What a live subscription does when its thread's stream is recreated under it. */
export type StreamRecreatedPolicy =
  /**
   * Follow the new incarnation from its first entry, with cursors of the new epoch. Events that
   * reached Redis while no reader was connected and were lost with the old stream cannot be
   * noticed: use this with a persistent Redis, or when a restart is acceptable to lose them.
   */
  | 'continue'
  /**
   * End the subscription (`onClose` with a `HistoryGapError`); a client resuming from its old
   * cursor then gets `history_gap` with reason `epoch_changed` and decides itself.
   */
  | 'close';

/** The read side: replay from cursors and the live tail, for WebSocket and SSE gateways. */
export interface RedisEventLogOptions extends RedisConnectionOptions {
  /** How long one blocking `XREAD` waits before it is issued again (a wake-up stream cuts it short when the set of threads changes). At most half of `clientOptions.socket.socketTimeout` when that is set. Default 5,000 ms. */
  blockMs?: number;
  /** Entries read per stream by one `XREAD`, and per page of a replay (`XRANGE … COUNT`). Default 500. */
  readCount?: number;
  /** Check every entry read from Redis against the event schema; unreadable entries are skipped and counted. Default true. */
  validate?: boolean;
  /** See `StreamRecreatedPolicy`. Default `'continue'`. */
  onStreamRecreated?: StreamRecreatedPolicy;
  /**
   * Live entries held for one subscriber while its replay is being completed; past it the
   * subscription is closed (the client resumes from its cursor). Default 50,000.
   */
  maxPendingPerSubscriber?: number;
  /**
   * Event JSON (UTF-8 bytes, as stored) one replay may read from Redis, like the memory log's
   * `maxBytesPerThread`: a subscription without a cursor replays the newest entries that fit
   * (older ones count as trimmed; an entry larger than this alone is delivered live but never
   * replayed), and a cursor whose successors do not fit gets `history_gap` (`trimmed`). Measured
   * in Redis, atomically with the replay's first page. The entries the live tail read past the
   * replay meanwhile are caught up within a budget as large again. Default 8 MiB (8,388,608).
   */
  maxReplayBytes?: number;
  /**
   * Replays (subscribes and resumes) one user may have reading from Redis at once in this
   * process; further ones wait their turn, first come first served, without delaying other
   * users. Default 2.
   */
  maxConcurrentReplaysPerUser?: number;
  /**
   * Replays of one user waiting for their turn; one more is refused with `TransportError`
   * `TOO_MANY_REPLAYS` (retryable; gateways answer it as `SUBSCRIBE_FAILED`, 503 with `Retry-After`). Default 64.
   */
  maxQueuedReplaysPerUser?: number;
}

/** The write side: what agents' bridges send through. */
export interface RedisStreamsTransportOptions extends RedisConnectionOptions {
  /**
   * Entries retained per thread stream: `XADD … MAXLEN ~ n`. Redis trims whole radix-tree nodes,
   * so slightly more may be kept; a cursor older than what is kept gets `history_gap` (`trimmed`).
   * Also bounds the run states a thread keeps for fencing: past `2 × maxLenPerThread + 256`, those
   * of runs no longer retained are pruned. Default 10,000.
   */
  maxLenPerThread?: number;
  /**
   * A thread's stream and its meta hash (owner, epoch, run states) expire this long after its last
   * event; an open run whose first entry was trimmed stays known this long after it. Default 86,400 s (24 h).
   */
  threadTtlSeconds?: number;
  /** Events appended by one script call; concurrent sends of one tick are coalesced up to this. Default 256. */
  maxBatchSize?: number;
  /** Serialized bytes appended by one script call (a larger single event goes alone). Default 1 MiB. */
  maxBatchBytes?: number;
  /** How long `close()` waits for appends in flight before dropping the connection. Default 5,000 ms. */
  closeTimeoutMs?: number;
  /** Options of the read side this transport opens on the first `subscribe()`, beyond the connection options above. */
  log?: Omit<RedisEventLogOptions, keyof RedisConnectionOptions>;
}

export type ResolvedConnectionOptions = Required<Omit<RedisConnectionOptions, 'clientOptions' | 'onError' | 'cluster'>> &
  Pick<RedisConnectionOptions, 'clientOptions' | 'onError'> & { cluster: Required<RedisClusterConfig> | undefined };
export type ResolvedEventLogOptions = ResolvedConnectionOptions &
  Required<Omit<RedisEventLogOptions, keyof RedisConnectionOptions>>;
export type ResolvedTransportOptions = ResolvedConnectionOptions &
  Required<Omit<RedisStreamsTransportOptions, keyof RedisConnectionOptions | 'log'>> & {
    log: RedisStreamsTransportOptions['log'];
    /** The read side's options, resolved (and refused) with the transport's. */
    logOptions: ResolvedEventLogOptions;
  };

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export function resolveConnectionOptions(options: RedisConnectionOptions, owner: string): ResolvedConnectionOptions {
  if (typeof options !== 'object' || options === null) throw invalid(owner, 'options', `must be an object (got ${shown(options)})`);
  const resolved: ResolvedConnectionOptions = {
    url: given(options.url, DEFAULT_REDIS_URL),
    keyPrefix: given(options.keyPrefix, 'agentwire:'),
    reconnectMinDelayMs: given(options.reconnectMinDelayMs, 50),
    // A first delay above the default bound raises the bound with it.
    reconnectMaxDelayMs: given(options.reconnectMaxDelayMs, Math.max(2_000, typeof options.reconnectMinDelayMs === 'number' ? options.reconnectMinDelayMs : 0)),
    connectTimeoutMs: given(options.connectTimeoutMs, 5_000),
    clientOptions: options.clientOptions,
    onError: options.onError,
    cluster: resolveCluster(options.cluster, owner),
  };
  if (typeof resolved.url !== 'string' || !/^rediss?:\/\//.test(resolved.url)) {
    throw invalid(owner, 'url', `must be a redis:// or rediss:// URL (got ${shown(resolved.url)})`);
  }
  if (typeof resolved.keyPrefix !== 'string') throw invalid(owner, 'keyPrefix', `must be a string (got ${shown(resolved.keyPrefix)})`);
  // Spread into node-redis's createClient: a string or a number was taken as no options at all.
  const clientOptions: unknown = resolved.clientOptions;
  if (clientOptions !== undefined && (typeof clientOptions !== 'object' || clientOptions === null || Array.isArray(clientOptions))) {
    throw invalid(owner, 'clientOptions', `must be an object of node-redis client options (got ${shown(clientOptions)})`);
  }
  if (resolved.cluster && /[{}]/.test(resolved.keyPrefix)) {
    throw invalid(owner, 'keyPrefix', 'must not contain { or } on a Redis Cluster (agentwire sets the hash tags of its keys)');
  }
  const check = checker(owner);
  // Timer delays: at most MAX_TIMER_MS (a longer setTimeout fires after 1 ms).
  check.duration('reconnectMinDelayMs', resolved.reconnectMinDelayMs, { min: 1, max: MAX_TIMER_MS });
  check.duration('reconnectMaxDelayMs', resolved.reconnectMaxDelayMs, { min: resolved.reconnectMinDelayMs, max: MAX_TIMER_MS });
  check.duration('connectTimeoutMs', resolved.connectTimeoutMs, { min: 1, max: MAX_TIMER_MS });
  if (resolved.onError !== undefined) check.fn('onError', resolved.onError);
  return resolved;
}

export function resolveEventLogOptions(options: RedisEventLogOptions): ResolvedEventLogOptions {
  return resolveReadOptions(options, resolveConnectionOptions(options, 'RedisEventLog'), checker('RedisEventLog'), '');
}

/**
 * The read side's own options over resolved connection options; `path` names them in messages
 * (`log.` when a transport's `log` option holds them).
 */
function resolveReadOptions(
  options: Omit<RedisEventLogOptions, keyof RedisConnectionOptions>,
  connection: ResolvedConnectionOptions,
  check: OptionChecker,
  path: string,
): ResolvedEventLogOptions {
  const resolved: ResolvedEventLogOptions = {
    ...connection,
    blockMs: given(options.blockMs, 5_000),
    readCount: given(options.readCount, 500),
    validate: given(options.validate, true),
    onStreamRecreated: given(options.onStreamRecreated, 'continue'),
    maxPendingPerSubscriber: given(options.maxPendingPerSubscriber, 50_000),
    maxReplayBytes: given(options.maxReplayBytes, 8 * 1024 * 1024),
    maxConcurrentReplaysPerUser: given(options.maxConcurrentReplaysPerUser, 2),
    maxQueuedReplaysPerUser: given(options.maxQueuedReplaysPerUser, 64),
  };
  // XREAD BLOCK takes whole milliseconds.
  check.duration(`${path}blockMs`, resolved.blockMs, { min: 1, max: MAX_TIMER_MS, integer: true });
  const socketTimeout = socketTimeoutOf(resolved.clientOptions);
  if (socketTimeout !== undefined && resolved.blockMs > socketTimeout / 2) {
    // A blocking read keeps its socket silent for up to blockMs, and its reply needs a margin:
    // node-redis drops a socket silent for socketTimeout (950 of 1,000 ms still failed reads).
    throw check.fail(`${path}blockMs`, `must be at most half of clientOptions.socket.socketTimeout (${socketTimeout} ms): the tail's XREAD BLOCK keeps its socket silent that long (got ${resolved.blockMs})`);
  }
  check.integer(`${path}readCount`, resolved.readCount);
  check.integer(`${path}maxPendingPerSubscriber`, resolved.maxPendingPerSubscriber);
  check.integer(`${path}maxReplayBytes`, resolved.maxReplayBytes);
  check.integer(`${path}maxConcurrentReplaysPerUser`, resolved.maxConcurrentReplaysPerUser);
  check.integer(`${path}maxQueuedReplaysPerUser`, resolved.maxQueuedReplaysPerUser, 0);
  check.boolean(`${path}validate`, resolved.validate);
  check.oneOf(`${path}onStreamRecreated`, resolved.onStreamRecreated, ['continue', 'close']);
  return resolved;
}

export function resolveTransportOptions(options: RedisStreamsTransportOptions): ResolvedTransportOptions {
  const connection = resolveConnectionOptions(options, 'RedisStreamsTransport');
  const resolved: Omit<ResolvedTransportOptions, 'logOptions'> = {
    ...connection,
    maxLenPerThread: given(options.maxLenPerThread, 10_000),
    threadTtlSeconds: given(options.threadTtlSeconds, 86_400),
    maxBatchSize: given(options.maxBatchSize, 256),
    maxBatchBytes: given(options.maxBatchBytes, 1024 * 1024),
    closeTimeoutMs: given(options.closeTimeoutMs, 5_000),
    log: options.log,
  };
  const check = checker('RedisStreamsTransport');
  for (const name of ['maxLenPerThread', 'threadTtlSeconds', 'maxBatchSize', 'maxBatchBytes'] as const) check.integer(name, resolved[name]);
  check.duration('closeTimeoutMs', resolved.closeTimeoutMs, { min: 0, max: MAX_TIMER_MS });
  if (resolved.log !== undefined && (typeof resolved.log !== 'object' || resolved.log === null)) {
    throw check.fail('log', `must be an object (got ${shown(resolved.log)})`);
  }
  // The read side opens on the first subscribe(); its options are refused here, not then.
  return { ...resolved, logOptions: resolveReadOptions(resolved.log ?? {}, connection, check, 'log.') };
}

/** node-redis's idle-socket timeout, when the caller set one (0 and undefined mean none). */
function socketTimeoutOf(clientOptions: RedisClientOptions | undefined): number | undefined {
  const socket: unknown = typeof clientOptions === 'object' && clientOptions !== null ? clientOptions.socket : undefined;
  const timeout: unknown = typeof socket === 'object' && socket !== null ? (socket as { socketTimeout?: unknown }).socketTimeout : undefined;
  return typeof timeout === 'number' && timeout > 0 ? timeout : undefined;
}

function resolveCluster(cluster: RedisClusterConfig | undefined, owner: string): Required<RedisClusterConfig> | undefined {
  if (cluster === undefined) return undefined;
  if (typeof cluster !== 'object' || cluster === null) throw invalid(owner, 'cluster', `must be an object { rootNodes, slotGroups? } (got ${shown(cluster)})`);
  const { rootNodes } = cluster;
  if (!Array.isArray(rootNodes) || rootNodes.length === 0 || rootNodes.some((url) => typeof url !== 'string' || !/^rediss?:\/\//.test(url))) {
    throw invalid(owner, 'cluster.rootNodes', `must be a non-empty list of redis:// or rediss:// URLs, got ${JSON.stringify(rootNodes)}`);
  }
  const slotGroups = checker(owner).integer('cluster.slotGroups', given(cluster.slotGroups, DEFAULT_SLOT_GROUPS), 1, 1024);
  return { rootNodes: [...rootNodes], slotGroups };
}

function invalid(owner: string, name: string, problem: string) {
  return checker(owner).fail(name, problem);
}
