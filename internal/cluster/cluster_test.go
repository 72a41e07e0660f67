package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/stage/limits"
	"github.com/sipward/sipward/internal/stage/limits/limitstest"
)

// redisEnv names the Redis address the tests use, e.g. 127.0.0.1:6379.
// Unset: the Redis tests skip.
const redisEnv = "SIPWARD_TEST_REDIS"

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// newClient connects to the test Redis or skips the test.
func newClient(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv(redisEnv)
	if addr == "" {
		t.Skipf("%s not set: Redis not tested", redisEnv)
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("%s=%s: %v", redisEnv, addr, err)
	}
	return c
}

// newPrefix returns a key prefix of the test's own and deletes every key
// under it at cleanup.
func newPrefix(t testing.TB, c *redis.Client) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	prefix := "sipward-test:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return prefix
}

func TestRedisConformance(t *testing.T) {
	c := newClient(t)
	limitstest.Run(t,
		func(t *testing.T, lease time.Duration) limits.Channels {
			return NewRedisChannels(c, newPrefix(t, c), lease)
		},
		func(t *testing.T) limits.Rates { return NewRedisRates(c, newPrefix(t, c)) })
}

// TestAcrossNodes: two nodes (two clients, two RedisChannels) on one prefix
// share a max of 2: of three concurrent Acquires, one is denied; and a
// call acquired on one node is released by the other.
func TestAcrossNodes(t *testing.T) {
	c1, c2 := newClient(t), newClient(t)
	prefix := newPrefix(t, c1)
	nodes := []limits.Channels{NewRedisChannels(c1, prefix, time.Hour), NewRedisChannels(c2, prefix, time.Hour)}
	ep := limits.Key{Kind: limits.Endpoint, ID: 7}
	l := []limits.Limit{{Key: ep, Max: 2}, {Key: limits.Key{Kind: limits.Account, ID: 3}}}
	ctx := context.Background()

	for round := range 20 {
		var granted atomic.Int32
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				d, err := nodes[i%2].Acquire(ctx, l, fmt.Sprintf("r%d-c%d", round, i), t0)
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				if d.Granted() {
					granted.Add(1)
				}
			})
		}
		wg.Wait()
		if g := granted.Load(); g != 2 {
			t.Fatalf("round %d: %d of 3 granted across two nodes, want 2", round, g)
		}
		for i := range 3 { // released by the other node
			if err := nodes[(i+1)%2].Release(ctx, fmt.Sprintf("r%d-c%d", round, i)); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := nodes[0].InUse(ctx, ep); err != nil || n != 0 {
			t.Fatalf("round %d: InUse after release = %d, %v; want 0", round, n, err)
		}
	}
	// CPS is shared too.
	r1, r2 := NewRedisRates(c1, prefix), NewRedisRates(c2, prefix)
	allowed := 0
	for i := range 10 {
		r := r1
		if i%2 == 1 {
			r = r2
		}
		ok, err := r.Allow(ctx, ep, 4, t0)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			allowed++
		}
	}
	if allowed != 4 {
		t.Errorf("CPS 4 over two nodes: %d allowed, want 4", allowed)
	}
}

// TestRedisKeysExpire: every key the implementation writes has a TTL, so
// state of a vanished node cannot stay forever.
func TestRedisKeysExpire(t *testing.T) {
	c := newClient(t)
	prefix := newPrefix(t, c)
	ctx := context.Background()
	ch := NewRedisChannels(c, prefix, time.Minute)
	if _, err := ch.Acquire(ctx, []limits.Limit{{Key: limits.Key{Kind: limits.SIPUser, ID: 1}, Max: 1}, {Key: limits.Key{Kind: limits.Account, ID: 1}}}, "call", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRedisRates(c, prefix).Allow(ctx, limits.Key{Kind: limits.SIPUser, ID: 1}, 5, t0); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 5 { // hold, index, 2 channel keys, 1 bucket
		t.Errorf("keys %v, want 5", keys)
	}
	for _, k := range keys {
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > time.Minute+GCMargin {
			t.Errorf("%s: TTL %v, want within (0, lease+GCMargin]", k, ttl)
		}
	}
	if err := ch.Release(ctx, "call"); err != nil {
		t.Fatal(err)
	}
	left, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 { // only the CPS bucket
		t.Errorf("keys after Release: %v, want only the CPS bucket", left)
	}
}

// TestRedisDown: a dead Redis is an error, wrapped with the package prefix.
func TestRedisDown(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond, DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	defer c.Close()
	ctx := context.Background()
	ch := NewRedisChannels(c, "", 0)
	k := limits.Key{Kind: limits.Endpoint, ID: 1}
	if _, err := ch.Acquire(ctx, []limits.Limit{{Key: k, Max: 1}}, "x", t0); err == nil {
		t.Error("Acquire: no error with Redis down")
	}
	if err := ch.Release(ctx, "x"); err == nil {
		t.Error("Release: no error with Redis down")
	}
	if _, err := ch.InUse(ctx, k); err == nil {
		t.Error("InUse: no error with Redis down")
	}
	if _, err := ch.All(ctx); err == nil {
		t.Error("All: no error with Redis down")
	}
	if _, err := NewRedisRates(c, "").Allow(ctx, k, 5, t0); err == nil {
		t.Error("Allow: no error with Redis down")
	}
}

func TestSuffix(t *testing.T) {
	for _, k := range []limits.Key{{Kind: limits.Endpoint, ID: 7}, {Kind: limits.SIPUser, ID: -1}, {Kind: limits.Account, ID: 1 << 62}} {
		got, ok := parseSuffix(suffix(k))
		if !ok || got != k {
			t.Errorf("parseSuffix(suffix(%v)) = %v, %v", k, got, ok)
		}
	}
	for _, s := range []string{"", "endpoint", "endpoint:", "bogus:1", "account:x"} {
		if _, ok := parseSuffix(s); ok {
			t.Errorf("parseSuffix(%q) ok", s)
		}
	}
}

func BenchmarkRedisAllow(b *testing.B) {
	c := newClient(b)
	r := NewRedisRates(c, newPrefix(b, c))
	ctx := context.Background()
	k := limits.Key{Kind: limits.Endpoint, ID: 7}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		if _, err := r.Allow(ctx, k, 1_000_000, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedisAcquireRelease(b *testing.B) {
	c := newClient(b)
	ch := NewRedisChannels(c, newPrefix(b, c), 0)
	ctx := context.Background()
	l := []limits.Limit{{Key: limits.Key{Kind: limits.Endpoint, ID: 7}, Max: 1000}, {Key: limits.Key{Kind: limits.Account, ID: 3}, Max: 1000}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := "call-" + fmt.Sprint(i)
		i++
		if _, err := ch.Acquire(ctx, l, id, t0); err != nil {
			b.Fatal(err)
		}
		if err := ch.Release(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
