package cluster

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/signin"
)

var _ signin.Revocations = (*RedisRevocations)(nil)

// RedisRevocations is signin.Revocations in Redis: a session signed out on one
// node is refused on every node that uses the same Redis and prefix. A
// revoked session is the key <prefix>revoked:<session id>, set with a TTL of
// the session's remaining life.
//
// Revoked is one round trip (EXISTS) a signed-in page; Revoke one (SET).
// Revocations are also kept in a signin.LocalRevocations, which answers first
// (a session signed out here needs no round trip) and alone whenever Redis
// does not answer within CallTimeout (and for RetryAfter after that): pages
// keep working, but a session signed out on another node is accepted here
// until Redis is back. Degraded says so. Safe for concurrent use.
type RedisRevocations struct {
	client *redis.Client
	prefix string
	local  *signin.LocalRevocations
	fb     fallback
}

// NewRedisRevocations returns revocations on client whose keys start with
// prefix ("" means DefaultPrefix).
func NewRedisRevocations(client *redis.Client, prefix string) *RedisRevocations {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &RedisRevocations{client: client, prefix: prefix, local: signin.NewLocalRevocations()}
}

func (v *RedisRevocations) key(sid string) string { return v.prefix + "revoked:" + sid }

// Revoke implements signin.Revocations.
func (v *RedisRevocations) Revoke(sid string, until, now time.Time) {
	v.local.Revoke(sid, until, now)
	ttl := until.Sub(now)
	if ttl <= 0 {
		return
	}
	ctx, cancel, ok := v.fb.try(now)
	if !ok {
		return
	}
	defer cancel()
	if err := v.client.Set(ctx, v.key(sid), 1, max(ttl, time.Millisecond)).Err(); err != nil {
		v.fb.failed(now)
	}
}

// Revoked implements signin.Revocations.
func (v *RedisRevocations) Revoked(sid string, now time.Time) bool {
	if v.local.Revoked(sid, now) {
		return true
	}
	ctx, cancel, ok := v.fb.try(now)
	if !ok {
		return false
	}
	defer cancel()
	n, err := v.client.Exists(ctx, v.key(sid)).Result()
	if err != nil {
		v.fb.failed(now)
		return false
	}
	return n > 0
}

// Degraded reports whether revocations fell back to a node's own within
// DegradedFor before now.
func (v *RedisRevocations) Degraded(now time.Time) bool { return v.fb.degraded(now) }

// UseHealth makes the node's Health decide when Redis is skipped (while it
// says Redis is down, instead of RetryAfter) and tells it of failures, so
// that /healthz reports them.
func (v *RedisRevocations) UseHealth(h *Health) { v.fb.health = h }
