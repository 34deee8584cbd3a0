// The session-tag script of the redis store (tags.ts calls it; scripts.ts gathers it).

/**
 * tagAdd(ttlMs, member...) on KEYS[1] = a SET of tags or of session ids -> 1. Adds the members
 * and keeps the key at least `ttlMs` longer (ms from the caller's now); `-1`: a member that
 * may live for ever, so the key loses its TTL. The TTL only grows: a key kept for a member
 * with a later (or no) bound is never cut short by another member's earlier one.
 */
const TAG_ADD = `
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SADD', KEYS[1], unpack(ARGV, 2))
local ttl = tonumber(ARGV[1])
if ttl < 0 then
  redis.call('PERSIST', KEYS[1])
  return 1
end
local left = redis.call('PTTL', KEYS[1])
if existed == 0 or (left >= 0 and left < ttl) then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`;

export const TAG_SCRIPTS = {
  sgTagAdd: TAG_ADD,
} as const;
