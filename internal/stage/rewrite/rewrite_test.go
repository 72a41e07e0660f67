package rewrite_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/siptest"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/stage/rewrite"
	"github.com/sipward/sipward/internal/store"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// dataset:
//
//	account 1 Alpha: CLI patterns +441110000001 (exact) and ^4412 (regex); DID 442079460000
//	account 2 Beta:  no CLI patterns
//
//	ep 10 (2) destination 00→"" (order 1), 0→44 (order 2); CLI ^0(\d+)$ → 44$1
//	ep 11 (2) Force From 441230000000, CLI rule 0→44 (Force From wins)
//	ep 12 (2) CLI prefix 99
//	ep 13 (2) Force From 441230000000 and CLI prefix 99 (Force From wins)
//	ep 14 (2) nothing (dial pattern e164, the default)
//	ep 15 (2) dial pattern national:44, destination rule 44207 → 44207999 (after the pattern)
//	ep 16 (2) dial pattern none
//	ep 20 (1) nothing: the CLI restriction alone
//	ep 21 (1) CLI rule 0→44
//	ep 22 (1) Force From 441110000001
//	ep 23 (1) CLI prefix 44
//	ep 24 (1) Force From 449999 (refused by the account's patterns)
//	sip user 1000 alice (2): destination 9→""; CLI 0→44
//	sip user 1001 bob (1): nothing
//	sip user 1002 carol (1): CLI ^(\d{4})$ → 44120000$1
func dataset() snapshot.Dataset {
	ep := func(id, acct int64, mod func(*store.IPEndpoint)) store.IPEndpoint {
		e := store.IPEndpoint{ID: id, AccountID: acct, Address: fmt.Sprintf("10.0.0.%d", id), Direction: store.DirSends, Protocol: store.ProtoUDP, Port: 5060}
		if mod != nil {
			mod(&e)
		}
		return e
	}
	rule := func(id int64, kind store.OwnerKind, owner int64, typ store.RewriteType, regex bool, match, repl string, order int) store.RewriteRule {
		return store.RewriteRule{ID: id, OwnerKind: kind, OwnerID: owner, Type: typ, Regex: regex, Match: match, Replacement: repl, Order: order}
	}
	const (
		E, U      = store.OwnerEndpoint, store.OwnerSIPUser
		Dest, CLI = store.RewriteDestination, store.RewriteCLI
	)
	return snapshot.Dataset{
		Revision: 1,
		Accounts: []store.Account{{ID: 1, Name: "Alpha"}, {ID: 2, Name: "Beta"}},
		CLIPatterns: []store.CLIPattern{
			{ID: 1, AccountID: 1, Pattern: "+441110000001"},
			{ID: 2, AccountID: 1, Pattern: "^4412", Regex: true},
		},
		DIDs: []store.DID{{ID: 1, AccountID: 1, Number: "442079460000"}},
		Endpoints: []store.IPEndpoint{
			ep(10, 2, nil),
			ep(11, 2, func(e *store.IPEndpoint) { e.ForceFrom = "441230000000" }),
			ep(12, 2, func(e *store.IPEndpoint) { e.CLIPrefix = "99" }),
			ep(13, 2, func(e *store.IPEndpoint) { e.ForceFrom, e.CLIPrefix = "441230000000", "99" }),
			ep(14, 2, nil),
			ep(15, 2, func(e *store.IPEndpoint) { e.DialPattern = "national:44" }),
			ep(16, 2, func(e *store.IPEndpoint) { e.DialPattern = "none" }),
			ep(20, 1, nil),
			ep(21, 1, nil),
			ep(22, 1, func(e *store.IPEndpoint) { e.ForceFrom = "441110000001" }),
			ep(23, 1, func(e *store.IPEndpoint) { e.CLIPrefix = "44" }),
			ep(24, 1, func(e *store.IPEndpoint) { e.ForceFrom = "449999" }),
		},
		Users: []store.SIPUser{
			{ID: 1000, AccountID: 2, Username: "alice", Realm: "sipward"},
			{ID: 1001, AccountID: 1, Username: "bob", Realm: "sipward"},
			{ID: 1002, AccountID: 1, Username: "carol", Realm: "sipward"},
		},
		Rewrites: []store.RewriteRule{
			rule(2, E, 10, Dest, false, "0", "44", 2),
			rule(1, E, 10, Dest, false, "00", "", 1),
			rule(3, E, 10, CLI, true, `^0(\d+)$`, "44$1", 1),
			rule(4, E, 11, CLI, false, "0", "44", 1),
			rule(5, E, 21, CLI, false, "0", "44", 1),
			rule(6, U, 1000, Dest, false, "9", "", 1),
			rule(7, U, 1000, CLI, false, "0", "44", 1),
			rule(8, U, 1002, CLI, true, `^(\d{4})$`, "44120000$1", 1),
			rule(9, E, 15, Dest, false, "44207", "44207999", 1),
		},
	}
}

func build(t testing.TB) *snapshot.Snapshot {
	t.Helper()
	s, err := snapshot.Build(dataset(), snapshot.Options{Realm: "sipward"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// invite parses an INVITE to ruriUser from fromUser.
func invite(t testing.TB, ruriUser, fromUser string) *sip.Request {
	t.Helper()
	return siptest.Req{User: ruriUser, From: fromUser, Via: "10.0.0.10:5060"}.Msg(t)
}

type outcome struct {
	Status  int
	Reason  string
	Stage   string
	Why     string
	Next    bool
	Dialled string
	CLI     string
	Trace   []string
}

func TestRewrite(t *testing.T) {
	snap := build(t)
	ip := func(ep, acct int64, dialled, cli string) pipeline.Identity {
		return pipeline.Identity{Method: pipeline.AuthIP, AccountID: acct, EndpointID: ep, Dialled: dialled, CLI: cli}
	}
	user := func(id, acct int64, name string) pipeline.Identity {
		return pipeline.Identity{Method: pipeline.AuthDigest, AccountID: acct, SIPUserID: id, Username: name}
	}
	pass := func(dialled, cli string) outcome {
		return outcome{Status: 200, Reason: "OK", Stage: "next", Why: "terminal", Next: true, Dialled: dialled, CLI: cli, Trace: []string{"rewrite"}}
	}
	restricted := func(dialled, cli string) outcome {
		return outcome{Status: 403, Reason: "CLI restriction in effect", Stage: "rewrite",
			Why: fmt.Sprintf("CLI %q matches none of account \"Alpha\"'s CLI patterns or DIDs", cli), Dialled: dialled, CLI: cli}
	}
	tests := []struct {
		name        string
		auth        pipeline.Identity
		ruri, from  string // Request-URI and From users
		nilSnap     bool
		want        outcome
		wantOutcome string // sipward_rewrite_requests_total label counted
	}{
		// Endpoint rules: destination rules in order, the first match fires.
		{name: "destination 00 prefix", auth: ip(10, 2, "00442071234567", "441234567890"), ruri: "1100442071234567", from: "441234567890",
			want: pass("442071234567", "441234567890"), wantOutcome: "rewritten"},
		{name: "destination 0 prefix", auth: ip(10, 2, "02071234567", "441234567890"), ruri: "02071234567", from: "441234567890",
			want: pass("442071234567", "441234567890"), wantOutcome: "rewritten"},
		{name: "destination and cli regex", auth: ip(10, 2, "02071234567", "01234567890"), ruri: "02071234567", from: "01234567890",
			want: pass("442071234567", "441234567890"), wantOutcome: "rewritten"},
		{name: "cli regex only", auth: ip(10, 2, "442071234567", "01234567890"), ruri: "442071234567", from: "01234567890",
			want: pass("442071234567", "441234567890"), wantOutcome: "rewritten"},
		{name: "no rule matches", auth: ip(10, 2, "442071234567", "441234567890"), ruri: "442071234567", from: "441234567890",
			want: pass("442071234567", "441234567890"), wantOutcome: "unchanged"},
		{name: "force from replaces the rewritten cli", auth: ip(11, 2, "442071234567", "01234567890"), ruri: "442071234567", from: "01234567890",
			want: pass("442071234567", "441230000000"), wantOutcome: "rewritten"},
		{name: "cli prefix", auth: ip(12, 2, "442071234567", "1234567890"), ruri: "442071234567", from: "1234567890",
			want: pass("442071234567", "991234567890"), wantOutcome: "rewritten"},
		{name: "force from wins over cli prefix", auth: ip(13, 2, "442071234567", "1234567890"), ruri: "442071234567", from: "1234567890",
			want: pass("442071234567", "441230000000"), wantOutcome: "rewritten"},
		{name: "endpoint without rules", auth: ip(14, 2, "02071234567", "01234567890"), ruri: "02071234567", from: "01234567890",
			want: pass("02071234567", "01234567890"), wantOutcome: "unchanged"},

		// Dial patterns, before the rules.
		{name: "e164 removes the +", auth: ip(14, 2, "+442071234567", "441234567890"), ruri: "+442071234567", from: "441234567890",
			want: pass("442071234567", "441234567890"), wantOutcome: "rewritten"},
		{name: "national number, then the rule", auth: ip(15, 2, "02071234567", "441234567890"), ruri: "02071234567", from: "441234567890",
			want: pass("442079991234567", "441234567890"), wantOutcome: "rewritten"},
		{name: "national pattern, international number", auth: ip(15, 2, "0033123456789", "441234567890"), ruri: "0033123456789", from: "441234567890",
			want: pass("33123456789", "441234567890"), wantOutcome: "rewritten"},
		{name: "national pattern, an extension", auth: ip(15, 2, "1001", "441234567890"), ruri: "1001", from: "441234567890",
			want: pass("1001", "441234567890"), wantOutcome: "unchanged"},
		{name: "none keeps the +", auth: ip(16, 2, "+442071234567", "441234567890"), ruri: "+442071234567", from: "441234567890",
			want: pass("+442071234567", "441234567890"), wantOutcome: "unchanged"},

		// Account 1's CLI restriction, after rewriting.
		{name: "exact cli pattern", auth: ip(20, 1, "442071234567", "441110000001"), ruri: "442071234567", from: "441110000001",
			want: pass("442071234567", "441110000001"), wantOutcome: "unchanged"},
		{name: "exact cli pattern, + on the cli", auth: ip(20, 1, "442071234567", "+441110000001"), ruri: "442071234567", from: "+441110000001",
			want: pass("442071234567", "+441110000001"), wantOutcome: "unchanged"},
		{name: "regex cli pattern", auth: ip(20, 1, "442071234567", "441299999999"), ruri: "442071234567", from: "441299999999",
			want: pass("442071234567", "441299999999"), wantOutcome: "unchanged"},
		{name: "a DID of the account is an allowed cli", auth: ip(20, 1, "442071234567", "442079460000"), ruri: "442071234567", from: "442079460000",
			want: pass("442071234567", "442079460000"), wantOutcome: "unchanged"},
		{name: "a DID of the account, + on the cli", auth: ip(20, 1, "442071234567", "+442079460000"), ruri: "442071234567", from: "+442079460000",
			want: pass("442071234567", "+442079460000"), wantOutcome: "unchanged"},
		{name: "cli matching no pattern", auth: ip(20, 1, "442071234567", "441110000002"), ruri: "442071234567", from: "441110000002",
			want: restricted("442071234567", "441110000002"), wantOutcome: "cli_restricted"},
		{name: "empty cli", auth: ip(20, 1, "442071234567", ""), ruri: "442071234567", from: "",
			want: restricted("442071234567", ""), wantOutcome: "cli_restricted"},
		{name: "cli rule makes the cli allowed", auth: ip(21, 1, "442071234567", "01110000001"), ruri: "442071234567", from: "01110000001",
			want: pass("442071234567", "441110000001"), wantOutcome: "rewritten"},
		{name: "cli rule result refused", auth: ip(21, 1, "442071234567", "05550000001"), ruri: "442071234567", from: "05550000001",
			want: restricted("442071234567", "445550000001"), wantOutcome: "cli_restricted"},
		{name: "force from allowed", auth: ip(22, 1, "442071234567", "33123"), ruri: "442071234567", from: "33123",
			want: pass("442071234567", "441110000001"), wantOutcome: "rewritten"},
		{name: "cli prefix makes the cli allowed", auth: ip(23, 1, "442071234567", "1110000001"), ruri: "442071234567", from: "1110000001",
			want: pass("442071234567", "441110000001"), wantOutcome: "rewritten"},
		{name: "force from refused", auth: ip(24, 1, "442071234567", "441110000001"), ruri: "442071234567", from: "441110000001",
			want: restricted("442071234567", "449999"), wantOutcome: "cli_restricted"},

		// SIP users: Dialled and CLI come from the message.
		{name: "sip user rules", auth: user(1000, 2, "alice"), ruri: "9442071234567", from: "01234567890",
			want: pass("442071234567", "441234567890"), wantOutcome: "rewritten"},
		{name: "sip user, no rule matches", auth: user(1000, 2, "alice"), ruri: "442071234567", from: "441234567890",
			want: pass("442071234567", "441234567890"), wantOutcome: "unchanged"},
		{name: "sip user under the cli restriction", auth: user(1001, 1, "bob"), ruri: "442071234567", from: "bob",
			want: restricted("442071234567", "bob"), wantOutcome: "cli_restricted"},
		{name: "sip user allowed cli", auth: user(1001, 1, "bob"), ruri: "442071234567", from: "441110000001",
			want: pass("442071234567", "441110000001"), wantOutcome: "unchanged"},
		{name: "sip user regex rule makes the cli allowed", auth: user(1002, 1, "carol"), ruri: "442071234567", from: "1234",
			want: pass("442071234567", "441200001234"), wantOutcome: "rewritten"},

		// The core is never rewritten nor restricted.
		{name: "core untouched", auth: pipeline.Identity{Method: pipeline.AuthCore, Dialled: "00442071234567", CLI: "0207"},
			ruri: "00442071234567", from: "0207",
			want: pass("00442071234567", "0207"), wantOutcome: "unchanged"},
		{name: "core, numbers from the message", auth: pipeline.Identity{Method: pipeline.AuthCore}, ruri: "441110000009", from: "33123",
			want: pass("441110000009", "33123"), wantOutcome: "unchanged"},

		// Nothing to rewrite with.
		{name: "endpoint gone from the snapshot", auth: ip(99, 1, "02071234567", "0207"), ruri: "02071234567", from: "0207",
			want: pass("02071234567", "0207"), wantOutcome: "unchanged"},
		{name: "no snapshot", auth: ip(20, 1, "02071234567", "0207"), ruri: "02071234567", from: "0207", nilSnap: true,
			want: pass("02071234567", "0207"), wantOutcome: "unchanged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			st, err := rewrite.New(rewrite.Config{Registry: reg})
			if err != nil {
				t.Fatal(err)
			}
			var got outcome
			next := pipeline.HandlerFunc{N: "next", F: func(_ context.Context, r *pipeline.Request) (pipeline.Result, error) {
				got.Next = true
				got.Trace = append([]string(nil), r.Trace.Stages()...)
				return pipeline.Reply("next", 200, "OK", "terminal"), nil
			}}
			r := &pipeline.Request{Msg: invite(t, tt.ruri, tt.from), Source: netip.MustParseAddrPort("10.0.0.10:5060"),
				Transport: pipeline.UDP, Now: t0, Snap: snap, Auth: tt.auth}
			if tt.nilSnap {
				r.Snap = nil
			}
			siptest.Attach(r) // as identify or authn would
			res, err := pipeline.Build(next, st).ServeSIP(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			got.Status, got.Reason, got.Stage, got.Why = res.Status, res.Reason, res.Stage, res.Why
			got.Dialled, got.CLI = r.Auth.Dialled, r.Auth.CLI
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// Only Dialled and CLI change.
			wantAuth := tt.auth
			wantAuth.Dialled, wantAuth.CLI = r.Auth.Dialled, r.Auth.CLI
			if diff := cmp.Diff(wantAuth, r.Auth); diff != "" {
				t.Errorf("r.Auth beyond Dialled and CLI (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]float64{tt.wantOutcome: 1}, counted(t, reg)); diff != "" {
				t.Errorf("sipward_rewrite_requests_total (-want +got):\n%s", diff)
			}
		})
	}
}

// counted returns the non-zero sipward_rewrite_requests_total counts by outcome.
func counted(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "sipward_rewrite_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetCounter().GetValue(); v != 0 {
				for _, l := range m.GetLabel() {
					if l.GetName() == "outcome" {
						out[l.GetValue()] = v
					}
				}
			}
		}
	}
	return out
}

// The unchanged path allocates nothing: measured (0 allocs/op in every case
// below, with and without -race when written), not assumed. Each case's max is
// what it measured; the numbers are logged with -v.
func TestAllocsUnchanged(t *testing.T) {
	snap := build(t)
	st, err := rewrite.New(rewrite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	next := pipeline.HandlerFunc{N: "next", F: func(context.Context, *pipeline.Request) (pipeline.Result, error) {
		return pipeline.Result{}, nil
	}}
	h := pipeline.Build(next, st)
	tests := []struct {
		name string
		auth pipeline.Identity
		max  float64 // measured when the test was written
	}{
		{"endpoint without rules or cli patterns", pipeline.Identity{Method: pipeline.AuthIP, AccountID: 2, EndpointID: 14,
			Dialled: "442071234567", CLI: "441234567890"}, 0},
		{"endpoint with rules, none matching", pipeline.Identity{Method: pipeline.AuthIP, AccountID: 2, EndpointID: 10,
			Dialled: "442071234567", CLI: "441234567890"}, 0},
		{"exact cli pattern", pipeline.Identity{Method: pipeline.AuthIP, AccountID: 1, EndpointID: 20,
			Dialled: "442071234567", CLI: "441110000001"}, 0},
		{"regex cli pattern", pipeline.Identity{Method: pipeline.AuthIP, AccountID: 1, EndpointID: 20,
			Dialled: "442071234567", CLI: "441299999999"}, 0},
		{"core", pipeline.Identity{Method: pipeline.AuthCore, Dialled: "442071234567", CLI: "441234567890"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &pipeline.Request{Msg: invite(t, tt.auth.Dialled, tt.auth.CLI), Transport: pipeline.UDP, Now: t0, Snap: snap}
			ctx := context.Background()
			allocs := testing.AllocsPerRun(1000, func() {
				r.Auth, r.Trace = tt.auth, pipeline.Trace{}
				siptest.Attach(r)
				if _, err := h.ServeSIP(ctx, r); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%s: %v allocs/op", tt.name, allocs)
			if allocs > tt.max {
				t.Errorf("%v allocs/op, want at most %v", allocs, tt.max)
			}
		})
	}
}
