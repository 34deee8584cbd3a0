// The failure-counter scripts of the redis store (failures.ts calls them; scripts.ts gathers them).

/**
 * countFailure(now, windowMs) on KEYS[1] = the counter (a hash: n = count, r = window end)
 * -> {count, resetAt}. The window is judged by the caller's `now` (the engine's clock); the
 * key's TTL (= the window) only lets Redis drop it once it can no longer matter.
 */
const COUNT_FAILURE = `
local now = tonumber(ARGV[1])
local r = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
if r > now then
  return {redis.call('HINCRBY', KEYS[1], 'n', 1), string.format('%.17g', r)}
end
local reset = string.format('%.17g', now + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'n', 1, 'r', reset)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, reset}
`;

/** uncountFailure(now) on KEYS[1]: one failure less in a window still open, never below 0. */
const UNCOUNT_FAILURE = `
local r = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
if r > tonumber(ARGV[1]) and tonumber(redis.call('HGET', KEYS[1], 'n') or '0') > 0 then
  redis.call('HINCRBY', KEYS[1], 'n', -1)
end
return 0
`;

export const FAILURE_SCRIPTS = {
  sgCountFailure: COUNT_FAILURE,
  sgUncountFailure: UNCOUNT_FAILURE,
} as const;
