/**
 * `agentwire/transport/redis`: Redis Streams transport for scale-out (Node only, needs the
 * optional peer dependency `redis`, node-redis v6). Workers send with `RedisStreamsTransport`;
 * gateway processes serve clients from `RedisEventLog`.
 */
export { RedisStreamsTransport } from './transport.js';
export { RedisEventLog, type RedisEventLogStats } from './event-log.js';
export { RedisLogEntry } from './entries.js';
export { formatCursor, parseCursor, compareIds, type RedisCursor } from './cursor.js';
export { RedisKeys } from './keys.js';
export {
  DEFAULT_REDIS_URL,
  type RedisConnectionOptions,
  type RedisEventLogOptions,
  type RedisStreamsTransportOptions,
  type StreamRecreatedPolicy,
} from './options.js';
export { measureAppendThroughput, type AppendThroughput } from './benchmark.js';
export { probeRedis, deleteKeysWithPrefix } from './admin.js';
