/**
 * `agentwire/transport/redis`: Redis Streams transport for scale-out (Node only, needs the
 * optional peer dependency `redis`, node-redis v6). Workers send with `RedisStreamsTransport`;
 * gateway processes serve clients from `RedisEventLog`. On one Redis server or a Redis Cluster
 * (option `cluster`).
 *
 * @module agentwire/transport/redis
 */
export { RedisStreamsTransport } from './transport.js';
export { RedisEventLog, type RedisEventLogStats } from './event-log.js';
export { RedisLogEntry } from './entries.js';
export { RedisKeys } from './keys.js';
export { DEFAULT_SLOT_GROUPS, type RedisClusterConfig } from './cluster.js';
export {
  DEFAULT_REDIS_URL,
  type RedisConnectionOptions,
  type RedisEventLogOptions,
  type RedisStreamsTransportOptions,
  type StreamRecreatedPolicy,
} from './options.js';
export { probeRedis } from './admin.js';
