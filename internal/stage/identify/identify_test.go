package identify

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/siptest"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/store"
)

// dataset: accounts 1 (Alpha) and 2 (Beta).
//
//	127.0.0.2       ep 10 (1, tech 11), ep 20 (2, tech 22)
//	127.0.0.3       ep 30 (1, CLI auth; CLI pattern 441110000001), ep 40 (2, CLI auth; DID 442220000002)
//	10.1.0.0/24     ep 50 (1)    10.1.0.7   ep 60 (2, tech 9)
//	2001:db8::/32   ep 70 (1)    2001:db8:1::/48 ep 80 (2)
//	192.0.2.10      ep 90 (2, tls)
//	198.51.100.1    ep 100 (1), ep 110 (2)
//	core 203.0.113.0/24
func dataset() snapshot.Dataset {
	ep := func(id, acct int64, addr, tech string) store.IPEndpoint {
		return store.IPEndpoint{ID: id, AccountID: acct, Address: addr, Direction: store.DirSends, Protocol: store.ProtoUDP, TechPrefix: tech}
	}
	cliAuth := func(e store.IPEndpoint) store.IPEndpoint { e.CLIAuth = true; return e }
	tls := ep(90, 2, "192.0.2.10", "")
	tls.Protocol = store.ProtoTLS
	return snapshot.Dataset{
		Revision: 1,
		Accounts: []store.Account{{ID: 1, Name: "Alpha"}, {ID: 2, Name: "Beta"}},
		Endpoints: []store.IPEndpoint{
			ep(10, 1, "127.0.0.2", "11"), ep(20, 2, "127.0.0.2", "22"),
			cliAuth(ep(30, 1, "127.0.0.3", "")), cliAuth(ep(40, 2, "127.0.0.3", "")),
			ep(50, 1, "10.1.0.0/24", ""), ep(60, 2, "10.1.0.7", "9"),
			ep(70, 1, "2001:db8::/32", ""), ep(80, 2, "2001:db8:1::/48", ""),
			tls,
			ep(100, 1, "198.51.100.1", ""), ep(110, 2, "198.51.100.1", ""),
		},
		CLIPatterns: []store.CLIPattern{{ID: 1, AccountID: 1, Pattern: "441110000001"}},
		DIDs:        []store.DID{{ID: 1, AccountID: 2, Number: "442220000002"}},
	}
}

func build(t testing.TB) *snapshot.Snapshot {
	t.Helper()
	s, err := snapshot.Build(dataset(), snapshot.Options{
		CoreAddrs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
		Realm:     "sipward",
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// request parses a request of method from dialled to cli.
func request(t testing.TB, method, dialled, cli string) *sip.Request {
	t.Helper()
	return siptest.Req{Method: sip.RequestMethod(method), User: dialled, From: cli, Via: "192.0.2.1:5060"}.Msg(t)
}

// outcome is what the stage did with one request.
type outcome struct {
	Status int
	Reason string
	Drop   bool
	Stage  string
	Why    string // substring check, see below
	Next   bool   // next was called
	Auth   pipeline.Identity
	Passed []string
}

func TestStage(t *testing.T) {
	s := build(t)
	stage, err := New(Config{Snapshot: func() *snapshot.Snapshot { return s }})
	if err != nil {
		t.Fatal(err)
	}
	passed := func(auth pipeline.Identity) outcome {
		return outcome{Status: 200, Stage: "next", Next: true, Auth: auth, Passed: []string{Name}}
	}
	accountNames := map[int64]string{1: "Alpha", 2: "Beta"} // every call names its account, IP or digest
	ip := func(acct, ep int64, dialled, cli string) pipeline.Identity {
		return pipeline.Identity{Method: pipeline.AuthIP, AccountID: acct, AccountName: accountNames[acct], EndpointID: ep, Dialled: dialled, CLI: cli}
	}
	tests := []struct {
		name      string
		method    string
		src       string
		transport string
		dialled   string
		cli       string
		want      outcome
	}{
		{"tech prefix A", "INVITE", "127.0.0.2", pipeline.UDP, "11442071234567", "100", passed(ip(1, 10, "442071234567", "100"))},
		{"tech prefix B", "INVITE", "127.0.0.2", pipeline.UDP, "22442071234567", "100", passed(ip(2, 20, "442071234567", "100"))},
		{"cli pattern", "INVITE", "127.0.0.3", pipeline.UDP, "442071234567", "441110000001", passed(ip(1, 30, "442071234567", "441110000001"))},
		{"cli DID", "INVITE", "127.0.0.3", pipeline.UDP, "442071234567", "+442220000002", passed(ip(2, 40, "442071234567", "+442220000002"))},
		{"nested /32", "INVITE", "10.1.0.7", pipeline.UDP, "9123", "1", passed(ip(2, 60, "123", "1"))},
		{"nested fallback to /24", "INVITE", "10.1.0.7", pipeline.UDP, "123", "1", passed(ip(1, 50, "123", "1"))},
		{"IPv6", "INVITE", "2001:db8:1::9", pipeline.UDP, "123", "1", passed(ip(2, 80, "123", "1"))},
		{"tls endpoint over tls", "INVITE", "192.0.2.10", pipeline.TLS, "123", "1", passed(ip(2, 90, "123", "1"))},
		{"core", "INVITE", "203.0.113.7", pipeline.UDP, "442220000002", "1", passed(pipeline.Identity{Method: pipeline.AuthCore, Dialled: "442220000002", CLI: "1"})},
		{"unmatched goes to digest", "REGISTER", "198.18.0.1", pipeline.UDP, "alice", "alice", passed(pipeline.Identity{})},
		{"tech prefix fits nobody: a known source is never challenged", "INVITE", "127.0.0.2", pipeline.UDP, "33123", "1",
			outcome{Status: 403, Reason: ReasonNoMatch, Stage: Name, Why: "no tech prefix or CLI"}},
		{"tls endpoint over udp", "INVITE", "192.0.2.10", pipeline.UDP, "123", "1",
			outcome{Status: 403, Reason: ReasonTransport, Stage: Name, Why: "endpoint 90 (account 2) requires tls; the request came over udp"}},
		{"ambiguous", "INVITE", "198.51.100.1", pipeline.UDP, "123", "1",
			outcome{Status: 403, Reason: ReasonAmbiguous, Stage: Name, Why: "endpoint 100 (account 1) and endpoint 110 (account 2)"}},
		{"ambiguous ACK is dropped", "ACK", "198.51.100.1", pipeline.UDP, "123", "1",
			outcome{Drop: true, Stage: Name, Why: "matches 2 endpoints"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got outcome
			next := pipeline.HandlerFunc{N: "next", F: func(_ context.Context, r *pipeline.Request) (pipeline.Result, error) {
				got.Next, got.Auth, got.Passed = true, r.Auth, append([]string(nil), r.Trace.Stages()...)
				return pipeline.Answered("next", 200), nil
			}}
			r := &pipeline.Request{
				Msg:       request(t, tt.method, tt.dialled, tt.cli),
				Source:    netip.AddrPortFrom(netip.MustParseAddr(tt.src), 5060),
				Transport: tt.transport,
			}
			res, err := pipeline.Build(next, stage).ServeSIP(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			got.Status, got.Reason, got.Drop, got.Stage = res.Status, res.Reason, res.Drop, res.Stage
			if !strings.Contains(res.Why, tt.want.Why) {
				t.Errorf("Why = %q, want it to contain %q", res.Why, tt.want.Why)
			}
			got.Why = tt.want.Why
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStageNoSnapshot(t *testing.T) {
	stage, err := New(Config{Snapshot: func() *snapshot.Snapshot { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	next := pipeline.HandlerFunc{N: "next", F: func(context.Context, *pipeline.Request) (pipeline.Result, error) {
		t.Error("next called without a snapshot")
		return pipeline.Result{}, nil
	}}
	r := &pipeline.Request{Msg: request(t, "INVITE", "1", "2"), Source: netip.MustParseAddrPort("10.1.0.1:5060"), Transport: pipeline.UDP}
	if _, err := pipeline.Build(next, stage).ServeSIP(context.Background(), r); err == nil || !strings.HasPrefix(err.Error(), "stage/identify: ") {
		t.Errorf("ServeSIP without a snapshot: err = %v, want a stage/identify error", err)
	}
}

func TestNewConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted a Config without Snapshot")
	}
	reg := prometheus.NewRegistry()
	cfg := Config{Snapshot: func() *snapshot.Snapshot { return nil }, Registerer: reg}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err != nil {
		t.Errorf("registering twice on one registry: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	s := build(t)
	reg := prometheus.NewRegistry()
	stage, err := New(Config{Snapshot: func() *snapshot.Snapshot { return s }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	next := pipeline.HandlerFunc{N: "next", F: func(context.Context, *pipeline.Request) (pipeline.Result, error) {
		return pipeline.Answered("next", 200), nil
	}}
	chain := pipeline.Build(next, stage)
	for _, c := range []struct{ src, transport string }{
		{"10.1.0.1", pipeline.UDP}, {"10.1.0.2", pipeline.UDP}, {"203.0.113.1", pipeline.UDP},
		{"198.18.0.1", pipeline.UDP}, {"198.51.100.1", pipeline.UDP}, {"192.0.2.10", pipeline.TCP},
	} {
		r := &pipeline.Request{Msg: request(t, "INVITE", "1", "2"), Source: netip.AddrPortFrom(netip.MustParseAddr(c.src), 5060), Transport: c.transport}
		if _, err := chain.ServeSIP(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "sipward_identify_requests_total" {
			t.Errorf("unexpected metric %s", f.GetName())
			continue
		}
		for _, m := range f.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"matched": 2, "core": 1, "unmatched": 1, "ambiguous": 1, "transport": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sipward_identify_requests_total (-want +got):\n%s", diff)
	}
}

// TestStageAllocs: identifying and passing on a matched request allocates
// nothing (sipgo has parsed From by then; the stage adds no allocation).
func TestStageAllocs(t *testing.T) {
	s := build(t)
	stage, err := New(Config{Snapshot: func() *snapshot.Snapshot { return s }, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	next := pipeline.HandlerFunc{N: "next", F: func(context.Context, *pipeline.Request) (pipeline.Result, error) {
		return pipeline.Answered("next", 200), nil
	}}
	chain := pipeline.Build(next, stage)
	for _, c := range []struct{ src, dialled, cli string }{
		{"127.0.0.2", "11442071234567", "100"},        // tech prefix
		{"127.0.0.3", "442071234567", "441110000001"}, // CLI auth
		{"10.1.0.7", "123", "1"},                      // fallback
		{"203.0.113.7", "1", "2"},                     // core
		{"198.18.0.1", "1", "2"},                      // unmatched
	} {
		r := &pipeline.Request{Msg: request(t, "INVITE", c.dialled, c.cli), Source: netip.AddrPortFrom(netip.MustParseAddr(c.src), 5060), Transport: pipeline.UDP}
		ctx := context.Background()
		allocs := testing.AllocsPerRun(1000, func() {
			r.Trace = pipeline.Trace{}
			if _, err := chain.ServeSIP(ctx, r); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("stage on %s allocates %v times per run, want 0", c.src, allocs)
		}
	}
}

func BenchmarkIdentify(b *testing.B) {
	s := build(b)
	stage, err := New(Config{Snapshot: func() *snapshot.Snapshot { return s }})
	if err != nil {
		b.Fatal(err)
	}
	next := pipeline.HandlerFunc{N: "next", F: func(context.Context, *pipeline.Request) (pipeline.Result, error) {
		return pipeline.Answered("next", 200), nil
	}}
	chain := pipeline.Build(next, stage)
	r := &pipeline.Request{Msg: request(b, "INVITE", "11442071234567", "100"), Source: netip.MustParseAddrPort("127.0.0.2:5060"), Transport: pipeline.UDP}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.Trace = pipeline.Trace{}
		if _, err := chain.ServeSIP(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}
