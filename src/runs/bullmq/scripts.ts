import { LuaScript } from '../../transport/redis/scripts.js';

/**
 * The queue's own bookkeeping, beside BullMQ's job lists. Every key of a queue shares its hash
 * tag (`<prefix>{<queue>}:aw:…`), so each script touches one slot (Redis Cluster).
 *
 * - `run:<runId>` hash: `state` (queued | running | closing | finished), `userId`, `threadId`,
 *   `agent`, `meta` (metadata JSON), `queuedAt`, `startedAt`, `finishedAt`, `worker`, `cancel`,
 *   `closeAs` (cancelled when a queued run was cancelled), `outcome`, `error` (JSON), `job`.
 * - `user:<userId>` set: the user's runs queued or running (admission: runs per user).
 * - `queued` sorted set: queued runs by submit time (admission: queue length; oldest wait).
 * - `leases` sorted set: runs on a worker (or being closed) by lease expiry.
 * - `thread:<threadId>` hash: `owner` (the user whose runs the thread's queued or running runs
 *   are) and `r:<runId>` per such run; SUBMIT refuses another user's run into it ('thread'), so
 *   the thread is refused at submit before any run of it reached the log. Each run's end (FINISH)
 *   or undo (UNSUBMIT) takes its field out, the last one the key; it expires with the status TTL
 *   (refreshed by every submit into the thread), so a run that never ends cannot hold it for ever.
 *
 * States only move forward, each move checked in one script: queued → running (a worker's
 * claim) → finished (its finish), or → closing (its lease expired, or cancelled while queued:
 * a reaper appends the terminal event) → finished.
 */

/** Takes a run's field out of its thread's hash (KEYS thread), and the hash with its last run. */
const RELEASE_THREAD_LUA = `
local function releaseThread(key, runId)
  redis.call('HDEL', key, 'r:' .. runId)
  if redis.call('HLEN', key) <= 1 then redis.call('DEL', key) end
end
`;

/**
 * KEYS run, user, queued, thread. ARGV runId, userId, threadId, agent, queuedAt, maxPerUser, maxQueued, metadata JSON, ttl.
 * Returns 'ok', 'conflict' (run id in use), 'thread' (the thread's queued or running runs are another user's), 'user' or 'queue'.
 */
export const SUBMIT = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 'conflict' end
local owner = redis.call('HGET', KEYS[4], 'owner')
if owner and owner ~= ARGV[2] then return 'thread' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[6]) then return 'user' end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[7]) then return 'queue' end
redis.call('HSET', KEYS[1], 'state', 'queued', 'userId', ARGV[2], 'threadId', ARGV[3], 'agent', ARGV[4], 'queuedAt', ARGV[5], 'meta', ARGV[8], 'cancel', '0')
redis.call('EXPIRE', KEYS[1], ARGV[9])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('HSET', KEYS[4], 'owner', ARGV[2], 'r:' .. ARGV[1], '1')
redis.call('EXPIRE', KEYS[4], ARGV[9])
return 'ok'
`);

/** Undoes SUBMIT when the job could not be added. KEYS run, user, queued, thread. ARGV runId. */
export const UNSUBMIT = new LuaScript(`${RELEASE_THREAD_LUA}
if redis.call('HGET', KEYS[1], 'state') == 'queued' then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
releaseThread(KEYS[4], ARGV[1])
return 1
`);

/** A worker takes a run. KEYS run, queued, leases. ARGV runId, workerId, now, leaseUntil. Returns {state} or {'ok', cancel, queuedAt}. */
export const CLAIM = new LuaScript(`
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' then return {state or 'missing'} end
redis.call('HSET', KEYS[1], 'state', 'running', 'worker', ARGV[2], 'startedAt', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return {'ok', redis.call('HGET', KEYS[1], 'cancel'), redis.call('HGET', KEYS[1], 'queuedAt')}
`);

/**
 * A worker renews the leases of its runs. KEYS leases, run_1..run_n. ARGV workerId, leaseUntil, runId_1..runId_n.
 * Returns per run: 'r' renewed, 'c' renewed and cancel requested, 'l' lost (no longer this worker's).
 */
export const RENEW = new LuaScript(`
local out = {}
for i = 2, #KEYS do
  local runId = ARGV[i + 1]
  local current = redis.call('HMGET', KEYS[i], 'state', 'worker', 'cancel')
  if current[1] == 'running' and current[2] == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], runId)
    out[i - 1] = current[3] == '1' and 'c' or 'r'
  else
    out[i - 1] = 'l'
  end
end
return out
`);

/**
 * Records how a run ended. KEYS run, user, leases, queued, thread. ARGV runId, workerId ('' for a reaper),
 * outcome, error JSON ('' for none), finishedAt, ttl. A worker's finish needs the run to still be
 * its own and running ('fenced' otherwise); a reaper's needs it not finished ('already').
 */
export const FINISH = new LuaScript(`${RELEASE_THREAD_LUA}
local current = redis.call('HMGET', KEYS[1], 'state', 'worker')
if not current[1] then
  releaseThread(KEYS[5], ARGV[1])
  return 'missing'
end
if ARGV[2] ~= '' then
  if current[1] ~= 'running' or current[2] ~= ARGV[2] then return 'fenced' end
elseif current[1] == 'finished' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  releaseThread(KEYS[5], ARGV[1])
  return 'already'
end
releaseThread(KEYS[5], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'finished', 'outcome', ARGV[3], 'finishedAt', ARGV[5])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[4]) end
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 'ok'
`);

/**
 * The owner cancels a run. KEYS run, queued, leases. ARGV runId, userId, now, channel.
 * Returns 'missing', 'forbidden', 'finished', 'running' (its worker was told) or 'queued' (it is
 * now due for a reaper to end it as cancelled; the caller does so at once).
 */
export const CANCEL = new LuaScript(`
local current = redis.call('HMGET', KEYS[1], 'state', 'userId')
if not current[1] then return 'missing' end
if current[2] ~= ARGV[2] then return 'forbidden' end
if current[1] == 'finished' then return 'finished' end
redis.call('HSET', KEYS[1], 'cancel', '1')
if current[1] == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'closing', 'closeAs', 'cancelled', 'worker', '')
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
  return 'queued'
end
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 'running'
`);

/**
 * A reaper takes runs whose lease expired: each goes to 'closing' (its worker's renewals and
 * finish now fail) and is held for this reaper until claimUntil (another reaper retries after).
 * The candidates come from a `ZRANGEBYSCORE` of the leases just before; the script checks each
 * lease again, so a run renewed in between is left alone. Every key it touches is declared (Redis Cluster).
 * KEYS leases, run_1..run_n. ARGV now, claimUntil, runId_1..runId_n. Returns {runId, hash fields…} per run.
 */
export const DUE = new LuaScript(`
local out = {}
for i = 2, #KEYS do
  local runId = ARGV[i + 1]
  local score = redis.call('ZSCORE', KEYS[1], runId)
  if score and tonumber(score) <= tonumber(ARGV[1]) then
    local state = redis.call('HGET', KEYS[i], 'state')
    if state == 'running' or state == 'closing' then
      redis.call('HSET', KEYS[i], 'state', 'closing')
      redis.call('ZADD', KEYS[1], ARGV[2], runId)
      table.insert(out, {runId, redis.call('HGETALL', KEYS[i])})
    else
      redis.call('ZREM', KEYS[1], runId)
    end
  end
end
return out
`);
