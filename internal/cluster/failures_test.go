package cluster

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/stage/firewall"
)

// deadClient is a client of a Redis that is not there.
func deadClient(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond,
		DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRedisFailuresAcrossNodes: two nodes count one source's failures
// together; the count restarts when it reaches the threshold and after its
// window, and Forgive forgets it.
func TestRedisFailuresAcrossNodes(t *testing.T) {
	c1, c2 := newClient(t), newClient(t)
	prefix := newPrefix(t, c1)
	nodes := []*RedisFailures{NewRedisFailures(c1, prefix), NewRedisFailures(c2, prefix)}
	src := netip.MustParseAddr("203.0.113.7")
	add := func(i int, now time.Time) int {
		t.Helper()
		n, err := nodes[i%2].Add(src, firewall.AuthFailure, 4, time.Minute, now)
		if err != nil {
			t.Fatalf("Add: %v", err)
		}
		return n
	}
	for i, want := range []int{1, 2, 3, 4, 1, 2} {
		if got := add(i, t0.Add(time.Duration(i)*time.Second)); got != want {
			t.Fatalf("failure %d: count %d, want %d", i+1, got, want)
		}
	}
	key := prefix + "fail:auth_failure:203.0.113.7"
	if ttl := c1.PTTL(t.Context(), key).Val(); ttl <= 0 || ttl > time.Minute+countSlack {
		t.Errorf("count TTL %v, want within (0, window+slack]", ttl)
	}
	if got := add(0, t0.Add(4*time.Second+time.Minute)); got != 1 {
		t.Errorf("a failure a window after the count began: %d, want 1", got)
	}
	if n, _ := nodes[1].Add(src, firewall.UnknownSourceInvite, 4, time.Minute, t0); n != 1 {
		t.Errorf("another kind's first count: %d, want 1", n)
	}
	if err := nodes[1].Forgive(src, firewall.UnknownSourceInvite, t0); err != nil {
		t.Fatal(err)
	}
	if n, _ := nodes[0].Add(src, firewall.UnknownSourceInvite, 4, time.Minute, t0); n != 1 {
		t.Errorf("count after Forgive on the other node: %d, want 1", n)
	}
	if nodes[0].Degraded(t0) {
		t.Error("Degraded with Redis up")
	}
}

// TestRedisFailuresBurst: of concurrent failures on two nodes, exactly one
// in each threshold's worth reaches the threshold.
func TestRedisFailuresBurst(t *testing.T) {
	c1, c2 := newClient(t), newClient(t)
	prefix := newPrefix(t, c1)
	nodes := []*RedisFailures{NewRedisFailures(c1, prefix), NewRedisFailures(c2, prefix)}
	src := netip.MustParseAddr("2001:db8::7")
	var reached atomic.Int32
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			n, err := nodes[i%2].Add(src, firewall.AuthFailure, 10, time.Minute, t0)
			if err != nil {
				t.Errorf("Add: %v", err)
			}
			if n == 10 {
				reached.Add(1)
			}
		})
	}
	wg.Wait()
	if got := reached.Load(); got != 10 {
		t.Errorf("%d of 100 failures reached a threshold of 10, want 10", got)
	}
}

// TestRedisFailuresFirewalls: two firewalls sharing RedisFailures ban a
// source at the threshold in total, whichever nodes the failures reach.
func TestRedisFailuresFirewalls(t *testing.T) {
	c1, c2 := newClient(t), newClient(t)
	prefix := newPrefix(t, c1)
	var fws []*firewall.Firewall
	for _, c := range []*redis.Client{c1, c2} {
		fw, err := firewall.New(firewall.Config{Threshold: 5, Shared: NewRedisFailures(c, prefix)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fw.Close(context.Background()) })
		fws = append(fws, fw)
	}
	src := netip.MustParseAddr("203.0.113.8")
	for i := range 5 {
		banned := fws[i%2].Detector().Failure(src, firewall.AuthFailure, t0)
		if banned != (i == 4) {
			t.Fatalf("failure %d (node %d): banned %v", i+1, i%2, banned)
		}
	}
	if !fws[0].Banned(src, t0) {
		t.Error("the node that took the 5th failure did not ban")
	}
}

// TestRedisFailuresDown: with Redis away, Add fails within CallTimeout,
// then at once for RetryAfter; Degraded reports it; a firewall on it still
// bans at its own count.
func TestRedisFailuresDown(t *testing.T) {
	r := NewRedisFailures(deadClient(t), "")
	src := netip.MustParseAddr("203.0.113.9")
	if _, err := r.Add(src, firewall.AuthFailure, 3, time.Minute, t0); err == nil || errors.Is(err, ErrSkipped) {
		t.Fatalf("Add with Redis down: %v, want the connection error", err)
	}
	start := time.Now()
	if _, err := r.Add(src, firewall.AuthFailure, 3, time.Minute, t0.Add(RetryAfter/2)); !errors.Is(err, ErrSkipped) {
		t.Errorf("Add right after a failure: %v, want ErrSkipped", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("a skipped Add took %v", d)
	}
	if !r.Degraded(t0) || r.Degraded(t0.Add(DegradedFor)) {
		t.Error("Degraded does not report the recent fallback")
	}
	fw, err := firewall.New(firewall.Config{Threshold: 3, Shared: r})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close(context.Background())
	for i := range 3 {
		if banned := fw.Detector().Failure(src, firewall.AuthFailure, t0.Add(time.Duration(i)*time.Second)); banned != (i == 2) {
			t.Fatalf("failure %d with Redis down: banned %v", i+1, banned)
		}
	}
}

// TestRedisFailuresUseHealth: with the node's Health, a failed call marks
// Redis down (so /healthz says so) and Redis is skipped while it is.
func TestRedisFailuresUseHealth(t *testing.T) {
	c := deadClient(t)
	h := NewHealth(c)
	r := NewRedisFailures(c, "")
	r.UseHealth(h)
	src := netip.MustParseAddr("203.0.113.30")
	if _, err := r.Add(src, firewall.AuthFailure, 3, time.Minute, t0); err == nil || errors.Is(err, ErrSkipped) {
		t.Fatalf("Add with Redis down: %v, want the connection error", err)
	}
	if h.Up() {
		t.Error("a failed Add did not mark Redis down")
	}
	if _, err := r.Add(src, firewall.AuthFailure, 3, time.Minute, t0.Add(time.Hour)); !errors.Is(err, ErrSkipped) {
		t.Errorf("Add while Health says down: %v, want ErrSkipped", err)
	}
	if !r.Degraded(t0.Add(time.Hour)) {
		t.Error("Degraded does not report the skip")
	}
}
