import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { OUTBOX_SCRIPTS } from './redis-outbox-scripts.js';

type RedisClient = Redis | Cluster;

/**
 * The Lua scripts of the redis store: each contract step that writes is ONE script on keys of
 * ONE shard (one hash tag, so one cluster slot), called by SHA (see ScriptRunner below).
 *
 * Conventions shared by the session scripts:
 * - One KEY, which routes the call: a session's key, or for shard-wide scripts the shard's
 *   `due` key with the shard's key base in ARGV[1]. The other keys of the shard are built
 *   from the base inside the script; they share the hash tag, so they are in the same slot (Redis
 *   checks that at run time). Fewer arguments is most of what makes the request path fast.
 * - Numbers are written with '%.17g' (exact for any double, plain digits for epoch ms) and ''
 *   stands for null. `now` always comes from the caller: no script reads Redis's clock.
 * - The deadline arithmetic mirrors src/core/deadline.ts exactly (computeExpiresAt,
 *   expiryReason); test/store/redis.test.ts checks the two agree.
 * - `o` is the caller's ordering clock (microseconds); a close record's stream id is `<o>-0`,
 *   raised above the shard's last id when needed, so records sort by close time across shards.
 */

/** Session scripts: KEYS[1] = the session's key `<base>sess:<32 hex id>`; base and id follow. */
const SESSION = `
local SK = KEYS[1]
local BASE, ID = string.sub(SK, 1, -38), string.sub(SK, -32)
local DUE = BASE .. 'due'
`;
/** Shard scripts: KEYS[1] = the shard's `due` key (it routes the call), ARGV[1] = the base. */
const SHARD = `
local BASE = ARGV[1]
local DUE = BASE .. 'due'
`;
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
  local base = string.sub(key, 1, -38)
  local meta = base .. 'meta'
  redis.call('DEL', key)
  redis.call('ZREM', base .. 'due', id)
  redis.call('ZREM', base .. 'ids', id)
  redis.call('HINCRBY', base .. 'count', h[5], -1)
  local top = tonumber(redis.call('HGET', meta, 'obtop') or '0')
  if o <= top then o = top + 1 end
  redis.call('HSET', meta, 'obtop', fmt(o))
  local sid = fmt(o) .. '-0'
  redis.call('XADD', base .. 'ob', sid, 'id', id, 'r', reason, 'at', fmt(now),
    'la', h[1], 'exp', h[2], 'v', h[3], 'd', h[4])
  return sid
end
`;

/**
 * The request path for one session (key = its hash): 0 missing | {1, reason, u, ip} it was past
 * its deadline and is now closed | 'v' or 't' (a touch was written) followed by the record as
 * JSON, built here by splicing the three live fields into d, so the caller parses it once.
 */
const VALIDATE_ONE = `
local function validate(key, nowArg, res, o)
  local h = redis.call('HMGET', key, 'la', 'exp', 'v', 'd')
  if not h[4] then return 0 end
  local now, la, exp = tonumber(nowArg), tonumber(h[1]), num(h[2])
  local flag, v = 'v', h[3]
  -- The common case reads four fields and writes nothing; the deadline inputs only when needed.
  if (exp and exp <= now) or now - la >= tonumber(res) then
    local x = redis.call('HMGET', key, 'idle', 'ld', 'pd', 'st', 'u', 'ip')
    local idle, ld, pd = tonumber(x[1]), num(x[2]), num(x[3])
    local id = string.sub(key, -32)
    if exp and exp <= now then
      local reason = why(la, idle, ld, pd)
      close(key, id, reason, now, tonumber(o), { h[1], h[2], h[3], h[4], x[4] })
      return {1, reason, x[5], x[6]}
    end
    flag, v = 't', fmt(tonumber(h[3]) + 1)
    h[1], h[2] = nowArg, fmt(expires(now, idle, ld, pd))
    redis.call('HSET', key, 'la', h[1], 'exp', h[2], 'v', v)
    local due = string.sub(key, 1, -38) .. 'due'
    if h[2] == '' then redis.call('ZREM', due, id) else redis.call('ZADD', due, h[2], id) end
  end
  local e = h[2]
  if e == '' then e = 'null' end
  return flag .. '{"lastAccessAt":' .. h[1] .. ',"expiresAt":' .. e .. ',"version":' .. v .. ',' .. string.sub(h[4], 2)
end
`;

/** validate(now, touchResolutionMs, o) on KEYS[1] -> see VALIDATE_ONE */
const VALIDATE = `${HELPERS}${VALIDATE_ONE}
return validate(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
`;

/**
 * validateMany(n, key1, now1, res1, o1, key2, ...) -> one VALIDATE_ONE answer per session.
 * Validations issued together to sessions on the same server, in one call: each is still one
 * atomic step (a script runs alone). KEYS[1] only routes the call; the sessions may sit in
 * several slots, all served by the node it runs on (the caller groups them by node; if the
 * slot map moved, Redis refuses and the caller validates them one by one).
 */
const VALIDATE_MANY = `${HELPERS}${VALIDATE_ONE}
local out = {}
for i = 0, tonumber(ARGV[1]) - 1 do
  out[i + 1] = validate(ARGV[2 + i * 4], ARGV[3 + i * 4], ARGV[4 + i * 4], ARGV[5 + i * 4])
end
return out
`;

/** insert(la, exp, v, idle, ld, pd, st, u, ip, d) -> 1, or 0 when the id exists */
const INSERT = `${SESSION}${HELPERS}
if redis.call('EXISTS', SK) == 1 then return 0 end
redis.call('HSET', SK, 'la', ARGV[1], 'exp', ARGV[2], 'v', ARGV[3], 'idle', ARGV[4], 'ld', ARGV[5],
  'pd', ARGV[6], 'st', ARGV[7], 'u', ARGV[8], 'ip', ARGV[9], 'd', ARGV[10])
redis.call('ZADD', BASE .. 'ids', 0, ID)
if ARGV[2] ~= '' then redis.call('ZADD', DUE, ARGV[2], ID) end
redis.call('HINCRBY', BASE .. 'count', ARGV[7], 1)
return 1
`;

/**
 * put(now, expectedVersion, o, la, exp, v, idle, ld, pd, st, u, ip, d): compare-and-set of
 * a whole record -> {0} missing | {1, reason, u, ip} it was past its deadline and is now closed
 * | {2, version} version differs | {3} written
 */
const PUT = `${SESSION}${HELPERS}
local h = redis.call('HMGET', SK, 'la', 'exp', 'v', 'idle', 'ld', 'pd', 'd', 'st', 'u', 'ip')
if not h[7] then return {0} end
local now = tonumber(ARGV[1])
local exp = num(h[2])
if exp and exp <= now then
  local reason = why(tonumber(h[1]), tonumber(h[4]), num(h[5]), num(h[6]))
  close(SK, ID, reason, now, tonumber(ARGV[3]), { h[1], h[2], h[3], h[7], h[8] })
  return {1, reason, h[9], h[10]}
end
if tonumber(h[3]) ~= tonumber(ARGV[2]) then return {2, h[3]} end
redis.call('HSET', SK, 'la', ARGV[4], 'exp', ARGV[5], 'v', ARGV[6], 'idle', ARGV[7], 'ld', ARGV[8],
  'pd', ARGV[9], 'st', ARGV[10], 'u', ARGV[11], 'ip', ARGV[12], 'd', ARGV[13])
if h[8] ~= ARGV[10] then
  redis.call('HINCRBY', BASE .. 'count', h[8], -1)
  redis.call('HINCRBY', BASE .. 'count', ARGV[10], 1)
end
if ARGV[5] == '' then redis.call('ZREM', DUE, ID) else redis.call('ZADD', DUE, ARGV[5], ID) end
return {3}
`;

/** drop(expectedVersion): delete WITHOUT a close record (rekey) -> 1 | 0 missing | 2 version differs */
const DROP = `${SESSION}${HELPERS}
local h = redis.call('HMGET', SK, 'v', 'st')
if not h[1] then return 0 end
if tonumber(h[1]) ~= tonumber(ARGV[1]) then return 2 end
redis.call('DEL', SK)
redis.call('ZREM', DUE, ID)
redis.call('ZREM', BASE .. 'ids', ID)
redis.call('HINCRBY', BASE .. 'count', h[2], -1)
return 1
`;

/**
 * close(reason, now, o) -> false when missing | {sid, la, exp, v, d, reason}; a session
 * already past its deadline ended by that deadline, so it closes with the expiry reason.
 */
const CLOSE = `${SESSION}${HELPERS}
local h = redis.call('HMGET', SK, 'la', 'exp', 'v', 'd', 'st', 'idle', 'ld', 'pd')
if not h[4] then return false end
local now = tonumber(ARGV[2])
local reason = ARGV[1]
local exp = num(h[2])
if exp and exp <= now then reason = why(tonumber(h[1]), tonumber(h[6]), num(h[7]), num(h[8])) end
local sid = close(SK, ID, reason, now, tonumber(ARGV[3]), h)
return {sid, h[1], h[2], h[3], h[4], reason}
`;

/**
 * sweep(base, now, quota, o): close up to quota sessions of this shard whose deadline passed, found
 * through the due ZSET (score = expiresAt) and re-checked against the record.
 * -> flat list of (id, sid, reason, la, exp, v, d) per closed session
 */
const SWEEP = `${SHARD}${HELPERS}
local now = tonumber(ARGV[2])
local o = tonumber(ARGV[4])
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', DUE, '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))) do
  local key = ARGV[1] .. 'sess:' .. id
  local h = redis.call('HMGET', key, 'la', 'exp', 'v', 'idle', 'ld', 'pd', 'd', 'st')
  local exp = num(h[2])
  if not h[7] then
    redis.call('ZREM', DUE, id) -- an index entry without its session: repair
  elseif exp and exp <= now then
    local reason = why(tonumber(h[1]), tonumber(h[4]), num(h[5]), num(h[6]))
    local sid = close(key, id, reason, now, o, { h[1], h[2], h[3], h[7], h[8] })
    o = tonumber(string.match(sid, '^(%d+)')) + 1
    for _, x in ipairs({ id, sid, reason, h[1], h[2], h[3], h[7] }) do out[#out + 1] = x end
  elseif exp then
    redis.call('ZADD', DUE, h[2], id) -- a stale score: put the real deadline back
  else
    redis.call('ZREM', DUE, id)
  end
end
return out
`;

/**
 * list(base, after, want, maxScan, state, ip): sessions of this shard in id order after \`after\`
 * ('' = from the start) matching the filters ('' = any; ip is JSON, as stored)
 * -> {done (1 = shard exhausted), lastScannedId, then (la, exp, v, d) per match}
 */
const LIST = `${SHARD}${HELPERS}
local want, maxScan = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {0, ARGV[2]}
local start = ARGV[2] == '' and '-' or ('(' .. ARGV[2])
local found, scanned = 0, 0
while found < want and scanned < maxScan do
  local step = math.min(maxScan - scanned, math.max(want - found, 16))
  local ids = redis.call('ZRANGEBYLEX', BASE .. 'ids', start, '+', 'LIMIT', 0, step)
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

/** Every script takes exactly one key, which routes it to its slot (see the preludes). */
export const SCRIPTS = {
  sgValidate: VALIDATE,
  sgValidateMany: VALIDATE_MANY,
  sgInsert: INSERT,
  sgPut: PUT,
  sgDrop: DROP,
  sgClose: CLOSE,
  sgSweep: SWEEP,
  sgList: LIST,
  ...OUTBOX_SCRIPTS,
} as const satisfies Record<string, string>;

export type ScriptName = keyof typeof SCRIPTS;

/**
 * Runs the scripts by SHA (EVALSHA) and falls back to EVAL when a server answers NOSCRIPT
 * (first use on a node, a restart, a replica just promoted); EVAL also caches the script there.
 * Not ioredis's `defineCommand`: with auto-pipelining it sends the full source again (EVAL) at
 * the start of every pipelined batch, which costs the hot path about a tenth of its rate.
 */
export class ScriptRunner {
  private readonly sha = new Map<ScriptName, string>();
  private readonly lua = new Map<ScriptName, string>();

  constructor(private readonly client: RedisClient) {
    for (const [name, source] of Object.entries(SCRIPTS) as [ScriptName, string][]) {
      // Comments and indentation stripped: less to send and to hash on EVAL.
      const lua = source
        .replace(/^\s*--.*$/gm, '')
        .replace(/^\s+/gm, '')
        .replace(/\n+/g, '\n')
        .trim();
      this.lua.set(name, lua);
      this.sha.set(name, createHash('sha1').update(lua).digest('hex'));
    }
  }

  /** Run `name` with KEYS = [key] and ARGV = args. */
  run(name: ScriptName, key: string, ...args: (string | number)[]): Promise<unknown> {
    return this.client.evalsha(this.sha.get(name)!, 1, key, ...args).catch((err: Error) => {
      if (!String(err.message).startsWith('NOSCRIPT')) throw err;
      return this.client.eval(this.lua.get(name)!, 1, key, ...args);
    });
  }
}
