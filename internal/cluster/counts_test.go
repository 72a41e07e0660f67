package cluster

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisCountsAcrossNodes: a nonce count accepted on one node is a
// replay on another; a higher count is fresh everywhere.
func TestRedisCountsAcrossNodes(t *testing.T) {
	c := newClient(t)
	prefix := newPrefix(t, c)
	a := NewRedisCounts(c, prefix, time.Minute)
	b := NewRedisCounts(c, prefix, time.Minute)
	for _, tt := range []struct {
		node *RedisCounts
		nc   uint32
		want bool
	}{{a, 1, true}, {b, 1, false}, {a, 1, false}, {b, 2, true}, {a, 2, false}, {a, 5, true}, {b, 3, false}} {
		if got := tt.node.Seen("nonce-x", tt.nc, t0); got != tt.want {
			t.Errorf("nc %d: fresh = %v, want %v", tt.nc, got, tt.want)
		}
	}
	if !a.Seen("nonce-y", 1, t0) {
		t.Error("another nonce's first count is not fresh")
	}
	if ttl := c.PTTL(t.Context(), prefix+"nc:nonce-x").Val(); ttl <= 0 || ttl > time.Minute+15*time.Second {
		t.Errorf("nonce key TTL %v, want about the nonce lifetime", ttl)
	}
}

// TestRedisCountsFallBackWhenRedisIsDown: authentication keeps working with
// per-node replay protection, and the fallback is reported.
func TestRedisCountsFallBackWhenRedisIsDown(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer c.Close()
	n := NewRedisCounts(c, "x:", time.Minute)
	if !n.Seen("nonce", 1, t0) {
		t.Error("first count refused with Redis down")
	}
	if n.Seen("nonce", 1, t0) {
		t.Error("a replay on the same node passed with Redis down")
	}
	if !n.Degraded(t0) || n.Degraded(t0.Add(2*time.Minute)) {
		t.Error("Degraded does not report the recent fallback")
	}
}
