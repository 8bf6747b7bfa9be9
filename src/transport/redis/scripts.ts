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
 * Lua shared by the scripts that judge run states.
 *
 * A thread's meta hash holds, beside `owner` and `epoch`, one field per run it knows,
 * `r:<runId>` = `<r|c> <first entry id> <end entry id|-> <length of start event id> <start event id><end event id>`
 * (`r` open, `c` closed by its `agent_completed`; the first entry is the run's `agent_started`, or
 * its first event in this stream when its start is not there; the start event id is empty then),
 * and `n`, the number of such fields. A run is
 * known while its events are retained: a closed run while its terminal entry is (nothing of a run
 * follows its terminal entry), an open run while its start entry is or for the thread TTL after it
 * started (its later entries are not tracked, so a run whose start was trimmed is not forgotten
 * while it may still be writing). Fields of runs no longer known are pruned when `n` passes the
 * limit, and all of them go with the meta hash (same TTL as the stream, refreshed by every event;
 * deleted when the stream is recreated).
 */
export const RUN_STATE_LUA = `
local function idParts(id)
  return string.match(id, '^(%d+)-(%d+)$')
end
-- Whether stream id a sorts before stream id b (decimal strings without leading zeros).
local function before(a, b)
  local am, as = idParts(a)
  local bm, bs = idParts(b)
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end
local function firstId(stream)
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  if first then return first[1] end
  return nil
end
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function decode(state)
  local flag, s, e, len, rest = string.match(state, '^(%a) (%S+) (%S+) (%d+) (.*)$')
  len = tonumber(len)
  return flag, s, e, string.sub(rest, 1, len), string.sub(rest, len + 1)
end
local function encode(flag, s, e, startEvent, endEvent)
  return flag .. ' ' .. s .. ' ' .. e .. ' ' .. #startEvent .. ' ' .. startEvent .. endEvent
end
-- first: id of the stream's first entry (nil when empty); now: server time in ms.
local function known(state, first, now, ttlMs)
  local flag, s, e = decode(state)
  if flag == 'c' then return first ~= nil and not before(e, first) end
  if first ~= nil and not before(s, first) then return true end
  return now - tonumber((idParts(s))) < ttlMs
end
`;

/**
 * Appends a batch of events, possibly to many threads, in one atomic call. Per event (each on its
 * own: an error reply for one event, e.g. a key of the wrong type, costs that event only):
 * refuses it when the thread's owner is another user; creates the epoch (and owner) with the
 * stream, forgetting what the meta hash knew of an older stream; fences the run (see
 * `RUN_STATE_LUA`): refuses an `agent_started` of a run that is known, and any event of a run
 * after its known `agent_completed`; accepts a repeat of a run's `agent_started` or
 * `agent_completed` (same event id: a retry after a lost reply) without storing it again; `XADD`
 * with approximate `MAXLEN`; refreshes the TTL of the stream and of its meta hash.
 *
 * KEYS: stream_1, meta_1, …, stream_n, meta_n (both keys of a thread share its hash tag)
 * ARGV: n, maxlen, ttl seconds, epoch prefix, run limit, then per event: user, json, kind
 *   (`s` agent_started, `c` agent_completed, `o` other), run id, event id (for `s` and `c`)
 * Returns, per event: the new entry id; `=<entry id>` for a repeat; the integer 0 when the thread
 * belongs to another user, 1 when the run id is in use, 2 when the run has completed; `!<error>`
 * when Redis refused a command for this event.
 */
export const APPEND_SCRIPT = new LuaScript(`${RUN_STATE_LUA}
local n = tonumber(ARGV[1])
local maxlen, ttl, prefix = ARGV[2], ARGV[3], ARGV[4]
local runLimit = tonumber(ARGV[5])
local ttlMs = tonumber(ttl) * 1000

local function prune(stream, meta)
  local all = redis.call('HGETALL', meta)
  local first, now = firstId(stream), nowMs()
  local kept = 0
  for j = 1, #all, 2 do
    local field = all[j]
    if string.sub(field, 1, 2) == 'r:' then
      if known(all[j + 1], first, now, ttlMs) then kept = kept + 1 else redis.call('HDEL', meta, field) end
    end
  end
  redis.call('HSET', meta, 'n', kept)
end

local function forget(meta, field)
  redis.call('HDEL', meta, field)
  redis.call('HINCRBY', meta, 'n', -1)
end

local function appendOne(i)
  local stream, meta = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 5 * i
  local user, json, kind, runId, eventId = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local field = 'r:' .. runId
  local current = redis.call('HMGET', meta, 'owner', 'epoch', field)
  local owner, epoch, state = current[1], current[2], current[3]
  if owner and owner ~= user then return 0 end
  if not epoch or redis.call('EXISTS', stream) == 0 then
    epoch = prefix .. '.' .. i
    redis.call('DEL', meta)
    redis.call('HSET', meta, 'owner', user, 'epoch', epoch)
    state = false
  elseif not owner then
    redis.call('HSET', meta, 'owner', user)
  end
  if state then
    local flag, s, e, startEvent, endEvent = decode(state)
    if kind == 's' then
      if startEvent ~= '' and startEvent == eventId then return '=' .. s end
      if known(state, firstId(stream), nowMs(), ttlMs) then return 1 end
      forget(meta, field)
      state = false
    elseif flag == 'c' then
      if kind == 'c' and endEvent == eventId then return '=' .. e end
      if known(state, firstId(stream), nowMs(), ttlMs) then return 2 end
      forget(meta, field)
      state = false
    end
  end
  local id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', json, 'p', epoch)
  redis.call('EXPIRE', stream, ttl)
  redis.call('EXPIRE', meta, ttl)
  if not state then
    -- A run this stream did not know: from its agent_started, or from whichever of its events came first
    -- (its start went with an older stream): known from this entry on.
    if kind == 'c' then
      redis.call('HSET', meta, field, encode('c', id, id, '', eventId))
    else
      redis.call('HSET', meta, field, encode('r', id, '-', kind == 's' and eventId or '', ''))
    end
    if redis.call('HINCRBY', meta, 'n', 1) > runLimit then prune(stream, meta) end
  elseif kind == 'c' then
    local _, s, _, startEvent = decode(state)
    redis.call('HSET', meta, field, encode('c', s, id, startEvent, eventId))
  end
  return id
end

local out = {}
for i = 1, n do
  local ok, result = pcall(appendOne, i)
  if ok then
    out[i] = result
  elseif type(result) == 'table' and result.err then
    out[i] = '!' .. result.err
  else
    out[i] = '!' .. tostring(result)
  end
end
return out
`);

/**
 * Whether a thread knows a run (see `RUN_STATE_LUA`): 1 or 0.
 *
 * KEYS: stream, meta
 * ARGV: run id, ttl seconds
 */
export const HAS_RUN_SCRIPT = new LuaScript(`${RUN_STATE_LUA}
local state = redis.call('HGET', KEYS[2], 'r:' .. ARGV[1])
if not state or redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if known(state, firstId(KEYS[1]), nowMs(), tonumber(ARGV[2]) * 1000) then return 1 end
return 0
`);

/**
 * One page of a replay, read atomically with what is needed to judge it: the owner, the epoch,
 * the first retained entry id, the last generated id, the largest deleted id, and (when asked)
 * whether the entry a client's cursor names is still there.
 *
 * A thread owned by another user than the reader is answered with its owner alone, before
 * anything of the stream is looked at: a refusal transfers no entry.
 *
 * With a byte budget (the first page of a replay), unless the whole stream takes less memory
 * than the budget (`MEMORY USAGE`), the script walks the requested range
 * back from its end (`XREVRANGE`, pages of 64), summing the length of each entry's event JSON
 * (field `e`, UTF-8 bytes), and stops at the first entry that would take the sum past the budget:
 * that entry is the window's boundary, and the page is read after it (only the newest entries
 * within the budget are replayed). All or nothing (`whole`): when the range does not fit, no
 * entries are returned (the caller answers `history_gap`).
 *
 * KEYS: stream, meta
 * ARGV: start (`-` or `(<id>`), end (`+` or an id), count, id to look up (or ''), reading user,
 *   byte budget (or '' for none), whole ('1' or '')
 * Returns {owner|'', epoch|'', firstId|'', lastGeneratedId|'', maxDeletedId, entries, present (1, 0,
 * or -1 when not asked), boundary id ('' when the range fits the budget or none was given)}.
 */
export const READ_PAGE_SCRIPT = new LuaScript(`
local current = redis.call('HMGET', KEYS[2], 'owner', 'epoch')
local owner, epoch = current[1] or '', current[2] or ''
if owner ~= '' and owner ~= ARGV[5] then
  return {owner, '', '', '', '0-0', {}, -1, ''}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {owner, '', '', '', '0-0', {}, -1, ''}
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local first, last, deleted = '', '', '0-0'
for i = 1, #info, 2 do
  local name, value = info[i], info[i + 1]
  if name == 'first-entry' and value then first = value[1]
  elseif name == 'last-generated-id' then last = value
  elseif name == 'max-deleted-entry-id' then deleted = value end
end
local present = -1
if ARGV[4] ~= '' then
  present = #redis.call('XRANGE', KEYS[1], ARGV[4], ARGV[4])
end
local boundary = ''
-- The whole stream's memory (SAMPLES 0: every node counted, no estimate) is an upper bound of its
-- entries' JSON: within the budget, no walk is needed (the usual case). A server that refuses the
-- command is walked.
local size = ARGV[6] ~= '' and redis.pcall('MEMORY', 'USAGE', KEYS[1], 'SAMPLES', '0')
if ARGV[6] ~= '' and not (type(size) == 'number' and size <= tonumber(ARGV[6])) then
  local budget, total, upper = tonumber(ARGV[6]), 0, ARGV[2]
  while boundary == '' do
    local page = redis.call('XREVRANGE', KEYS[1], upper, ARGV[1], 'COUNT', 64)
    for j = 1, #page do
      local fields = page[j][2]
      for k = 1, #fields - 1, 2 do
        if fields[k] == 'e' then total = total + #fields[k + 1] end
      end
      if total > budget then
        boundary = page[j][1]
        break
      end
    end
    if boundary == '' then
      if #page < 64 then break end
      upper = '(' .. page[#page][1]
    end
  end
end
local entries = {}
if boundary == '' then
  entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])
elseif ARGV[7] ~= '1' then
  entries = redis.call('XRANGE', KEYS[1], '(' .. boundary, ARGV[2], 'COUNT', ARGV[3])
end
return {owner, epoch, first, last, deleted, entries, present, boundary}
`);

/**
 * Requests to users (see `RedisRequests`): field `q:<requestId>` of the thread's requests hash
 * (`RedisKeys.requests`, same hash tag as the stream), one character of state (`p` pending, `a`
 * answered, `c` closed) then JSON (the request while pending or closed, the answer event once
 * answered). The hash expires with the thread's TTL after its last request.
 *
 * OPEN — KEYS: meta, requests; ARGV: field, `p<request json>`, user, ttl seconds. Returns 1, or 0
 * when the thread belongs to another user.
 */
export const OPEN_REQUEST_SCRIPT = new LuaScript(`
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[3] then return 0 end
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
`);

/**
 * ANSWER — appends the answer event once, atomically with the checks. KEYS: stream, meta,
 * requests; ARGV: field, user, run id, answer event json. Returns {entry id, epoch}, or a code: 0
 * unknown request (or a run the stream does not know), 1 another user's thread, 2 answered
 * already, 3 closed, 4 the run has completed.
 */
export const ANSWER_REQUEST_SCRIPT = new LuaScript(`
local record = redis.call('HGET', KEYS[3], ARGV[1])
if not record then return 0 end
local current = redis.call('HMGET', KEYS[2], 'owner', 'epoch', 'r:' .. ARGV[3])
if current[1] ~= ARGV[2] then return 1 end
local state = string.sub(record, 1, 1)
if state == 'a' then return 2 end
if state == 'c' then return 3 end
if not current[2] or not current[3] or redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if string.sub(current[3], 1, 1) == 'c' then return 4 end
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[4], 'p', current[2])
redis.call('HSET', KEYS[3], ARGV[1], 'a' .. ARGV[4])
return {id, current[2]}
`);

/**
 * CLOSE — closes a pending request; KEYS: requests; ARGV: field. Returns the answer event's json
 * when the request was answered first, '' otherwise.
 */
export const CLOSE_REQUEST_SCRIPT = new LuaScript(`
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return '' end
local state = string.sub(record, 1, 1)
if state == 'a' then return string.sub(record, 2) end
if state == 'p' then redis.call('HSET', KEYS[1], ARGV[1], 'c' .. string.sub(record, 2)) end
return ''
`);

/**
 * Claims a run id for a thread (`RedisKeys.runThread`): the cross-thread half of "a run id is used
 * once" for run ids that do not name their thread (custom, client-given ids). Two threads live in
 * two streams (on a Redis Cluster, two slots), so the append script cannot see a start in another
 * thread; this one key can. The first thread to claim holds the id for `ttl` seconds; a claim by
 * the same thread (a retry, another event of that run, a repeat of its start) is accepted and
 * refreshes the TTL. Within the thread, the append script's fencing stays the authority.
 *
 * KEYS: run → thread key. ARGV: thread id, ttl seconds.
 * Returns '' when the thread holds the claim, else the thread that does.
 */
export const CLAIM_RUN_SCRIPT = new LuaScript(`
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ''
`);
