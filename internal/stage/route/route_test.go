package route_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/registrar"
	"github.com/sipward/sipward/internal/siptest"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/stage/route"
	"github.com/sipward/sipward/internal/store"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// dataset:
//
//	account 1 Alpha: sends ep 10 (10.0.0.10, G729 only, intercepts re-INVITEs);
//	  receives 201 pbx.example.com tls :5061 via sip:proxy.example.net:5060,
//	  202 192.0.2.50 tcp :5080 (egress credentials pbx-in / sealed "s3"), 203 192.0.2.51 udp :5060, 204 192.0.2.64/26
//	  (a range: cannot be called), 205 2001:db8::5 tls-srtp (no port)
//	account 2 Beta: sends ep 20 (10.0.0.20); no receives
//	account 3 Gamma: nothing
//
//	sip users: 1000 alice (1), 1001 bob (1, Retain DID), 1002 dave (1, never
//	registers), 1003 2001 (1), 1004 3001 (2), 1005 erin (2, PCMA only)
//
//	DIDs: 441110000001 → alice, 441110000002 → bob, 441110000003 → account 1's
//	receives, 441110000004 → dave, 442220000001 → erin, 443330000001 → account 3
func dataset() snapshot.Dataset {
	recv := func(id int64, addr string, p store.Protocol, port int) store.IPEndpoint {
		return store.IPEndpoint{ID: id, AccountID: 1, Address: addr, Direction: store.DirReceives, Protocol: p, Port: port}
	}
	pbx := recv(201, "pbx.example.com", store.ProtoTLS, 5061)
	pbx.OutboundProxy = "sip:proxy.example.net:5060"
	trunk := recv(202, "192.0.2.50", store.ProtoTCP, 5080)
	trunk.Username, trunk.PasswordSealed = "pbx-in", []byte("s3")
	user := func(id, acct int64, name string) store.SIPUser {
		return store.SIPUser{ID: id, AccountID: acct, Username: name, Realm: "sipward"}
	}
	bob := user(1001, 1, "bob")
	bob.RetainDID = true
	erin := user(1005, 2, "erin")
	erin.RestrictedCodecs = []string{"PCMA"}
	return snapshot.Dataset{
		Revision: 1,
		Accounts: []store.Account{{ID: 1, Name: "Alpha"}, {ID: 2, Name: "Beta"}, {ID: 3, Name: "Gamma"}},
		Endpoints: []store.IPEndpoint{
			{ID: 10, AccountID: 1, Address: "10.0.0.10", Direction: store.DirSends, Protocol: store.ProtoUDP,
				RestrictedCodecs: []string{"G729"}, InterceptReinvite: true},
			{ID: 20, AccountID: 2, Address: "10.0.0.20", Direction: store.DirSends, Protocol: store.ProtoUDP},
			pbx,
			trunk,
			recv(203, "192.0.2.51", store.ProtoUDP, 5060),
			recv(204, "192.0.2.64/26", store.ProtoUDP, 5060),
			recv(205, "2001:db8::5", store.ProtoTLSSRTP, 0),
		},
		Users: []store.SIPUser{user(1000, 1, "alice"), bob, user(1002, 1, "dave"), user(1003, 1, "2001"), user(1004, 2, "3001"), erin},
		DIDs: []store.DID{
			{ID: 1, AccountID: 1, Number: "441110000001", SIPUserID: ptr(int64(1000))},
			{ID: 2, AccountID: 1, Number: "441110000002", SIPUserID: ptr(int64(1001))},
			{ID: 3, AccountID: 1, Number: "441110000003"},
			{ID: 4, AccountID: 1, Number: "441110000004", SIPUserID: ptr(int64(1002))},
			{ID: 5, AccountID: 2, Number: "442220000001", SIPUserID: ptr(int64(1005))},
			{ID: 6, AccountID: 3, Number: "443330000001"},
		},
	}
}

// clock is a stepped clock, safe for the registrar's own goroutine.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func newClock(t time.Time) *clock { c := &clock{}; c.Set(t); return c }

// registration is a phone's REGISTER as it arrives at the edge.
type registration struct {
	user, contact, source, transport string
}

// identities are what the digest stage would have established for each user.
var identities = map[string]pipeline.Identity{
	"alice": {Method: pipeline.AuthDigest, AccountID: 1, SIPUserID: 1000, Username: "alice", AccountName: "Alpha"},
	"bob":   {Method: pipeline.AuthDigest, AccountID: 1, SIPUserID: 1001, Username: "bob", AccountName: "Alpha"},
	"2001":  {Method: pipeline.AuthDigest, AccountID: 1, SIPUserID: 1003, Username: "2001", AccountName: "Alpha"},
	"3001":  {Method: pipeline.AuthDigest, AccountID: 2, SIPUserID: 1004, Username: "3001", AccountName: "Beta"},
	"erin":  {Method: pipeline.AuthDigest, AccountID: 2, SIPUserID: 1005, Username: "erin", AccountName: "Beta"},
}

// fillRegistrar registers regs, one second apart from t0, through the
// registrar's REGISTER handler, as digest authentication would hand them
// to it.
func fillRegistrar(t *testing.T, regs []registration) *registrar.Registrar {
	t.Helper()
	clk := newClock(t0)
	reg, err := registrar.New(t.Context(), registrar.Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range regs {
		now := t0.Add(time.Duration(i) * time.Second)
		clk.Set(now)
		msg := siptest.Req{Method: sip.REGISTER, URI: "sip:edge.example.net", User: g.user, From: g.user, FromHost: "edge.example.net",
			FromTag: fmt.Sprint("f", i), CallID: fmt.Sprint("reg-", i, "@192.168.1.20"), Via: "192.168.1.20:5060",
			Branch: fmt.Sprint("z9hG4bK-", i), Contact: g.contact, Headers: []string{"Expires: 3600"}}.Msg(t)
		msg.SetTransport(g.transport)
		r := siptest.Request(msg, g.source, now)
		r.Transport = strings.ToLower(g.transport)
		r.Auth = identities[g.user]
		if res, err := reg.ServeSIP(t.Context(), r); err != nil || res.Status != 200 {
			t.Fatalf("REGISTER %s: %d %v, want 200", g.user, res.Status, err)
		}
	}
	return reg
}

var phones = []registration{
	{"alice", "sip:alice@192.168.1.20:5060", "198.51.100.7:40000", "UDP"},
	{"alice", "sip:alice@192.168.1.21:5062;transport=tcp", "198.51.100.8:40001", "TCP"}, // newer
	{"bob", "sip:bob@10.0.0.5:5060", "198.51.100.9:5070", "UDP"},
	{"2001", "sip:2001@192.168.1.30", "198.51.100.10:5060", "UDP"},
	{"3001", "sip:3001@192.168.2.30", "198.51.100.11:5060", "UDP"},
	{"erin", "sip:erin@192.168.3.3:5060", "198.51.100.12:5060", "UDP"},
}

func build(t *testing.T) *snapshot.Snapshot {
	t.Helper()
	s, err := snapshot.Build(dataset(), snapshot.Options{Realm: "sipward",
		CoreAddrs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func upstreams(t *testing.T, ss ...string) []sip.Uri {
	t.Helper()
	out := make([]sip.Uri, len(ss))
	for i, s := range ss {
		if err := sip.ParseUri(s, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// invite parses an initial INVITE to dialled from cli.
func invite(t *testing.T, dialled, cli string) *sip.Request {
	t.Helper()
	return siptest.Req{User: dialled, From: cli, CallID: "call-1@pbx.example.com", Via: "10.0.0.10:5060"}.Msg(t)
}

type target struct {
	URI       string
	Dest      string
	Transport string
	Failover  bool
	Headers   []string
	Why       string
	Auth      string // "username sealed-password"
	Media     string // MediaAddr, when valid
}

type decision struct {
	Targets []target
	Status  int    // of a rejection
	Reason  string // of a rejection
	Stage   string // of a rejection
	Why     string // of a rejection
}

func decisionOf(plan pipeline.Plan, rej *pipeline.Result) decision {
	var d decision
	for _, tg := range plan.Targets {
		v := target{URI: tg.URI.String(), Dest: tg.Dest, Transport: tg.Transport, Failover: tg.Failover, Why: tg.Why}
		for _, h := range tg.Headers {
			v.Headers = append(v.Headers, h.Name()+": "+h.Value())
		}
		if tg.Auth != nil {
			v.Auth = tg.Auth.Username + " " + string(tg.Auth.PasswordSealed)
		}
		if tg.MediaAddr.IsValid() {
			v.Media = tg.MediaAddr.String()
		}
		d.Targets = append(d.Targets, v)
	}
	if rej != nil {
		d.Status, d.Reason, d.Stage, d.Why = rej.Status, rej.Reason, rej.Stage, rej.Why
	}
	return d
}

func TestRoute(t *testing.T) {
	snap := build(t)
	reg := fillRegistrar(t, phones)
	ups := upstreams(t, "sip:core1.example.net:5060", "sip:core2.example.net:5080;transport=TCP")
	routers := map[string]*route.Router{
		"full":         route.New(route.Config{Upstreams: ups, Locator: reg}),
		"no upstream":  route.New(route.Config{Locator: reg}),
		"no registrar": route.New(route.Config{Upstreams: ups}),
	}
	ipAlpha := pipeline.Identity{Method: pipeline.AuthIP, AccountID: 1, EndpointID: 10, AccountName: "Alpha"}
	ipBeta := pipeline.Identity{Method: pipeline.AuthIP, AccountID: 2, EndpointID: 20, AccountName: "Beta"}
	alice := identities["alice"]
	core := pipeline.Identity{Method: pipeline.AuthCore}

	upstream := func(dialled string, hdrs ...string) []target {
		return []target{
			{URI: "sip:" + dialled + "@core1.example.net:5060", Transport: "udp", Failover: true, Headers: hdrs,
				Why: "upstream sip:core1.example.net:5060"},
			{URI: "sip:" + dialled + "@core2.example.net:5080;transport=TCP", Transport: "tcp", Failover: true, Headers: hdrs,
				Why: "upstream sip:core2.example.net:5080;transport=TCP"},
		}
	}
	ipHeaders := []string{"X-Sipward-Account: 1", "X-Sipward-Auth: ip", "X-Sipward-Endpoint: 10"}
	aliceBindings := func(user string) []target {
		return []target{
			{URI: "sip:" + user + "@192.168.1.21:5062;transport=tcp", Dest: "198.51.100.8:40001", Transport: "tcp", Failover: true,
				Why: `sip user "alice" at 198.51.100.8:40001`, Media: "198.51.100.8"},
			{URI: "sip:" + user + "@192.168.1.20:5060", Dest: "198.51.100.7:40000", Transport: "udp", Failover: false,
				Why: `sip user "alice" at 198.51.100.7:40000`, Media: "198.51.100.7"},
		}
	}
	receives := func(dialled string) []target {
		return []target{
			{URI: "sip:" + dialled + "@pbx.example.com:5061;transport=tls", Dest: "proxy.example.net:5060", Transport: "tls", Failover: true,
				Why: "receives endpoint 201 (pbx.example.com)"},
			{URI: "sip:" + dialled + "@192.0.2.50:5080;transport=tcp", Transport: "tcp", Failover: true,
				Why: "receives endpoint 202 (192.0.2.50)", Auth: "pbx-in s3"},
			{URI: "sip:" + dialled + "@192.0.2.51:5060", Transport: "udp", Failover: true,
				Why: "receives endpoint 203 (192.0.2.51)"},
			{URI: "sip:" + dialled + "@[2001:db8::5];transport=tls", Transport: "tls", Failover: true,
				Why: "receives endpoint 205 (2001:db8::5)"},
		}
	}
	tests := []struct {
		name    string
		router  string
		auth    pipeline.Identity
		dialled string
		want    decision
	}{
		// Anything that is neither a DID nor an own extension goes upstream.
		{name: "ip endpoint to upstream", router: "full", auth: ipAlpha, dialled: "442071234567",
			want: decision{Targets: upstream("442071234567", ipHeaders...)}},
		{name: "sip user to upstream", router: "full", auth: alice, dialled: "442071234567",
			want: decision{Targets: upstream("442071234567", "X-Sipward-Account: 1", "X-Sipward-Auth: digest", "X-Sipward-User: alice")}},
		{name: "no upstream", router: "no upstream", auth: ipAlpha, dialled: "442071234567",
			want: decision{Status: 503, Reason: "Service Unavailable", Stage: "route", Why: "no upstream configured"}},

		// A DID with a SIP user: its registered contacts, newest first, at the address each registered from.
		{name: "did to sip user", router: "full", auth: ipBeta, dialled: "441110000001",
			want: decision{Targets: aliceBindings("alice")}},
		{name: "did with + to sip user", router: "full", auth: ipBeta, dialled: "+441110000001",
			want: decision{Targets: aliceBindings("alice")}},
		{name: "another account's did goes to its sip user", router: "full", auth: alice, dialled: "442220000001",
			want: decision{Targets: []target{{URI: "sip:erin@192.168.3.3:5060", Dest: "198.51.100.12:5060", Transport: "udp",
				Why: `sip user "erin" at 198.51.100.12:5060`, Media: "198.51.100.12"}}}},
		{name: "did to retain-did user", router: "full", auth: ipAlpha, dialled: "441110000002",
			want: decision{Targets: []target{{URI: "sip:441110000002@10.0.0.5:5060", Dest: "198.51.100.9:5070", Transport: "udp",
				Why: `sip user "bob" at 198.51.100.9:5070`, Media: "198.51.100.9"}}}},
		{name: "did to unregistered user", router: "full", auth: ipAlpha, dialled: "441110000004",
			want: decision{Status: 480, Reason: "Temporarily Unavailable", Stage: "route", Why: `sip user "dave" is not registered`}},
		{name: "did to user without a registrar", router: "no registrar", auth: ipAlpha, dialled: "441110000001",
			want: decision{Status: 480, Reason: "Temporarily Unavailable", Stage: "route", Why: `sip user "alice" is not registered`}},
		{name: "did to receives endpoints", router: "full", auth: ipBeta, dialled: "441110000003",
			want: decision{Targets: receives("441110000003")}},

		// Extensions: only of the caller's own account.
		{name: "own account's extension", router: "full", auth: ipAlpha, dialled: "2001",
			want: decision{Targets: []target{{URI: "sip:2001@192.168.1.30", Dest: "198.51.100.10:5060", Transport: "udp",
				Why: `sip user "2001" at 198.51.100.10:5060`, Media: "198.51.100.10"}}}},
		{name: "own account's user by name, retain did not applied", router: "full", auth: alice, dialled: "bob",
			want: decision{Targets: []target{{URI: "sip:bob@10.0.0.5:5060", Dest: "198.51.100.9:5070", Transport: "udp",
				Why: `sip user "bob" at 198.51.100.9:5070`, Media: "198.51.100.9"}}}},
		{name: "another account's user goes upstream", router: "full", auth: ipAlpha, dialled: "3001",
			want: decision{Targets: upstream("3001", ipHeaders...)}},
		{name: "the same user from its own account", router: "full", auth: ipBeta, dialled: "3001",
			want: decision{Targets: []target{{URI: "sip:3001@192.168.2.30", Dest: "198.51.100.11:5060", Transport: "udp",
				Why: `sip user "3001" at 198.51.100.11:5060`, Media: "198.51.100.11"}}}},
		{name: "own unregistered extension", router: "full", auth: ipAlpha, dialled: "dave",
			want: decision{Status: 480, Reason: "Temporarily Unavailable", Stage: "route", Why: `sip user "dave" is not registered`}},

		// From the core: DIDs only.
		{name: "core to did of a sip user", router: "full", auth: core, dialled: "441110000001",
			want: decision{Targets: aliceBindings("alice")}},
		{name: "core to retain-did user", router: "full", auth: core, dialled: "441110000002",
			want: decision{Targets: []target{{URI: "sip:441110000002@10.0.0.5:5060", Dest: "198.51.100.9:5070", Transport: "udp",
				Why: `sip user "bob" at 198.51.100.9:5070`, Media: "198.51.100.9"}}}},
		{name: "core to receives endpoints", router: "full", auth: core, dialled: "441110000003",
			want: decision{Targets: receives("441110000003")}},
		{name: "core to receives endpoints, no upstream needed", router: "no upstream", auth: core, dialled: "441110000003",
			want: decision{Targets: receives("441110000003")}},
		{name: "core to unknown did", router: "full", auth: core, dialled: "449999999999",
			want: decision{Status: 404, Reason: "Not Found", Stage: "route", Why: `no DID "449999999999"`}},
		{name: "core to an extension", router: "full", auth: core, dialled: "2001",
			want: decision{Status: 404, Reason: "Not Found", Stage: "route", Why: `no DID "2001"`}},
		{name: "core to did of an account without receives", router: "full", auth: core, dialled: "443330000001",
			want: decision{Status: 480, Reason: "Temporarily Unavailable", Stage: "route", Why: `account "Gamma" has no receives endpoint to call`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := tt.auth
			auth.Dialled, auth.CLI = tt.dialled, "441110000001"
			r := &pipeline.Request{Msg: invite(t, tt.dialled, "441110000001"), Source: netip.MustParseAddrPort("10.0.0.10:5060"),
				Transport: pipeline.UDP, Now: t0.Add(time.Minute), Snap: snap, Auth: auth}
			plan, rej, err := routers[tt.router].Route(t.Context(), r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, decisionOf(plan, rej)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Bindings expire: Route asks the registrar at the request's time.
func TestRouteExpiredBinding(t *testing.T) {
	snap := build(t)
	reg := fillRegistrar(t, phones[:1]) // alice at t0, 3600 s
	rt := route.New(route.Config{Locator: reg})
	tests := []struct {
		at         time.Duration
		wantStatus int // 0: routed
	}{
		{time.Hour - time.Second, 0},
		{time.Hour, 480},
	}
	for _, tt := range tests {
		t.Run(tt.at.String(), func(t *testing.T) {
			r := &pipeline.Request{Msg: invite(t, "441110000001", "441110000001"), Source: netip.MustParseAddrPort("203.0.113.1:5060"),
				Now: t0.Add(tt.at), Snap: snap, Auth: pipeline.Identity{Method: pipeline.AuthCore, Dialled: "441110000001"}}
			_, rej, err := rt.Route(t.Context(), r)
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			if rej != nil {
				got = rej.Status
			}
			if got != tt.wantStatus {
				t.Errorf("status %d, want %d", got, tt.wantStatus)
			}
		})
	}
}

// The plan carries the caller's numbers and the call's account: the
// caller's, or for a call from the core the DID's. (What the B2BUA makes of
// the principal — the live view, codec filtering, re-INVITE interception,
// releasing the channels — is tested in package b2bua.)
func TestRoutePlan(t *testing.T) {
	snap := build(t)
	rt := route.New(route.Config{Upstreams: upstreams(t, "sip:core1.example.net")})
	tests := []struct {
		name        string
		auth        pipeline.Identity
		wantAccount int64
		wantName    string
	}{
		{"ip endpoint",
			pipeline.Identity{Method: pipeline.AuthIP, AccountID: 1, EndpointID: 10, AccountName: "Alpha", Dialled: "442071234567", CLI: "441110000001"},
			1, "Alpha"},
		{"sip user",
			pipeline.Identity{Method: pipeline.AuthDigest, AccountID: 2, SIPUserID: 1005, Username: "erin", AccountName: "Beta", Dialled: "442071234567", CLI: "441110000001"},
			2, "Beta"},
		{"core: the DID's account",
			pipeline.Identity{Method: pipeline.AuthCore, Dialled: "441110000003", CLI: "441110000001"},
			1, "Alpha"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &pipeline.Request{Msg: invite(t, tt.auth.Dialled, tt.auth.CLI), Source: netip.MustParseAddrPort("10.0.0.10:5060"),
				Transport: pipeline.UDP, Now: t0, Snap: snap, Auth: tt.auth}
			plan, rej, err := rt.Route(t.Context(), r)
			if err != nil || rej != nil {
				t.Fatalf("Route: %v %+v", err, rej)
			}
			if plan.From != tt.auth.CLI || plan.To != tt.auth.Dialled {
				t.Errorf("From, To = %q, %q; want %q, %q", plan.From, plan.To, tt.auth.CLI, tt.auth.Dialled)
			}
			if plan.AccountID != tt.wantAccount || plan.AccountName != tt.wantName {
				t.Errorf("account %d %q, want %d %q", plan.AccountID, plan.AccountName, tt.wantAccount, tt.wantName)
			}
		})
	}
}

// The stage fills r.Plan and hands the request on without adding itself to
// the trace (its decision is the chain's Result); a refusal stops the chain.
func TestRouteStage(t *testing.T) {
	snap := build(t)
	stage := route.New(route.Config{Upstreams: upstreams(t, "sip:core1.example.net")}).Stage()
	var got pipeline.Plan
	next := pipeline.HandlerFunc{N: "b2bua", F: func(_ context.Context, r *pipeline.Request) (pipeline.Result, error) {
		got = r.Plan
		return pipeline.Answered("route", 200), nil
	}}
	h := stage(next)
	r := &pipeline.Request{Msg: invite(t, "442071234567", "441110000001"), Source: netip.MustParseAddrPort("10.0.0.10:5060"), Now: t0, Snap: snap,
		Auth: pipeline.Identity{Method: pipeline.AuthIP, AccountID: 1, EndpointID: 10, Dialled: "442071234567", CLI: "441110000001"}}
	if res, err := h.ServeSIP(t.Context(), r); err != nil || res.Status != 200 || len(got.Targets) != 1 || r.Trace.N != 0 {
		t.Fatalf("routed: %+v %v, plan %+v, trace %v", res, err, got, r.Trace.Stages())
	}
	r = &pipeline.Request{Msg: invite(t, "449999999999", "441110000001"), Source: netip.MustParseAddrPort("203.0.113.1:5060"), Now: t0, Snap: snap,
		Auth: pipeline.Identity{Method: pipeline.AuthCore, Dialled: "449999999999"}}
	if res, err := h.ServeSIP(t.Context(), r); err != nil || res.Status != 404 || res.Stage != "route" {
		t.Fatalf("refused: %+v %v", res, err)
	}
}
