package firewall

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sipward/sipward/internal/store"
)

func TestSetBans(t *testing.T) {
	bans := []store.Ban{
		{ID: 1, Address: "203.0.113.7/32", Source: store.BanOperator},                                   // forever
		{ID: 2, Address: "198.51.100.0/24", Source: store.BanOperator, ExpiresAt: t0.Add(time.Hour)},    // CIDR
		{ID: 3, Address: "198.51.100.9/32", Source: store.BanDetection, ExpiresAt: t0.Add(time.Minute)}, // shorter-lived, inside the /24
		{ID: 4, Address: "192.0.2.0/25", Source: store.BanOperator, ExpiresAt: t0.Add(-time.Second)},    // already expired
		{ID: 5, Address: "10.0.0.0/8", Source: store.BanOperator, ExpiresAt: t0.Add(time.Minute)},
		{ID: 6, Address: "10.1.0.0/16", Source: store.BanOperator, ExpiresAt: t0.Add(time.Hour)}, // outlives its cover
		{ID: 7, Address: "2001:db8:bad::/48", Source: store.BanOperator},
		{ID: 8, Address: "192.0.2.200", Source: store.BanOperator}, // bare address
	}
	tests := []struct {
		addr string
		at   time.Duration // after t0
		want bool
	}{
		{"203.0.113.7", 0, true},
		{"203.0.113.7", 1000 * 24 * time.Hour, true},
		{"203.0.113.8", 0, false},
		{"::ffff:203.0.113.7", 0, true}, // IPv4-mapped is unmapped
		{"198.51.100.1", 0, true},
		{"198.51.100.1", time.Hour - time.Nanosecond, true},
		{"198.51.100.1", time.Hour, false},       // expiry is exclusive
		{"198.51.100.9", 30 * time.Minute, true}, // own ban expired, the /24 still holds
		{"198.51.101.1", 0, false},
		{"192.0.2.1", 0, false}, // expired ban ignored
		{"192.0.2.200", 0, true},
		{"10.2.3.4", 0, true},
		{"10.2.3.4", 2 * time.Minute, false},
		{"10.1.2.3", 2 * time.Minute, true},
		{"2001:db8:bad::1", 0, true},
		{"2001:db8:bae::1", 0, false},
		{"fe80::1%eth0", 0, false},
	}
	f, _, _, _ := newTest(t, Config{})
	if err := f.SetBans(bans); err != nil {
		t.Fatalf("SetBans: %v", err)
	}
	for _, tt := range tests {
		if got := f.Banned(mustAddr(tt.addr), t0.Add(tt.at)); got != tt.want {
			t.Errorf("Banned(%s, t0+%v) = %v, want %v", tt.addr, tt.at, got, tt.want)
		}
	}
}

func TestSetBansInvalidEntries(t *testing.T) {
	f, _, _, _ := newTest(t, Config{})
	err := f.SetBans([]store.Ban{
		{ID: 1, Address: "203.0.113.7/33"},
		{ID: 2, Address: "198.51.100.0/24"},
		{ID: 3, Address: "example.com"},
	})
	if err == nil {
		t.Fatal("SetBans: no error for invalid addresses")
	}
	for _, want := range []string{`bans[0] (id 1): "203.0.113.7/33"`, `bans[2] (id 3): "example.com"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if !f.Banned(mustAddr("198.51.100.5"), t0) {
		t.Error("valid ban next to invalid ones not applied")
	}
}

func TestSetBansLifts(t *testing.T) {
	f, _, _, _ := newTest(t, Config{})
	a, b := mustAddr("203.0.113.7"), mustAddr("198.51.100.7")
	steps := []struct {
		bans []store.Ban
		want map[string]bool
	}{
		{
			bans: []store.Ban{{Address: "203.0.113.7/32"}, {Address: "198.51.100.0/24"}},
			want: map[string]bool{"a": true, "b": true},
		},
		{ // operator lifts the /24
			bans: []store.Ban{{Address: "203.0.113.7/32"}},
			want: map[string]bool{"a": true, "b": false},
		},
		{ // everything lifted
			bans: nil,
			want: map[string]bool{"a": false, "b": false},
		},
	}
	for i, s := range steps {
		if err := f.SetBans(s.bans); err != nil {
			t.Fatalf("step %d: SetBans: %v", i, err)
		}
		got := map[string]bool{"a": f.Banned(a, t0), "b": f.Banned(b, t0)}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("step %d: banned (-want +got):\n%s", i, diff)
		}
	}
}

// A detection ban is in force before it is stored, survives a SetBans that
// does not carry it yet, and gives way to the stored set once it does: then
// lifting it through the store lifts it.
func TestLocalBanLifecycle(t *testing.T) {
	f, clk, _, _ := newTest(t, Config{Threshold: 1})
	a := mustAddr("203.0.113.7")
	if !f.Detector().Failure(a, AuthFailure, t0) {
		t.Fatal("Failure with Threshold 1 did not ban")
	}
	if !f.Banned(a, t0) {
		t.Fatal("detection ban not in force at once")
	}
	if err := f.SetBans([]store.Ban{{Address: "192.0.2.1/32"}}); err != nil {
		t.Fatal(err)
	}
	if !f.Banned(a, t0) {
		t.Fatal("detection ban lost by a SetBans that did not carry it yet")
	}
	stored := store.Ban{Address: "203.0.113.7/32", Source: store.BanDetection, ExpiresAt: t0.Add(time.Hour)}
	if err := f.SetBans([]store.Ban{stored}); err != nil {
		t.Fatal(err)
	}
	if !f.Banned(a, t0) {
		t.Fatal("stored detection ban not in force")
	}
	if err := f.SetBans(nil); err != nil {
		t.Fatal(err)
	}
	if f.Banned(a, t0) {
		t.Fatal("lifting the stored ban did not lift it")
	}

	// A local ban that never reaches the store ends at its expiry, and
	// SetBans forgets it then.
	b := mustAddr("203.0.113.8")
	f.Detector().Failure(b, AuthFailure, t0)
	if !f.Banned(b, t0.Add(time.Hour-time.Second)) || f.Banned(b, t0.Add(time.Hour)) {
		t.Error("local ban does not last exactly BanFor")
	}
	clk.Set(t0.Add(2 * time.Hour))
	if err := f.SetBans(nil); err != nil {
		t.Fatal(err)
	}
	f.bans.mu.Lock()
	n := len(f.bans.local)
	f.bans.mu.Unlock()
	if n != 0 {
		t.Errorf("expired local bans kept after SetBans: %d", n)
	}
}

func TestBannedAllocs(t *testing.T) {
	f, _, _, _ := newTest(t, Config{})
	if err := f.SetBans([]store.Ban{{Address: "198.51.100.0/24"}, {Address: "2001:db8::/32"}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"198.51.100.1", "203.0.113.1", "2001:db8::1", "::ffff:198.51.100.1"} {
		a := mustAddr(s)
		if n := testing.AllocsPerRun(1000, func() { f.Banned(a, t0) }); n != 0 {
			t.Errorf("Banned(%s) allocates %v times, want 0", s, n)
		}
	}
}

func BenchmarkBanned(b *testing.B) {
	f, _, _, _ := newTest(b, Config{})
	bans := make([]store.Ban, 0, 10_000)
	for i := range 10_000 {
		bans = append(bans, store.Ban{Address: netipFromInt(uint32(0x0a000000+i*7)).String() + "/32"})
	}
	if err := f.SetBans(bans); err != nil {
		b.Fatal(err)
	}
	a := mustAddr("203.0.113.7")
	b.ReportAllocs()
	for b.Loop() {
		f.Banned(a, t0)
	}
}

// TestLiftedBeforeAnyReload: a detection ban that the store accepted and the
// operator lifted before any reload carried it is gone at the next SetBans.
func TestLiftedBeforeAnyReload(t *testing.T) {
	persisted := make(chan store.Ban, 1)
	f, err := New(Config{Threshold: 1, Window: time.Minute,
		Persist: func(_ context.Context, b store.Ban) error { persisted <- b; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(context.Background())
	src := netip.MustParseAddr("198.51.100.9")
	now := time.Now()
	if !f.Detector().Failure(src, AuthFailure, now) {
		t.Fatal("no ban at threshold 1")
	}
	<-persisted
	// Persist returned nil: wait until the firewall has marked it.
	deadline := time.Now().Add(2 * time.Second)
	for {
		f.bans.mu.Lock()
		marked := f.bans.persisted[src]
		f.bans.mu.Unlock()
		if marked || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !f.Banned(src, now) {
		t.Fatal("not banned after detection")
	}
	if err := f.SetBans(nil); err != nil { // the operator lifted it: the store holds none
		t.Fatal(err)
	}
	if f.Banned(src, now) {
		t.Error("a lifted detection ban is still in force after SetBans")
	}
}

// TestSetBansFromSnapshotList: the list the configuration snapshot carries
// (snapshot.BanList, what the firewall is fed on every swap) means what the
// snapshot's own ban table meant before the firewall became its only
// compiler: a longer ban that expired inside a shorter one still in force
// stays banned, a ban without expiry never ends, IPv4-mapped sources match.
func TestSetBansFromSnapshotList(t *testing.T) {
	f, _, _, _ := newTest(t, Config{})
	if err := f.SetBans([]store.Ban{
		{ID: 1, Address: "192.0.2.0/24", Source: store.BanOperator, ExpiresAt: t0.Add(time.Hour)},
		{ID: 2, Address: "192.0.2.99", Source: store.BanDetection, ExpiresAt: t0.Add(-time.Hour)},
		{ID: 3, Address: "198.18.0.1", Source: store.BanOperator},
		{ID: 4, Address: "198.18.0.2", Source: store.BanDetection, ExpiresAt: t0.Add(-time.Minute)},
		{ID: 5, Address: "2001:db8:bad::/48", Source: store.BanDetection, ExpiresAt: t0.Add(time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr string
		now  time.Time
		want bool
	}{
		{"192.0.2.1", t0, true},
		{"192.0.2.99", t0, true}, // its own ban has expired, the /24's has not
		{"192.0.2.99", t0.Add(2 * time.Hour), false},
		{"::ffff:192.0.2.1", t0, true},
		{"198.18.0.1", t0.AddDate(100, 0, 0), true}, // never expires
		{"198.18.0.2", t0, false},
		{"198.18.0.3", t0, false},
		{"2001:db8:bad::1", t0, true},
		{"2001:db8:bad::1", t0.Add(time.Minute), false},
	} {
		if got := f.Banned(netip.MustParseAddr(tt.addr), tt.now); got != tt.want {
			t.Errorf("Banned(%s, %v) = %v, want %v", tt.addr, tt.now, got, tt.want)
		}
	}
}
