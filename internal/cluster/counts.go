package cluster

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/digest"
)

// seenScript records nc for a nonce if it is greater than the one stored,
// atomically. KEYS[1] the nonce's key; ARGV[1] nc; ARGV[2] TTL in ms.
// Returns 1 when nc is fresh, 0 for a replay.
var seenScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// RedisCounts keeps digest nonce counts in Redis, so that a nonce replayed
// to another node is refused too. Each nonce's highest count lives under
// <prefix>nc:<nonce> for the nonce lifetime (plus clock skew), then expires.
//
// Seen cannot return an error (digest.NonceCounts). When Redis does not
// answer within a short timeout, it falls back to the node's own table, so
// digest authentication keeps working with per-node replay protection;
// Degraded reports that it happened, for health.
type RedisCounts struct {
	client   *redis.Client
	prefix   string
	ttl      time.Duration
	local    *digest.LocalCounts
	timeout  time.Duration
	degraded atomic.Int64 // unix nanos of the last fallback
	health   *Health      // nil: every Seen tries Redis
}

var _ digest.NonceCounts = (*RedisCounts)(nil)

// NewRedisCounts returns nonce counts shared through client, for nonces
// valid for lifetime.
func NewRedisCounts(client *redis.Client, prefix string, lifetime time.Duration) *RedisCounts {
	return &RedisCounts{client: client, prefix: prefix, ttl: lifetime + 15*time.Second,
		local: digest.NewLocalCounts(lifetime, digest.DefaultMaxCounts), timeout: CallTimeout}
}

// UseHealth makes Seen skip Redis while h says it is down (instead of
// waiting for each timeout) and tell h of failures.
func (c *RedisCounts) UseHealth(h *Health) { c.health = h }

// Seen implements digest.NonceCounts.
func (c *RedisCounts) Seen(nonce string, nc uint32, now time.Time) bool {
	if c.health != nil && !c.health.Up() {
		c.degraded.Store(now.UnixNano())
		return c.local.Seen(nonce, nc, now)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	n, err := seenScript.Run(ctx, c.client, []string{c.prefix + "nc:" + nonce}, nc, c.ttl.Milliseconds()).Int()
	if err != nil {
		c.degraded.Store(now.UnixNano())
		if c.health != nil {
			c.health.Fail(now)
		}
		return c.local.Seen(nonce, nc, now)
	}
	// Keep the local table in step, so a fallback does not forget recent counts.
	c.local.Seen(nonce, nc, now)
	return n == 1
}

// Degraded reports whether Seen fell back to the local table within the
// last minute before now.
func (c *RedisCounts) Degraded(now time.Time) bool {
	last := c.degraded.Load()
	return last != 0 && now.UnixNano()-last < int64(time.Minute)
}
