package snapshot

import (
	"context"
	"flag"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/store/sqlstore"
)

// BenchmarkApplyOneChange measures what one configuration change costs at
// scale on the real path: bigDataset(n) is stored in SQLite, a Watcher
// serves its snapshot, then each iteration commits one change (one SIP
// user's HA1) and calls Refresh, as the API does after a write, until the
// new snapshot serves. ns/op is the time from commit to swap; load-ms and
// build-ms split one such apply into reading the store and compiling.
// The design rebuilds the whole snapshot on every change, so this grows
// with the size of the configuration. It runs only when asked for by name;
// ApplyOneChange1M is the 1,000,000 users + 1,000,000 endpoints target
// (< 50 ms); it needs a few minutes and ~3 GB:
//
//	go test -run XXX -bench ApplyOneChange100k -benchtime 3x ./internal/snapshot/
//	go test -run XXX -bench ApplyOneChange1M -benchtime 2x -timeout 30m ./internal/snapshot/
func BenchmarkApplyOneChange100k(b *testing.B) { benchmarkApply(b, "ApplyOneChange100k", 100_000) }

func BenchmarkApplyOneChange1M(b *testing.B) { benchmarkApply(b, "ApplyOneChange1M", 1_000_000) }

func benchmarkApply(b *testing.B, name string, n int) {
	if f := flag.Lookup("test.bench"); f == nil || !strings.Contains(f.Value.String(), name) {
		b.Skip("runs only when asked for: -bench " + name)
	}
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "sipward.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ds := bigDataset(n)
	start := time.Now()
	err = st.Update(ctx, func(tx store.Tx) error {
		for i := range ds.Accounts {
			if err := tx.CreateAccount(ctx, &ds.Accounts[i]); err != nil {
				return err
			}
		}
		for i := range ds.Users {
			if err := tx.CreateSIPUser(ctx, &ds.Users[i]); err != nil {
				return err
			}
		}
		for i := range ds.Endpoints {
			if err := tx.CreateEndpoint(ctx, &ds.Endpoints[i]); err != nil {
				return err
			}
		}
		for i := range ds.DIDs {
			if err := tx.CreateDID(ctx, &ds.DIDs[i]); err != nil {
				return err
			}
		}
		for i := range ds.CLIPatterns {
			if err := tx.CreateCLIPattern(ctx, &ds.CLIPatterns[i]); err != nil {
				return err
			}
		}
		for i := range ds.Rewrites {
			if err := tx.CreateRewriteRule(ctx, &ds.Rewrites[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("stored %d users, %d endpoints in %v", len(ds.Users), len(ds.Endpoints), time.Since(start))
	user := ds.Users[n/2]
	ds = Dataset{}

	h := &Holder{}
	w := NewWatcher(st, h, testOptions, nil)
	if err := w.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	var load, build time.Duration
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		b.StopTimer()
		user.HA1MD5 = strings.Repeat(string("0123456789abcdef"[i%16]), 32)
		if err := st.Update(ctx, func(tx store.Tx) error { return tx.UpdateSIPUser(ctx, &user) }); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := w.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if got := h.Load().User(user.Username); got == nil || got.HA1MD5 != user.HA1MD5 {
			b.Fatal("the change is not in the serving snapshot")
		}
		// the same work split in two, outside the timed part
		t0 := time.Now()
		d, err := Load(ctx, st)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := Build(d, testOptions); err != nil {
			b.Fatal(err)
		}
		load += t1.Sub(t0)
		build += time.Since(t1)
		b.StartTimer()
	}
	b.ReportMetric(float64(load.Milliseconds())/float64(i), "load-ms")
	b.ReportMetric(float64(build.Milliseconds())/float64(i), "build-ms")
}

// BenchmarkIdentify1M identifies against a snapshot of 1,000,000 SIP users
// and 1,000,000 endpoints (the scale target: < 100 ns), like
// BenchmarkIdentifyScale does at 100k, plus a user lookup by name. It runs
// only when asked for by name:
//
//	go test -run XXX -bench Identify1M ./internal/snapshot/
func BenchmarkIdentify1M(b *testing.B) {
	if f := flag.Lookup("test.bench"); f == nil || !strings.Contains(f.Value.String(), "Identify1M") {
		b.Skip("runs only when asked for: -bench Identify1M")
	}
	s, err := Build(bigDataset(1_000_000), testOptions)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, src, dialled string }{
		{"host", "100.64.0.1", "4420123"},
		{"fallback", "100.64.0.0", "4420123"},
		{"ipv6", "2001:db8:0:9::1", "4420123"},
		{"miss", "198.51.100.1", "4420123"},
	} {
		src := netip.MustParseAddr(c.src)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = s.Identify(src, "udp", c.dialled, "")
			}
		})
	}
	b.Run("user", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = s.User("u0543210")
		}
	})
}
