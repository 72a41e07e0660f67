package firewall

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sipward/sipward/internal/store"
)

func TestDetectorThreshold(t *testing.T) {
	persisted := make(chan store.Ban, 4)
	f, _, _, logs := newTest(t, Config{
		Persist: func(_ context.Context, b store.Ban) error { persisted <- b; return nil },
	})
	d := f.Detector()
	a := mustAddr("203.0.113.7")
	now := t0
	for i := 1; i <= 9; i++ {
		now = t0.Add(time.Duration(i) * 5 * time.Second)
		if d.Failure(a, AuthFailure, now) {
			t.Fatalf("failure %d banned", i)
		}
	}
	if f.Banned(a, now) {
		t.Fatal("banned after 9 failures")
	}
	now = now.Add(time.Second)
	if !d.Failure(a, AuthFailure, now) {
		t.Fatal("10th failure did not ban")
	}
	if !f.Banned(a, now) {
		t.Fatal("10th failure: not banned at once")
	}
	if d.Failure(a, AuthFailure, now) {
		t.Error("a banned source is counted again")
	}

	select {
	case got := <-persisted:
		want := store.Ban{
			Address:   "203.0.113.7/32",
			Reason:    "10 failed authentications in 60s",
			Source:    store.BanDetection,
			CreatedAt: now,
			ExpiresAt: now.Add(time.Hour),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("persisted ban (-want +got):\n%s", diff)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ban not persisted")
	}

	var warns []logRecord
	for _, r := range logs.Records() {
		if r.Msg == "stage/firewall: source banned" {
			warns = append(warns, r)
		}
	}
	if len(warns) != 1 {
		t.Fatalf("ban logged %d times, want once: %+v", len(warns), logs.Records())
	}
	w := warns[0]
	if w.Level.String() != "WARN" || w.Attrs["addr"] != "203.0.113.7" || w.Attrs["reason"] != "10 failed authentications in 60s" || w.Attrs["until"] == "" {
		t.Errorf("ban log line = %+v", w)
	}
	if got := value(f.metrics.bans[AuthFailure]); got != 1 {
		t.Errorf("bans_total{source=auth_failure} = %v, want 1", got)
	}
}

func TestDetectorKindsAndReasons(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		failures   []Kind
		wantBan    bool
		wantReason string
	}{
		{
			name:     "kinds counted separately",
			failures: append(repeat(AuthFailure, 9), repeat(UnknownSourceInvite, 9)...),
		},
		{
			name:       "unknown source invites",
			failures:   repeat(UnknownSourceInvite, 10),
			wantBan:    true,
			wantReason: "10 INVITEs from an unknown source in 60s",
		},
		{
			name:       "configured threshold and window",
			cfg:        Config{Threshold: 3, Window: 90 * time.Second},
			failures:   repeat(AuthFailure, 3),
			wantBan:    true,
			wantReason: "3 failed authentications in 90s",
		},
		{
			name:       "sub-second window",
			cfg:        Config{Threshold: 2, Window: 1500 * time.Millisecond},
			failures:   repeat(AuthFailure, 2),
			wantBan:    true,
			wantReason: "2 failed authentications in 1.5s",
		},
		{
			name:     "detection off",
			cfg:      Config{Threshold: -1},
			failures: repeat(AuthFailure, 100),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			persisted := make(chan store.Ban, 1)
			tt.cfg.Persist = func(_ context.Context, b store.Ban) error { persisted <- b; return nil }
			f, _, _, _ := newTest(t, tt.cfg)
			a := mustAddr("2001:db8::7")
			banned := false
			for _, k := range tt.failures {
				banned = f.Detector().Failure(a, k, t0) || banned
			}
			// Unanswered challenges are judged once their grace has passed.
			banned = f.Detector().Sweep(t0.Add(DefaultChallengeGrace)) > 0 || banned
			if banned != tt.wantBan || f.Banned(a, t0) != tt.wantBan {
				t.Fatalf("banned = %v (table %v), want %v", banned, f.Banned(a, t0), tt.wantBan)
			}
			if !tt.wantBan {
				return
			}
			got := <-persisted
			if got.Reason != tt.wantReason || got.Address != "2001:db8::7/128" {
				t.Errorf("persisted %q %q, want %q %q", got.Address, got.Reason, "2001:db8::7/128", tt.wantReason)
			}
		})
	}
}

func repeat(k Kind, n int) []Kind {
	s := make([]Kind, n)
	for i := range s {
		s[i] = k
	}
	return s
}

func TestDetectorWindow(t *testing.T) {
	f, _, _, _ := newTest(t, Config{})
	d := f.Detector()
	a := mustAddr("203.0.113.7")
	for i := range 9 {
		d.Failure(a, AuthFailure, t0.Add(time.Duration(i)*time.Second))
	}
	// The window began at t0: at t0+60s the count restarts.
	now := t0.Add(60 * time.Second)
	for i := range 9 {
		if d.Failure(a, AuthFailure, now.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("failure %d after the window banned", i+1)
		}
	}
	if !d.Failure(a, AuthFailure, now.Add(59*time.Second)) {
		t.Fatal("10th failure in the new window did not ban")
	}

	// Expired pairs leave the table.
	b := mustAddr("203.0.113.8")
	d.Failure(b, AuthFailure, t0.Add(10*time.Minute))
	d.Failure(mustAddr("203.0.113.9"), AuthFailure, t0.Add(20*time.Minute))
	if got, gauge := d.Tracked(), value(f.metrics.tracked); got != 1 || gauge != 1 {
		t.Errorf("Tracked() = %d, tracked_sources = %v after the others expired, want 1", got, gauge)
	}
}

func TestDetectorTrusted(t *testing.T) {
	trusted := netip.MustParsePrefix("198.51.100.0/24")
	f, _, _, _ := newTest(t, Config{Trusted: trusted.Contains})
	for _, s := range []string{"198.51.100.7", "::ffff:198.51.100.7"} {
		for range 100 {
			if f.Detector().Failure(mustAddr(s), AuthFailure, t0) {
				t.Fatalf("trusted %s banned", s)
			}
		}
	}
	if f.Banned(mustAddr("198.51.100.7"), t0) || f.Detector().Tracked() != 0 {
		t.Error("trusted source banned or tracked")
	}
}

// A flood of distinct (spoofed) sources keeps the detector's memory bounded.
func TestDetectorFloodBounded(t *testing.T) {
	sources := 1_000_000
	if testing.Short() {
		sources = 200_000
	}
	const maxTracked = 100_000
	f, _, _, _ := newTest(t, Config{MaxTracked: maxTracked})
	d := f.Detector()
	for i := range sources {
		d.Failure(netipFromInt(0x0a000000+uint32(i)), UnknownSourceInvite, t0.Add(time.Duration(i)*time.Microsecond))
	}
	d.mu.Lock()
	tracked, ring, mapLen := len(d.index), len(d.ring), d.n
	d.mu.Unlock()
	if tracked != maxTracked || ring != maxTracked || mapLen != maxTracked {
		t.Errorf("after %d sources: tracked %d, ring %d, in use %d; want all %d", sources, tracked, ring, mapLen, maxTracked)
	}
	if got, want := value(f.metrics.evicted), float64(sources-maxTracked); got != want {
		t.Errorf("tracked_evicted_total = %v, want %v", got, want)
	}
	if got := value(f.metrics.tracked); got != maxTracked {
		t.Errorf("tracked_sources = %v, want %d", got, maxTracked)
	}
	// The newest sources are still counted: nine more failures ban the last
	// one once its challenges' grace has passed.
	last := netipFromInt(0x0a000000 + uint32(sources-1))
	now := t0.Add(time.Duration(sources) * time.Microsecond)
	for range 9 {
		d.Failure(last, UnknownSourceInvite, now)
	}
	if !d.Failure(last, UnknownSourceInvite, now.Add(DefaultChallengeGrace)) {
		t.Error("newest source forgotten")
	}
}

// Bans past MaxLocalBans are still persisted, and the persistence queue
// drops (and counts) what it cannot hold without blocking the caller.
func TestDetectorOverflow(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	f, _, _, _ := newTest(t, Config{
		Threshold:    1,
		MaxLocalBans: 2,
		PersistQueue: 1,
		Persist: func(ctx context.Context, _ store.Ban) error {
			select {
			case started <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return errors.New("store down")
		},
	})
	d := f.Detector()
	d.Failure(mustAddr("192.0.2.1"), AuthFailure, t0)
	<-started // the worker holds ban 1; the queue (1) is empty
	for i := 2; i <= 4; i++ {
		d.Failure(netipFromInt(0xc0000200+uint32(i)), AuthFailure, t0)
	}
	got := map[string]float64{
		"local_overflow":  value(f.metrics.localOverflow),
		"persist_dropped": value(f.metrics.persistDropped),
		"bans":            value(f.metrics.bans[AuthFailure]),
	}
	want := map[string]float64{"local_overflow": 2, "persist_dropped": 2, "bans": 4}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if !f.Banned(mustAddr("192.0.2.2"), t0) || f.Banned(mustAddr("192.0.2.3"), t0) {
		t.Error("local bans: want the first two in force, the rest not")
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := value(f.metrics.persistFailed); got != 2 {
		t.Errorf("persist_failed_total = %v, want 2", got)
	}
}

func BenchmarkDetectorFailure(b *testing.B) {
	f, _, _, _ := newTest(b, Config{Threshold: 1 << 30})
	d := f.Detector()
	a := mustAddr("203.0.113.7")
	b.ReportAllocs()
	for b.Loop() {
		d.Failure(a, AuthFailure, t0)
	}
}

// TestBusyDigestSource: a PBX placing digest calls from one address at
// 1,000 calls/s starts each with a credential-less INVITE; the first
// answered challenge arrives 30 ms after the first one. It is never banned,
// and once it has authenticated its challenges are not even counted.
func TestBusyDigestSource(t *testing.T) {
	f, _, _, _ := newTest(t, Config{})
	d := f.Detector()
	src := mustAddr("198.51.100.7")
	for ms := 0; ms < 10_000; ms++ {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		if d.Failure(src, UnknownSourceInvite, now) {
			t.Fatalf("banned at %d ms", ms)
		}
		if ms >= 30 {
			d.Authenticated(src, now) // the call started 30 ms ago answers its challenge
		}
		if ms%1000 == 0 && d.Sweep(now) != 0 {
			t.Fatalf("swept into a ban at %d ms", ms)
		}
	}
	if d.Sweep(t0.Add(time.Minute)) != 0 || f.Banned(src, t0.Add(time.Minute)) {
		t.Fatal("banned after the load")
	}
	if got := d.Tracked(); got != 0 {
		t.Errorf("Tracked() = %d after the load, want 0: an authenticated source's challenges are not counted", got)
	}
}

// TestUnansweredChallengesBan: a source whose challenges nobody answers is
// banned once the first one's grace has passed — by the sweep, or at its
// next challenge — with the same threshold and reason as before.
func TestUnansweredChallengesBan(t *testing.T) {
	t.Run("sweep", func(t *testing.T) {
		persisted := make(chan store.Ban, 1)
		f, _, _, _ := newTest(t, Config{Persist: func(_ context.Context, b store.Ban) error { persisted <- b; return nil }})
		d := f.Detector()
		src := mustAddr("203.0.113.5")
		for i := range 10 {
			if d.Failure(src, UnknownSourceInvite, t0.Add(time.Duration(i)*100*time.Millisecond)) {
				t.Fatalf("challenge %d banned before its grace", i+1)
			}
		}
		if n := d.Sweep(t0.Add(DefaultChallengeGrace - time.Millisecond)); n != 0 || f.Banned(src, t0) {
			t.Fatal("banned before the grace ended")
		}
		end := t0.Add(DefaultChallengeGrace)
		if n := d.Sweep(end); n != 1 || !f.Banned(src, end) {
			t.Fatalf("Sweep at the end of the grace banned %d, want the source", n)
		}
		if b := <-persisted; b.Reason != "10 INVITEs from an unknown source in 60s" || b.Address != "203.0.113.5/32" {
			t.Errorf("persisted %+v", b)
		}
		if got := value(f.metrics.bans[UnknownSourceInvite]); got != 1 {
			t.Errorf("bans_total{source=unknown_source_invite} = %v, want 1", got)
		}
	})
	t.Run("next challenge", func(t *testing.T) {
		f, _, _, _ := newTest(t, Config{})
		d := f.Detector()
		src := mustAddr("203.0.113.6")
		for range 10 {
			d.Failure(src, UnknownSourceInvite, t0)
		}
		if !d.Failure(src, UnknownSourceInvite, t0.Add(DefaultChallengeGrace)) {
			t.Fatal("a challenge after the grace did not ban")
		}
	})
	t.Run("answered in time", func(t *testing.T) {
		f, _, _, _ := newTest(t, Config{})
		d := f.Detector()
		src := mustAddr("203.0.113.7")
		for range 50 {
			d.Failure(src, UnknownSourceInvite, t0)
		}
		d.Authenticated(src, t0.Add(DefaultChallengeGrace-time.Millisecond))
		if d.Sweep(t0.Add(time.Hour)) != 0 || f.Banned(src, t0.Add(DefaultChallengeGrace)) {
			t.Fatal("banned although a challenge was answered within the grace")
		}
	})
	t.Run("trust expires", func(t *testing.T) {
		f, _, _, _ := newTest(t, Config{TrustAuthenticated: time.Minute})
		d := f.Detector()
		src := mustAddr("203.0.113.8")
		d.Authenticated(src, t0)
		later := t0.Add(time.Minute)
		for range 10 {
			d.Failure(src, UnknownSourceInvite, later)
		}
		if d.Sweep(later.Add(DefaultChallengeGrace)) != 1 {
			t.Fatal("a source that authenticated long ago and stopped answering was not banned")
		}
	})
}

// TestAuthFailuresNotForgiven: a guesser who holds one good account cannot
// reset its count of wrong passwords by authenticating in between.
func TestAuthFailuresNotForgiven(t *testing.T) {
	f, _, _, _ := newTest(t, Config{})
	d := f.Detector()
	src := mustAddr("203.0.113.9")
	for i := range 10 {
		now := t0.Add(time.Duration(i) * time.Second)
		d.Authenticated(src, now)
		if banned := d.Failure(src, AuthFailure, now); banned != (i == 9) {
			t.Fatalf("wrong password %d: banned = %v", i+1, banned)
		}
	}
}

// TestTrustAuthenticatedOff: with no memory of authenticated sources, a
// success still forgives the challenges counted so far, but the next ones
// count again.
func TestTrustAuthenticatedOff(t *testing.T) {
	f, _, _, _ := newTest(t, Config{TrustAuthenticated: -1, Threshold: 3})
	d := f.Detector()
	src := netip.MustParseAddr("198.51.100.7")
	for range 10 {
		d.Failure(src, UnknownSourceInvite, t0)
		d.Failure(src, UnknownSourceInvite, t0)
		d.Authenticated(src, t0)
	}
	if d.Sweep(t0.Add(time.Hour)) != 0 {
		t.Fatal("banned although every pair of challenges was answered")
	}
	for range 3 {
		d.Failure(src, UnknownSourceInvite, t0.Add(time.Hour))
	}
	if d.Sweep(t0.Add(time.Hour+DefaultChallengeGrace)) != 1 {
		t.Fatal("three unanswered challenges did not ban")
	}
}

// TestScannerBansAtOnce: one request with a scanner's User-Agent bans an
// untrusted source, but not one that authenticated recently.
func TestScannerBansAtOnce(t *testing.T) {
	f, _, _, _ := newTest(t, Config{})
	d := f.Detector()
	if !d.Failure(mustAddr("203.0.113.10"), Scanner, t0) {
		t.Fatal("a scanner was not banned at once")
	}
	office := mustAddr("198.51.100.20")
	d.Authenticated(office, t0)
	if d.Failure(office, Scanner, t0) {
		t.Error("an address that authenticated a moment ago was banned for a scanner behind it")
	}
}

func TestAuthenticatedAllocs(t *testing.T) {
	f, _, _, _ := newTest(t, Config{})
	d := f.Detector()
	src := mustAddr("198.51.100.7")
	d.Authenticated(src, t0)
	if n := testing.AllocsPerRun(1000, func() {
		d.Failure(src, UnknownSourceInvite, t0)
		d.Authenticated(src, t0)
	}); n != 0 {
		t.Errorf("an authenticated source's challenge and success allocate %v times, want 0", n)
	}
}
