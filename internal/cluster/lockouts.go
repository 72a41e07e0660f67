package cluster

import (
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/signin"
)

var _ signin.Lockouts = (*RedisLockouts)(nil)

// signinFailScript counts a failed sign-in against each of its keys, as
// signin.LocalLockouts does: a window that starts at the first failure and
// restarts after Window; at the key's limit the key is locked until
// now+LockFor and its count restarts.
//
//	KEYS[i]   a count: hash {s: window start µs, n: count, l: locked until µs}
//	ARGV[1] now µs, ARGV[2] window µs, ARGV[3] lock µs, ARGV[3+i] limit of KEYS[i]
var signinFailScript = redis.NewScript(`
local now, win, lock = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i, k in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 + i])
  local s = tonumber(redis.call('HGET', k, 's'))
  local n
  if not s or now - s > win then
    redis.call('HSET', k, 's', now, 'n', 1)
    n = 1
  else
    n = redis.call('HINCRBY', k, 'n', 1)
  end
  local locked = tonumber(redis.call('HGET', k, 'l')) or 0
  if limit > 0 and n >= limit then
    locked = now + lock
    redis.call('HSET', k, 'l', locked, 's', now, 'n', 0)
  end
  local ttl = math.max(win, locked - now)
  redis.call('PEXPIRE', k, math.floor(ttl / 1000) + 10000)
end
return 1
`)

// RedisLockouts is signin.Lockouts in Redis: failed sign-ins counted for every
// node that uses the same Redis and prefix, so that failures spread over the
// nodes lock a username (or an address) out at the policy's count in all.
// A username's count from an address is the hash
// <prefix>signin:u:<addr>|<username>, an address's <prefix>signin:a:<addr>,
// each expiring when neither its window nor its lock holds any more.
//
// Locked, Fail and Succeed are one round trip each (a sign-in makes two:
// Locked, then Fail or Succeed). Every failure is also counted in a
// signin.LocalLockouts, which answers whenever Redis does not within
// CallTimeout (and for RetryAfter after that): sign-in keeps working, with
// per-node counts, and Degraded says so. Safe for concurrent use.
type RedisLockouts struct {
	client *redis.Client
	prefix string
	p      signin.LockoutPolicy
	local  *signin.LocalLockouts
	fb     fallback
}

// NewRedisLockouts returns lockouts under policy p (a zero policy means
// signin.DefaultLockout) on client, whose keys start with prefix ("" means
// DefaultPrefix).
func NewRedisLockouts(client *redis.Client, prefix string, p signin.LockoutPolicy) *RedisLockouts {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if p == (signin.LockoutPolicy{}) {
		p = signin.DefaultLockout
	}
	return &RedisLockouts{client: client, prefix: prefix, p: p, local: signin.NewLocalLockouts(p)}
}

func (l *RedisLockouts) userKey(username, addr string) string {
	return l.prefix + "signin:u:" + addr + "|" + username
}

func (l *RedisLockouts) addrKey(addr string) string { return l.prefix + "signin:a:" + addr }

// Locked implements signin.Lockouts: both keys' locks in one pipelined round
// trip.
func (l *RedisLockouts) Locked(username, addr string, now time.Time) time.Duration {
	ctx, cancel, ok := l.fb.try(now)
	if !ok {
		return l.local.Locked(username, addr, now)
	}
	defer cancel()
	pipe := l.client.Pipeline()
	u := pipe.HGet(ctx, l.userKey(username, addr), "l")
	a := pipe.HGet(ctx, l.addrKey(addr), "l")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		l.fb.failed(now)
		return l.local.Locked(username, addr, now)
	}
	var wait time.Duration
	for _, c := range []*redis.StringCmd{u, a} {
		if until, err := c.Int64(); err == nil {
			wait = max(wait, time.UnixMicro(until).Sub(now))
		}
	}
	return wait
}

// Fail implements signin.Lockouts: one script for both keys.
func (l *RedisLockouts) Fail(username, addr string, now time.Time) {
	l.local.Fail(username, addr, now)
	ctx, cancel, ok := l.fb.try(now)
	if !ok {
		return
	}
	defer cancel()
	err := signinFailScript.Run(ctx, l.client, []string{l.userKey(username, addr), l.addrKey(addr)},
		now.UnixMicro(), l.p.Window.Microseconds(), l.p.LockFor.Microseconds(), l.p.PerUser, l.p.PerAddr).Err()
	if err != nil {
		l.fb.failed(now)
	}
}

// Succeed implements signin.Lockouts.
func (l *RedisLockouts) Succeed(username, addr string, now time.Time) {
	l.local.Succeed(username, addr, now)
	ctx, cancel, ok := l.fb.try(now)
	if !ok {
		return
	}
	defer cancel()
	if err := l.client.Del(ctx, l.userKey(username, addr)).Err(); err != nil {
		l.fb.failed(now)
	}
}

// Degraded reports whether sign-in counts fell back to a node's own within
// DegradedFor before now.
func (l *RedisLockouts) Degraded(now time.Time) bool { return l.fb.degraded(now) }

// UseHealth makes the node's Health decide when Redis is skipped (while it
// says Redis is down, instead of RetryAfter) and tells it of failures, so
// that /healthz reports them.
func (l *RedisLockouts) UseHealth(h *Health) { l.fb.health = h }
