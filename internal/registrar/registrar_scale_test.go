package registrar

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/siptest"
	"github.com/sipward/sipward/internal/store"
)

// register returns an authenticated REGISTER of user i as the registrar
// stage receives it: parsed by sipgo from a phone's message, from its own
// NATed source address.
func register(tb testing.TB, i int, now time.Time) *pipeline.Request {
	tb.Helper()
	user := fmt.Sprintf("user%06d", i)
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{100, 64 + byte(i>>16), byte(i >> 8), byte(i)}), uint16(5060+i%1000))
	msg := siptest.Req{Method: sip.REGISTER, URI: "sip:sip.test", User: user, Host: "sip.test", From: user, FromHost: "sip.test",
		FromTag: "from-" + user, CallID: "reg-" + user + "@192.168.1.20", CSeq: 2,
		Via: "192.168.1.20:5060;rport", Branch: "z9hG4bK-" + user, Headers: []string{
			"Contact: <sip:" + user + "@192.168.1.20:5060;transport=udp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-" + fmt.Sprintf("%012d", i) + ">\"",
			"Expires: 3600",
			"User-Agent: Yealink SIP-T46S 66.86.0.15",
			"Authorization: Digest username=\"" + user + "\", realm=\"sip.test\", nonce=\"AAAAAGsHzUUAevX8Ie8Ct5apdgPPFwoEABCD\", uri=\"sip:sip.test\", response=\"00000000000000000000000000000000\", algorithm=MD5, cnonce=\"abcdef\", qop=auth, nc=00000001",
		}}.Msg(tb)
	r := siptest.Request(msg, src.String(), now)
	r.Auth = pipeline.Identity{Method: pipeline.AuthDigest, Username: user, SIPUserID: int64(i + 1), AccountID: 1}
	return r
}

// BenchmarkRegistrarScale registers 100,000 users (one binding each; without
// a store, and with one that discards what it is given) and reports the
// heap they keep after GC with the requests dropped (heap-MB, B/binding),
// the time of one REGISTER at that size (ns/op of the loop, which
// re-registers existing users) and of one Lookup (lookup-ns). It runs only
// when asked for by name:
//
//	go test -run XXX -bench RegistrarScale -benchtime 100000x ./internal/registrar/
func BenchmarkRegistrarScale(b *testing.B) {
	if f := flag.Lookup("test.bench"); f == nil || !strings.Contains(f.Value.String(), "RegistrarScale") {
		b.Skip("runs only when asked for: -bench RegistrarScale")
	}
	b.Run("memory", func(b *testing.B) { benchmarkRegistrarScale(b, nil) })
	// with a store (write-behind, flushed): the registrar also keeps each
	// binding's stored expiry (lazy refreshes)
	b.Run("store", func(b *testing.B) { benchmarkRegistrarScale(b, discardBindings{}) })
}

// discardBindings is a BindingStore that keeps nothing.
type discardBindings struct{}

func (discardBindings) SaveRegistration(context.Context, Binding) error          { return nil }
func (discardBindings) DeleteRegistration(context.Context, string, string) error { return nil }
func (discardBindings) LoadRegistrations(context.Context, time.Time) ([]Binding, error) {
	return nil, nil
}
func (discardBindings) ApplyRegistrations(context.Context, []Binding, []store.RegistrationKey) error {
	return nil
}

func benchmarkRegistrarScale(b *testing.B, st BindingStore) {
	const n = 100_000
	ctx := context.Background()
	now := time.Now()
	g, err := New(ctx, Config{Now: func() time.Time { return now }, Store: st, FlushInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range n {
		if res, err := g.ServeSIP(ctx, register(b, i, now)); err != nil || res.Status != 200 {
			b.Fatalf("register %d: %+v %v", i, res, err)
		}
	}
	if err := g.flush(ctx); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	if g.Count() != n {
		b.Fatalf("Count = %d, want %d", g.Count(), n)
	}
	heap := float64(m1.HeapAlloc - m0.HeapAlloc)

	reqs := make([]*pipeline.Request, 1000)
	for i := range reqs {
		reqs[i] = register(b, i*97%n, now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		r := reqs[i%len(reqs)]
		r.Msg.CSeq().SeqNo++ // a refresh: same Call-ID, higher CSeq
		r.Trace = pipeline.Trace{}
		if res, err := g.ServeSIP(ctx, r); err != nil || res.Status != 200 {
			b.Fatalf("refresh: %+v %v", res, err)
		}
		i++
	}
	b.StopTimer()
	const lookups = 100_000
	start := time.Now()
	for j := range lookups {
		if len(g.Lookup(fmt.Sprintf("user%06d", j*7%n), now)) != 1 {
			b.Fatal("lookup found no binding")
		}
	}
	lookupNS := float64(time.Since(start).Nanoseconds()) / lookups
	b.ReportMetric(heap/(1<<20), "heap-MB")
	b.ReportMetric(heap/n, "B/binding")
	b.ReportMetric(lookupNS, "lookup-ns")
	runtime.KeepAlive(g)
}
