package limits_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/stage/limits"
	"github.com/sipward/sipward/internal/stage/limits/limitstest"
)

func TestLocalConformance(t *testing.T) {
	limitstest.Run(t,
		func(t *testing.T, lease time.Duration) limits.Channels { return limits.NewLocalChannels(lease) },
		func(t *testing.T) limits.Rates { return limits.NewLocalRates(0) })
}

var (
	t0    = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ep7   = limits.Key{Kind: limits.Endpoint, ID: 7}
	acct3 = limits.Key{Kind: limits.Account, ID: 3}
)

func TestLocalRatesAllowAllocs(t *testing.T) {
	r := limits.NewLocalRates(0)
	ctx := context.Background()
	now := t0
	r.Allow(ctx, ep7, 1000, now) // the bucket exists from here on
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		if ok, _ := r.Allow(ctx, ep7, 1000, now); !ok {
			panic("refused")
		}
	})
	if allocs != 0 {
		t.Errorf("Allow: %v allocs/op, want 0", allocs)
	}
}

func TestLocalChannelsAllocs(t *testing.T) {
	c := limits.NewLocalChannels(0)
	ctx := context.Background()
	l := []limits.Limit{{Key: ep7, Max: 10}, {Key: acct3, Max: 100}}

	// InUse never allocates.
	if a := testing.AllocsPerRun(1000, func() { c.InUse(ctx, ep7) }); a != 0 {
		t.Errorf("InUse: %v allocs/op, want 0", a)
	}

	// Acquire+Release of seen keys with a seen callID.
	c.Acquire(ctx, l, "call", t0)
	c.Release(ctx, "call")
	if a := testing.AllocsPerRun(1000, func() {
		if d, err := c.Acquire(ctx, l, "call", t0); err != nil || !d.Granted() {
			panic(fmt.Sprint(d, err))
		}
		c.Release(ctx, "call")
	}); a != 0 {
		t.Errorf("Acquire+Release, same call id: %v allocs/op, want 0", a)
	}

	// Acquire+Release of seen keys, a new callID each time (strings made
	// beforehand, as the parser makes them): the holds map reuses its
	// slots once it has held as many calls.
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprintf("call-%d@example.com", i)
	}
	for _, id := range ids[:10] {
		c.Acquire(ctx, l, id, t0)
	}
	for _, id := range ids[:10] {
		c.Release(ctx, id)
	}
	i := 0
	if a := testing.AllocsPerRun(len(ids)-1, func() {
		id := ids[i]
		i++
		if d, err := c.Acquire(ctx, l, id, t0); err != nil || !d.Granted() {
			panic(fmt.Sprint(d, err))
		}
		c.Release(ctx, id)
	}); a != 0 {
		t.Errorf("Acquire+Release, new call ids: %v allocs/op, want 0", a)
	}
}

// TestLocalRatesBounded: idle buckets are dropped lazily, so the map stays
// bounded by the keys active within the idle time.
func TestLocalRatesBounded(t *testing.T) {
	r := limits.NewLocalRates(time.Second)
	ctx := context.Background()
	now := t0
	for i := range 100_000 {
		now = now.Add(100 * time.Microsecond) // 10k new keys per second
		r.Allow(ctx, limits.Key{Kind: limits.Endpoint, ID: int64(i)}, 5, now)
	}
	// Each shard sweeps at most once per second of idleness, so at most
	// about two seconds' worth of keys survive: 20k.
	if n := r.Len(); n > 25_000 {
		t.Errorf("%d buckets held after 100k keys over 10s with 1s idle, want <= 25000", n)
	}
}

// TestLocalChannelsReapDropsZeroKeys: keys back at zero leave memory on Reap.
func TestLocalChannelsReapDropsZeroKeys(t *testing.T) {
	c := limits.NewLocalChannels(time.Minute)
	ctx := context.Background()
	for i := range 1000 {
		id := fmt.Sprint("c", i)
		c.Acquire(ctx, []limits.Limit{{Key: limits.Key{Kind: limits.SIPUser, ID: int64(i)}}}, id, t0)
		if i%2 == 0 {
			c.Release(ctx, id)
		}
	}
	if n := c.Holds(); n != 500 {
		t.Errorf("Holds = %d, want 500", n)
	}
	if n, _ := c.Reap(ctx, t0.Add(time.Minute)); n != 500 {
		t.Errorf("Reap freed %d, want 500", n)
	}
	if n := c.Holds(); n != 0 {
		t.Errorf("Holds after Reap = %d, want 0", n)
	}
	if s := c.Snapshot(); len(s) != 0 {
		t.Errorf("Snapshot after Reap = %v, want empty", s)
	}
}

func BenchmarkLocalRatesAllow(b *testing.B) {
	r := limits.NewLocalRates(0)
	ctx := context.Background()
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		r.Allow(ctx, ep7, 1_000_000, now)
	}
}

func BenchmarkLocalRatesAllowParallel(b *testing.B) {
	r := limits.NewLocalRates(0)
	ctx := context.Background()
	b.ReportAllocs()
	// 1024 endpoints, each at a rate it never reaches: steady state.
	var seq atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		k := limits.Key{Kind: limits.Endpoint}
		now := t0.Add(time.Duration(seq.Add(1)) * time.Hour)
		for pb.Next() {
			k.ID = (k.ID + 1) % 1024
			now = now.Add(time.Microsecond)
			r.Allow(ctx, k, 1_000_000, now)
		}
	})
}

func BenchmarkLocalChannelsAcquireRelease(b *testing.B) {
	c := limits.NewLocalChannels(0)
	ctx := context.Background()
	l := []limits.Limit{{Key: ep7, Max: 1000}, {Key: acct3, Max: 1000}}
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("call-%d@example.com", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := ids[i%len(ids)]
		i++
		c.Acquire(ctx, l, id, t0)
		c.Release(ctx, id)
	}
}

func BenchmarkLocalChannelsAcquireReleaseParallel(b *testing.B) {
	c := limits.NewLocalChannels(0)
	ctx := context.Background()
	l := []limits.Limit{{Key: ep7}, {Key: acct3}}
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = fmt.Sprintf("call-%d@example.com", i)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := seq.Add(1) << 12 // each goroutine its own run of call ids
		for pb.Next() {
			id := ids[i%int64(len(ids))]
			i++
			c.Acquire(ctx, l, id, t0)
			c.Release(ctx, id)
		}
	})
}
