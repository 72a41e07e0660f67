package cluster

import (
	"testing"
	"time"

	"github.com/sipward/sipward/internal/signin"
)

var testPolicy = signin.LockoutPolicy{PerUser: 3, PerAddr: 5, Window: 15 * time.Minute, LockFor: 10 * time.Minute}

// TestRedisLockoutsAcrossNodes: failed sign-ins spread over two nodes lock
// a username out at the policy's count in total, on both nodes; a success
// forgets the username's count; an address's count spans usernames.
func TestRedisLockoutsAcrossNodes(t *testing.T) {
	c1, c2 := newClient(t), newClient(t)
	prefix := newPrefix(t, c1)
	a, b := NewRedisLockouts(c1, prefix, testPolicy), NewRedisLockouts(c2, prefix, testPolicy)
	const ip = "198.51.100.4"
	a.Fail("alice", ip, t0)
	b.Fail("alice", ip, t0.Add(time.Second))
	if w := a.Locked("alice", ip, t0.Add(time.Second)); w != 0 {
		t.Fatalf("locked after 2 failures (limit 3): %v", w)
	}
	a.Fail("alice", ip, t0.Add(2*time.Second))
	now := t0.Add(3 * time.Second)
	for _, n := range []*RedisLockouts{a, b} {
		if w := n.Locked("alice", ip, now); w <= 9*time.Minute || w > 10*time.Minute {
			t.Errorf("wait after 3 failures over two nodes: %v, want about 10m", w)
		}
	}
	if w := b.Locked("alice", "198.51.100.5", now); w != 0 {
		t.Errorf("alice from another address locked: %v", w)
	}
	if w := b.Locked("alice", ip, t0.Add(2*time.Second+10*time.Minute)); w != 0 {
		t.Errorf("still locked when the lock ended: %v", w)
	}

	// bob (from another address): two failures, a success, one more
	// failure: not locked.
	const ip2 = "198.51.100.6"
	b.Fail("bob", ip2, now)
	a.Fail("bob", ip2, now)
	a.Succeed("bob", ip2, now)
	b.Fail("bob", ip2, now)
	if w := a.Locked("bob", ip2, now); w != 0 {
		t.Errorf("bob locked although a success came between his failures: %v", w)
	}
	// The address has alice's 3 failures; carol's 2 more reach its limit of
	// 5, which locks out any username from it.
	a.Fail("carol", ip, now)
	if w := b.Locked("dave", ip, now); w != 0 {
		t.Errorf("the address is locked after 4 failures (limit 5): %v", w)
	}
	b.Fail("carol", ip, now)
	if w := a.Locked("dave", ip, now); w == 0 {
		t.Error("the address is not locked after 5 failures of any username (limit 5)")
	}
	for _, k := range []string{prefix + "signin:u:" + ip + "|alice", prefix + "signin:a:" + ip} {
		if ttl := c1.PTTL(t.Context(), k).Val(); ttl <= 0 || ttl > 16*time.Minute {
			t.Errorf("%s: TTL %v, want within (0, window+slack]", k, ttl)
		}
	}
	if a.Degraded(now) || b.Degraded(now) {
		t.Error("Degraded with Redis up")
	}
}

// TestRedisLockoutsDown: with Redis away, sign-in failures are counted and
// lock out on this node, and Degraded reports it.
func TestRedisLockoutsDown(t *testing.T) {
	l := NewRedisLockouts(deadClient(t), "", testPolicy)
	now := t0
	for range 3 {
		now = now.Add(2 * RetryAfter) // each time past the retry pause: Redis is tried, and fails
		l.Fail("alice", "198.51.100.4", now)
	}
	if w := l.Locked("alice", "198.51.100.4", now); w != 10*time.Minute {
		t.Errorf("wait after 3 failures with Redis down: %v, want 10m", w)
	}
	if !l.Degraded(now) {
		t.Error("Degraded does not report the fallback")
	}
}

// TestRedisRevocationsAcrossNodes: a session revoked on one node is refused
// on another until it expires; Redis keeps it no longer than that.
func TestRedisRevocationsAcrossNodes(t *testing.T) {
	c1, c2 := newClient(t), newClient(t)
	prefix := newPrefix(t, c1)
	a, b := NewRedisRevocations(c1, prefix), NewRedisRevocations(c2, prefix)
	until := t0.Add(time.Hour)
	a.Revoke("sid-1", until, t0)
	if !b.Revoked("sid-1", t0.Add(time.Minute)) {
		t.Error("a session revoked on node A is not revoked on node B")
	}
	if b.Revoked("sid-2", t0) {
		t.Error("a session never revoked is revoked")
	}
	if ttl := c1.PTTL(t.Context(), prefix+"revoked:sid-1").Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("revocation TTL %v, want the session's remaining hour", ttl)
	}
	a.Revoke("sid-3", t0, t0) // expired already: nothing to keep
	if n := c1.Exists(t.Context(), prefix+"revoked:sid-3").Val(); n != 0 {
		t.Error("an expired session's revocation was stored")
	}
	if a.Degraded(t0) || b.Degraded(t0) {
		t.Error("Degraded with Redis up")
	}
}

// TestRedisRevocationsDown: with Redis away, a session signed out here is
// still refused here, and Degraded reports the fallback.
func TestRedisRevocationsDown(t *testing.T) {
	v := NewRedisRevocations(deadClient(t), "")
	v.Revoke("sid-1", t0.Add(time.Hour), t0)
	if !v.Revoked("sid-1", t0.Add(2*RetryAfter)) {
		t.Error("a session signed out on this node is accepted with Redis down")
	}
	if v.Revoked("sid-2", t0.Add(4*RetryAfter)) {
		t.Error("a session never revoked is refused with Redis down")
	}
	if !v.Degraded(t0.Add(4 * RetryAfter)) {
		t.Error("Degraded does not report the fallback")
	}
}
