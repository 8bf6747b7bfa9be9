import { createHash } from 'node:crypto';
import { ErrorReply } from 'redis';
import type { RedisConnection } from './connection.js';

/** A Lua script run with `EVALSHA`, falling back to `EVAL` (which also caches it) after `NOSCRIPT`. */
export class LuaScript {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** `args` is the tail after `EVALSHA sha numkeys`: keys, then arguments. */
  async run<T>(connection: RedisConnection, numKeys: number, args: readonly string[]): Promise<T> {
    const command = ['EVALSHA', this.sha, String(numKeys), ...args];
    try {
      return await connection.send<T>(command);
    } catch (error) {
      // The script cache is empty after a Redis restart or SCRIPT FLUSH.
      if (!(error instanceof ErrorReply) || !error.message.startsWith('NOSCRIPT')) throw error;
      command[0] = 'EVAL';
      command[1] = this.source;
      return connection.send<T>(command);
    }
  }
}

/**
 * Appends a batch of events, possibly to many threads, in one atomic call. Per event: refuses it
 * when the thread's owner is another user; creates the epoch (and owner) with the stream; `XADD`
 * with approximate `MAXLEN`; refreshes the TTL of the stream and of its meta hash.
 *
 * KEYS: stream_1, meta_1, …, stream_n, meta_n
 * ARGV: n, maxlen, ttl seconds, epoch prefix, user_1, json_1, …, user_n, json_n
 * Returns, per event, the new entry id, or the integer 0 when the thread belongs to another user.
 */
export const APPEND_SCRIPT = new LuaScript(`
local n = tonumber(ARGV[1])
local maxlen, ttl, prefix = ARGV[2], ARGV[3], ARGV[4]
local out = {}
for i = 1, n do
  local stream, meta = KEYS[2 * i - 1], KEYS[2 * i]
  local user, json = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local current = redis.call('HMGET', meta, 'owner', 'epoch')
  local owner, epoch = current[1], current[2]
  if owner and owner ~= user then
    out[i] = 0
  else
    if not epoch or redis.call('EXISTS', stream) == 0 then
      epoch = prefix .. '.' .. i
      redis.call('HSET', meta, 'owner', user, 'epoch', epoch)
    elseif not owner then
      redis.call('HSET', meta, 'owner', user)
    end
    out[i] = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', json, 'p', epoch)
    redis.call('EXPIRE', stream, ttl)
    redis.call('EXPIRE', meta, ttl)
  end
end
return out
`);

/**
 * One page of a replay, read atomically with what is needed to judge it: the owner, the epoch,
 * the first retained entry id, the last generated id and the largest deleted id.
 *
 * KEYS: stream, meta
 * ARGV: start (`-` or `(<id>`), end (`+` or an id), count
 * Returns {owner|'', epoch|'', firstId|'', lastGeneratedId|'', maxDeletedId, entries}.
 */
export const READ_PAGE_SCRIPT = new LuaScript(`
local current = redis.call('HMGET', KEYS[2], 'owner', 'epoch')
local owner, epoch = current[1] or '', current[2] or ''
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {owner, '', '', '', '0-0', {}}
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local first, last, deleted = '', '', '0-0'
for i = 1, #info, 2 do
  local name, value = info[i], info[i + 1]
  if name == 'first-entry' and value then first = value[1]
  elseif name == 'last-generated-id' then last = value
  elseif name == 'max-deleted-entry-id' then deleted = value end
end
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])
return {owner, epoch, first, last, deleted, entries}
`);
