package snapshot

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gaissmai/bart"

	"github.com/sipward/sipward/internal/paramrewrite"
	"github.com/sipward/sipward/internal/store"
)

// Options configure Build. They are per node, not stored configuration.
type Options struct {
	// CoreAddrs are the routing core's source prefixes. A request from one of
	// them is the core delivering a call, never a customer.
	CoreAddrs []netip.Prefix
	// Realm is this node's digest realm (see the package documentation).
	Realm string
}

// maxBuildErrors caps how many culprits a BuildError names.
const maxBuildErrors = 10

// BuildError is the error of a Build that failed. It names each culprit
// ("ip endpoint 7: rewrite rule 12: match \"(\": …"), up to ten, and
// counts the rest.
type BuildError struct {
	Revision int64
	Errs     []error
	More     int // culprits beyond Errs
}

// Error joins the culprits with "; ".
func (e *BuildError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "snapshot: build revision %d: ", e.Revision)
	for i, err := range e.Errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "; and %d more", e.More)
	}
	return b.String()
}

// Unwrap returns the culprits.
func (e *BuildError) Unwrap() []error { return e.Errs }

// Build validates and compiles ds into a Snapshot. It checks what the hot path
// relies on: every object's account (and a DID's SIP user) exists, addresses,
// protocols, codecs, limits and HA1 digests are well formed, CLI regexes and
// rewrite rules compile, DID numbers are unique. On any failure it returns a
// *BuildError and no snapshot. Rewrite rules whose owner no longer exists are
// ignored (they cannot apply to anything).
//
// Build does not modify ds, but the snapshot shares strings with it; ds may be
// dropped afterwards.
func Build(ds Dataset, opt Options) (*Snapshot, error) {
	b := &builder{
		ds: &ds,
		s: &Snapshot{rev: ds.Revision, realm: opt.Realm, coreAddrs: slices.Clone(opt.CoreAddrs),
			deps: &deps{}, sends: &bart.Table[level]{}},
		strs: make(map[string]string),
	}
	b.core(opt.CoreAddrs)
	b.accounts()
	b.cliPatterns()
	b.users(opt.Realm)
	b.endpoints()
	b.dids()
	b.rewrites()
	b.s.bans = b.bans(ds.Bans)
	if len(b.errs) > 0 {
		return nil, b.err(ds.Revision)
	}
	s := b.s
	s.nAccounts, s.nEndpoints, s.nUsers, s.nDIDs = len(s.accounts), len(s.eps), len(s.users), len(s.dids)
	return s, nil
}

type builder struct {
	ds   *Dataset
	s    *Snapshot
	strs map[string]string // interned small strings
	errs []error
	more int
}

// err returns the BuildError of what failed.
func (b *builder) err(rev int64) error {
	return &BuildError{Revision: rev, Errs: b.errs, More: b.more}
}

func (b *builder) failf(format string, args ...any) {
	if len(b.errs) < maxBuildErrors {
		b.errs = append(b.errs, fmt.Errorf(format, args...))
	} else {
		b.more++
	}
}

// intern returns the canonical copy of s, so that the many endpoints sharing
// a tech prefix or realm share one string.
func (b *builder) intern(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := b.strs[s]; ok {
		return c
	}
	b.strs[s] = s
	return s
}

// limit converts a channel or CPS limit to int32.
func (b *builder) limit(what string, id int64, field string, v int) int32 {
	if v < 0 || v > math.MaxInt32 {
		b.failf("%s %d: %s: %d: out of range", what, id, field, v)
		return 0
	}
	return int32(v)
}

func (b *builder) core(addrs []netip.Prefix) {
	b.s.core = &bart.Lite{}
	for i, p := range addrs {
		if !p.IsValid() {
			b.failf("core_addrs[%d]: %q: invalid prefix", i, p)
			continue
		}
		b.s.core.Insert(unmapPrefix(p).Masked())
	}
}

func (b *builder) accounts() {
	src := b.ds.Accounts
	accts := make([]Account, len(src))
	for i := range src {
		accts[i] = b.account(&src[i])
	}
	if !slices.IsSortedFunc(accts, func(x, y Account) int { return cmp.Compare(x.ID, y.ID) }) {
		slices.SortFunc(accts, func(x, y Account) int { return cmp.Compare(x.ID, y.ID) })
	}
	b.s.accounts = accts
	b.s.acctIdx = newIDIndex(len(accts), func(i int) int64 { return accts[i].ID },
		func(_, i int) { b.failf("account %d: listed twice", accts[i].ID) })
}

// account compiles an account's own fields.
func (b *builder) account(a *store.Account) Account {
	return Account{
		ID:        a.ID,
		Name:      a.Name,
		BlockFrom: a.BlockFrom,
		BlockSize: a.BlockSize,
		Channels:  b.limit("account", a.ID, "channels", a.Channels),
		CPS:       b.limit("account", a.ID, "cps", a.CPS),
	}
}

// acct returns the position of the account with that ID, or -1.
func (b *builder) acct(id int64) int32 { return int32(b.s.acctIdx.get(id)) }

// cliPatterns compiles each account's CLI patterns. The accounts' pattern
// lists, exact numbers and regexes are windows of three shared slices.
func (b *builder) cliPatterns() {
	src := b.ds.CLIPatterns
	acctOf := make([]int32, len(src)) // account position, -1: failed
	pats := make([]cliPattern, len(src))
	for i := range src {
		p := &src[i]
		acctOf[i] = -1
		a := b.acct(p.AccountID)
		if a < 0 {
			b.failf("cli pattern %d: account %d: not found", p.ID, p.AccountID)
			continue
		}
		if c, ok := b.cliPattern(p); ok {
			acctOf[i], pats[i] = a, c
		}
	}
	order, start := bucket(acctOf, len(b.s.accounts))
	flat := make([]cliPattern, len(order))
	owner := make([]int64, len(order))
	for k, i := range order {
		flat[k], owner[k] = pats[i], src[i].AccountID
	}
	exact := make([]string, len(order))
	regex := make([]*regexp.Regexp, len(order))
	byID := func(x, y cliPattern) int { return cmp.Compare(x.id, y.id) }
	for a := range b.s.accounts {
		lo, hi := start[a], start[a+1]
		if lo == hi {
			continue
		}
		acct := &b.s.accounts[a]
		acct.clis = flat[lo:hi:hi]
		if !slices.IsSortedFunc(acct.clis, byID) {
			slices.SortFunc(acct.clis, byID)
		}
		acct.setCLI(exact[lo:lo:hi], regex[lo:lo:hi])
	}
	b.s.deps.cliOwner = owner
	b.s.deps.cliIdx = newIDIndex(len(flat), func(i int) int64 { return flat[i].id }, func(int, int) {})
}

// cliPattern compiles one CLI pattern (its account exists).
func (b *builder) cliPattern(p *store.CLIPattern) (cliPattern, bool) {
	if !p.Regex {
		return cliPattern{id: p.ID, exact: b.intern(strings.TrimPrefix(p.Pattern, "+"))}, true
	}
	re, err := regexp.Compile(p.Pattern)
	if err != nil {
		b.failf("account %d: cli pattern %d: regex %q: %v", p.AccountID, p.ID, p.Pattern, err)
		return cliPattern{}, false
	}
	return cliPattern{id: p.ID, re: re}, true
}

func (b *builder) users(realm string) {
	src := b.ds.Users
	order := sortedOrder(len(src), func(i, j int32) int { return cmp.Compare(src[i].ID, src[j].ID) })
	nWhite := 0
	for i := range src {
		nWhite += len(src[i].IPWhitelist)
	}
	white := make([]netip.Prefix, 0, nWhite)
	users := make([]User, 0, len(src))
	for _, i := range order {
		if u, ok := b.user(&src[i], &white); ok {
			users = append(users, u)
		}
	}
	b.s.users = users
	b.s.userIdx = newIDIndex(len(users), func(i int) int64 { return users[i].ID },
		func(_, i int) { b.failf("sip user %d: listed twice", users[i].ID) })
	byName := make(map[string]*User, len(users))
	shared := make(map[string][]int32)
	acctOf := make([]int32, len(users))
	for i := range users {
		u := &users[i]
		acctOf[i] = b.acct(u.Account.ID)
		if old, ok := byName[u.Username]; ok {
			shared[u.Username] = nil
			if old.Realm == realm || u.Realm != realm {
				continue // the user in this node's realm, else the lowest ID, keeps the name
			}
		}
		byName[u.Username] = u
	}
	if len(shared) > 0 { // every holder of a shared name, for Apply (settle)
		for i := range users {
			if h, ok := shared[users[i].Username]; ok {
				shared[users[i].Username] = append(h, int32(i))
			}
		}
	}
	b.s.byName = byName
	b.s.deps.shared = shared
	b.s.deps.acctUsers, b.s.deps.acctUsersAt = bucket(acctOf, len(b.s.accounts))
}

func (b *builder) user(su *store.SIPUser, white *[]netip.Prefix) (User, bool) {
	ok := true
	fail := func(format string, args ...any) {
		b.failf("sip user %d: "+format, append([]any{su.ID}, args...)...)
		ok = false
	}
	a := b.s.Account(su.AccountID)
	if a == nil {
		fail("account %d: not found", su.AccountID)
	}
	if su.Username == "" {
		fail("username: empty")
	}
	md5, err := checkHA1(su.HA1MD5, 32)
	if err != nil {
		fail("ha1_md5: %v", err)
	}
	sha, err := checkHA1(su.HA1SHA256, 64)
	if err != nil {
		fail("ha1_sha256: %v", err)
	}
	proto, err := parseProtocol(su.Effective.Protocol.Value)
	if err != nil {
		fail("%v", err)
	}
	ping, err := parseNATPing(su.Effective.NATPing.Value)
	if err != nil {
		fail("%v", err)
	}
	codecs, err := parseCodecs(su.Effective.RestrictedCodecs.Value)
	if err != nil {
		fail("%v", err)
	}
	relay, err := parseRelayMode(su.MediaRelay)
	if err != nil {
		fail("%v", err)
	}
	start := len(*white)
	for j, w := range su.IPWhitelist {
		p, fqdn, err := parseAddress(w)
		if err == nil && fqdn != "" {
			err = errors.New("a host name is not allowed")
		}
		if err != nil {
			fail("ip_whitelist[%d]: %q: %v", j, w, err)
			continue
		}
		*white = append(*white, p)
	}
	u := User{
		Principal: Principal{
			Kind:           KindSIPUser,
			ID:             su.ID,
			Account:        a,
			Channels:       b.limit("sip user", su.ID, "channels", su.Effective.Channels.Value),
			CPS:            b.limit("sip user", su.ID, "cps", su.Effective.CPS.Value),
			Codecs:         codecs,
			Protocol:       proto,
			Relay:          relay,
			SmartExtension: su.SmartExtension,
			SessionTimers:  su.SessionTimers,
			SessionExpires: time.Duration(su.SessionExpires) * time.Second,
		},
		Username:  su.Username,
		Realm:     b.intern(su.Realm),
		HA1MD5:    md5,
		HA1SHA256: sha,
		NATPing:   ping,
		RetainDID: su.RetainDID,
		Voicemail: su.Voicemail.Enabled, VoicemailRing: ringTimeout(su.Voicemail.RingTimeout),
	}
	if end := len(*white); end > start {
		u.Whitelist = (*white)[start:end:end]
	}
	return u, ok
}

// hexDigit[c] is 1 for a lower-case hex digit, 2 for an upper-case one.
var hexDigit = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c], t[c-'a'+'A'] = 1, 2
	}
	return t
}()

// checkHA1 checks that ha1 is empty or n hex digits, and returns it in lower
// case. The error never shows the value.
func checkHA1(ha1 string, n int) (string, error) {
	if ha1 == "" {
		return "", nil
	}
	if len(ha1) != n {
		return "", fmt.Errorf("%d characters, want %d", len(ha1), n)
	}
	var kinds uint8
	for i := 0; i < len(ha1); i++ {
		k := hexDigit[ha1[i]]
		if k == 0 {
			return "", errors.New("not hex")
		}
		kinds |= k
	}
	if kinds&2 != 0 {
		return strings.ToLower(ha1), nil
	}
	return ha1, nil
}

// sendKey sorts sends endpoints by prefix, then ID, without touching the
// store structs.
type sendKey struct {
	hi, lo uint64 // address
	id     int64
	idx    int32 // position in Dataset.Endpoints
	bits   uint8
	v6     bool
}

func compareSendKeys(x, y sendKey) int {
	if x.hi != y.hi {
		return cmp.Compare(x.hi, y.hi)
	}
	if x.lo != y.lo {
		return cmp.Compare(x.lo, y.lo)
	}
	if x.bits != y.bits {
		return cmp.Compare(x.bits, y.bits)
	}
	if x.v6 != y.v6 {
		if x.v6 {
			return 1
		}
		return -1
	}
	return cmp.Compare(x.id, y.id)
}

// endpoints compiles the IP endpoints: sends endpoints sorted by prefix into
// the CIDR table, then receives endpoints grouped by account.
func (b *builder) endpoints() {
	src := b.ds.Endpoints
	prefixes := make([]netip.Prefix, len(src))
	fqdns := make([]string, len(src))
	keys := make([]sendKey, 0, len(src))
	recvAcct := make([]int32, len(src)) // account position of a receives endpoint, else -1
	for i := range src {
		e := &src[i]
		recvAcct[i] = -1
		p, fqdn, dir, ok := b.parseEndpoint(e)
		if !ok {
			continue
		}
		prefixes[i], fqdns[i] = p, fqdn
		if dir == DirReceives {
			if recvAcct[i] = b.acct(e.AccountID); recvAcct[i] < 0 {
				b.failf("ip endpoint %d: account %d: not found", e.ID, e.AccountID)
			}
			continue
		}
		a16 := p.Addr().As16()
		keys = append(keys, sendKey{
			hi: binary.BigEndian.Uint64(a16[:8]), lo: binary.BigEndian.Uint64(a16[8:]),
			id: e.ID, idx: int32(i), bits: uint8(p.Bits()), v6: p.Addr().Is6(),
		})
	}
	if !slices.IsSortedFunc(keys, compareSendKeys) {
		slices.SortFunc(keys, compareSendKeys)
	}
	recvOrder, recvStart := bucket(recvAcct, len(b.s.accounts))

	eps := make([]Endpoint, 0, len(keys)+len(recvOrder))
	for _, k := range keys {
		if e, ok := b.endpoint(&src[k.idx], prefixes[k.idx], "", DirSends); ok {
			eps = append(eps, e)
		}
	}
	nSends := len(eps)
	for a := range b.s.accounts {
		lo := len(eps)
		for _, i := range recvOrder[recvStart[a]:recvStart[a+1]] {
			if e, ok := b.endpoint(&src[i], prefixes[i], fqdns[i], DirReceives); ok {
				eps = append(eps, e)
			}
		}
		if g := eps[lo:len(eps):len(eps)]; len(g) > 0 {
			slices.SortFunc(g, func(x, y Endpoint) int { return cmp.Compare(x.ID, y.ID) })
			b.s.accounts[a].Receives = g
		}
	}
	b.s.eps = eps
	b.s.epIdx = newIDIndex(len(eps), func(i int) int64 { return eps[i].ID },
		func(_, i int) { b.failf("ip endpoint %d: listed twice", eps[i].ID) })

	sends := eps[:nSends]
	b.sendsTable(sends)
	acctOf := make([]int32, len(sends))
	for i := range sends {
		acctOf[i] = -1
		if sends[i].Account != nil {
			acctOf[i] = b.acct(sends[i].Account.ID)
		}
	}
	b.s.deps.acctSends, b.s.deps.acctSendsAt = bucket(acctOf, len(b.s.accounts))
}

// sendsTable fills the CIDR table from the sends endpoints, sorted by prefix:
// one entry per distinct prefix, the run of endpoints with it, linked to the
// entry of the next enclosing prefix. Sorted by address then length, the
// prefixes of a family come in depth-first order, so a stack of the prefixes
// that enclose the current one finds each one's without a lookup.
func (b *builder) sendsTable(sends []Endpoint) {
	var start []int32 // the first endpoint of each distinct prefix
	for i := range sends {
		if i == 0 || sends[i].Prefix != sends[i-1].Prefix {
			start = append(start, int32(i))
		}
	}
	start = append(start, int32(len(sends)))
	n := len(start) - 1
	prefix := func(r int32) netip.Prefix { return sends[start[r]].Prefix }

	// up[r]: the run of the next enclosing prefix of run r's, or -1.
	up := make([]int32, n)
	var stacks [2][]int32 // IPv4, IPv6
	for r := range int32(n) {
		p := prefix(r)
		st := &stacks[count(p.Addr().Is6())]
		for len(*st) > 0 && !prefix((*st)[len(*st)-1]).Contains(p.Addr()) {
			*st = (*st)[:len(*st)-1]
		}
		up[r] = -1
		if len(*st) > 0 {
			up[r] = (*st)[len(*st)-1]
		}
		*st = append(*st, r)
	}

	// The entries that enclose others are also kept apart, for the links
	// (the table holds copies).
	at := make([]int32, n) // position+1 in outer; 0: encloses none
	nOuter := int32(0)
	for _, u := range up {
		if u >= 0 && at[u] == 0 {
			nOuter++
			at[u] = nOuter
		}
	}
	outer := make([]level, nOuter)
	for r := range int32(n) {
		l := level{eps: sends[start[r]:start[r+1]:start[r+1]]}
		if u := up[r]; u >= 0 {
			l.up = &outer[at[u]-1]
		}
		if at[r] > 0 {
			outer[at[r]-1] = l
		}
		b.s.sends.Insert(prefix(r), l)
	}
}

// parseEndpoint parses an endpoint's address and checks its direction: a
// sends endpoint needs an IP address or CIDR (calls are identified by it).
func (b *builder) parseEndpoint(e *store.IPEndpoint) (p netip.Prefix, fqdn string, dir Direction, ok bool) {
	p, fqdn, err := parseAddress(e.Address)
	if err != nil {
		b.failf("ip endpoint %d: address %q: %v", e.ID, e.Address, err)
		return p, "", 0, false
	}
	switch e.Direction {
	case "", store.DirSends:
		if fqdn != "" {
			b.failf("ip endpoint %d: address %q: a host name cannot send (calls are identified by source address)", e.ID, e.Address)
			return p, "", 0, false
		}
		return p, "", DirSends, true
	case store.DirReceives:
		return p, fqdn, DirReceives, true
	}
	b.failf("ip endpoint %d: direction %q: unknown", e.ID, e.Direction)
	return p, "", 0, false
}

func (b *builder) endpoint(e *store.IPEndpoint, p netip.Prefix, fqdn string, dir Direction) (Endpoint, bool) {
	ok := true
	fail := func(format string, args ...any) {
		b.failf("ip endpoint %d: "+format, append([]any{e.ID}, args...)...)
		ok = false
	}
	a := b.s.Account(e.AccountID)
	if a == nil {
		fail("account %d: not found", e.AccountID)
	}
	proto, err := parseProtocol(e.Protocol)
	if err != nil {
		fail("%v", err)
	}
	codecs, err := parseCodecs(e.RestrictedCodecs)
	if err != nil {
		fail("%v", err)
	}
	dial, err := paramrewrite.ParseDialPattern(e.DialPattern)
	if err != nil {
		fail("dial_pattern: %v", err)
	}
	relay, err := parseRelayMode(e.MediaRelay)
	if err != nil {
		fail("%v", err)
	}
	if e.Port < 0 || e.Port > 65535 {
		fail("port: %d: out of range", e.Port)
	}
	ep := Endpoint{
		Principal: Principal{
			Kind:              KindEndpoint,
			ID:                e.ID,
			Account:           a,
			Channels:          b.limit("ip endpoint", e.ID, "channels", e.Channels),
			CPS:               b.limit("ip endpoint", e.ID, "cps", e.CPS),
			Codecs:            codecs,
			Protocol:          proto,
			DialPattern:       dial,
			NAT:               natMode(e.ForceNAT, e.DisableNAT),
			Relay:             relay,
			SmartExtension:    e.SmartExtension,
			SessionTimers:     e.SessionTimers,
			SessionExpires:    time.Duration(e.SessionExpires) * time.Second,
			CLIPrefix:         b.intern(e.CLIPrefix),
			ForceFrom:         b.intern(e.ForceFrom),
			InterceptReinvite: e.InterceptReinvite,
		},
		Prefix:         p,
		FQDN:           fqdn,
		TechPrefix:     b.intern(e.TechPrefix),
		OutboundProxy:  b.intern(e.OutboundProxy),
		Username:       e.Username,
		PasswordSealed: e.PasswordSealed,
		Port:           uint16(e.Port),
		Direction:      dir,
		CLIAuth:        e.CLIAuth,
		ForceNAT:       e.ForceNAT,
		DisableNAT:     e.DisableNAT,
	}
	if len(ep.PasswordSealed) == 0 {
		ep.PasswordSealed = nil
	}
	return ep, ok
}

func (b *builder) dids() {
	src := b.ds.DIDs
	acctOf := make([]int32, len(src))
	for i := range src {
		d := &src[i]
		if acctOf[i] = b.acct(d.AccountID); acctOf[i] < 0 {
			b.failf("did %d: account %d: not found", d.ID, d.AccountID)
		}
	}
	order, start := bucket(acctOf, len(b.s.accounts))
	dids := make([]DID, 0, len(order))
	for a := range b.s.accounts {
		acct := &b.s.accounts[a]
		lo := len(dids)
		for _, i := range order[start[a]:start[a+1]] {
			d := &src[i]
			if dd, ok := b.did(d.ID, strings.TrimPrefix(d.Number, "+"), d.SIPUserID, acct); ok {
				dids = append(dids, dd)
			}
		}
		if g := dids[lo:len(dids):len(dids)]; len(g) > 0 {
			sortDIDs(g)
			acct.DIDs = g
		}
	}
	byNumber := make(map[string]*DID, len(dids))
	for i := range dids {
		d := &dids[i]
		if old, ok := byNumber[d.Number]; ok {
			b.dupDID(d, old)
			continue
		}
		byNumber[d.Number] = d
	}
	b.s.dids, b.s.byNumber = dids, byNumber
	b.s.didIdx = newIDIndex(len(dids), func(i int) int64 { return dids[i].ID }, func(int, int) {})
}

// did compiles a DID of acct with number num (without the leading '+'),
// routed to the SIP user with ID user (nil: to the account's receives
// endpoints), which must be one of acct's.
func (b *builder) did(id int64, num string, user *int64, acct *Account) (DID, bool) {
	if num == "" {
		b.failf("did %d: number: empty", id)
		return DID{}, false
	}
	var u *User
	if user != nil {
		if u = b.s.UserByID(*user); u == nil {
			b.failf("did %d (%s): sip user %d: not found", id, num, *user)
			return DID{}, false
		}
		if u.Account != acct {
			b.failf("did %d (%s): sip user %d belongs to account %d, not %d", id, num, u.ID, u.Account.ID, acct.ID)
			return DID{}, false
		}
	}
	return DID{ID: id, Number: num, Account: acct, User: u}, true
}

// dupDID reports d, whose number first already has.
func (b *builder) dupDID(d, first *DID) {
	b.failf("did %d: number %s: already did %d of account %d", d.ID, d.Number, first.ID, first.Account.ID)
}

// sortDIDs sorts one account's DIDs by number.
func sortDIDs(g []DID) {
	slices.SortFunc(g, func(x, y DID) int { return strings.Compare(x.Number, y.Number) })
}

// rewrites compiles each owner's rules with paramrewrite.Compile, the same
// compiler the API's test call uses.
func (b *builder) rewrites() {
	rules := slices.Clone(b.ds.Rewrites)
	slices.SortStableFunc(rules, func(x, y store.RewriteRule) int {
		return cmp.Or(strings.Compare(string(x.OwnerKind), string(y.OwnerKind)), cmp.Compare(x.OwnerID, y.OwnerID))
	})
	for lo := 0; lo < len(rules); {
		hi := lo + 1
		for hi < len(rules) && rules[hi].OwnerKind == rules[lo].OwnerKind && rules[hi].OwnerID == rules[lo].OwnerID {
			hi++
		}
		group := rules[lo:hi]
		lo = hi
		kind, id := group[0].OwnerKind, group[0].OwnerID
		var target **paramrewrite.Rules
		switch kind {
		case store.OwnerEndpoint:
			if e := b.s.Endpoint(id); e != nil {
				target = &e.Rewrite
			}
		case store.OwnerSIPUser:
			if u := b.s.UserByID(id); u != nil {
				target = &u.Rewrite
			}
		default:
			b.ruleTypes(group)
			b.failf("rewrite rule %d: owner kind %q: unknown", group[0].ID, kind)
			continue
		}
		if rs := b.rules(kind, id, group, target != nil); target != nil {
			*target = rs
		}
	}
}

// rules compiles one owner's rules (nil: none) with paramrewrite.Compile, the same
// compiler the API's test call uses. Rules of an owner that does not exist
// (or failed) are checked for their type and otherwise ignored: they cannot
// apply to anything.
func (b *builder) rules(kind store.OwnerKind, id int64, group []store.RewriteRule, exists bool) *paramrewrite.Rules {
	if !b.ruleTypes(group) || !exists || len(group) == 0 {
		return nil
	}
	rs, err := paramrewrite.Compile(group)
	if err != nil {
		b.failf("%s %d: %w", ownerName(kind), id, err)
		return nil
	}
	return rs
}

// ruleTypes reports whether every rule of group has a known type.
func (b *builder) ruleTypes(group []store.RewriteRule) bool {
	ok := true
	for _, r := range group {
		if r.Type != store.RewriteDestination && r.Type != store.RewriteCLI {
			b.failf("rewrite rule %d: type %q: unknown", r.ID, r.Type)
			ok = false
		}
	}
	return ok
}

func ownerName(k store.OwnerKind) string {
	if k == store.OwnerSIPUser {
		return "sip user"
	}
	return "ip endpoint"
}

// bans checks the firewall bans' addresses (a bad one fails the build, as
// any bad row does) and returns them; the firewall compiles them.
func (b *builder) bans(src []store.Ban) []store.Ban {
	for i := range src {
		bn := &src[i]
		_, fqdn, err := parseAddress(bn.Address)
		if err == nil && fqdn != "" {
			err = errors.New("a host name cannot be banned")
		}
		if err != nil {
			b.failf("ban %d: address %q: %v", bn.ID, bn.Address, err)
		}
	}
	return src
}

// parseAddress parses a stored address: an IP address (a single-host prefix),
// a CIDR without host bits, or else a host name (returned lower case, without
// a trailing dot, with an invalid prefix). IPv4-mapped IPv6 is unmapped.
func parseAddress(s string) (netip.Prefix, string, error) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, "", errors.New("invalid prefix")
		}
		if p.Masked() != p {
			return p, "", errors.New("host bits set")
		}
		return unmapPrefix(p), "", nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, "", errors.New("zoned address")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), "", nil
	}
	if isHostName(s) {
		return netip.Prefix{}, strings.ToLower(strings.TrimSuffix(s, ".")), nil
	}
	return netip.Prefix{}, "", errors.New("not an IP address, CIDR or host name")
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

func isHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	last := s[strings.LastIndexByte(s, '.')+1:]
	allDigits := true
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			allDigits = false
		}
	}
	if last == "" || allDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return !strings.Contains(s, "..")
}

// sortedOrder returns the indices 0..n-1 sorted by cmp, or in order when
// they already are (the store lists by ID).
func sortedOrder(n int, cmp func(i, j int32) int) []int32 {
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	if !slices.IsSortedFunc(order, cmp) {
		slices.SortFunc(order, cmp)
	}
	return order
}

// bucket orders the indices i with group[i] >= 0 by group, stably, in
// O(n + groups) (counting sort). Group g's indices are
// order[start[g]:start[g+1]].
func bucket(group []int32, groups int) (order, start []int32) {
	start = make([]int32, groups+1)
	for _, g := range group {
		if g >= 0 {
			start[g+1]++
		}
	}
	for g := range groups {
		start[g+1] += start[g]
	}
	order = make([]int32, start[groups])
	next := slices.Clone(start[:groups])
	for i, g := range group {
		if g >= 0 {
			order[next[g]] = int32(i)
			next[g]++
		}
	}
	return order, start
}

// natMode is an endpoint's NAT handling; force wins over disable (the API
// refuses both).
func natMode(force, disable bool) NATMode {
	switch {
	case force:
		return NATForce
	case disable:
		return NATDisable
	}
	return NATAuto
}

// ringTimeout is a user's voicemail ring timeout; 0 (a user stored before
// it existed) is the default.
func ringTimeout(seconds int) time.Duration {
	if seconds <= 0 {
		seconds = store.DefaultRingTimeout
	}
	return time.Duration(seconds) * time.Second
}
