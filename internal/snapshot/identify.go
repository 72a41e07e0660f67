package snapshot

import (
	"net/netip"
	"strings"
)

// MatchKind is the outcome of Identify.
type MatchKind uint8

// Outcomes of Identify.
const (
	// Unmatched: no sends endpoint covers the source (or none survived the
	// tech prefix and CLI filters at any level). Digest authentication decides.
	Unmatched MatchKind = iota
	// Matched: exactly one endpoint; Match.Endpoint says which.
	Matched
	// Core: the source is the routing core.
	Core
	// Ambiguous: several endpoints are left and nothing tells them apart.
	Ambiguous
	// WrongTransport: one endpoint matched, but it is pinned to a protocol
	// that refuses the request's transport.
	WrongTransport
)

var matchKindNames = [...]string{Unmatched: "unmatched", Matched: "matched", Core: "core", Ambiguous: "ambiguous", WrongTransport: "transport"}

// String returns "unmatched", "matched", "core", "ambiguous" or "transport".
func (k MatchKind) String() string {
	if int(k) < len(matchKindNames) {
		return matchKindNames[k]
	}
	return "unknown"
}

// Match is the result of Identify.
type Match struct {
	Kind MatchKind
	// Endpoint is the matched endpoint (Matched, WrongTransport), or the
	// first of the endpoints left (Ambiguous).
	Endpoint *Endpoint
	// Other is the second of the endpoints left (Ambiguous).
	Other *Endpoint
	// Candidates is how many endpoints were left (Ambiguous).
	Candidates int
	// Dialled is the dialled number without the matched endpoint's tech
	// prefix (Matched, WrongTransport), else the dialled number as given.
	// It is a substring: Identify does not allocate.
	Dialled string
}

// Identify says who sent a request from src over transport ("udp", "tcp" or
// "tls") to dialled (the Request-URI user) with caller ID cli (the From
// user). It does not allocate.
//
//  1. A core address is Core.
//  2. Otherwise the sends endpoints whose prefix contains src are tried, the
//     most specific prefix first; when none at a level survives the steps
//     below, the next enclosing prefix is tried, and so on.
//  3. Tech prefix: of the endpoints at a level whose non-empty TechPrefix
//     starts dialled, those with the longest one are kept; when there are
//     none, those without a tech prefix are. The tech prefix is stripped
//     from Match.Dialled.
//  4. CLI authentication: an endpoint with CLIAuth is kept only when cli
//     authenticates its account (Account.CLIAuthenticates). One endpoint
//     left is Matched. Several left, of which exactly one has CLIAuth: that
//     one is Matched. Otherwise Ambiguous.
//  5. A matched endpoint whose Protocol does not accept transport is
//     WrongTransport.
//  6. No endpoint at any level: Unmatched.
func (s *Snapshot) Identify(src netip.Addr, transport, dialled, cli string) Match {
	src = src.Unmap()
	if s.core.Contains(src) {
		return Match{Kind: Core, Dialled: dialled}
	}
	l, ok := s.sends.Lookup(src)
	for ok {
		if m, done := identifyLevel(l.eps, dialled, cli); done {
			if m.Kind == Matched && !m.Endpoint.Protocol.Accepts(transport) {
				m.Kind = WrongTransport
			}
			return m
		}
		l, ok = s.enclosing(&l)
	}
	return Match{Kind: Unmatched, Dialled: dialled}
}

// enclosing returns the table entry of the next enclosing prefix of l's: the
// longest prefix that holds l's without its last bit. That is l.up, unless
// Apply has changed such a prefix as long as l.up's or longer (moved holds
// every change since the base, so every one since l was made): then it is
// the longest one changed, as moved holds it now, or, when that one was
// removed, the one a lookup finds.
func (s *Snapshot) enclosing(l *level) (level, bool) {
	p := l.eps[0].Prefix
	if p.Bits() == 0 {
		return level{}, false
	}
	q := netip.PrefixFrom(p.Addr(), p.Bits()-1)
	if s.moved != nil && q.Bits() >= int(s.movedMin[count(q.Addr().Is6())]) {
		c, ok := s.moved.LookupPrefix(q)
		switch {
		case !ok || l.up != nil && len(c.eps) > 0 && c.eps[0].Prefix.Bits() < l.up.eps[0].Prefix.Bits():
			// None changed, or only shorter ones than l.up's.
		case len(c.eps) == 0:
			return s.sends.LookupPrefix(q)
		default:
			return c, true
		}
	}
	if l.up == nil {
		return level{}, false
	}
	return *l.up, true
}

// identifyLevel applies steps 3 and 4 to the endpoints of one prefix. done is
// false when no endpoint survives.
func identifyLevel(eps []Endpoint, dialled, cli string) (m Match, done bool) {
	best := 0 // length of the longest tech prefix that starts dialled
	for i := range eps {
		if tp := eps[i].TechPrefix; len(tp) > best && strings.HasPrefix(dialled, tp) {
			best = len(tp)
		}
	}
	tech := dialled[:best]
	var first, second, withCLI *Endpoint
	n, nCLI := 0, 0
	for i := range eps {
		e := &eps[i]
		if e.TechPrefix != tech {
			continue
		}
		if e.CLIAuth {
			if !e.Account.CLIAuthenticates(cli) {
				continue
			}
			nCLI++
			withCLI = e
		}
		n++
		if first == nil {
			first = e
		} else if second == nil {
			second = e
		}
	}
	switch {
	case n == 0:
		return Match{}, false
	case n == 1:
		return Match{Kind: Matched, Endpoint: first, Dialled: dialled[best:]}, true
	case nCLI == 1:
		return Match{Kind: Matched, Endpoint: withCLI, Dialled: dialled[best:]}, true
	}
	return Match{Kind: Ambiguous, Endpoint: first, Other: second, Candidates: n, Dialled: dialled}, true
}
