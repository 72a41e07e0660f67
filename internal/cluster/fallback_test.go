package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/stage/limits"
	"github.com/sipward/sipward/internal/stage/limits/limitstest"
)

// TestFallbackConformance: with Redis up, the fallbacks are the Redis
// implementations under the same contract.
func TestFallbackConformance(t *testing.T) {
	c := newClient(t)
	limitstest.Run(t,
		func(t *testing.T, lease time.Duration) limits.Channels {
			return NewFallbackChannels(NewRedisChannels(c, newPrefix(t, c), lease), NewHealth(c))
		},
		func(t *testing.T) limits.Rates {
			return NewFallbackRates(NewRedisRates(c, newPrefix(t, c)), NewHealth(c))
		})
}

// ownRedis starts a redis-server of the test's own on a free port (the
// machine's shared one is never killed) and returns its address and a
// function that kills it. It skips when redis-server is not installed,
// outside CI.
func ownRedis(t *testing.T) (addr string, kill func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not installed in CI")
		}
		t.Skip("redis-server not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	kill = func() {
		cmd.Process.Kill()
		<-done
	}
	t.Cleanup(kill)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, kill
}

// TestFallbackWhenRedisDies: calls keep getting channels (node-local, the
// limit per node) while Redis is away; when it is back the local holds are
// handed to Redis, so the cluster counts them, and released from there.
func TestFallbackWhenRedisDies(t *testing.T) {
	addr, kill := ownRedis(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	h := NewHealth(c)
	ch := NewFallbackChannels(NewRedisChannels(c, "t:", time.Minute), h)
	k := limits.Key{Kind: limits.Endpoint, ID: 1}
	lim := []limits.Limit{{Key: k, Max: 2}}
	for _, id := range []string{"a", "e"} {
		if d, err := ch.Acquire(ctx, lim, id, t0); err != nil || !d.Granted() {
			t.Fatalf("Acquire %s with Redis up: %v %v", id, d, err)
		}
	}
	kill()
	// The first call after the death finds out; it still gets its channel.
	if d, err := ch.Acquire(ctx, lim, "b", t0); err != nil || !d.Granted() {
		t.Fatalf("Acquire as Redis dies: %v %v", d, err)
	}
	if h.Up() || !h.Degraded(t0) {
		t.Fatal("Redis not reported down after a failed Acquire")
	}
	// Node-local: the limit of 2 holds on this node's own calls.
	if d, err := ch.Acquire(ctx, lim, "c", t0); err != nil || !d.Granted() {
		t.Fatalf("second local Acquire: %v %v", d, err)
	}
	if d, err := ch.Acquire(ctx, lim, "d", t0); err != nil || d.Granted() {
		t.Fatalf("third local Acquire over a limit of 2: %v %v, want denied", d, err)
	}
	if err := ch.Release(ctx, "c"); err != nil {
		t.Fatalf("Release of a local hold: %v", err)
	}
	if err := ch.Release(ctx, "a"); err != nil {
		t.Errorf("Release of a Redis hold with Redis down: %v (it is freed when Redis is back)", err)
	}
	if ch.Ended() != 1 {
		t.Errorf("calls ended while Redis was away: %d, want 1 (a)", ch.Ended())
	}
	if ch.Local() != 1 {
		t.Fatalf("local holds: %d, want 1 (b)", ch.Local())
	}

	// Redis comes back (empty: it kept nothing): the ping reconciles.
	restartRedis(t, addr)
	h.check(ctx, t0.Add(time.Second))
	if !h.Up() {
		t.Fatal("Redis not back up after a ping answered")
	}
	if ch.Local() != 0 || ch.Ended() != 0 {
		t.Fatalf("after reconcile: %d local holds, %d ended calls to free; want 0 and 0", ch.Local(), ch.Ended())
	}
	if n, err := ch.InUse(ctx, k); err != nil || n != 1 {
		t.Fatalf("InUse after reconcile: %d %v, want 1 (b, now in Redis)", n, err)
	}
	// e's hold went with the old Redis: its renewal finds it gone and
	// records it again (a was released meanwhile: not restored).
	now := t0.Add(2 * time.Second)
	// Renewed in one pipeline (the new Redis has to be taught the script):
	// b's hold is there, e's is not.
	if oks, err := ch.RefreshMany(ctx, []string{"e", "b"}, now); err != nil || len(oks) != 2 || oks[0] || !oks[1] {
		t.Fatalf("RefreshMany(e, b) on the new Redis: %v %v, want [false true]", oks, err)
	}
	if ok, err := ch.Refresh(ctx, "e", now); ok || err != nil {
		t.Fatalf("Refresh of a hold the new Redis never had: %v %v, want false", ok, err)
	}
	if ok, err := ch.Restore(ctx, "e", now); !ok || err != nil {
		t.Fatalf("Restore of a live call's lost hold: %v %v", ok, err)
	}
	if ok, _ := ch.Restore(ctx, "a", now); ok {
		t.Error("Restore of a released call's hold")
	}
	if n, _ := ch.InUse(ctx, k); n != 2 {
		t.Fatalf("InUse after restore: %d, want 2 (b and e)", n)
	}
	for _, id := range []string{"b", "e"} {
		if err := ch.Release(ctx, id); err != nil {
			t.Fatalf("Release %s: %v", id, err)
		}
	}
	if n, _ := ch.InUse(ctx, k); n != 0 {
		t.Fatalf("InUse after release: %d", n)
	}
}

// restartRedis starts a redis-server again on addr's port.
func restartRedis(t *testing.T, addr string) {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not come back", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFallbackRatesWhenRedisIsDown: CPS is enforced per node while Redis
// is away.
func TestFallbackRatesWhenRedisIsDown(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer c.Close()
	h := NewHealth(c)
	r := NewFallbackRates(NewRedisRates(c, "x:"), h)
	k := limits.Key{Kind: limits.Endpoint, ID: 1}
	ctx := context.Background()
	for i := range 2 {
		if ok, err := r.Allow(ctx, k, 2, t0); !ok || err != nil {
			t.Fatalf("call %d within 2 CPS: %v %v", i, ok, err)
		}
	}
	if ok, _ := r.Allow(ctx, k, 2, t0); ok {
		t.Error("third call in the same instant allowed over 2 CPS")
	}
	if h.Up() {
		t.Error("Redis not reported down")
	}
}

// TestReleaseWhileRedisIsAwayFreesWhenBack: a call that ends while Redis
// is away does not keep its channel for the rest of its lease: the channel
// is free in Redis as soon as Redis answers again (here a Redis that kept
// its data: a network cut, not a restart).
func TestReleaseWhileRedisIsAwayFreesWhenBack(t *testing.T) {
	c := newClient(t)
	prefix := newPrefix(t, c)
	ctx := context.Background()
	h := NewHealth(c)
	ch := NewFallbackChannels(NewRedisChannels(c, prefix, time.Hour), h)
	k := limits.Key{Kind: limits.Endpoint, ID: 9}
	if d, err := ch.Acquire(ctx, []limits.Limit{{Key: k, Max: 1}}, "x", t0); err != nil || !d.Granted() {
		t.Fatalf("Acquire: %v %v", d, err)
	}
	h.Fail(t0) // Redis unreachable (the cut)
	if err := ch.Release(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	other := NewRedisChannels(c, prefix, time.Hour) // another node's view
	if n, _ := other.InUse(ctx, k); n != 1 {
		t.Fatalf("in use during the cut: %d, want 1 (not yet freed)", n)
	}
	h.check(ctx, t0.Add(time.Second)) // the ping answers
	if n, _ := other.InUse(ctx, k); n != 0 {
		t.Errorf("in use once Redis answered again: %d, want 0", n)
	}
}

// TestRefreshManyInBatches: more holds than a pipeline batch are renewed,
// and an unknown one is not.
func TestRefreshManyInBatches(t *testing.T) {
	c := newClient(t)
	ch := NewRedisChannels(c, newPrefix(t, c), time.Minute)
	ctx := context.Background()
	ids := make([]string, refreshBatch+3)
	for i := range ids {
		ids[i] = fmt.Sprintf("call-%d", i)
		if _, err := ch.Acquire(ctx, []limits.Limit{{Key: limits.Key{Kind: limits.Endpoint, ID: 1}}}, ids[i], t0); err != nil {
			t.Fatal(err)
		}
	}
	ids = append(ids, "unknown")
	oks, err := ch.RefreshMany(ctx, ids, t0.Add(50*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for i, ok := range oks[:len(oks)-1] {
		if !ok {
			t.Fatalf("hold %d not renewed", i)
		}
	}
	if oks[len(oks)-1] {
		t.Error("an unknown hold renewed")
	}
	// Renewed: still held past the first lease.
	if n, _ := ch.InUse(ctx, limits.Key{Kind: limits.Endpoint, ID: 1}); n != refreshBatch+3 {
		t.Errorf("in use: %d", n)
	}
	if got, _ := ch.Reap(ctx, t0.Add(90*time.Second)); got != 0 {
		t.Errorf("reaped %d renewed holds before their new lease ended", got)
	}
}
