package snapshot

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sipward/sipward/internal/store"
)

// result is a Match reduced to IDs, for comparison.
type result struct {
	Kind       string
	Endpoint   int64
	Account    int64
	Other      int64
	Candidates int
	Dialled    string
}

func reduce(m Match) result {
	r := result{Kind: m.Kind.String(), Candidates: m.Candidates, Dialled: m.Dialled}
	if m.Endpoint != nil {
		r.Endpoint, r.Account = m.Endpoint.ID, m.Endpoint.Account.ID
	}
	if m.Other != nil {
		r.Other = m.Other.ID
	}
	return r
}

func TestIdentify(t *testing.T) {
	s := mustBuild(t, fixture())
	matched := func(ep, acct int64, dialled string) result {
		return result{Kind: "matched", Endpoint: ep, Account: acct, Dialled: dialled}
	}
	tests := []struct {
		name      string
		src       string
		transport string
		dialled   string
		cli       string
		want      result
	}{
		// Two accounts on one address, told apart by tech prefix (longest wins, stripped).
		{"tech prefix A", "127.0.0.2", "udp", "1144123", "", matched(10, 1, "44123")},
		{"tech prefix B", "127.0.0.2", "udp", "2244123", "", matched(20, 2, "44123")},
		{"shorter tech prefix", "127.0.0.2", "udp", "1244123", "", matched(21, 2, "244123")},
		{"no tech prefix fits", "127.0.0.2", "udp", "3344123", "", result{Kind: "unmatched", Dialled: "3344123"}},
		{"IPv4-mapped source", "::ffff:127.0.0.2", "udp", "22999", "", matched(20, 2, "999")},

		// Told apart by CLI authentication: exact pattern, '+' ignored; regex; DID.
		{"cli exact", "127.0.0.3", "udp", "123", "441110000001", matched(30, 1, "123")},
		{"cli exact with plus", "127.0.0.3", "udp", "123", "+441110000002", matched(30, 1, "123")},
		{"cli regex", "127.0.0.3", "udp", "123", "443355", matched(40, 2, "123")},
		{"cli regex anchored as written", "127.0.0.3", "udp", "123", "554433", result{Kind: "unmatched", Dialled: "123"}},
		{"cli DID", "127.0.0.3", "udp", "123", "+442220000002", matched(40, 2, "123")},
		{"cli own DID of A", "127.0.0.3", "udp", "123", "441110000009", matched(30, 1, "123")},
		{"cli matches nobody", "127.0.0.3", "udp", "123", "999", result{Kind: "unmatched", Dialled: "123"}},
		{"cli empty", "127.0.0.3", "udp", "123", "", result{Kind: "unmatched", Dialled: "123"}},

		// One CLI-auth endpoint and one plain one on the same address.
		{"cli auth wins over plain", "127.0.0.4", "udp", "5", "441110000001", matched(120, 1, "5")},
		{"plain when cli fails", "127.0.0.4", "udp", "5", "777", matched(130, 2, "5")},

		// Nested CIDRs: B's /32 inside A's /24 inside C's /8, with fallback.
		{"most specific", "10.1.0.7", "udp", "9555", "", matched(60, 2, "555")},
		{"fallback to enclosing /24", "10.1.0.7", "udp", "555", "", matched(50, 1, "555")},
		{"inside /24 only", "10.1.0.8", "udp", "555", "", matched(50, 1, "555")},
		{"inside /8 only", "10.2.3.4", "udp", "555", "", matched(51, 3, "555")},
		{"outside", "11.0.0.1", "udp", "555", "", result{Kind: "unmatched", Dialled: "555"}},

		// IPv6.
		{"IPv6 /48", "2001:db8:1::5", "udp", "1", "", matched(80, 2, "1")},
		{"IPv6 /32", "2001:db8:2::5", "udp", "1", "", matched(70, 1, "1")},
		{"IPv6 outside", "2001:db9::1", "udp", "1", "", result{Kind: "unmatched", Dialled: "1"}},

		// Transport pinning.
		{"tls endpoint over tls", "192.0.2.10", "tls", "1", "", matched(90, 3, "1")},
		{"tls endpoint over udp", "192.0.2.10", "udp", "1", "", result{Kind: "transport", Endpoint: 90, Account: 3, Dialled: "1"}},
		{"tls endpoint over tcp", "192.0.2.10", "tcp", "1", "", result{Kind: "transport", Endpoint: 90, Account: 3, Dialled: "1"}},
		{"tcp endpoint over tls", "192.0.2.11", "tls", "1", "", matched(91, 3, "1")},
		{"tcp endpoint over tcp", "192.0.2.11", "tcp", "1", "", matched(91, 3, "1")},
		{"tcp endpoint over udp", "192.0.2.11", "udp", "1", "", result{Kind: "transport", Endpoint: 91, Account: 3, Dialled: "1"}},
		{"udp endpoint over tls", "10.1.0.8", "tls", "1", "", matched(50, 1, "1")},

		// Ambiguous.
		{"ambiguous", "198.51.100.1", "udp", "1", "", result{Kind: "ambiguous", Endpoint: 100, Account: 1, Other: 110, Candidates: 2, Dialled: "1"}},

		// Core, even where an endpoint also covers the address.
		{"core", "203.0.113.9", "udp", "1", "", result{Kind: "core", Dialled: "1"}},
		{"core over endpoint", "203.0.113.5", "udp", "1", "", result{Kind: "core", Dialled: "1"}},
		{"core IPv6", "2001:db8:c0::1", "tcp", "1", "", result{Kind: "core", Dialled: "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := reduce(s.Identify(netip.MustParseAddr(tt.src), tt.transport, tt.dialled, tt.cli))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Identify(%s, %s, %q, %q) mismatch (-want +got):\n%s", tt.src, tt.transport, tt.dialled, tt.cli, diff)
			}
		})
	}
}

// TestIdentifyBothCLIAuth: two CLI-auth endpoints whose CLI both match are
// ambiguous (exactly one CLI-auth survivor is needed).
func TestIdentifyBothCLIAuth(t *testing.T) {
	ds := fixture()
	ds.CLIPatterns = append(ds.CLIPatterns, store.CLIPattern{ID: 9, AccountID: 1, Pattern: "^4433", Regex: true})
	s := mustBuild(t, ds)
	got := reduce(s.Identify(netip.MustParseAddr("127.0.0.3"), "udp", "1", "443300"))
	want := result{Kind: "ambiguous", Endpoint: 30, Account: 1, Other: 40, Candidates: 2, Dialled: "1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestIdentifyEmptySnapshot(t *testing.T) {
	s := mustBuild(t, Dataset{})
	if got := s.Identify(netip.MustParseAddr("127.0.0.1"), "udp", "1", "2"); got.Kind != Unmatched {
		t.Errorf("Identify on empty snapshot = %v, want unmatched", got.Kind)
	}
	if got := s.Identify(netip.Addr{}, "udp", "1", "2"); got.Kind != Unmatched {
		t.Errorf("Identify(invalid addr) = %v, want unmatched", got.Kind)
	}
}

// TestIdentifyAllocs proves that identification allocates nothing, on every
// path: tech prefix, CLI exact / regex / DID, fallback, IPv6, core, miss; on
// a built snapshot and on one with an overlay (Apply).
func TestIdentifyAllocs(t *testing.T) {
	for kind, s := range map[string]*Snapshot{"built": mustBuild(t, fixture()), "applied": withOverlay(t)} {
		t.Run(kind, func(t *testing.T) { testIdentifyAllocs(t, s) })
	}
}

func testIdentifyAllocs(t *testing.T, s *Snapshot) {
	cases := []struct{ src, transport, dialled, cli string }{
		{"127.0.0.2", "udp", "1144123", ""},
		{"127.0.0.3", "udp", "1", "+441110000001"},
		{"127.0.0.3", "udp", "1", "443355"},
		{"127.0.0.3", "udp", "1", "442220000002"},
		{"10.1.0.7", "udp", "555", ""},
		{"2001:db8:1::5", "tls", "1", ""},
		{"::ffff:10.1.0.7", "udp", "9555", ""},
		{"192.0.2.10", "udp", "1", ""},
		{"198.51.100.1", "udp", "1", ""},
		{"203.0.113.9", "udp", "1", ""},
		{"11.0.0.1", "udp", "1", ""},
	}
	for _, c := range cases {
		src := netip.MustParseAddr(c.src)
		allocs := testing.AllocsPerRun(1000, func() {
			_ = s.Identify(src, c.transport, c.dialled, c.cli)
		})
		if allocs != 0 {
			t.Errorf("Identify(%s, %q, %q) allocates %v times per run, want 0", c.src, c.dialled, c.cli, allocs)
		}
	}
}

func BenchmarkIdentify(b *testing.B) {
	s := mustBuild(b, fixture())
	for _, c := range []struct{ name, src, dialled, cli string }{
		{"tech-prefix", "127.0.0.2", "1144123", ""},
		{"cli-regex", "127.0.0.3", "1", "443355"},
		{"fallback", "10.1.0.7", "555", ""},
		{"ipv6", "2001:db8:1::5", "1", ""},
		{"miss", "11.0.0.1", "1", ""},
	} {
		src := netip.MustParseAddr(c.src)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = s.Identify(src, "udp", c.dialled, c.cli)
			}
		})
	}
}

func ipOf(s string) netip.Addr { return netip.MustParseAddr(s) }
