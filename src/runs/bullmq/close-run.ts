import { customAlphabet } from 'nanoid';
import { TransportError } from '../../errors/index.js';
import type { ErrorInfo } from '../../events/schema.js';
import type { RedisConnection } from '../../transport/redis/connection.js';
import type { RedisKeys } from '../../transport/redis/keys.js';
import { claimRunId, namesThread } from '../../transport/redis/run-claim.js';
import { LuaScript, RUN_STATE_LUA } from '../../transport/redis/scripts.js';

const makeId = customAlphabet('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-', 16);

/**
 * Ends a run in its thread's log on behalf of a worker that is gone, atomically with the log's
 * fencing (the same meta hash `APPEND_SCRIPT` keeps, see `RUN_STATE_LUA`): reads the run's
 * events, closes each open tool call with a failed `tool_completed`, then appends
 * `agent_completed` and marks the run closed, so the append script refuses anything of the run
 * after it (a slow worker's late events get `RUN_CLOSED`). A run whose `agent_started` never
 * reached the log gets `agent_started` and `agent_completed` (a late start then gets
 * `RUN_ID_CONFLICT`). A run already closed is left alone: there is one terminal event, whoever wrote it.
 * With `mayStart` '0' (its run id is claimed by another thread, see `claimRunId`) a run this
 * thread does not know is not started here: {'conflict'}, nothing written.
 *
 * KEYS stream, meta. ARGV runId, userId, threadId, agent, status, error JSON, id base, metadata
 * JSON, maxlen, ttl seconds, epoch, run limit, mayStart ('1' or '0').
 * Returns {'closed', terminal JSON} (already closed), {'owner'}, {'conflict'}, or {'ended', tools closed, terminal JSON}.
 */
const CLOSE_RUN = new LuaScript(`${RUN_STATE_LUA}
local stream, meta = KEYS[1], KEYS[2]
local runId, userId, threadId, agent, status, errorJson, idBase, metaJson, maxlen, ttl, epochArg, runLimit =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], tonumber(ARGV[12])
local field = 'r:' .. runId
local now = nowMs()
local current = redis.call('HMGET', meta, 'owner', 'epoch', field)
local owner, epoch, state = current[1], current[2], current[3]
if owner and owner ~= userId then return {'owner'} end
if ARGV[13] == '0' and (not state or not epoch or redis.call('EXISTS', stream) == 0) then return {'conflict'} end
if not epoch or redis.call('EXISTS', stream) == 0 then
  epoch = epochArg
  redis.call('DEL', meta)
  redis.call('HSET', meta, 'owner', userId, 'epoch', epoch)
  state = false
elseif not owner then
  redis.call('HSET', meta, 'owner', userId)
end
local function fieldOf(entry, name)
  local f = entry[2]
  for j = 1, #f, 2 do if f[j] == name then return f[j + 1] end end
  return nil
end
local enc = cjson.encode
-- cjson refuses an escaped lone surrogate, which JSON.stringify writes (a think text cut mid-pair):
-- such an event is read again with every surrogate escape as U+FFFD. Only ids, numbers and names
-- are read here, so nothing of the run is skipped (a skipped event would reuse its seq).
local function decodeEvent(json)
  local ok, ev = pcall(cjson.decode, json)
  if ok then return ok, ev end
  return pcall(cjson.decode, (string.gsub(json, '\\[uU][dD][89a-fA-F]%x%x', '\\ufffd')))
end
local envelope = '"runId":' .. enc(runId) .. ',"threadId":' .. enc(threadId) .. ',"userId":' .. enc(userId)
local n = 0
local function event(type, seq, data)
  n = n + 1
  return '{"v":1,"id":' .. enc(idBase .. n) .. ',"type":"' .. type .. '",' .. envelope .. ',"agent":' .. enc(agent) ..
    ',"seq":' .. seq .. ',"ts":' .. now .. ',"data":' .. data .. '}'
end
local function add(json)
  return redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', json, 'p', epoch)
end
local seq, startedTs, startId, startEvent = 0, now, nil, ''
local open, order = {}, {}
if state then
  local flag, s, e, se = decode(state)
  if flag == 'c' then
    local last = redis.call('XRANGE', stream, e, e)[1]
    return {'closed', last and fieldOf(last, 'e') or ''}
  end
  startId, startEvent = s, se
  for _, entry in ipairs(redis.call('XRANGE', stream, s, '+')) do
    local ok, ev = decodeEvent(fieldOf(entry, 'e') or '')
    if ok and type(ev) == 'table' and ev.runId == runId then
      if type(ev.seq) == 'number' and ev.seq > seq then seq = ev.seq end
      if type(ev.agent) == 'string' then agent = ev.agent end
      local d = ev.data
      if ev.type == 'agent_started' and type(ev.ts) == 'number' then startedTs = ev.ts end
      if ev.type == 'tool_executing' and type(d) == 'table' then
        open[d.toolCallId] = {tool = d.tool, ts = ev.ts}
        table.insert(order, d.toolCallId)
      elseif ev.type == 'tool_completed' and type(d) == 'table' then
        open[d.toolCallId] = nil
      end
    end
  end
else
  seq = 1
  local started = event('agent_started', 1, '{"metadata":' .. metaJson .. '}')
  startId = add(started)
  startEvent = idBase .. n
  redis.call('HSET', meta, field, encode('r', startId, '-', startEvent, ''))
  if redis.call('HINCRBY', meta, 'n', 1) > runLimit then redis.call('HINCRBY', meta, 'n', 0) end
end
local closed = 0
for _, id in ipairs(order) do
  local call = open[id]
  if call then
    open[id] = nil
    seq = seq + 1
    closed = closed + 1
    local took = math.max(0, now - (tonumber(call.ts) or now))
    add(event('tool_completed', seq, '{"toolCallId":' .. enc(id) .. ',"tool":' .. enc(call.tool) .. ',"status":"failed","error":' .. errorJson .. ',"durationMs":' .. took .. '}'))
  end
end
seq = seq + 1
local terminal = event('agent_completed', seq, '{"status":"' .. status .. '","error":' .. errorJson .. ',"durationMs":' .. math.max(0, now - startedTs) .. '}')
local endId = add(terminal)
redis.call('HSET', meta, field, encode('c', startId, endId, startEvent, idBase .. n))
redis.call('EXPIRE', stream, ttl)
redis.call('EXPIRE', meta, ttl)
return {'ended', closed, terminal}
`);

export interface CloseRunRequest {
  runId: string;
  userId: string;
  threadId: string;
  agent: string;
  status: 'failed' | 'cancelled';
  error: ErrorInfo;
  metadata: Record<string, unknown>;
}

export type CloseRunResult =
  | { kind: 'ended'; toolsClosed: number; terminal: string }
  | { kind: 'closed'; terminal: string }
  | { kind: 'owner' }
  | { kind: 'conflict' };

export interface LogLimits {
  maxLenPerThread: number;
  threadTtlSeconds: number;
}

/**
 * Runs `CLOSE_RUN` for one run (see there). A run id that does not name its thread is claimed for
 * it first, as the transport's `agent_started` does (`claimRunId`): a run id another thread holds
 * gets no `agent_started` here ({kind: 'conflict'}), so one run id never has two starts.
 */
export async function closeRunInLog(connection: RedisConnection, keys: RedisKeys, limits: LogLimits, request: CloseRunRequest): Promise<CloseRunResult> {
  let mayStart = true;
  if (!namesThread(request.runId, request.threadId)) {
    try {
      mayStart = await claimRunId(connection, keys, request.runId, request.threadId, limits.threadTtlSeconds);
    } catch (error) {
      throw new TransportError(`Claiming run id ${request.runId} for its thread failed`, { code: 'REDIS_ERROR', cause: error });
    }
  }
  const args = [
    keys.stream(request.threadId),
    keys.meta(request.threadId),
    request.runId,
    request.userId,
    request.threadId,
    request.agent,
    request.status,
    JSON.stringify(request.error),
    `${makeId()}-`,
    JSON.stringify(request.metadata),
    String(limits.maxLenPerThread),
    String(limits.threadTtlSeconds),
    `runs-${makeId()}`,
    String(2 * limits.maxLenPerThread + 256),
    mayStart ? '1' : '0',
  ];
  let reply: Array<string | number>;
  try {
    reply = await CLOSE_RUN.run<Array<string | number>>(connection, 2, args);
  } catch (error) {
    throw new TransportError(`Ending run ${request.runId} in the log failed`, { code: 'REDIS_ERROR', cause: error });
  }
  if (reply[0] === 'ended') return { kind: 'ended', toolsClosed: Number(reply[1]), terminal: String(reply[2]) };
  if (reply[0] === 'closed') return { kind: 'closed', terminal: String(reply[1] ?? '') };
  if (reply[0] === 'conflict') return { kind: 'conflict' };
  return { kind: 'owner' };
}
