package snapshot

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gaissmai/bart"

	"github.com/sipward/sipward/internal/paramrewrite"
	"github.com/sipward/sipward/internal/store"
)

// Snapshot is one compiled, immutable configuration version. All methods are
// safe for concurrent use and, unless documented otherwise, allocate nothing.
//
// A snapshot is a base, compiled by Build, and an overlay of the objects that
// Apply replaced since (see the package documentation). Snapshots derived by
// Apply share their base; every lookup by ID, name or number looks in the
// overlay first, when there is one.
type Snapshot struct {
	rev       int64
	realm     string
	coreAddrs []netip.Prefix // Options.CoreAddrs, to tell whether Apply may keep core

	// The base: built once, shared by every snapshot Apply derives.
	accounts []Account // by ID
	acctIdx  idIndex
	eps      []Endpoint // sends endpoints by prefix then ID, then receives endpoints by account then ID
	epIdx    idIndex
	users    []User // by ID
	userIdx  idIndex
	byName   map[string]*User
	dids     []DID // by account then number
	didIdx   idIndex
	byNumber map[string]*DID
	deps     *deps // what Apply looks up in the base

	// Replaced, copy on write, by Apply.
	sends *bart.Table[level] // sends prefix → its endpoints, by ID, and the enclosing prefix's
	core  *bart.Lite
	bans  []store.Ban // every firewall ban, as stored (the firewall compiles them; BanList)
	ov    *overlay    // objects replaced since the base; nil: none
	// moved maps each sends prefix whose entry Apply replaced, added or
	// removed since the base to its entry now (no endpoints: removed); nil:
	// none. movedMin is the length of the shortest, IPv4 then IPv6.
	moved    *bart.Table[level]
	movedMin [2]uint8

	nAccounts, nEndpoints, nUsers, nDIDs int
}

// level is the CIDR table's entry for one sends prefix.
type level struct {
	eps []Endpoint // by ID; never empty
	// up is the entry of the next enclosing prefix (the longest prefix that
	// holds this one without its last bit) as it was when the entry was
	// made; nil: none. Apply may have changed it since (see
	// Snapshot.enclosing).
	up *level
}

// Revision returns the store revision the snapshot was built from.
func (s *Snapshot) Revision() int64 { return s.rev }

// Realm returns Options.Realm.
func (s *Snapshot) Realm() string { return s.realm }

// Accounts returns the number of accounts.
func (s *Snapshot) Accounts() int { return s.nAccounts }

// Endpoints returns the number of IP endpoints (sends and receives).
func (s *Snapshot) Endpoints() int { return s.nEndpoints }

// Users returns the number of SIP users.
func (s *Snapshot) Users() int { return s.nUsers }

// DIDs returns the number of DIDs.
func (s *Snapshot) DIDs() int { return s.nDIDs }

// Bans returns the number of firewall bans (active or not at any given time).
func (s *Snapshot) Bans() int { return len(s.bans) }

// BanList returns every firewall ban of the configuration, operator and
// detection, expired ones included: the firewall's stored bans (its
// SetBans), fed from here on every swap so that the bans in force and the
// configuration come from one revision. The slice is shared: read only.
func (s *Snapshot) BanList() []store.Ban { return s.bans }

// Account returns the account with that ID, or nil.
func (s *Snapshot) Account(id int64) *Account {
	if s.ov != nil {
		if a, ok := s.ov.accts[id]; ok {
			return a
		}
	}
	if i := s.acctIdx.get(id); i >= 0 {
		return &s.accounts[i]
	}
	return nil
}

// Endpoint returns the IP endpoint (sends or receives) with that ID, or nil.
func (s *Snapshot) Endpoint(id int64) *Endpoint {
	if s.ov != nil {
		if e, ok := s.ov.eps[id]; ok {
			return e
		}
	}
	if i := s.epIdx.get(id); i >= 0 {
		return &s.eps[i]
	}
	return nil
}

// User returns the SIP user with that username (exact, case-sensitive), or
// nil. See the package documentation for users of other realms.
func (s *Snapshot) User(name string) *User {
	if s.ov != nil {
		if u, ok := s.ov.names[name]; ok {
			return u
		}
	}
	return s.byName[name]
}

// UserByID returns the SIP user with that ID, or nil.
func (s *Snapshot) UserByID(id int64) *User {
	if s.ov != nil {
		if u, ok := s.ov.users[id]; ok {
			return u
		}
	}
	if i := s.userIdx.get(id); i >= 0 {
		return &s.users[i]
	}
	return nil
}

// DID returns the DID with that number, or nil. A leading '+' is ignored.
func (s *Snapshot) DID(number string) *DID {
	number = strings.TrimPrefix(number, "+")
	if s.ov != nil {
		if d, ok := s.ov.dids[number]; ok {
			return d
		}
	}
	return s.byNumber[number]
}

// IsCore reports whether addr is one of the routing core's addresses
// (Options.CoreAddrs).
func (s *Snapshot) IsCore(addr netip.Addr) bool { return s.core.Contains(addr.Unmap()) }

// KnownSource reports whether addr lies in the prefix of any sends endpoint,
// whatever tech prefix, CLI or transport a request from it carries. The
// firewall uses it to tell calls from unknown addresses.
func (s *Snapshot) KnownSource(addr netip.Addr) bool { return s.sends.Contains(addr.Unmap()) }

// Account is a customer of the platform.
type Account struct {
	ID        int64
	Name      string
	BlockFrom int64 // first internal number (extension); 0 with BlockSize 0: no block
	BlockSize int64
	Channels  int32 // max concurrent calls of the whole account
	CPS       int32 // max new calls per second; 0 = unlimited

	// Receives are the account's receives endpoints, in ID order.
	Receives []Endpoint
	// DIDs are the account's DIDs, ordered by number.
	DIDs []DID

	cliExact []string         // exact patterns without a leading '+', sorted
	cliRegex []*regexp.Regexp // regex patterns, in ID order
	clis     []cliPattern     // every pattern, in ID order: what Apply recompiles the two above from
}

// cliPattern is one compiled CLI pattern of an account.
type cliPattern struct {
	id    int64
	exact string         // without a leading '+'; "" for a regex (or an empty pattern, which matches nothing)
	re    *regexp.Regexp // nil for an exact pattern
}

// setCLI sets cliExact and cliRegex from clis, appending to exact and regex
// (empty; a keeps them, so Build passes windows of one shared array).
func (a *Account) setCLI(exact []string, regex []*regexp.Regexp) {
	for _, c := range a.clis {
		switch {
		case c.re != nil:
			regex = append(regex, c.re)
		case c.exact != "":
			exact = append(exact, c.exact)
		}
	}
	slices.Sort(exact)
	exact = slices.Compact(exact)
	a.cliExact, a.cliRegex = nil, nil
	if len(exact) > 0 {
		a.cliExact = slices.Clip(exact)
	}
	if len(regex) > 0 {
		a.cliRegex = slices.Clip(regex)
	}
}

// HasCLIPatterns reports whether the account restricts its CLIs.
func (a *Account) HasCLIPatterns() bool { return len(a.cliExact)+len(a.cliRegex) > 0 }

// MatchCLI reports whether cli matches one of the account's CLI patterns:
// equal to an exact pattern (a leading '+' ignored on both), or matched by a
// regex pattern (anchored only as written).
func (a *Account) MatchCLI(cli string) bool {
	if _, ok := slices.BinarySearch(a.cliExact, strings.TrimPrefix(cli, "+")); ok {
		return true
	}
	for _, re := range a.cliRegex {
		if re.MatchString(cli) {
			return true
		}
	}
	return false
}

// DID returns the account's DID with that number (a leading '+' ignored), or nil.
func (a *Account) DID(number string) *DID {
	i, ok := slices.BinarySearchFunc(a.DIDs, strings.TrimPrefix(number, "+"), func(d DID, n string) int { return strings.Compare(d.Number, n) })
	if !ok {
		return nil
	}
	return &a.DIDs[i]
}

// CLIAuthenticates reports whether cli identifies the account for CLI
// authentication: it matches one of the account's CLI patterns or is one of
// its DIDs.
func (a *Account) CLIAuthenticates(cli string) bool {
	return cli != "" && (a.MatchCLI(cli) || a.DID(cli) != nil)
}

// Principal is whom a request is attributed to once identify or authn has
// decided: a sends IP endpoint or a SIP user. Endpoint and User both embed
// one, so the stages after authentication read one type — the account,
// the limits, the codec restrictions, the rewrite rules and the call flags —
// instead of asking which of the two the caller is.
type Principal struct {
	Kind    PrincipalKind
	ID      int64 // the endpoint's or the SIP user's
	Account *Account
	Rewrite *paramrewrite.Rules // nil: no rules (Apply on nil passes input through)

	Channels int32  // 0 = unlimited
	CPS      int32  // 0 = unlimited
	Codecs   Codecs // restricted codecs
	Protocol Protocol
	NAT      NATMode
	Relay    RelayMode // when its media goes through the media relay

	// SmartExtension: sipward carries out transfers (REFER) in this
	// principal's calls itself (package b2bua) instead of relaying them.
	SmartExtension bool

	// SessionTimers: RFC 4028 session timers on this principal's calls
	// (package b2bua); SessionExpires is the interval sipward offers.
	SessionTimers  bool
	SessionExpires time.Duration

	// IP endpoints only (zero for SIP users).
	DialPattern       paramrewrite.DialPattern // applied to the dialled number before Rewrite
	CLIPrefix         string
	ForceFrom         string
	InterceptReinvite bool
}

// PrincipalKind says what a Principal is.
type PrincipalKind uint8

// Kinds of principal.
const (
	KindEndpoint PrincipalKind = iota + 1 // a sends IP endpoint
	KindSIPUser                           // a SIP user
)

// Endpoint is an IP endpoint of an account ("IP Authentication").
type Endpoint struct {
	Principal

	Prefix netip.Prefix // the address as a prefix; invalid when the address is an FQDN
	FQDN   string       // receives only: the host name, lower case, no trailing dot

	TechPrefix     string // stripped from the dialled number when it matched
	OutboundProxy  string // egress: host[:port]
	Username       string // egress credentials
	PasswordSealed []byte // egress password, sealed (package secret); nil when none

	Port      uint16
	Direction Direction

	CLIAuth    bool
	ForceNAT   bool
	DisableNAT bool
}

// Address returns the endpoint's address as stored: the FQDN, a bare
// address for a single-host prefix, or the CIDR. It allocates.
func (e *Endpoint) Address() string {
	if e.FQDN != "" {
		return e.FQDN
	}
	if e.Prefix.IsSingleIP() {
		return e.Prefix.Addr().String()
	}
	return e.Prefix.String()
}

// User is a SIP user ("SIP User Authentication").
//
// HA1MD5 and HA1SHA256 are kept as lower-case hex strings, the form package
// digest verifies against, so that authentication needs no conversion; an
// empty string means no HA1 for that algorithm.
type User struct {
	Principal

	Username  string
	Realm     string
	HA1MD5    string
	HA1SHA256 string
	// Whitelist, when not empty, lists the only source prefixes the user may
	// use after digest authentication.
	Whitelist []netip.Prefix

	NATPing NATPing

	RetainDID bool
	Voicemail bool
	// VoicemailRing is how long a call rings the user's phones before it
	// goes to the mailbox (with Voicemail on).
	VoicemailRing time.Duration
}

// Allowed reports whether the user may be used from addr: true when the
// whitelist is empty or one of its prefixes contains addr.
func (u *User) Allowed(addr netip.Addr) bool {
	if len(u.Whitelist) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range u.Whitelist {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// DID is a phone number of an account.
type DID struct {
	ID      int64
	Number  string // E.164 without '+'
	Account *Account
	User    *User // nil: routed to the account's receives endpoints
}

// idIndex maps IDs to positions: a dense table when the IDs are compact
// (the usual case for database sequences), else a map.
type idIndex struct {
	min    int64
	dense  []int32 // position+1 of ID min+i; 0: absent
	sparse map[int64]int32
}

// newIDIndex indexes the n IDs id(0..n-1). A repeated ID keeps its first
// position and is reported to dup with both positions.
func newIDIndex(n int, id func(i int) int64, dup func(first, again int)) idIndex {
	var x idIndex
	if n == 0 {
		return x
	}
	lo, hi := id(0), id(0)
	for i := 1; i < n; i++ {
		lo, hi = min(lo, id(i)), max(hi, id(i))
	}
	if span := uint64(hi) - uint64(lo); hi-lo >= 0 && span < 2*uint64(n)+1024 {
		x.min, x.dense = lo, make([]int32, span+1)
		for i := range n {
			slot := &x.dense[id(i)-lo]
			if *slot != 0 {
				dup(int(*slot-1), i)
				continue
			}
			*slot = int32(i + 1)
		}
		return x
	}
	x.sparse = make(map[int64]int32, n)
	for i := range n {
		if j, ok := x.sparse[id(i)]; ok {
			dup(int(j), i)
			continue
		}
		x.sparse[id(i)] = int32(i)
	}
	return x
}

// get returns the position of id, or -1.
func (x *idIndex) get(id int64) int {
	if x.dense != nil {
		if j := uint64(id) - uint64(x.min); j < uint64(len(x.dense)) {
			return int(x.dense[j]) - 1
		}
		return -1
	}
	if j, ok := x.sparse[id]; ok {
		return int(j)
	}
	return -1
}
