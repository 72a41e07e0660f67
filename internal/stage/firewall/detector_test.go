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
	// The newest sources are still counted: nine more failures ban the last one.
	last := netipFromInt(0x0a000000 + uint32(sources-1))
	now := t0.Add(time.Duration(sources) * time.Microsecond)
	for range 8 {
		d.Failure(last, UnknownSourceInvite, now)
	}
	if !d.Failure(last, UnknownSourceInvite, now) {
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

// TestForgive: a source that authenticates has its failures forgotten, so
// the challenge every digest call starts with never adds up to a ban.
func TestForgive(t *testing.T) {
	f, err := New(Config{Threshold: 3, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr("198.51.100.7")
	now := time.Unix(1_700_000_000, 0)
	for call := 0; call < 10; call++ {
		if f.Detector().Failure(src, UnknownSourceInvite, now) {
			t.Fatalf("call %d: banned although every call authenticated", call)
		}
		f.Detector().Forgive(src)
		now = now.Add(time.Second)
	}
	for i := 0; i < 3; i++ {
		if banned := f.Detector().Failure(src, UnknownSourceInvite, now); banned != (i == 2) {
			t.Fatalf("unforgiven failure %d: banned=%v", i, banned)
		}
	}
}
