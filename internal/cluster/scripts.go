package cluster

import "github.com/redis/go-redis/v9"

// Lua helpers shared by the channel scripts. A hold record is
// "<expiry-µs> <suffix> <suffix>…", a suffix "<kind>:<id>"; the channel key
// of a suffix is <prefix>ch:<suffix>.
const luaFree = `
-- free removes call from every key its hold record rec lists, and drops
-- emptied keys from the index.
local function free(prefix, index, call, rec)
  for s in string.gmatch(rec, ' (%S+)') do
    local k = prefix .. 'ch:' .. s
    redis.call('ZREM', k, call)
    if redis.call('EXISTS', k) == 0 then redis.call('SREM', index, s) end
  end
end
local function expiry(rec)
  return tonumber(string.match(rec, '^(%d+)'))
end
`

// acquireScript takes one channel of every key or of none.
//
//	KEYS[1] hold key, KEYS[2] index, KEYS[2+i] channel key i
//	ARGV[1] call id, ARGV[2] now µs, ARGV[3] expiry µs, ARGV[4] ttl ms,
//	ARGV[5] prefix, ARGV[4+2i] suffix i, ARGV[5+2i] max i
//
// Returns {-1, 0}: call id holds an unexpired hold; {0, 0}: granted;
// {i, n}: key i (1-based) is at its max and holds n.
var acquireScript = redis.NewScript(luaFree + `
local call, now, exp, ttl, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local rec = redis.call('GET', KEYS[1])
if rec then
  if expiry(rec) > now then return {-1, 0} end
  free(prefix, KEYS[2], call, rec)
  redis.call('DEL', KEYS[1])
end
local n = #KEYS - 2
for i = 1, n do
  local k = KEYS[2 + i]
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  local max = tonumber(ARGV[5 + 2 * i])
  if max > 0 then
    local c = redis.call('ZCARD', k)
    if c >= max then return {i, c} end
  end
end
if n == 0 then return {0, 0} end
local parts = {exp}
for i = 1, n do
  local k, s = KEYS[2 + i], ARGV[4 + 2 * i]
  redis.call('ZADD', k, exp, call)
  redis.call('PEXPIRE', k, ttl)
  redis.call('SADD', KEYS[2], s)
  parts[#parts + 1] = s
end
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('SET', KEYS[1], table.concat(parts, ' '), 'PX', ttl)
return {0, 0}
`)

// releaseScript frees what a call holds.
//
//	KEYS[1] hold key, KEYS[2] index; ARGV[1] call id, ARGV[2] prefix
//
// Returns 1 if the call held, 0 if not.
var releaseScript = redis.NewScript(luaFree + `
local rec = redis.call('GET', KEYS[1])
if not rec then return 0 end
free(ARGV[2], KEYS[2], ARGV[1], rec)
redis.call('DEL', KEYS[1])
return 1
`)

// refreshScript extends a live hold, or frees an expired one.
//
//	KEYS[1] hold key, KEYS[2] index
//	ARGV[1] call id, ARGV[2] prefix, ARGV[3] now µs, ARGV[4] expiry µs,
//	ARGV[5] ttl ms
//
// Returns 1 if the hold was live (and is extended), 0 otherwise.
var refreshScript = redis.NewScript(luaFree + `
local rec = redis.call('GET', KEYS[1])
if not rec then return 0 end
if expiry(rec) <= tonumber(ARGV[3]) then
  free(ARGV[2], KEYS[2], ARGV[1], rec)
  redis.call('DEL', KEYS[1])
  return 0
end
local parts = {ARGV[4]}
for s in string.gmatch(rec, ' (%S+)') do
  local k = ARGV[2] .. 'ch:' .. s
  redis.call('ZADD', k, 'XX', ARGV[4], ARGV[1])
  redis.call('PEXPIRE', k, ARGV[5])
  parts[#parts + 1] = s
end
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('SET', KEYS[1], table.concat(parts, ' '), 'PX', ARGV[5])
return 1
`)

// reapScript frees the holds expired at now among the members of some
// channel keys.
//
//	KEYS[1] index; ARGV[1] prefix, ARGV[2] now µs, ARGV[3…] suffixes
//
// Returns the number of hold records freed.
var reapScript = redis.NewScript(luaFree + `
local prefix, now = ARGV[1], tonumber(ARGV[2])
local n = 0
for i = 3, #ARGV do
  local s = ARGV[i]
  local k = prefix .. 'ch:' .. s
  for _, call in ipairs(redis.call('ZRANGEBYSCORE', k, '-inf', now)) do
    local hk = prefix .. 'hold:' .. call
    local rec = redis.call('GET', hk)
    if rec and expiry(rec) <= now then
      free(prefix, KEYS[1], call, rec)
      redis.call('DEL', hk)
      n = n + 1
    end
  end
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  if redis.call('EXISTS', k) == 0 then redis.call('SREM', KEYS[1], s) end
end
return n
`)

// allowScript is the GCRA of RedisRates.
//
//	KEYS[1] bucket key
//	ARGV[1] now µs, ARGV[2] emission interval µs, ARGV[3] window µs
//	(interval × perSecond), ARGV[4] idle ms (added to the key's TTL)
//
// Returns 1 if allowed, 0 if not.
var allowScript = redis.NewScript(`
local now, interval, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nxt = tat + interval
if nxt - now > window then return 0 end
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.ceil((nxt - now) / 1000) + tonumber(ARGV[4]))
return 1
`)
