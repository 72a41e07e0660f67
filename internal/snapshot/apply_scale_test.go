package snapshot

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// BenchmarkApplyOneChange measures what one configuration change costs at
// scale on the real path: bigDataset(n) is stored in SQLite, a Watcher
// serves its snapshot, then each iteration commits one change and calls
// Refresh, as the API does after a write, until the new snapshot serves.
// ns/op is the time from the commit's return to the swap (LoadDelta and
// Apply); commit-ms is the commit itself. The changes: a SIP user's HA1; an
// IP endpoint moved to another address; the HA1 of a user that a DID routes
// to (which replaces its account, and so re-points the account's users,
// endpoints and DIDs); an account renamed. The benchmark fails if a change
// was rebuilt rather than applied. The first, full build is logged for
// comparison. It runs only when asked for by name; ApplyOneChange1M is the
// 1,000,000 users + 1,000,000 endpoints target (< 50 ms); it needs a few
// minutes and ~3 GB:
//
//	go test -run XXX -bench ApplyOneChange100k -benchtime 3x ./internal/snapshot/
//	go test -run XXX -bench ApplyOneChange1M -benchtime 3x -timeout 30m ./internal/snapshot/
func BenchmarkApplyOneChange100k(b *testing.B) { benchmarkApply(b, "ApplyOneChange100k", 100_000) }

func BenchmarkApplyOneChange1M(b *testing.B) { benchmarkApply(b, "ApplyOneChange1M", 1_000_000) }

func benchmarkApply(b *testing.B, name string, n int) {
	if f := flag.Lookup("test.bench"); f == nil || !strings.Contains(f.Value.String(), name) {
		b.Skip("runs only when asked for: -bench " + name)
	}
	ctx := context.Background()
	st := openSQLite(b)
	ds := bigDataset(n)
	start := time.Now()
	err := st.Update(ctx, func(tx store.Tx) error {
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
	user, withDID := ds.Users[n/2], ds.Users[2] // DID 3 routes to user 3
	ep, acct := ds.Endpoints[n/2+1], ds.Accounts[len(ds.Accounts)/2]
	home := ep.Address
	ds = Dataset{}

	h := &Holder{}
	w := NewWatcher(st, h, testOptions, nil)
	start = time.Now()
	if err := w.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("full rebuild (Load + Build): %v", time.Since(start))

	commit := func(b *testing.B, fn func(tx store.Tx) error) {
		if err := st.Update(ctx, fn); err != nil {
			b.Fatal(err)
		}
	}
	var twin store.SIPUser
	ha1 := func(i int) string { return strings.Repeat(string("0123456789abcdef"[i%16]), 32) }
	for _, c := range []struct {
		name   string
		change func(b *testing.B, i int) func(s *Snapshot) bool // commits; the check of the result
	}{
		{"user", func(b *testing.B, i int) func(*Snapshot) bool {
			user.HA1MD5 = ha1(i)
			commit(b, func(tx store.Tx) error { return tx.UpdateSIPUser(ctx, &user) })
			return func(s *Snapshot) bool { return s.User(user.Username).HA1MD5 == user.HA1MD5 }
		}},
		{"endpoint", func(b *testing.B, i int) func(*Snapshot) bool {
			ep.Address = home
			if i%2 == 1 {
				ep.Address = fmt.Sprintf("100.127.0.%d", i%200)
			}
			commit(b, func(tx store.Tx) error { return tx.UpdateEndpoint(ctx, &ep) })
			return func(s *Snapshot) bool {
				m := s.Identify(netip.MustParseAddr(ep.Address), "udp", "4420123", "")
				return s.Endpoint(ep.ID).Address() == ep.Address && m.Endpoint != nil && m.Endpoint.ID == ep.ID
			}
		}},
		{"user-with-did", func(b *testing.B, i int) func(*Snapshot) bool {
			withDID.HA1MD5 = ha1(i)
			commit(b, func(tx store.Tx) error { return tx.UpdateSIPUser(ctx, &withDID) })
			return func(s *Snapshot) bool { return s.DID("443000000002").User.HA1MD5 == withDID.HA1MD5 }
		}},
		// A user in another realm takes and gives up user's name: Apply
		// settles the name over every user (a scan), not by a rebuild.
		{"shared-username", func(b *testing.B, i int) func(*Snapshot) bool {
			if twin.ID == 0 {
				twin = store.SIPUser{AccountID: user.AccountID, Username: user.Username, Realm: "elsewhere", HA1MD5: ha1(i)}
				commit(b, func(tx store.Tx) error { return tx.CreateSIPUser(ctx, &twin) })
			} else {
				id := twin.ID
				twin = store.SIPUser{}
				commit(b, func(tx store.Tx) error { return tx.DeleteSIPUser(ctx, id) })
			}
			return func(s *Snapshot) bool { // the node's realm keeps the name either way
				u := s.User(user.Username)
				return u != nil && u.ID == user.ID && (twin.ID == 0) == (s.UserByID(twin.ID) == nil)
			}
		}},
		{"account", func(b *testing.B, i int) func(*Snapshot) bool {
			acct.Name = fmt.Sprintf("renamed-%d", i)
			commit(b, func(tx store.Tx) error { return tx.UpdateAccount(ctx, &acct) })
			return func(s *Snapshot) bool { return s.Account(acct.ID).Name == acct.Name }
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			rebuilt := w.rebuilt.Load()
			var committing time.Duration
			i := 0
			for b.Loop() {
				b.StopTimer()
				i++
				t0 := time.Now()
				check := c.change(b, i)
				committing += time.Since(t0)
				b.StartTimer()
				if err := w.Refresh(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if !check(h.Load()) {
					b.Fatal("the change is not in the serving snapshot")
				}
				b.StartTimer()
			}
			if w.rebuilt.Load() != rebuilt {
				b.Fatal("the change was rebuilt, not applied")
			}
			b.ReportMetric(float64(committing.Microseconds())/1000/float64(i), "commit-ms")
		})
	}
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
	benchmarkIdentifyProbes(b, s)
	b.Run("user", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = s.User("u0543210")
		}
	})
}
