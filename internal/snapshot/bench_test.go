package snapshot

import (
	"flag"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/sipward/sipward/internal/store"
)

// bigDataset makes a configuration of n SIP users and n sends endpoints:
// one account per 10 endpoints; 70% single IPv4 hosts, 20% IPv4 /28s, 10%
// IPv6 /64s; every 20th account also has a /24 that encloses some of the
// hosts (so identification can fall back); 5% of endpoints have a tech prefix
// and 1% a rewrite rule; half as many DIDs as users; one CLI pattern per
// account; 1% of users have an IP whitelist.
func bigDataset(n int) Dataset {
	nAcct := max(1, n/10)
	ds := Dataset{Revision: 1}
	ds.Accounts = make([]store.Account, nAcct)
	for i := range ds.Accounts {
		ds.Accounts[i] = store.Account{ID: int64(i + 1), Name: fmt.Sprintf("account-%d", i+1), Channels: 1000}
	}
	ds.CLIPatterns = make([]store.CLIPattern, nAcct)
	for i := range ds.CLIPatterns {
		ds.CLIPatterns[i] = store.CLIPattern{ID: int64(i + 1), AccountID: int64(i + 1), Pattern: fmt.Sprintf("4420%07d", i)}
	}
	ds.Endpoints = make([]store.IPEndpoint, 0, n+nAcct/20)
	for i := range n {
		var addr string
		switch {
		case i%10 < 7: // hosts in 100.64.0.0/10
			a := 0x64400000 + uint32(i)
			addr = netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}).String()
		case i%10 < 9: // /28s in 20.0.0.0/8
			a := 0x14000000 + uint32(i)*16
			addr = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), 28).String()
		default: // /64s in 2001:db8::/32
			addr = fmt.Sprintf("2001:db8:%x:%x::/64", i>>16, i&0xffff)
		}
		e := store.IPEndpoint{ID: int64(i + 1), AccountID: int64(i%nAcct + 1), Address: addr, Direction: store.DirSends,
			Protocol: store.ProtoUDP, Port: 5060, Channels: 30, CPS: 5, RestrictedCodecs: []string{}}
		if i%20 == 0 {
			e.TechPrefix = fmt.Sprintf("%d#", i%7)
		}
		ds.Endpoints = append(ds.Endpoints, e)
		if i%100 == 0 {
			ds.Rewrites = append(ds.Rewrites, store.RewriteRule{ID: int64(len(ds.Rewrites) + 1), OwnerKind: store.OwnerEndpoint,
				OwnerID: e.ID, Type: store.RewriteDestination, Match: "00", Replacement: ""})
		}
	}
	for j := 0; j < nAcct; j += 20 { // /24 umbrellas over the hosts
		a := 0x64400000 + uint32(j)*256
		ds.Endpoints = append(ds.Endpoints, store.IPEndpoint{ID: int64(n + j + 1), AccountID: int64(j + 1),
			Address:   netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), 0}), 24).String(),
			Direction: store.DirSends, Protocol: store.ProtoUDP, Port: 5060})
	}
	ds.Users = make([]store.SIPUser, n)
	for i := range ds.Users {
		u := store.SIPUser{ID: int64(i + 1), AccountID: int64(i%nAcct + 1), Username: fmt.Sprintf("u%07d", i), Realm: "sipward",
			HA1MD5: fmt.Sprintf("%032x", i), HA1SHA256: fmt.Sprintf("%064x", i), Protocol: new(store.ProtoUDP),
			NATPing: new(store.NATPingDisabled), Channels: new(2), RestrictedCodecs: []string{}}
		if i%100 == 0 {
			u.IPWhitelist = []string{"192.0.2.0/24"}
		}
		store.Resolve(&u, nil)
		ds.Users[i] = u
	}
	ds.DIDs = make([]store.DID, n/2)
	for i := range ds.DIDs {
		d := store.DID{ID: int64(i + 1), AccountID: int64(i%nAcct + 1), Number: fmt.Sprintf("4430%08d", i)}
		if i%2 == 0 {
			d.SIPUserID = ptr(int64(i + 1)) // user i+1 is of account i%nAcct+1 too
		}
		ds.DIDs[i] = d
	}
	return ds
}

// snapshotHeap returns the heap a snapshot of bigDataset(n) keeps, measured
// after GC with the Dataset dropped.
func snapshotHeap(b *testing.B, n int) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := func() *Snapshot {
		s, err := Build(bigDataset(n), testOptions)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	return after.HeapAlloc - before.HeapAlloc
}

func benchmarkBuild(b *testing.B, n int) {
	ds := bigDataset(n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Build(ds, testOptions); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ds = Dataset{}
	b.ReportMetric(float64(snapshotHeap(b, n))/(1<<20), "heap-MB")
}

// BenchmarkBuild builds a snapshot of 100k SIP users and 100k sends
// endpoints. heap-MB is what one snapshot keeps in use after GC.
func BenchmarkBuild(b *testing.B) { benchmarkBuild(b, 100_000) }

// BenchmarkBuild1M is the scale target: 1M users and 1M endpoints (about
// 1.5 GB resident while it runs). It runs only when the -bench pattern names
// it, so -bench . skips it:
//
//	go test -run XXX -bench Build1M -benchtime 1x -benchmem ./internal/snapshot/
func BenchmarkBuild1M(b *testing.B) {
	if f := flag.Lookup("test.bench"); f == nil || !strings.Contains(f.Value.String(), "1M") {
		b.Skip("runs only when asked for: -bench Build1M")
	}
	benchmarkBuild(b, 1_000_000)
}

// BenchmarkIdentifyScale identifies against a 100k snapshot: a host, a host
// that falls back to its /24, an IPv6 /64 and a miss.
func BenchmarkIdentifyScale(b *testing.B) {
	s, err := Build(bigDataset(100_000), testOptions)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkIdentifyProbes(b, s)
}

// benchmarkIdentifyProbes identifies, against a snapshot of bigDataset, a
// source that is an endpoint's host, one that falls back to its /24, an
// IPv6 one and a miss, each as a sub-benchmark.
func benchmarkIdentifyProbes(b *testing.B, s *Snapshot) {
	for _, c := range []struct{ name, src, dialled string }{
		{"host", "100.64.0.1", "4420123"},
		{"fallback", "100.64.0.0", "4420123"}, // endpoint 1 wants tech prefix "0#": falls back to the /24
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
}

func BenchmarkUser(b *testing.B) {
	s, err := Build(bigDataset(100_000), testOptions)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = s.User("u0054321")
	}
}

// BenchmarkUserWithOverlay looks users up by name in a 100k snapshot to which
// a change of one user was applied: the lookup checks the overlay first.
func BenchmarkUserWithOverlay(b *testing.B) {
	ds := bigDataset(100_000)
	to := ds
	to.Revision++
	to.Users = slices.Clone(ds.Users)
	to.Users[7].HA1MD5 = strings.Repeat("e", 32)
	s, err := mustBuild(b, ds).Apply(deltaOf(ds, to), testOptions)
	if err != nil || s.ov == nil {
		b.Fatalf("Apply: %v (overlay %v)", err, s.ov)
	}
	for name, user := range map[string]string{"base": "u0054321", "overlay": to.Users[7].Username} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = s.User(user)
			}
		})
	}
}
