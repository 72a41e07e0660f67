package firewall

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeShared is SharedCounts in memory, shared by the Firewalls of a test
// as Redis is by nodes: the rule of cluster.RedisFailures (a window
// anchored at the first failure, restarted when it reaches threshold).
type fakeShared struct {
	mu      sync.Mutex
	m       map[trackKey]*fakeCount
	down    atomic.Bool
	adds    atomic.Int32
	forgave atomic.Int32
}

type fakeCount struct {
	start time.Time
	n     int
}

var errDown = errors.New("shared store down")

func newFakeShared() *fakeShared { return &fakeShared{m: map[trackKey]*fakeCount{}} }

func (s *fakeShared) Add(addr netip.Addr, kind Kind, threshold int, window time.Duration, now time.Time) (int, error) {
	s.adds.Add(1)
	if s.down.Load() {
		return 0, errDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := trackKey{addr, kind}
	c := s.m[k]
	if c == nil || now.Sub(c.start) >= window {
		c = &fakeCount{start: now}
		s.m[k] = c
	}
	c.n++
	n := c.n
	if n >= threshold {
		delete(s.m, k)
	}
	return n, nil
}

func (s *fakeShared) Forgive(addr netip.Addr, kind Kind, _ time.Time) error {
	if s.down.Load() {
		return errDown
	}
	s.forgave.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, trackKey{addr, kind})
	return nil
}

// twoNodes returns two firewalls counting in one fakeShared.
func twoNodes(t *testing.T, cfg Config) (*Firewall, *Firewall, *fakeShared) {
	t.Helper()
	sh := newFakeShared()
	cfg.Shared = sh
	a, _, _, _ := newTest(t, cfg)
	b, _, _, _ := newTest(t, cfg)
	return a, b, sh
}

// TestSharedThresholdAcrossNodes: failures alternating between two nodes
// ban the source at the threshold in total, on the node that took the
// threshold-th, once.
func TestSharedThresholdAcrossNodes(t *testing.T) {
	a, b, _ := twoNodes(t, Config{})
	src := mustAddr("203.0.113.7")
	nodes := []*Firewall{a, b}
	for i := range DefaultThreshold - 1 {
		if nodes[i%2].Detector().Failure(src, AuthFailure, t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("failure %d (node %d) banned", i+1, i%2)
		}
	}
	now := t0.Add(20 * time.Second)
	if !b.Detector().Failure(src, AuthFailure, now) {
		t.Fatal("the 10th failure in the cluster (5th on node B) did not ban")
	}
	if !b.Banned(src, now) || a.Banned(src, now) {
		t.Errorf("banned on B %v, on A %v; want B (A learns it from the store)", b.Banned(src, now), a.Banned(src, now))
	}
	if got := value(a.metrics.bans[AuthFailure]) + value(b.metrics.bans[AuthFailure]); got != 1 {
		t.Errorf("bans made = %v, want 1", got)
	}
	// Outside the window the count starts again.
	later := now.Add(DefaultWindow)
	for i := range DefaultThreshold - 1 {
		if a.Detector().Failure(src, AuthFailure, later.Add(time.Duration(i)*DefaultWindow)) {
			t.Fatalf("spaced failure %d banned", i+1)
		}
	}
}

// TestSharedBurstBansOncePerNode: a burst of concurrent failures on two
// nodes bans the source at most once on each node, and at least once.
func TestSharedBurstBansOncePerNode(t *testing.T) {
	for round := range 20 {
		a, b, _ := twoNodes(t, Config{Threshold: 5})
		src := netipFromInt(0xcb007100 + uint32(round))
		var bans atomic.Int32
		var wg sync.WaitGroup
		for i := range 64 {
			node := []*Firewall{a, b}[i%2]
			wg.Go(func() {
				if node.Detector().Failure(src, AuthFailure, t0) {
					bans.Add(1)
				}
			})
		}
		wg.Wait()
		ba, bb := value(a.metrics.bans[AuthFailure]), value(b.metrics.bans[AuthFailure])
		if ba > 1 || bb > 1 || ba+bb < 1 || float64(bans.Load()) != ba+bb {
			t.Fatalf("round %d: bans on A %v, on B %v, Failure reported %d; want at most one a node, at least one", round, ba, bb, bans.Load())
		}
	}
}

// TestSharedFallback: while the shared count fails, each node counts its
// own failures (they were kept in step) and bans at the threshold alone;
// the fallback is counted.
func TestSharedFallback(t *testing.T) {
	a, b, sh := twoNodes(t, Config{Threshold: 4})
	src := mustAddr("203.0.113.8")
	a.Detector().Failure(src, AuthFailure, t0) // shared 1, A 1
	b.Detector().Failure(src, AuthFailure, t0) // shared 2, B 1
	a.Detector().Failure(src, AuthFailure, t0) // shared 3, A 2
	sh.down.Store(true)
	if a.Detector().Failure(src, AuthFailure, t0) || b.Detector().Failure(src, AuthFailure, t0) {
		t.Fatal("banned below a node's own threshold while shared counting is down")
	}
	if !a.Detector().Failure(src, AuthFailure, t0) { // A 4
		t.Fatal("the 4th failure on node A did not ban with shared counting down")
	}
	if got := value(a.metrics.sharedFallback); got != 2 {
		t.Errorf("shared_fallback_total on A = %v, want 2", got)
	}
}

// TestSharedUnansweredChallenges: challenges spread over two nodes reach
// the threshold in total; the node that took the last one judges the
// source when its grace ends, as alone: it bans a source that never
// answered, and forgives one that answered there in time (on every node).
func TestSharedUnansweredChallenges(t *testing.T) {
	t.Run("unanswered", func(t *testing.T) {
		a, b, _ := twoNodes(t, Config{})
		src := mustAddr("203.0.113.9")
		for i := range DefaultThreshold {
			if []*Firewall{a, b}[i%2].Detector().Failure(src, UnknownSourceInvite, t0) {
				t.Fatalf("challenge %d banned before its grace", i+1)
			}
		}
		end := t0.Add(DefaultChallengeGrace)
		if na, nb := a.Detector().Sweep(end), b.Detector().Sweep(end); na != 0 || nb != 1 {
			t.Fatalf("sweeps at the end of the grace banned %d on A, %d on B; want 0, 1", na, nb)
		}
	})
	t.Run("answered", func(t *testing.T) {
		a, b, sh := twoNodes(t, Config{})
		src := mustAddr("203.0.113.10")
		for i := range DefaultThreshold {
			[]*Firewall{a, b}[i%2].Detector().Failure(src, UnknownSourceInvite, t0)
		}
		b.Detector().Authenticated(src, t0.Add(time.Second))
		end := t0.Add(time.Hour)
		if na, nb := a.Detector().Sweep(end), b.Detector().Sweep(end); na+nb != 0 {
			t.Fatalf("banned (%d on A, %d on B) although B's challenge was answered in time", na, nb)
		}
		if sh.forgave.Load() != 1 {
			t.Errorf("Forgive called %d times, want 1 (B had counted challenges)", sh.forgave.Load())
		}
		b.Detector().Authenticated(src, t0.Add(2*time.Second))
		if sh.forgave.Load() != 1 {
			t.Error("a source already trusted was forgiven again: one shared call a success")
		}
	})
}

// TestSharedKinds: scanners and stream floods never wait on the shared
// count.
func TestSharedKinds(t *testing.T) {
	a, _, sh := twoNodes(t, Config{Threshold: 2})
	a.Detector().Failure(mustAddr("203.0.113.11"), StreamFlood, t0)
	a.Detector().Failure(mustAddr("203.0.113.12"), Scanner, t0)
	if n := sh.adds.Load(); n != 0 {
		t.Errorf("shared Add called %d times for a stream flood and a scanner, want 0", n)
	}
}
