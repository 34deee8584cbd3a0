/**
 * The outbox scripts of the redis store (see outbox.ts for how a claim uses them). All take
 * KEYS[1] = the shard's stream and ARGV[1] = the shard's key base, ARGV[2] = the subscriber
 * (consumer group); the subscriber's own keys on the shard are built from them:
 * `lease:<sub>` (zset: entry id -> lease end, or retry time once released), `pend:<sub>` (hash:
 * entry id -> holder, attempts, redelivered, PEL owner) and `fail:<sub>` (hash: entry id ->
 * failedAt, error). Due-ness is decided from those scores and the caller's `now` only.
 */

/** Stream entry ids "a-b" compared numerically (a is at most 2^53 here). */
const OUTBOX_HELPERS = `
local function cmpid(a, b)
  local a1, a2 = string.match(a, '^(%d+)-(%d+)$')
  local b1, b2 = string.match(b, '^(%d+)-(%d+)$')
  a1, a2, b1, b2 = tonumber(a1), tonumber(a2), tonumber(b1), tonumber(b2)
  if a1 ~= b1 then return a1 < b1 and -1 or 1 end
  if a2 ~= b2 then return a2 < b2 and -1 or 1 end
  return 0
end
-- The consumer group of this subscriber, created at 0 (every record still in the stream).
local function ensure(g)
  local r = redis.pcall('XGROUP', 'CREATE', KEYS[1], g, '0', 'MKSTREAM')
  if type(r) == 'table' and r.err and not string.find(r.err, 'BUSYGROUP') then error(r.err) end
end
-- XINFO GROUPS as a list of { name, last-delivered-id, lag (or false) }.
local function groups()
  local out = {}
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    out[#out + 1] = { f['name'], f['last-delivered-id'], f['lag'] }
  end
  return out
end
local function lastDelivered(name)
  for _, g in ipairs(groups()) do if g[1] == name then return g[2] end end
  return '0-0'
end
-- A consumer exists only while it holds entries: delete it once its pending list is empty
-- (XREADGROUP creates it again), so names of dead processes do not pile up.
local function dropIfIdle(g, consumer)
  if consumer == nil or consumer == '' then return end
  if #redis.call('XPENDING', KEYS[1], g, '-', '+', 1, consumer) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], g, consumer)
  end
end
-- pend value: holder TAB attempts TAB redelivered(0/1) TAB owner (consumer holding it in the PEL)
local function split(p)
  local holder, attempts, redel, owner = string.match(p, '^([^\\t]*)\\t(%d+)\\t(%d)\\t(.*)$')
  return holder, tonumber(attempts), redel, owner
end
`;

/** obEnsure(base, group): the subscriber's consumer group on this shard's stream */
const OB_ENSURE = `${OUTBOX_HELPERS}
ensure(ARGV[2])
return 1
`;

/**
 * obPeek(base, group, now, limit) -> {nextLease, nDue, dueIds..., freshIds...}: what a claim
 * could take from this shard, without taking it (claims merge shards by close order, then
 * take), and the earliest lease or retry time of the subscriber here ('' = none).
 */
const OB_PEEK = `${OUTBOX_HELPERS}
ensure(ARGV[2])
local limit = tonumber(ARGV[4])
local leaseKey = ARGV[1] .. 'lease:' .. ARGV[2]
local due = redis.call('ZRANGEBYSCORE', leaseKey, '-inf', ARGV[3], 'LIMIT', 0, limit)
local first = redis.call('ZRANGE', leaseKey, 0, 0, 'WITHSCORES')
local out = { first[2] or '', #due }
for _, id in ipairs(due) do out[#out + 1] = id end
if #due < limit then
  local fresh = redis.call('XRANGE', KEYS[1], '(' .. lastDelivered(ARGV[2]), '+', 'COUNT', limit - #due)
  for _, e in ipairs(fresh) do out[#out + 1] = e[1] end
end
return out
`;

/**
 * obClaim(base, group, consumer, now, leaseMs, nFresh, dueIds...): lease the given due entries
 * that are still due (lease ended, or released for retry and retry time reached), moving them in
 * the PEL with XCLAIM, then up to nFresh new entries with XREADGROUP.
 * -> list of {id, attempt, redelivered(0/1), fields}
 */
const OB_CLAIM = `${OUTBOX_HELPERS}
local g, consumer, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local leaseKey, pendKey = ARGV[1] .. 'lease:' .. g, ARGV[1] .. 'pend:' .. g
local untilT = string.format('%.17g', now + tonumber(ARGV[5]))
ensure(g)
local out = {}
for i = 7, #ARGV do
  local id = ARGV[i]
  local score, p = redis.call('ZSCORE', leaseKey, id), redis.call('HGET', pendKey, id)
  if score and p and tonumber(score) <= now then
    local holder, attempts, redel, owner = split(p)
    -- Still held when its lease ran out: the holder died mid-record.
    if holder ~= '' then redel = '1' end
    attempts = attempts + 1
    local e = redis.call('XCLAIM', KEYS[1], g, consumer, 0, id)[1]
    if e then
      redis.call('HSET', pendKey, id, consumer .. '\\t' .. attempts .. '\\t' .. redel .. '\\t' .. consumer)
      redis.call('ZADD', leaseKey, untilT, id)
      if owner ~= consumer then dropIfIdle(g, owner) end
      out[#out + 1] = { id, attempts, tonumber(redel), e[2] }
    else
      redis.call('HDEL', pendKey, id)
      redis.call('ZREM', leaseKey, id)
    end
  end
end
local n = tonumber(ARGV[6])
if n > 0 then
  local r = redis.call('XREADGROUP', 'GROUP', g, consumer, 'COUNT', n, 'STREAMS', KEYS[1], '>')
  if r then
    for _, e in ipairs(r[1][2]) do
      redis.call('HSET', pendKey, e[1], consumer .. '\\t1\\t0\\t' .. consumer)
      redis.call('ZADD', leaseKey, untilT, e[1])
      out[#out + 1] = { e[1], 1, 0, e[2] }
    end
  end
end
return out
`;

/** obAck(base, group, id): done for this subscriber; drop the entry once no subscriber needs it */
const OB_ACK = `${OUTBOX_HELPERS}
local g, id = ARGV[2], ARGV[3]
local pendKey = ARGV[1] .. 'pend:' .. g
ensure(g)
local p = redis.call('HGET', pendKey, id)
redis.call('XACK', KEYS[1], g, id)
redis.call('HDEL', pendKey, id)
redis.call('ZREM', ARGV[1] .. 'lease:' .. g, id)
if p then
  local _, _, _, owner = split(p)
  dropIfIdle(g, owner)
end
for _, gr in ipairs(groups()) do
  if cmpid(id, gr[2]) > 0 then return 1 end
  if redis.call('HEXISTS', ARGV[1] .. 'pend:' .. gr[1], id) == 1 then return 1 end
  if redis.call('HEXISTS', ARGV[1] .. 'fail:' .. gr[1], id) == 1 then return 1 end
end
redis.call('XDEL', KEYS[1], id)
return 2
`;

/** obRetry(base, group, id, retryAt): release the lease; offer the entry again at retryAt */
const OB_RETRY = `${OUTBOX_HELPERS}
local pendKey = ARGV[1] .. 'pend:' .. ARGV[2]
local p = redis.call('HGET', pendKey, ARGV[3])
if not p then return 0 end
local _, attempts, redel, owner = split(p)
redis.call('HSET', pendKey, ARGV[3], '\\t' .. attempts .. '\\t' .. redel .. '\\t' .. owner)
redis.call('ZADD', ARGV[1] .. 'lease:' .. ARGV[2], ARGV[4], ARGV[3])
return 1
`;

/** obFail(base, group, id, error, now): give up; keep the entry and the error for inspection */
const OB_FAIL = `${OUTBOX_HELPERS}
local g, id = ARGV[2], ARGV[3]
local pendKey = ARGV[1] .. 'pend:' .. g
local p = redis.call('HGET', pendKey, id)
if not p then return 0 end
redis.call('HDEL', pendKey, id)
redis.call('ZREM', ARGV[1] .. 'lease:' .. g, id)
redis.call('XACK', KEYS[1], g, id)
redis.call('HSET', ARGV[1] .. 'fail:' .. g, id, ARGV[5] .. '\\t' .. ARGV[4])
local _, _, _, owner = split(p)
dropIfIdle(g, owner)
return 1
`;

/**
 * obRenew(base, group, consumer, leaseUntil, ids...) -> the ids this consumer still holds, their
 * lease moved to leaseUntil (a heartbeat).
 */
const OB_RENEW = `${OUTBOX_HELPERS}
local g, consumer = ARGV[2], ARGV[3]
local pendKey, leaseKey = ARGV[1] .. 'pend:' .. g, ARGV[1] .. 'lease:' .. g
local out = {}
for i = 5, #ARGV do
  local p = redis.call('HGET', pendKey, ARGV[i])
  if p and split(p) == consumer then
    redis.call('ZADD', leaseKey, ARGV[4], ARGV[i])
    out[#out + 1] = ARGV[i]
  end
end
return out
`;

/**
 * obRelease(base, group, consumer, now, interrupted(0/1), ids...): hand back what this consumer
 * holds, offered again at now. Not started: the claim's attempt is undone; interrupted: the
 * attempt stays and the next delivery is flagged redelivered.
 */
const OB_RELEASE = `${OUTBOX_HELPERS}
local g, consumer = ARGV[2], ARGV[3]
local pendKey, leaseKey = ARGV[1] .. 'pend:' .. g, ARGV[1] .. 'lease:' .. g
for i = 6, #ARGV do
  local p = redis.call('HGET', pendKey, ARGV[i])
  if p then
    local holder, attempts, redel, owner = split(p)
    if holder == consumer then
      if ARGV[5] == '1' then redel = '1' elseif attempts > 0 then attempts = attempts - 1 end
      redis.call('HSET', pendKey, ARGV[i], '\t' .. attempts .. '\t' .. redel .. '\t' .. owner)
      redis.call('ZADD', leaseKey, ARGV[4], ARGV[i])
    end
  end
end
return 1
`;

/**
 * obStats(base) -> flat (group, pending incl. not yet delivered, failed, close time of the oldest
 * unfinished entry or '') per group of this shard
 */
const OB_STATS = `${OUTBOX_HELPERS}
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local out = {}
for _, g in ipairs(groups()) do
  local lag = g[3]
  if not lag then lag = #redis.call('XRANGE', KEYS[1], '(' .. g[2], '+') end
  out[#out + 1] = g[1]
  out[#out + 1] = redis.call('HLEN', ARGV[1] .. 'pend:' .. g[1]) + lag
  out[#out + 1] = redis.call('HLEN', ARGV[1] .. 'fail:' .. g[1])
  -- The oldest unfinished entry: the first in the PEL (leased or waiting for a retry) or the
  -- first not yet delivered, whichever came first.
  local oldest = redis.call('XPENDING', KEYS[1], g[1])[2]
  local nextNew = redis.call('XRANGE', KEYS[1], '(' .. g[2], '+', 'COUNT', 1)[1]
  if nextNew and (not oldest or cmpid(nextNew[1], oldest) < 0) then oldest = nextNew[1] end
  local at = ''
  if oldest then
    local e = redis.call('XRANGE', KEYS[1], oldest, oldest)[1]
    if e then
      for i = 1, #e[2], 2 do if e[2][i] == 'at' then at = e[2][i + 1] end end
    end
  end
  out[#out + 1] = at
end
return out
`;

export const OUTBOX_SCRIPTS = {
  sgObEnsure: OB_ENSURE,
  sgObPeek: OB_PEEK,
  sgObClaim: OB_CLAIM,
  sgObAck: OB_ACK,
  sgObRetry: OB_RETRY,
  sgObFail: OB_FAIL,
  sgObStats: OB_STATS,
  sgObRenew: OB_RENEW,
  sgObRelease: OB_RELEASE,
} as const satisfies Record<string, string>;
