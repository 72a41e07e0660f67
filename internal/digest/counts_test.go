package digest

import (
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLocalCountsSeen(t *testing.T) {
	c := NewLocalCounts(time.Minute, 0)
	long := strings.Repeat("n", 100) // hashed key
	steps := []struct {
		nonce string
		nc    uint32
		at    time.Duration
		want  bool
	}{
		{"a", 1, 0, true},
		{"a", 1, 0, false},
		{"a", 0, 0, false},
		{"a", 2, 0, true},
		{"b", 1, 0, true}, // counts are per nonce
		{"a", 7, time.Second, true},
		{"a", 6, time.Second, false},
		{"a", 0xffffffff, time.Second, true},
		{"a", 0xffffffff, time.Second, false},
		{long, 1, 0, true},
		{long, 1, 0, false},
		{long[:99] + "m", 1, 0, true},
		// Entries outlive the nonce lifetime by the clock skew, then go.
		{"b", 1, time.Minute + clockSkew - time.Nanosecond, false},
		{"b", 1, time.Minute + clockSkew, true},
	}
	for i, s := range steps {
		if got := c.Seen(s.nonce, s.nc, testNow.Add(s.at)); got != s.want {
			t.Errorf("step %d: Seen(%.8q, %d, +%v) = %v, want %v", i, s.nonce, s.nc, s.at, got, s.want)
		}
	}
}

func TestLocalCountsBounded(t *testing.T) {
	const max = countShards * 4
	c := NewLocalCounts(time.Minute, max)
	for i := 0; i < 50*max; i++ {
		if !c.Seen(fmt.Sprint("nonce-", i), 1, testNow) {
			t.Fatalf("new nonce %d refused", i)
		}
		if n := c.Len(); n > max {
			t.Fatalf("after %d nonces Len = %d, want ≤ %d", i+1, n, max)
		}
	}
	// The newest are remembered, the oldest evicted (their replay passes).
	if c.Seen(fmt.Sprint("nonce-", 50*max-1), 1, testNow) {
		t.Error("newest nonce forgotten")
	}
	if !c.Seen("nonce-0", 1, testNow) {
		t.Error("oldest nonce still remembered in a full table")
	}
	for i := range c.shards {
		if s := &c.shards[i]; len(s.fifo) > s.max || len(s.m) != s.n {
			t.Errorf("shard %d: ring %d (max %d), map %d, n %d", i, len(s.fifo), s.max, len(s.m), s.n)
		}
	}
	// A shard drops its expired entries when next used.
	c.Seen("late", 1, testNow.Add(time.Hour))
	if s := &c.shards[maphash.String(c.seed, "late")&(countShards-1)]; s.n != 1 || len(s.m) != 1 {
		t.Errorf("an hour later the shard holds %d entries (map %d), want 1", s.n, len(s.m))
	}
}

// TestLocalCountsConcurrent: of many goroutines presenting the same nc for
// the same nonce, exactly one wins. Run with -race.
func TestLocalCountsConcurrent(t *testing.T) {
	c := NewLocalCounts(time.Minute, 1024)
	const workers, nonces = 8, 200
	var wins [nonces]atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < nonces; i++ {
				if c.Seen(fmt.Sprint("n", i), 1, testNow) {
					wins[i].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	for i := range wins {
		if n := wins[i].Load(); n != 1 {
			t.Errorf("nonce %d accepted %d times, want 1", i, n)
		}
	}
}
