import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { FAILURE_SCRIPTS } from './failure-scripts.js';
import { OUTBOX_SCRIPTS } from './outbox-scripts.js';
import { TAG_SCRIPTS } from './tag-scripts.js';

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
 * - A session is ONE string: its record as JSON, with the fields the scripts need first in a
 *   fixed order (codec.ts). Scripts read that front with one anchored match and never
 *   decode or re-encode the rest (Redis's cjson would turn [] into {} and round numbers).
 * - Numbers are written with '%.17g' (exact for any double, plain digits for epoch ms).
 *   `now` always comes from the caller: no script reads Redis's clock.
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
local function num(s) if s == nil or s == false or s == '' or s == 'null' then return nil end return tonumber(s) end
local function fmt(n) if n == nil then return 'null' end return string.format('%.17g', n) end
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
-- A stored session is its record as JSON with these fields first, in this order
-- (codec.ts writes it so): read them with one anchored match, never decode the rest.
local FRONT = '^{"lastAccessAt":([^,]+),"expiresAt":([^,]+),"version":([^,]+),()"idleTimeout":([^,]+),'
  .. '"lifetimeDeadline":([^,]+),"policyDeadline":([^,]+),"state":"(%a+)",'
local function front(s)
  local la, exp, v, tail, idle, ld, pd, st = string.match(s, FRONT)
  return { la = tonumber(la), exp = num(exp), expS = exp, v = tonumber(v), vS = v, tail = tail,
    idle = tonumber(idle), ld = num(ld), pd = num(pd), st = st }
end
-- Tell every process's near cache (near-cache.ts) that this session changed or went away.
local function inv(base, id)
  redis.call('PUBLISH', string.match(base, '^(.*):{s:') .. ':inv', id)
end
-- Delete a session and append its close record (the record as stored) to the shard's stream,
-- in this one script. Returns the stream id.
local function close(key, id, reason, now, o, s, st)
  local base = string.sub(key, 1, -38)
  local meta = base .. 'meta'
  redis.call('DEL', key)
  redis.call('ZREM', base .. 'due', id)
  redis.call('ZREM', base .. 'ids', id)
  redis.call('HINCRBY', base .. 'count', st, -1)
  local top = tonumber(redis.call('HGET', meta, 'obtop') or '0')
  if o <= top then o = top + 1 end
  redis.call('HSET', meta, 'obtop', fmt(o))
  local sid = fmt(o) .. '-0'
  redis.call('XADD', base .. 'ob', sid, 'id', id, 'r', reason, 'at', fmt(now), 's', s)
  inv(base, id)
  return sid
end
`;

/**
 * The request path for one session (key = its record): 0 missing | {1, reason, record} it was
 * past its deadline and is now closed | 's': still live, untouched, and the same record the
 * caller holds (`known` = its "version:byte length") | 'T<expiresAt>:<byte length>': touched,
 * and otherwise the record the caller holds (lastAccessAt = now, version + 1) | 'v' or 't' (a
 * touch was written) followed by the record as JSON. A touch rewrites only the front of the
 * string.
 */
const VALIDATE_ONE = `
local function validate(key, nowArg, res, o, known)
  local s = redis.call('GET', key)
  if not s then return 0 end
  local now = tonumber(nowArg)
  -- The common case needs only the first three fields and writes nothing.
  local la, exp, v = string.match(s, '^{"lastAccessAt":([^,]+),"expiresAt":([^,]+),"version":([^,]+),')
  exp = num(exp)
  if not (exp and exp <= now) and now - tonumber(la) < tonumber(res) then
    if known ~= '' and known == v .. ':' .. #s then return 's' end
    return 'v' .. s
  end
  local f = front(s)
  if f.exp and f.exp <= now then
    local reason = why(f.la, f.idle, f.ld, f.pd)
    close(key, string.sub(key, -32), reason, now, tonumber(o), s, f.st)
    return {1, reason, s}
  end
  exp = fmt(expires(now, f.idle, f.ld, f.pd))
  local t = '{"lastAccessAt":' .. nowArg .. ',"expiresAt":' .. exp .. ',"version":' .. fmt(f.v + 1) .. ','
    .. string.sub(s, f.tail)
  redis.call('SET', key, t)
  local due, id = string.sub(key, 1, -38) .. 'due', string.sub(key, -32)
  if exp == 'null' then redis.call('ZREM', due, id) else redis.call('ZADD', due, exp, id) end
  -- The caller holds the record as it was: the new deadline and length are all it lacks.
  if known ~= '' and known == v .. ':' .. #s then return 'T' .. exp .. ':' .. #t end
  return 't' .. t
end
`;

/** validate(now, touchResolutionMs, o, known) on KEYS[1] -> see VALIDATE_ONE */
const VALIDATE = `${HELPERS}${VALIDATE_ONE}
return validate(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
`;

/**
 * validateMany(n, key1, now1, res1, o1, known1, key2, ...) -> one VALIDATE_ONE answer per session.
 * Validations issued together to sessions on the same server, in one call: each is still one
 * atomic step (a script runs alone). KEYS[1] only routes the call; the sessions may sit in
 * several slots, all served by the node it runs on (the caller groups them by node; if the
 * slot map moved, Redis refuses and the caller validates them one by one).
 */
const VALIDATE_MANY = `${HELPERS}${VALIDATE_ONE}
local out = {}
for i = 0, tonumber(ARGV[1]) - 1 do
  local a = 2 + i * 5
  out[i + 1] = validate(ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
end
return out
`;

/** insert(record) -> 1, or 0 when the id exists */
const INSERT = `${SESSION}${HELPERS}
if redis.call('EXISTS', SK) == 1 then return 0 end
local f = front(ARGV[1])
redis.call('SET', SK, ARGV[1])
redis.call('ZADD', BASE .. 'ids', 0, ID)
if f.exp then redis.call('ZADD', DUE, f.expS, ID) end
redis.call('HINCRBY', BASE .. 'count', f.st, 1)
return 1
`;

/**
 * put(now, expectedVersion, o, record): compare-and-set of a whole record -> {0} missing |
 * {1, reason, record} it was past its deadline and is now closed | {2, version} version
 * differs | {3} written
 */
const PUT = `${SESSION}${HELPERS}
local s = redis.call('GET', SK)
if not s then return {0} end
local f = front(s)
local now = tonumber(ARGV[1])
if f.exp and f.exp <= now then
  local reason = why(f.la, f.idle, f.ld, f.pd)
  close(SK, ID, reason, now, tonumber(ARGV[3]), s, f.st)
  return {1, reason, s}
end
if f.v ~= tonumber(ARGV[2]) then return {2, f.vS} end
local n = front(ARGV[4])
redis.call('SET', SK, ARGV[4])
inv(BASE, ID)
if f.st ~= n.st then
  redis.call('HINCRBY', BASE .. 'count', f.st, -1)
  redis.call('HINCRBY', BASE .. 'count', n.st, 1)
end
if n.exp then redis.call('ZADD', DUE, n.expS, ID) else redis.call('ZREM', DUE, ID) end
return {3}
`;

/** drop(expectedVersion): delete WITHOUT a close record (rekey) -> 1 | 0 missing | 2 version differs */
const DROP = `${SESSION}${HELPERS}
local s = redis.call('GET', SK)
if not s then return 0 end
local f = front(s)
if f.v ~= tonumber(ARGV[1]) then return 2 end
redis.call('DEL', SK)
inv(BASE, ID)
redis.call('ZREM', DUE, ID)
redis.call('ZREM', BASE .. 'ids', ID)
redis.call('HINCRBY', BASE .. 'count', f.st, -1)
return 1
`;

/**
 * close(reason, now, o) -> false when missing | {sid, reason, record}; a session already past
 * its deadline ended by that deadline, so it closes with the expiry reason.
 */
const CLOSE = `${SESSION}${HELPERS}
local s = redis.call('GET', SK)
if not s then return false end
local f = front(s)
local now = tonumber(ARGV[2])
local reason = ARGV[1]
if f.exp and f.exp <= now then reason = why(f.la, f.idle, f.ld, f.pd) end
local sid = close(SK, ID, reason, now, tonumber(ARGV[3]), s, f.st)
return {sid, reason, s}
`;

/**
 * sweep(base, now, quota, o): close up to quota sessions of this shard whose deadline passed,
 * found through the due ZSET (score = expiresAt) and re-checked against the record.
 * -> flat list of (id, sid, reason, record) per closed session
 */
const SWEEP = `${SHARD}${HELPERS}
local now = tonumber(ARGV[2])
local o = tonumber(ARGV[4])
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', DUE, '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))) do
  local key = BASE .. 'sess:' .. id
  local s = redis.call('GET', key)
  local f = s and front(s)
  if not s then
    redis.call('ZREM', DUE, id) -- an index entry without its session: repair
  elseif f.exp and f.exp <= now then
    local reason = why(f.la, f.idle, f.ld, f.pd)
    local sid = close(key, id, reason, now, o, s, f.st)
    o = tonumber(string.match(sid, '^(%d+)')) + 1
    for _, x in ipairs({ id, sid, reason, s }) do out[#out + 1] = x end
  elseif f.exp then
    redis.call('ZADD', DUE, f.expS, id) -- a stale score: put the real deadline back
  else
    redis.call('ZREM', DUE, id)
  end
end
return out
`;

/**
 * list(base, after, want, maxScan, state, ip): sessions of this shard in id order after \`after\`
 * ('' = from the start) matching the filters ('' = any; ip as JSON)
 * -> {done (1 = shard exhausted), lastScannedId, then the record of each match}
 */
const LIST = `${SHARD}${HELPERS}
local want, maxScan = tonumber(ARGV[3]), tonumber(ARGV[4])
local ip = ',"clientIp":' .. ARGV[6] .. ','
local out = {0, ARGV[2]}
local start = ARGV[2] == '' and '-' or ('(' .. ARGV[2])
local found, scanned = 0, 0
while found < want and scanned < maxScan do
  local step = math.min(maxScan - scanned, math.max(want - found, 16))
  local ids = redis.call('ZRANGEBYLEX', BASE .. 'ids', start, '+', 'LIMIT', 0, step)
  for _, id in ipairs(ids) do
    scanned = scanned + 1
    out[2] = id
    local s = redis.call('GET', BASE .. 'sess:' .. id)
    -- clientIp follows state in every stored record, so its first occurrence is the field.
    local ok = s and (ARGV[5] == '' or front(s).st == ARGV[5])
    if ok and ARGV[6] ~= '' then
      local at = string.find(s, ',"clientIp":', 1, true)
      ok = at ~= nil and string.sub(s, at, at + #ip - 1) == ip
    end
    if ok then
      out[#out + 1] = s
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

/**
 * dueCounts(now) over KEYS = every shard's due ZSET -> the number of sessions due in each, in
 * KEYS order. One call instead of one ZCOUNT per shard (256 by default) on every sweep tick;
 * only on a standalone server: a cluster spreads the shards over slots.
 */
const DUE_COUNTS = `
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('ZCOUNT', key, '-inf', ARGV[1]) end
return out
`;

/**
 * Every script but sgDueCounts takes exactly one key, which routes it to its slot (see the
 * preludes); sgDueCounts takes many (runKeys) and is for standalone servers only.
 */
export const SCRIPTS = {
  sgValidate: VALIDATE,
  sgValidateMany: VALIDATE_MANY,
  sgInsert: INSERT,
  sgPut: PUT,
  sgDrop: DROP,
  sgClose: CLOSE,
  sgSweep: SWEEP,
  sgList: LIST,
  sgDueCounts: DUE_COUNTS,
  ...OUTBOX_SCRIPTS,
  ...FAILURE_SCRIPTS,
  ...TAG_SCRIPTS,
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
    return this.runKeys(name, [key], ...args);
  }

  /** Run `name` with KEYS = keys (all in one slot, or a standalone server) and ARGV = args. */
  runKeys(name: ScriptName, keys: readonly string[], ...args: (string | number)[]): Promise<unknown> {
    return this.client.evalsha(this.sha.get(name)!, keys.length, ...keys, ...args).catch((err: Error) => {
      if (!String(err.message).startsWith('NOSCRIPT')) throw err;
      return this.client.eval(this.lua.get(name)!, keys.length, ...keys, ...args);
    });
  }
}
