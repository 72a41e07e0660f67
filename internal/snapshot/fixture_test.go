package snapshot

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// t0 is the fixture's "now".
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

var testOptions = Options{
	CoreAddrs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:c0::/48")},
	Realm:     "sipward",
}

func ptr[T any](v T) *T { return &v }

var (
	md5A = strings.Repeat("a1", 16)
	shaA = strings.Repeat("b2", 32)
)

// fixture is a small configuration that exercises every identification rule.
//
//	account 1 Alpha, 2 Beta, 3 Gamma
//	127.0.0.2     ep 10 (1, tech 11), ep 20 (2, tech 22), ep 21 (2, tech 1)
//	127.0.0.3     ep 30 (1, CLI auth), ep 40 (2, CLI auth)
//	127.0.0.4     ep 120 (1, CLI auth), ep 130 (2)
//	10.1.0.0/24   ep 50 (1)      10.1.0.7   ep 60 (2, tech 9)
//	10.0.0.0/8    ep 51 (3)
//	2001:db8::/32 ep 70 (1)      2001:db8:1::/48 ep 80 (2)
//	192.0.2.10    ep 90 (3, tls) 192.0.2.11 ep 91 (3, tcp)
//	198.51.100.1  ep 100 (1), ep 110 (2): ambiguous
//	203.0.113.5   ep 140 (1), but 203.0.113.0/24 is the core
//
// fixture returns the test dataset, its users' settings resolved as the
// store would (store.Resolve, no profiles).
func fixture() Dataset {
	ds := fixtureRows()
	resolveUsers(&ds)
	return ds
}

// resolveUsers resolves every user's Effective settings without profiles,
// as the store does on write: Build reads only Effective.
func resolveUsers(ds *Dataset) {
	for i := range ds.Users {
		store.Resolve(&ds.Users[i], nil)
	}
}

func fixtureRows() Dataset {
	sends := func(id, acct int64, addr, tech string) store.IPEndpoint {
		return store.IPEndpoint{ID: id, AccountID: acct, Address: addr, Direction: store.DirSends, Protocol: store.ProtoUDP, Port: 5060, TechPrefix: tech}
	}
	cliAuth := func(e store.IPEndpoint) store.IPEndpoint { e.CLIAuth = true; return e }
	proto := func(e store.IPEndpoint, p store.Protocol) store.IPEndpoint { e.Protocol = p; return e }
	return Dataset{
		Revision: 7,
		Accounts: []store.Account{
			{ID: 1, Name: "Alpha", Channels: 100, CPS: 10},
			{ID: 2, Name: "Beta", Channels: 50, BlockFrom: 1000, BlockSize: 100},
			{ID: 3, Name: "Gamma"},
		},
		Endpoints: []store.IPEndpoint{
			sends(10, 1, "127.0.0.2", "11"),
			sends(20, 2, "127.0.0.2", "22"),
			sends(21, 2, "127.0.0.2", "1"),
			cliAuth(sends(30, 1, "127.0.0.3", "")),
			cliAuth(sends(40, 2, "127.0.0.3", "")),
			sends(50, 1, "10.1.0.0/24", ""),
			sends(51, 3, "10.0.0.0/8", ""),
			sends(60, 2, "10.1.0.7", "9"),
			sends(70, 1, "2001:db8::/32", ""),
			sends(80, 2, "2001:db8:1::/48", ""),
			proto(sends(90, 3, "192.0.2.10", ""), store.ProtoTLS),
			proto(sends(91, 3, "192.0.2.11", ""), store.ProtoTCP),
			sends(100, 1, "198.51.100.1", ""),
			sends(110, 2, "198.51.100.1", ""),
			cliAuth(sends(120, 1, "127.0.0.4", "")),
			sends(130, 2, "127.0.0.4", ""),
			sends(140, 1, "203.0.113.5", ""),
			{ID: 202, AccountID: 1, Address: "192.0.2.50", Direction: store.DirReceives, Protocol: store.ProtoTCP, Port: 5080,
				Username: "egress", PasswordSealed: []byte("sealed"), RestrictedCodecs: []string{"G729", "opus"}},
			{ID: 201, AccountID: 1, Address: "pbx.example.com", Direction: store.DirReceives, Protocol: store.ProtoTLS, Port: 5061,
				OutboundProxy: "proxy.example.net:5060", ForceNAT: true},
		},
		Users: []store.SIPUser{
			{ID: 1000, AccountID: 1, Username: "alice", Realm: "sipward", HA1MD5: md5A, HA1SHA256: strings.ToUpper(shaA),
				Protocol: new(store.ProtoUDP), NATPing: new(store.NATPingEnabled), Channels: new(2)},
			{ID: 1001, AccountID: 2, Username: "bob", Realm: "sipward", HA1MD5: md5A, Protocol: new(store.ProtoTLS),
				IPWhitelist: []string{"192.0.2.0/24", "2001:db8::1"}, RestrictedCodecs: []string{"PCMA"}, RetainDID: true},
			{ID: 1002, AccountID: 2, Username: "alice", Realm: "elsewhere", HA1MD5: md5A},
			{ID: 1003, AccountID: 3, Username: "carol", Realm: "elsewhere", HA1MD5: md5A},
			{ID: 1004, AccountID: 3, Username: "carol", Realm: "sipward", HA1MD5: md5A},
		},
		CLIPatterns: []store.CLIPattern{
			{ID: 1, AccountID: 1, Pattern: "+441110000001"},
			{ID: 2, AccountID: 2, Pattern: "^4433", Regex: true},
			{ID: 3, AccountID: 1, Pattern: "441110000002"},
		},
		DIDs: []store.DID{
			{ID: 1, AccountID: 2, Number: "442220000002"},
			{ID: 2, AccountID: 1, Number: "441110000009", SIPUserID: ptr(int64(1000))},
			{ID: 3, AccountID: 1, Number: "441110000008"},
		},
		Rewrites: []store.RewriteRule{
			{ID: 2, OwnerKind: store.OwnerEndpoint, OwnerID: 10, Type: store.RewriteDestination, Match: "0", Replacement: "44", Order: 2},
			{ID: 1, OwnerKind: store.OwnerEndpoint, OwnerID: 10, Type: store.RewriteDestination, Match: "00", Replacement: "", Order: 1},
			{ID: 3, OwnerKind: store.OwnerSIPUser, OwnerID: 1000, Type: store.RewriteCLI, Regex: true, Match: `^0(\d+)$`, Replacement: "44$1"},
			{ID: 4, OwnerKind: store.OwnerEndpoint, OwnerID: 999, Type: store.RewriteCLI, Match: "1", Replacement: "2"}, // orphan
		},
		Bans: []store.Ban{
			{ID: 1, Address: "192.0.2.0/24", Source: store.BanOperator, ExpiresAt: t0.Add(time.Hour)},
			{ID: 2, Address: "192.0.2.99", Source: store.BanDetection, ExpiresAt: t0.Add(-time.Hour)},
			{ID: 3, Address: "198.18.0.1", Source: store.BanOperator},
			{ID: 4, Address: "198.18.0.2", Source: store.BanDetection, ExpiresAt: t0.Add(-time.Minute)},
			{ID: 5, Address: "2001:db8:bad::/48", Source: store.BanDetection, ExpiresAt: t0.Add(time.Minute)},
		},
	}
}

func mustBuild(t testing.TB, ds Dataset) *Snapshot {
	t.Helper()
	s, err := Build(ds, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
