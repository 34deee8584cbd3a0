import { OUTBOX_SCRIPTS } from './redis-outbox-scripts.js';

/**
 * The Lua scripts of the redis store: each contract step that writes is ONE script on keys of
 * ONE shard (one hash tag, so one cluster slot). ioredis sends each once and then calls it by
 * SHA (EVALSHA), falling back to EVAL after a NOSCRIPT (e.g. on a freshly promoted replica).
 *
 * Conventions shared by the session scripts:
 * - KEYS = [due, ids, count, ob, meta, sess?] of one shard (see redis-keys.ts);
 *   ARGV[1] is the shard's key base, from which keys of other sessions of the shard are built.
 * - Numbers are written with '%.17g' (exact for any double, plain digits for epoch ms) and ''
 *   stands for null. `now` always comes from the caller: no script reads Redis's clock.
 * - The deadline arithmetic mirrors src/core/deadline.ts exactly (computeExpiresAt,
 *   expiryReason); test/store/redis.test.ts checks the two agree.
 * - `o` is the caller's ordering clock (microseconds); a close record's stream id is `<o>-0`,
 *   raised above the shard's last id when needed, so records sort by close time across shards.
 */

const HELPERS = `
local function num(s) if s == nil or s == false or s == '' then return nil end return tonumber(s) end
local function fmt(n) if n == nil then return '' end return string.format('%.17g', n) end
local function expires(la, idle, ld, pd)
  local at = nil
  if idle > 0 then at = la + idle * 1000 end
  if ld and (at == nil or ld < at) then at = ld end
  if pd and (at == nil or pd < at) then at = pd end
  return at
end
local function why(la, idle, ld, pd)
  local inf = math.huge
  local idleAt = inf
  if idle > 0 then idleAt = la + idle * 1000 end
  local lifeAt = ld or inf
  local policyAt = pd or inf
  if policyAt <= lifeAt and policyAt <= idleAt then return 'policy_timeout' end
  if lifeAt <= idleAt then return 'lifetime_expired' end
  return 'idle_timeout'
end
-- Delete a session and append its close record to the shard's stream, in this one script.
-- h = { la, exp, v, d, st }; returns the stream id.
local function close(key, id, reason, now, o, h)
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HINCRBY', KEYS[3], h[5], -1)
  local top = tonumber(redis.call('HGET', KEYS[5], 'obtop') or '0')
  if o <= top then o = top + 1 end
  redis.call('HSET', KEYS[5], 'obtop', fmt(o))
  local sid = fmt(o) .. '-0'
  redis.call('XADD', KEYS[4], sid, 'id', id, 'r', reason, 'at', fmt(now),
    'la', h[1], 'exp', h[2], 'v', h[3], 'd', h[4])
  return sid
end
`;

/**
 * validate(id, now, touchResolutionMs, o) -> {0} missing | {1, reason, u, ip} it was past its
 * deadline and is now closed | {2, la, exp, v, d, touched(0/1)} valid
 */
const VALIDATE = `${HELPERS}
local h = redis.call('HMGET', KEYS[6], 'la', 'exp', 'v', 'idle', 'ld', 'pd', 'd')
if not h[7] then return {0} end
local now = tonumber(ARGV[3])
local la, exp = tonumber(h[1]), num(h[2])
local idle, ld, pd = tonumber(h[4]), num(h[5]), num(h[6])
if exp and exp <= now then
  local reason = why(la, idle, ld, pd)
  local more = redis.call('HMGET', KEYS[6], 'st', 'u', 'ip')
  close(KEYS[6], ARGV[2], reason, now, tonumber(ARGV[5]), { h[1], h[2], h[3], h[7], more[1] })
  return {1, reason, more[2], more[3]}
end
if now - la < tonumber(ARGV[4]) then return {2, h[1], h[2], h[3], h[7], 0} end
local nexp = fmt(expires(now, idle, ld, pd))
local v = fmt(tonumber(h[3]) + 1)
redis.call('HSET', KEYS[6], 'la', ARGV[3], 'exp', nexp, 'v', v)
if nexp == '' then redis.call('ZREM', KEYS[1], ARGV[2]) else redis.call('ZADD', KEYS[1], nexp, ARGV[2]) end
return {2, ARGV[3], nexp, v, h[7], 1}
`;

/** insert(id, la, exp, v, idle, ld, pd, st, u, ip, d) -> 1, or 0 when the id exists */
const INSERT = `
if redis.call('EXISTS', KEYS[6]) == 1 then return 0 end
redis.call('HSET', KEYS[6], 'la', ARGV[3], 'exp', ARGV[4], 'v', ARGV[5], 'idle', ARGV[6], 'ld', ARGV[7],
  'pd', ARGV[8], 'st', ARGV[9], 'u', ARGV[10], 'ip', ARGV[11], 'd', ARGV[12])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2]) end
redis.call('HINCRBY', KEYS[3], ARGV[9], 1)
return 1
`;

/**
 * put(id, now, expectedVersion, o, la, exp, v, idle, ld, pd, st, u, ip, d): compare-and-set of
 * a whole record -> {0} missing | {1, reason, u, ip} it was past its deadline and is now closed
 * | {2, version} version differs | {3} written
 */
const PUT = `${HELPERS}
local h = redis.call('HMGET', KEYS[6], 'la', 'exp', 'v', 'idle', 'ld', 'pd', 'd', 'st', 'u', 'ip')
if not h[7] then return {0} end
local now = tonumber(ARGV[3])
local exp = num(h[2])
if exp and exp <= now then
  local reason = why(tonumber(h[1]), tonumber(h[4]), num(h[5]), num(h[6]))
  close(KEYS[6], ARGV[2], reason, now, tonumber(ARGV[5]), { h[1], h[2], h[3], h[7], h[8] })
  return {1, reason, h[9], h[10]}
end
if tonumber(h[3]) ~= tonumber(ARGV[4]) then return {2, h[3]} end
redis.call('HSET', KEYS[6], 'la', ARGV[6], 'exp', ARGV[7], 'v', ARGV[8], 'idle', ARGV[9], 'ld', ARGV[10],
  'pd', ARGV[11], 'st', ARGV[12], 'u', ARGV[13], 'ip', ARGV[14], 'd', ARGV[15])
if h[8] ~= ARGV[12] then
  redis.call('HINCRBY', KEYS[3], h[8], -1)
  redis.call('HINCRBY', KEYS[3], ARGV[12], 1)
end
if ARGV[7] == '' then redis.call('ZREM', KEYS[1], ARGV[2]) else redis.call('ZADD', KEYS[1], ARGV[7], ARGV[2]) end
return {3}
`;

/** drop(id, expectedVersion): delete WITHOUT a close record (rekey) -> 1 | 0 missing | 2 version differs */
const DROP = `
local h = redis.call('HMGET', KEYS[6], 'v', 'st')
if not h[1] then return 0 end
if tonumber(h[1]) ~= tonumber(ARGV[3]) then return 2 end
redis.call('DEL', KEYS[6])
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[3], h[2], -1)
return 1
`;

/**
 * close(id, reason, now, o) -> false when missing | {sid, la, exp, v, d, reason}; a session
 * already past its deadline ended by that deadline, so it closes with the expiry reason.
 */
const CLOSE = `${HELPERS}
local h = redis.call('HMGET', KEYS[6], 'la', 'exp', 'v', 'd', 'st', 'idle', 'ld', 'pd')
if not h[4] then return false end
local now = tonumber(ARGV[4])
local reason = ARGV[3]
local exp = num(h[2])
if exp and exp <= now then reason = why(tonumber(h[1]), tonumber(h[6]), num(h[7]), num(h[8])) end
local sid = close(KEYS[6], ARGV[2], reason, now, tonumber(ARGV[5]), h)
return {sid, h[1], h[2], h[3], h[4], reason}
`;

/**
 * sweep(now, quota, o): close up to quota sessions of this shard whose deadline passed, found
 * through the due ZSET (score = expiresAt) and re-checked against the record.
 * -> flat list of (id, sid, reason, la, exp, v, d) per closed session
 */
const SWEEP = `${HELPERS}
local now = tonumber(ARGV[2])
local o = tonumber(ARGV[4])
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))) do
  local key = ARGV[1] .. 'sess:' .. id
  local h = redis.call('HMGET', key, 'la', 'exp', 'v', 'idle', 'ld', 'pd', 'd', 'st')
  local exp = num(h[2])
  if not h[7] then
    redis.call('ZREM', KEYS[1], id) -- an index entry without its session: repair
  elseif exp and exp <= now then
    local reason = why(tonumber(h[1]), tonumber(h[4]), num(h[5]), num(h[6]))
    local sid = close(key, id, reason, now, o, { h[1], h[2], h[3], h[7], h[8] })
    o = tonumber(string.match(sid, '^(%d+)')) + 1
    for _, x in ipairs({ id, sid, reason, h[1], h[2], h[3], h[7] }) do out[#out + 1] = x end
  elseif exp then
    redis.call('ZADD', KEYS[1], h[2], id) -- a stale score: put the real deadline back
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
`;

/**
 * list(after, want, maxScan, state, ip): sessions of this shard in id order after \`after\`
 * ('' = from the start) matching the filters ('' = any; ip is JSON, as stored)
 * -> {done (1 = shard exhausted), lastScannedId, then (la, exp, v, d) per match}
 */
const LIST = `
local want, maxScan = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {0, ARGV[2]}
local start = ARGV[2] == '' and '-' or ('(' .. ARGV[2])
local found, scanned = 0, 0
while found < want and scanned < maxScan do
  local step = math.min(maxScan - scanned, math.max(want - found, 16))
  local ids = redis.call('ZRANGEBYLEX', KEYS[2], start, '+', 'LIMIT', 0, step)
  for _, id in ipairs(ids) do
    scanned = scanned + 1
    out[2] = id
    local h = redis.call('HMGET', ARGV[1] .. 'sess:' .. id, 'st', 'ip', 'la', 'exp', 'v', 'd')
    if h[6] and (ARGV[5] == '' or h[1] == ARGV[5]) and (ARGV[6] == '' or h[2] == ARGV[6]) then
      for i = 3, 6 do out[#out + 1] = h[i] end
      found = found + 1
      if found >= want then break end
    end
  end
  if #ids < step then
    if found < want or #ids == 0 then out[1] = 1 end
    break
  end
  start = '(' .. out[2]
end
return out
`;

/** Script name -> [number of KEYS, Lua]. Session scripts get ARGV[1] = shard base, ARGV[2] = id. */
export const SCRIPTS = {
  sgValidate: [6, VALIDATE],
  sgInsert: [6, INSERT],
  sgPut: [6, PUT],
  sgDrop: [6, DROP],
  sgClose: [6, CLOSE],
  sgSweep: [5, SWEEP],
  sgList: [5, LIST],
  ...OUTBOX_SCRIPTS,
} as const satisfies Record<string, readonly [number, string]>;

export type ScriptName = keyof typeof SCRIPTS;
