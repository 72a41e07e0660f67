package snapshot

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sipward/sipward/internal/paramrewrite"
	"github.com/sipward/sipward/internal/store"
)

func TestBuildLookups(t *testing.T) {
	s := mustBuild(t, fixture())
	if s.Revision() != 7 || s.Realm() != "sipward" {
		t.Errorf("Revision, Realm = %d, %q; want 7, sipward", s.Revision(), s.Realm())
	}
	type counts struct{ Accounts, Endpoints, Users, DIDs, Bans int }
	if diff := cmp.Diff(counts{3, 19, 5, 3, 5}, counts{s.Accounts(), s.Endpoints(), s.Users(), s.DIDs(), s.Bans()}); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}

	a := s.Account(1)
	if a == nil || a.Name != "Alpha" || a.Channels != 100 || a.CPS != 10 {
		t.Fatalf("Account(1) = %+v", a)
	}
	if s.Account(4) != nil {
		t.Error("Account(4) found")
	}
	var recv []int64
	for _, e := range a.Receives {
		recv = append(recv, e.ID)
	}
	if diff := cmp.Diff([]int64{201, 202}, recv); diff != "" {
		t.Errorf("Account(1).Receives IDs (-want +got):\n%s", diff)
	}
	var dids []string
	for _, d := range a.DIDs {
		dids = append(dids, d.Number)
	}
	if diff := cmp.Diff([]string{"441110000008", "441110000009"}, dids); diff != "" {
		t.Errorf("Account(1).DIDs (-want +got):\n%s", diff)
	}
	if len(s.Account(3).Receives) != 0 || len(s.Account(3).DIDs) != 0 || s.Account(3).HasCLIPatterns() {
		t.Error("account 3 has receives, DIDs or CLI patterns")
	}

	// CLI patterns.
	for _, c := range []struct {
		acct int64
		cli  string
		want bool
	}{
		{1, "441110000001", true}, {1, "+441110000001", true}, {1, "441110000002", true}, {1, "44111000000", false},
		{1, "441110000009", false}, // a DID, not a pattern
		{2, "4433", true}, {2, "+4433", false}, {2, "1", false},
	} {
		if got := s.Account(c.acct).MatchCLI(c.cli); got != c.want {
			t.Errorf("Account(%d).MatchCLI(%q) = %v, want %v", c.acct, c.cli, got, c.want)
		}
	}

	// Endpoints.
	e := s.Endpoint(202)
	want202 := Endpoint{Principal: Principal{Kind: KindEndpoint, ID: 202, Account: a, Codecs: e.Codecs, Protocol: ProtoTCP, DialPattern: paramrewrite.DialE164},
		Prefix: netip.MustParsePrefix("192.0.2.50/32"), Username: "egress", PasswordSealed: []byte("sealed"), Port: 5080, Direction: DirReceives}
	if diff := cmp.Diff(&want202, e, cmp.Comparer(func(x, y *Account) bool { return x == y }), cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); diff != "" {
		t.Errorf("Endpoint(202) (-want +got):\n%s", diff)
	}
	if got := e.Codecs.String(); got != "G729,opus" || !e.Codecs.Has("OPUS") || e.Codecs.Has("PCMU") || e.Codecs.Len() != 2 {
		t.Errorf("Endpoint(202).Codecs = %s", got)
	}
	if e := s.Endpoint(201); e.FQDN != "pbx.example.com" || e.Prefix.IsValid() || e.Address() != "pbx.example.com" || e.Protocol != ProtoTLS || !e.ForceNAT || e.OutboundProxy != "proxy.example.net:5060" {
		t.Errorf("Endpoint(201) = %+v", e)
	}
	if got := s.Endpoint(50).Address(); got != "10.1.0.0/24" {
		t.Errorf("Endpoint(50).Address() = %q", got)
	}
	if s.Endpoint(999) != nil {
		t.Error("Endpoint(999) found")
	}

	// Rewrite rules compiled per owner, in Order.
	if out, id, _ := s.Endpoint(10).Rewrite.Apply(store.RewriteDestination, "0044123"); out != "44123" || id != 1 {
		t.Errorf("endpoint 10 rewrite 0044123 = %q by rule %d, want 44123 by rule 1", out, id)
	}
	if out, id, _ := s.Endpoint(10).Rewrite.Apply(store.RewriteDestination, "0123"); out != "44123" || id != 2 {
		t.Errorf("endpoint 10 rewrite 0123 = %q by rule %d, want 44123 by rule 2", out, id)
	}
	if s.Endpoint(20).Rewrite != nil {
		t.Error("endpoint 20 has rewrite rules")
	}
	if out, _, _ := s.UserByID(1000).Rewrite.Apply(store.RewriteCLI, "0207"); out != "44207" {
		t.Errorf("user 1000 CLI rewrite = %q", out)
	}

	// Users: by name, realm preference, HA1 lower case, whitelist.
	alice := s.User("alice")
	if alice == nil || alice.ID != 1000 || alice.HA1MD5 != md5A || alice.HA1SHA256 != shaA || alice.NATPing != NATPingEnabled || alice.Channels != 2 {
		t.Fatalf("User(alice) = %+v", alice)
	}
	if u := s.User("carol"); u == nil || u.ID != 1004 {
		t.Errorf("User(carol) = %+v, want ID 1004 (the one in this node's realm)", u)
	}
	if u := s.UserByID(1002); u == nil || u.Realm != "elsewhere" || u.Account.ID != 2 {
		t.Errorf("UserByID(1002) = %+v", u)
	}
	if s.User("nobody") != nil || s.User("Alice") != nil {
		t.Error("User found an unknown name")
	}
	bob := s.User("bob")
	if !bob.Allowed(netip.MustParseAddr("192.0.2.7")) || !bob.Allowed(netip.MustParseAddr("2001:db8::1")) || bob.Allowed(netip.MustParseAddr("10.0.0.1")) {
		t.Error("bob's whitelist")
	}
	if !alice.Allowed(netip.MustParseAddr("10.0.0.1")) {
		t.Error("alice has no whitelist but is refused")
	}
	if bob.Protocol != ProtoTLS || !bob.RetainDID || !bob.Codecs.Has("pcma") || bob.HA1SHA256 != "" {
		t.Errorf("User(bob) = %+v", bob)
	}

	// DIDs.
	if d := s.DID("+441110000009"); d == nil || d.Account != a || d.User != alice {
		t.Errorf("DID(+441110000009) = %+v", d)
	}
	if d := s.DID("442220000002"); d == nil || d.Account.ID != 2 || d.User != nil {
		t.Errorf("DID(442220000002) = %+v", d)
	}
	if s.DID("1") != nil {
		t.Error("DID(1) found")
	}

	// Core, known sources.
	for addr, want := range map[string]bool{"203.0.113.1": true, "::ffff:203.0.113.1": true, "2001:db8:c0::9": true, "203.0.114.1": false} {
		if got := s.IsCore(netip.MustParseAddr(addr)); got != want {
			t.Errorf("IsCore(%s) = %v", addr, got)
		}
	}
	for addr, want := range map[string]bool{"10.200.0.1": true, "127.0.0.2": true, "192.0.2.50": false, "127.0.0.5": false} {
		if got := s.KnownSource(netip.MustParseAddr(addr)); got != want {
			t.Errorf("KnownSource(%s) = %v", addr, got)
		}
	}
}

// TestBuildSmartExtension: smart_extension reaches the Principal of IP
// endpoints (sends and receives) and of SIP users, and stays off for the
// others.
func TestBuildSmartExtension(t *testing.T) {
	ds := fixture()
	on := map[int64]bool{10: true, 201: true, 1001: true}
	for i := range ds.Endpoints {
		ds.Endpoints[i].SmartExtension = on[ds.Endpoints[i].ID]
	}
	for i := range ds.Users {
		ds.Users[i].SmartExtension = on[ds.Users[i].ID]
	}
	s := mustBuild(t, ds)
	got := fixturePrincipals(s)
	for id, p := range got {
		if p.SmartExtension != on[id] {
			t.Errorf("principal %d: SmartExtension = %v, want %v", id, p.SmartExtension, on[id])
		}
	}
}

// TestBuildSessionTimers: session_timers and session_expires reach the
// Principal of IP endpoints (sends and receives) and of SIP users, the
// interval in seconds as a duration; a zero interval (data stored before
// the setting) stays zero for the call path to take as the default.
func TestBuildSessionTimers(t *testing.T) {
	ds := fixture()
	type timers struct {
		on      bool
		expires time.Duration
	}
	want := map[int64]timers{
		10: {true, 1800 * time.Second}, 20: {false, 90 * time.Second}, 201: {true, 86400 * time.Second}, 202: {false, 0},
		1000: {true, 600 * time.Second}, 1001: {false, 0},
	}
	for i := range ds.Endpoints {
		w := want[ds.Endpoints[i].ID]
		ds.Endpoints[i].SessionTimers, ds.Endpoints[i].SessionExpires = w.on, int(w.expires/time.Second)
	}
	for i := range ds.Users {
		w := want[ds.Users[i].ID]
		ds.Users[i].SessionTimers, ds.Users[i].SessionExpires = w.on, int(w.expires/time.Second)
	}
	s := mustBuild(t, ds)
	got := fixturePrincipals(s)
	for id, p := range got {
		if g := (timers{p.SessionTimers, p.SessionExpires}); g != want[id] {
			t.Errorf("principal %d: session timers %+v, want %+v", id, g, want[id])
		}
	}
}

// fixturePrincipals returns the Principals of fixture()'s endpoints and
// users in s, by id.
func fixturePrincipals(s *Snapshot) map[int64]*Principal {
	got := map[int64]*Principal{}
	for _, id := range []int64{10, 20, 201, 202} {
		got[id] = &s.Endpoint(id).Principal
	}
	for _, id := range []int64{1000, 1001} {
		got[id] = &s.UserByID(id).Principal
	}
	return got
}

// TestBanList: the snapshot carries every ban as stored, for the firewall
// (which compiles them; its TestSetBans holds what a list means).
func TestBanList(t *testing.T) {
	s := mustBuild(t, fixture())
	if diff := cmp.Diff(fixture().Bans, s.BanList()); diff != "" {
		t.Errorf("BanList (-want +got):\n%s", diff)
	}
	ds := fixture()
	ds.Bans = append(ds.Bans, store.Ban{ID: 9, Address: "pbx.example.com"})
	if _, err := Build(ds, testOptions); err == nil || !strings.Contains(err.Error(), "ban 9") {
		t.Errorf("a ban on a host name: %v, want the build refused naming ban 9", err)
	}
}

// TestLookupAllocs proves that the hot-path lookups allocate nothing, on a
// built snapshot and on one with an overlay (Apply).
func TestLookupAllocs(t *testing.T) {
	for kind, s := range map[string]*Snapshot{"built": mustBuild(t, fixture()), "applied": withOverlay(t)} {
		t.Run(kind, func(t *testing.T) { testLookupAllocs(t, s) })
	}
}

func testLookupAllocs(t *testing.T, s *Snapshot) {
	core, ip := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("10.1.0.7")
	for name, fn := range map[string]func(){
		"User (overlay)":     func() { _ = s.User("bob") },
		"UserByID (overlay)": func() { _ = s.UserByID(1001) },
		"Account (overlay)":  func() { _ = s.Account(2).MatchCLI("441110000005") },
		"Endpoint (overlay)": func() { _ = s.Endpoint(60) },
		"DID (overlay)":      func() { _ = s.DID("442220000002") },
		"User":               func() { _ = s.User("alice") },
		"UserByID":           func() { _ = s.UserByID(1003) },
		"IsCore":             func() { _ = s.IsCore(core) },
		"KnownSource":        func() { _ = s.KnownSource(ip) },
		"Account":            func() { _ = s.Account(2) },
		"Endpoint":           func() { _ = s.Endpoint(110) },
		"DID":                func() { _ = s.DID("+441110000009") },
		"MatchCLI":           func() { _ = s.Account(2).MatchCLI("44339") },
		"Codecs.Has":         func() { _ = s.Endpoint(202).Codecs.Has("OPUS") },
		"Allowed":            func() { _ = s.User("bob").Allowed(ip) },
	} {
		if allocs := testing.AllocsPerRun(1000, fn); allocs != 0 {
			t.Errorf("%s allocates %v times per run, want 0", name, allocs)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(ds *Dataset)
		opt    func(o *Options)
		want   []string // substrings of the error
	}{
		{"bad rewrite regex", func(ds *Dataset) {
			ds.Rewrites = append(ds.Rewrites, store.RewriteRule{ID: 12, OwnerKind: store.OwnerEndpoint, OwnerID: 20, Type: store.RewriteCLI, Regex: true, Match: "(4"})
		}, nil, []string{`snapshot: build revision 7: ip endpoint 20: rewrite rule 12: match "(4": `}},
		{"bad user rewrite regex", func(ds *Dataset) {
			ds.Rewrites = append(ds.Rewrites, store.RewriteRule{ID: 13, OwnerKind: store.OwnerSIPUser, OwnerID: 1001, Type: store.RewriteDestination, Regex: true, Match: "[", Order: 1})
		}, nil, []string{`sip user 1001: rewrite rule 13: match "["`}},
		{"bad rewrite type", func(ds *Dataset) {
			ds.Rewrites = append(ds.Rewrites, store.RewriteRule{ID: 14, OwnerKind: store.OwnerEndpoint, OwnerID: 20, Type: "from"})
		}, nil, []string{`rewrite rule 14: type "from": unknown`}},
		{"bad CLI regex", func(ds *Dataset) {
			ds.CLIPatterns = append(ds.CLIPatterns, store.CLIPattern{ID: 8, AccountID: 3, Pattern: "a)", Regex: true})
		}, nil, []string{`account 3: cli pattern 8: regex "a)": `}},
		{"endpoint of unknown account", func(ds *Dataset) {
			ds.Endpoints[0].AccountID = 77
		}, nil, []string{"ip endpoint 10: account 77: not found"}},
		{"bad address", func(ds *Dataset) {
			ds.Endpoints[1].Address = "10.0.0.1/33"
			ds.Endpoints[2].Address = "10.0.0.1/24"
		}, nil, []string{`ip endpoint 20: address "10.0.0.1/33": invalid prefix`, `ip endpoint 21: address "10.0.0.1/24": host bits set`}},
		{"sends FQDN", func(ds *Dataset) {
			ds.Endpoints[0].Address = "pbx.example.com"
		}, nil, []string{`ip endpoint 10: address "pbx.example.com": a host name cannot send`}},
		{"unknown protocol and codec", func(ds *Dataset) {
			ds.Endpoints[0].Protocol = "sctp"
			ds.Endpoints[1].RestrictedCodecs = []string{"PCMU", "G.711"}
		}, nil, []string{`ip endpoint 10: protocol "sctp": unknown`, `ip endpoint 20: restricted codec "G.711": unknown`}},
		{"negative limit", func(ds *Dataset) {
			ds.Users[0].Effective.Channels.Value = -1
		}, nil, []string{"sip user 1000: channels: -1: out of range"}},
		{"bad HA1 is not shown", func(ds *Dataset) {
			ds.Users[1].HA1MD5 = "zz" + md5A[2:]
			ds.Users[2].HA1SHA256 = "abc"
		}, nil, []string{"sip user 1001: ha1_md5: not hex", "sip user 1002: ha1_sha256: 3 characters, want 64"}},
		{"DID of another account's user", func(ds *Dataset) {
			ds.DIDs[0].SIPUserID = ptr(int64(1000))
		}, nil, []string{"did 1 (442220000002): sip user 1000 belongs to account 1, not 2"}},
		{"duplicate DID", func(ds *Dataset) {
			ds.DIDs = append(ds.DIDs, store.DID{ID: 9, AccountID: 3, Number: "+442220000002"})
		}, nil, []string{"number 442220000002: already did "}},
		{"bad whitelist", func(ds *Dataset) {
			ds.Users[1].IPWhitelist = []string{"192.0.2.0/24", "nope"}
		}, nil, []string{`sip user 1001: ip_whitelist[1]: "nope": a host name is not allowed`}},
		{"bad ban", func(ds *Dataset) {
			ds.Bans[0].Address = "banned.example.com"
		}, nil, []string{`ban 1: address "banned.example.com": a host name cannot be banned`}},
		{"bad core prefix", nil, func(o *Options) {
			o.CoreAddrs = append(o.CoreAddrs, netip.Prefix{})
		}, []string{`core_addrs[2]: "invalid Prefix": invalid prefix`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := fixture()
			opt := testOptions
			opt.CoreAddrs = append([]netip.Prefix(nil), opt.CoreAddrs...)
			if tt.modify != nil {
				tt.modify(&ds)
			}
			if tt.opt != nil {
				tt.opt(&opt)
			}
			s, err := Build(ds, opt)
			if err == nil {
				t.Fatal("Build succeeded")
			}
			if s != nil {
				t.Error("Build returned a snapshot with its error")
			}
			var be *BuildError
			if !errors.As(err, &be) || be.Revision != 7 {
				t.Errorf("error %T is not a *BuildError of revision 7", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), md5A[2:]) {
				t.Error("error shows an HA1")
			}
		})
	}
}

func TestBuildErrorCap(t *testing.T) {
	ds := fixture()
	for i := range 15 {
		ds.CLIPatterns = append(ds.CLIPatterns, store.CLIPattern{ID: int64(100 + i), AccountID: 55})
	}
	_, err := Build(ds, testOptions)
	var be *BuildError
	if !errors.As(err, &be) || len(be.Errs) != maxBuildErrors || be.More != 5 {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasSuffix(err.Error(), "; and 5 more") {
		t.Errorf("err = %q, want the count of the rest at the end", err)
	}
}

// TestBuildSortsInput: Build does not rely on the store's order.
func TestBuildSortsInput(t *testing.T) {
	ds := fixture()
	reverse := func(n int, swap func(i, j int)) {
		for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
			swap(i, j)
		}
	}
	reverse(len(ds.Accounts), func(i, j int) { ds.Accounts[i], ds.Accounts[j] = ds.Accounts[j], ds.Accounts[i] })
	reverse(len(ds.Endpoints), func(i, j int) { ds.Endpoints[i], ds.Endpoints[j] = ds.Endpoints[j], ds.Endpoints[i] })
	reverse(len(ds.Users), func(i, j int) { ds.Users[i], ds.Users[j] = ds.Users[j], ds.Users[i] })
	reverse(len(ds.DIDs), func(i, j int) { ds.DIDs[i], ds.DIDs[j] = ds.DIDs[j], ds.DIDs[i] })
	s := mustBuild(t, ds)
	if u := s.User("carol"); u.ID != 1004 {
		t.Errorf("User(carol).ID = %d", u.ID)
	}
	if u := s.User("alice"); u.ID != 1000 {
		t.Errorf("User(alice).ID = %d", u.ID)
	}
	for _, id := range []int64{1, 2, 3} {
		if s.Account(id) == nil {
			t.Errorf("Account(%d) not found", id)
		}
	}
	if got := fmt.Sprint(s.Account(1).Receives[0].ID, s.Account(1).Receives[1].ID); got != "201 202" {
		t.Errorf("receives = %s", got)
	}
	if m := s.Identify(netip.MustParseAddr("10.1.0.7"), "udp", "555", ""); m.Kind != Matched || m.Endpoint.ID != 50 {
		t.Errorf("fallback after reorder = %+v", reduce(m))
	}
}

// TestCodecBits pins the bit of each codec: stage/codecs reads a Codecs as
// its own Set (codecs.FromBits), so the layout must never change; new codecs
// are appended.
func TestCodecBits(t *testing.T) {
	want := []string{"PCMU", "PCMA", "G722", "G723", "G726-32", "G728", "G729", "GSM",
		"iLBC", "opus", "speex", "AMR", "AMR-WB", "telephone-event", "H261", "H263", "H264", "VP8", "VP9", "T38"}
	if diff := cmp.Diff(want, CodecNames[:]); diff != "" {
		t.Errorf("CodecNames changed (-want +got):\n%s", diff)
	}
	c, err := parseCodecs([]string{"pcma", "T38"})
	if err != nil || c != 1<<1|1<<19 {
		t.Errorf("parseCodecs(pcma, T38) = %#x, %v", uint32(c), err)
	}
}
