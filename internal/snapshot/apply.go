package snapshot

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/gaissmai/bart"

	"github.com/sipward/sipward/internal/paramrewrite"
	"github.com/sipward/sipward/internal/store"
)

// ErrRebuild is what Apply (and LoadDelta) return for a change they do not
// apply incrementally; the caller builds afresh from the whole store.
var ErrRebuild = errors.New("snapshot: change needs a full rebuild")

// rebuild returns ErrRebuild with the reason.
func rebuild(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRebuild}, args...)...)
}

// maxOverlay caps, in objects (accounts, endpoints, users, DIDs, CLI
// patterns), what a snapshot may hold beside its base, and so what one Apply
// may touch: past it Apply returns ErrRebuild, and the rebuild starts a new
// base with an empty overlay. Each Apply copies the overlay's maps, so the cap
// also bounds the cost of one Apply.
const maxOverlay = 20_000

// Delta is what changed in the store after revision Since, up to Revision:
// for each changed object, its row as read at Revision, or nil when it no
// longer exists. LoadDelta reads it.
type Delta struct {
	Since    int64 // a snapshot of revision Since (or later) can apply it
	Revision int64 // the revision the rows were read at (or later)

	Accounts    map[int64]*store.Account
	Endpoints   map[int64]*store.IPEndpoint
	Users       map[int64]*store.SIPUser
	CLIPatterns map[int64]*store.CLIPattern
	DIDs        map[int64]*store.DID
	// Rewrites holds all the rules of each changed endpoint and SIP user
	// that exists (an empty list when it has none). A changed owner missing
	// here keeps the rules it had.
	Rewrites map[RuleOwner][]store.RewriteRule
	// Bans is every ban, when BansChanged (bans are few; the table is
	// rebuilt from all of them).
	Bans        []store.Ban
	BansChanged bool
}

// RuleOwner names the owner of rewrite rules.
type RuleOwner struct {
	Kind store.OwnerKind
	ID   int64
}

// size returns the number of changed objects, bans aside.
func (d *Delta) size() int {
	return len(d.Accounts) + len(d.Endpoints) + len(d.Users) + len(d.CLIPatterns) + len(d.DIDs)
}

// deps is what Apply looks up in the base: each account's users and sends
// endpoints (to point them at the account's new version), the account of
// each CLI pattern, and the usernames that several users hold.
type deps struct {
	acctUsers, acctUsersAt []int32            // base account i's users are users[acctUsers[acctUsersAt[i]:acctUsersAt[i+1]]]
	acctSends, acctSendsAt []int32            // likewise for its sends endpoints in eps
	cliIdx                 idIndex            // CLI pattern ID → position in cliOwner
	cliOwner               []int64            // account ID of each CLI pattern
	shared                 map[string][]int32 // usernames several users hold → their positions in users
}

// overlay holds the objects Apply replaced since the base, by key; a nil
// value means there is none (deleted).
type overlay struct {
	accts   map[int64]*Account
	eps     map[int64]*Endpoint
	users   map[int64]*User
	names   map[string]*User
	dids    map[string]*DID     // by number
	shared  map[string]struct{} // usernames Apply found several users holding, beyond deps.shared
	didAcct map[int64]int64     // DID ID → its account's ID (0: none)
	cliAcct map[int64]int64     // CLI pattern ID → its account's ID (0: none)
}

func (o *overlay) clone() *overlay {
	if o == nil {
		return &overlay{
			accts: map[int64]*Account{}, eps: map[int64]*Endpoint{}, users: map[int64]*User{},
			names: map[string]*User{}, dids: map[string]*DID{}, didAcct: map[int64]int64{}, cliAcct: map[int64]int64{},
			shared: map[string]struct{}{},
		}
	}
	return &overlay{
		accts: maps.Clone(o.accts), eps: maps.Clone(o.eps), users: maps.Clone(o.users),
		names: maps.Clone(o.names), dids: maps.Clone(o.dids), didAcct: maps.Clone(o.didAcct), cliAcct: maps.Clone(o.cliAcct),
		shared: maps.Clone(o.shared),
	}
}

// size returns the number of objects held (names and numbers are other keys
// of the same users and DIDs).
func (o *overlay) size() int {
	if o == nil {
		return 0
	}
	return len(o.accts) + len(o.eps) + len(o.users) + len(o.dids) + len(o.didAcct) + len(o.cliAcct)
}

// cliOwner returns the ID of the account of the CLI pattern with that ID, or 0.
func (s *Snapshot) cliOwner(id int64) int64 {
	if s.ov != nil {
		if a, ok := s.ov.cliAcct[id]; ok {
			return a
		}
	}
	if i := s.deps.cliIdx.get(id); i >= 0 {
		return s.deps.cliOwner[i]
	}
	return 0
}

// didOwner returns the ID of the account of the DID with that ID, or 0.
func (s *Snapshot) didOwner(id int64) int64 {
	if s.ov != nil {
		if a, ok := s.ov.didAcct[id]; ok {
			return a
		}
	}
	if i := s.didIdx.get(id); i >= 0 {
		return s.dids[i].Account.ID
	}
	return 0
}

// Apply returns a new snapshot: s with the changes of d, answering every
// lookup as Build of the whole store at d.Revision would. s is not modified
// and keeps serving whoever holds it. Apply validates the objects d touches
// as Build does, with the same messages, and on failure returns a
// *BuildError and no snapshot. It returns ErrRebuild for what it does not
// apply incrementally: d does not follow s, opt differs from s's, the change
// is too large (see maxOverlay).
//
// A changed account is a new *Account; Apply also replaces what points at it
// (its users and sends endpoints, its receives endpoints and DIDs), so its
// cost grows with the account's size.
func (s *Snapshot) Apply(d Delta, opt Options) (*Snapshot, error) {
	switch {
	case d.Since > s.rev || d.Revision < s.rev:
		return nil, rebuild("changes %d to %d do not follow revision %d", d.Since, d.Revision, s.rev)
	case opt.Realm != s.realm || !slices.Equal(opt.CoreAddrs, s.coreAddrs):
		return nil, rebuild("the node's options changed")
	case s.ov.size()+d.size() > maxOverlay:
		return nil, rebuild("%d objects changed, %d replaced before: more than %d", d.size(), s.ov.size(), maxOverlay)
	}
	n := *s
	n.rev = d.Revision
	n.ov = s.ov.clone()
	a := &applier{old: s, n: &n, d: &d, b: &builder{s: &n, strs: make(map[string]string)}}
	if err := a.apply(); err != nil {
		return nil, err
	}
	if len(a.b.errs) > 0 {
		return nil, a.b.err(d.Revision)
	}
	switch size := n.ov.size(); {
	case size > maxOverlay:
		return nil, rebuild("%d objects replaced: more than %d", size, maxOverlay)
	case n.moved != nil && n.moved.Size() > maxOverlay:
		return nil, rebuild("%d sends prefixes changed: more than %d", n.moved.Size(), maxOverlay)
	case size == 0:
		n.ov = nil
	}
	return &n, nil
}

// applier applies one Delta; its builder compiles into (and looks up in) the
// new snapshot n as it takes shape.
type applier struct {
	old, n *Snapshot
	d      *Delta
	b      *builder

	accts map[int64]*Account // accounts to rebuild, by ID: the new version (nil: none, deleted)
	ids   []int64            // keys of accts, sorted

	ovUsers map[int64][]*User     // old.ov's users by account ID
	ovSends map[int64][]*Endpoint // old.ov's sends endpoints by account ID

	gone   map[int64]bool                // sends endpoints that leave their table entry
	adds   map[netip.Prefix][]Endpoint   // sends endpoints to add to each table entry
	placed map[int64]bool                // IDs in adds
	recv   map[int64][]Endpoint          // changed receives endpoints by account ID
	bucket map[int64][]*store.CLIPattern // changed CLI patterns by account ID
}

func (a *applier) apply() error {
	a.dirtyAccounts()
	if err := a.budget(); err != nil {
		return err
	}
	a.indexOverlay()
	a.accounts()
	a.cliPatterns()
	if err := a.users(); err != nil {
		return err
	}
	a.endpoints()
	a.dids()
	if a.d.BansChanged {
		a.n.bans = a.b.bans(a.d.Bans)
	}
	return nil
}

// dirtyAccounts finds the accounts whose Account value changes: those
// changed, and those whose CLI patterns, receives endpoints or DIDs change
// (before or after the change), or whose SIP user with a DID changes (the
// DID points at the user).
func (a *applier) dirtyAccounts() {
	s, d := a.old, a.d
	a.accts = make(map[int64]*Account)
	mark := func(id int64) {
		if id != 0 {
			a.accts[id] = nil
		}
	}
	for id := range d.Accounts {
		mark(id)
	}
	for id, p := range d.CLIPatterns {
		mark(s.cliOwner(id))
		if p != nil {
			mark(p.AccountID)
		}
	}
	for id, r := range d.DIDs {
		mark(s.didOwner(id))
		if r != nil {
			mark(r.AccountID)
		}
	}
	for id, r := range d.Endpoints {
		if e := s.Endpoint(id); e != nil && e.Direction == DirReceives {
			mark(e.Account.ID)
		}
		if r != nil && r.Direction == store.DirReceives {
			mark(r.AccountID)
		}
	}
	for id := range d.Users {
		if u := s.UserByID(id); u != nil && slices.ContainsFunc(u.Account.DIDs, func(x DID) bool { return x.User != nil && x.User.ID == id }) {
			mark(u.Account.ID)
		}
	}
	a.ids = slices.Sorted(maps.Keys(a.accts))
}

// budget returns ErrRebuild when the overlay would outgrow maxOverlay, before
// any copying: every object of a changed account is replaced.
func (a *applier) budget() error {
	s := a.old
	n := s.ov.size() + a.d.size()
	for _, id := range a.ids {
		if i := s.acctIdx.get(id); i >= 0 {
			dp := s.deps
			n += int(dp.acctUsersAt[i+1]-dp.acctUsersAt[i]) + int(dp.acctSendsAt[i+1]-dp.acctSendsAt[i])
		}
		if acct := s.Account(id); acct != nil {
			n += len(acct.Receives) + 2*len(acct.DIDs)
		}
		if n > maxOverlay {
			return rebuild("account %d: more objects to replace than %d", id, maxOverlay)
		}
	}
	return nil
}

// indexOverlay groups old.ov's users and sends endpoints by account, for the
// accounts to rebuild.
func (a *applier) indexOverlay() {
	a.ovUsers, a.ovSends = make(map[int64][]*User), make(map[int64][]*Endpoint)
	if a.old.ov == nil || len(a.ids) == 0 {
		return
	}
	for _, u := range a.old.ov.users {
		if u != nil {
			a.ovUsers[u.Account.ID] = append(a.ovUsers[u.Account.ID], u)
		}
	}
	for _, e := range a.old.ov.eps {
		if e != nil && e.Direction == DirSends {
			a.ovSends[e.Account.ID] = append(a.ovSends[e.Account.ID], e)
		}
	}
}

// usersOf returns the users of the account with that ID in old.
func (a *applier) usersOf(id int64) []*User {
	s := a.old
	var replaced map[int64]*User
	if s.ov != nil {
		replaced = s.ov.users
	}
	return ofAccount(s, id, s.deps.acctUsers, s.deps.acctUsersAt, s.users, replaced, func(u *User) int64 { return u.ID }, a.ovUsers[id])
}

// sendsOf returns the sends endpoints of the account with that ID in old.
func (a *applier) sendsOf(id int64) []*Endpoint {
	s := a.old
	var replaced map[int64]*Endpoint
	if s.ov != nil {
		replaced = s.ov.eps
	}
	return ofAccount(s, id, s.deps.acctSends, s.deps.acctSendsAt, s.eps, replaced, func(e *Endpoint) int64 { return e.ID }, a.ovSends[id])
}

// ofAccount returns the objects of the account with that ID in s: those of
// the base (the index pos, at into all: see deps) but for the IDs that s's
// overlay replaces, then more, those of the overlay.
func ofAccount[T any](s *Snapshot, id int64, pos, at []int32, all []T, replaced map[int64]*T, idOf func(*T) int64, more []*T) []*T {
	var out []*T
	if i := s.acctIdx.get(id); i >= 0 {
		for _, p := range pos[at[i]:at[i+1]] {
			if _, ok := replaced[idOf(&all[p])]; !ok {
				out = append(out, &all[p])
			}
		}
	}
	return append(out, more...)
}

// accounts makes the new version of each account to rebuild: from its
// changed row, or a copy of the old one whose lists the next steps replace.
func (a *applier) accounts() {
	for _, id := range a.ids {
		old := a.old.Account(id)
		row, changed := a.d.Accounts[id]
		var na *Account
		switch {
		case changed && row != nil:
			acct := a.b.account(row)
			na = &acct
		case changed:
			// deleted
		case old != nil:
			acct := *old
			na = &acct
		default:
			continue // neither before nor after: what names it fails below
		}
		a.accts[id] = na
		if old != nil || na != nil {
			a.n.ov.accts[id] = na
		}
		a.n.nAccounts += count(na != nil) - count(old != nil)
	}
}

func count(b bool) int {
	if b {
		return 1
	}
	return 0
}

// cliPatterns recompiles the CLI patterns of each account to rebuild.
func (a *applier) cliPatterns() {
	s, n, d, b := a.old, a.n, a.d, a.b
	a.bucket = make(map[int64][]*store.CLIPattern)
	for _, id := range slices.Sorted(maps.Keys(d.CLIPatterns)) {
		p := d.CLIPatterns[id]
		n.ov.cliAcct[id] = 0 // until it compiles
		if p == nil {
			continue
		}
		if n.Account(p.AccountID) == nil {
			b.failf("cli pattern %d: account %d: not found", p.ID, p.AccountID)
			continue
		}
		a.bucket[p.AccountID] = append(a.bucket[p.AccountID], p)
	}
	for _, id := range a.ids {
		na, old := a.accts[id], s.Account(id)
		var clis []cliPattern
		if old != nil {
			for _, c := range old.clis {
				switch _, changed := d.CLIPatterns[c.id]; {
				case changed:
				case na == nil:
					b.failf("cli pattern %d: account %d: not found", c.id, id)
				default:
					clis = append(clis, c)
				}
			}
		}
		if na == nil {
			continue
		}
		for _, p := range a.bucket[id] {
			if c, ok := b.cliPattern(p); ok {
				clis = append(clis, c)
				n.ov.cliAcct[c.id] = id
			}
		}
		slices.SortFunc(clis, func(x, y cliPattern) int { return cmp.Compare(x.id, y.id) })
		na.clis = slices.Clip(clis)
		na.setCLI(nil, nil)
	}
}

// users compiles the changed SIP users and points the users of each account
// to rebuild at its new version. A username several users hold (in several
// realms), or a change that makes it so, is settled by Build's rule over
// every holder (names).
func (a *applier) users() error {
	s, n, d, b := a.old, a.n, a.d, a.b
	settle := map[string]bool{} // names to settle over every holder
	for _, id := range slices.Sorted(maps.Keys(d.Users)) {
		row, old := d.Users[id], s.UserByID(id)
		var nu *User
		if row != nil {
			var white []netip.Prefix
			u, ok := b.user(row, &white)
			var rules *paramrewrite.Rules
			if old != nil {
				rules = old.Rewrite
			}
			u.Rewrite = a.rewrite(store.OwnerSIPUser, id, ok, rules)
			if ok {
				nu = &u
			}
		}
		if old != nil || row != nil {
			n.ov.users[id] = nu
		}
		n.nUsers += count(nu != nil) - count(old != nil)
		if old != nil && (nu == nil || nu.Username != old.Username) {
			if s.sharedName(old.Username) {
				settle[old.Username] = true
			} else if h := n.User(old.Username); h != nil && h.ID == id {
				n.ov.names[old.Username] = nil
			}
		}
		if nu != nil {
			if h := n.User(nu.Username); s.sharedName(nu.Username) || h != nil && h.ID != id {
				settle[nu.Username] = true
			} else {
				n.ov.names[nu.Username] = nu
			}
		}
	}
	for _, id := range a.ids {
		na := a.accts[id]
		users := a.usersOf(id)
		moved := make([]User, 0, len(users))
		for _, u := range users {
			if _, changed := d.Users[u.ID]; changed {
				continue
			}
			if na == nil {
				b.failf("sip user %d: account %d: not found", u.ID, id)
				continue
			}
			moved = append(moved, *u)
			nu := &moved[len(moved)-1]
			nu.Account = na
			n.ov.users[u.ID] = nu
			if h := n.User(u.Username); h != nil && h.ID == u.ID {
				n.ov.names[u.Username] = nu
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(settle)) {
		a.settle(name)
	}
	return nil
}

// sharedName reports whether name may have several holders in s: it had
// in the base, or Apply made it so since.
func (s *Snapshot) sharedName(name string) bool {
	if _, ok := s.deps.shared[name]; ok {
		return true
	}
	if s.ov != nil {
		_, ok := s.ov.shared[name]
		return ok
	}
	return false
}

// settle gives name to its holder by Build's rule — the lowest ID in this
// node's realm, else the lowest ID — looking at every user of the new
// snapshot that may hold it: the base's holders (deps.shared, or byName for
// a name one base user held) that the overlay did not replace, and the
// overlay's users. It remembers the name as shared while several hold it.
func (a *applier) settle(name string) {
	n := a.n
	var holder *User
	held := 0
	consider := func(u *User) {
		if u == nil || u.Username != name {
			return
		}
		held++
		switch {
		case holder == nil:
			holder = u
		case (u.Realm == n.realm) != (holder.Realm == n.realm):
			if u.Realm == n.realm {
				holder = u
			}
		case u.ID < holder.ID:
			holder = u
		}
	}
	base := func(u *User) {
		if _, replaced := n.ov.users[u.ID]; !replaced {
			consider(u)
		}
	}
	if at, ok := n.deps.shared[name]; ok {
		for _, i := range at {
			base(&n.users[i])
		}
	} else if u := n.byName[name]; u != nil {
		base(u)
	}
	for _, u := range n.ov.users {
		consider(u)
	}
	n.ov.names[name] = holder
	if n.ov.shared == nil {
		n.ov.shared = map[string]struct{}{}
	}
	if held > 1 {
		n.ov.shared[name] = struct{}{}
	} else {
		delete(n.ov.shared, name)
	}
}

// rewrite compiles the rules the delta carries for a changed owner (ok: the
// owner compiled), or keeps old when it carries none.
func (a *applier) rewrite(kind store.OwnerKind, id int64, ok bool, old *paramrewrite.Rules) *paramrewrite.Rules {
	rules, have := a.d.Rewrites[RuleOwner{kind, id}]
	if !have {
		return old
	}
	return a.b.rules(kind, id, rules, ok)
}

// touch adds the key k to m, with no values if it has none.
func touch[K comparable, V any](m map[K][]V, k K) {
	if _, ok := m[k]; !ok {
		m[k] = nil
	}
}

// endpoints compiles the changed IP endpoints, points the endpoints of each
// account to rebuild at its new version, and replaces the CIDR table entries
// of every sends prefix that changed.
func (a *applier) endpoints() {
	s, n, d, b := a.old, a.n, a.d, a.b
	a.gone, a.placed = make(map[int64]bool), make(map[int64]bool)
	a.adds, a.recv = make(map[netip.Prefix][]Endpoint), make(map[int64][]Endpoint)
	for _, id := range slices.Sorted(maps.Keys(d.Endpoints)) {
		row, old := d.Endpoints[id], s.Endpoint(id)
		if old != nil && old.Direction == DirSends {
			a.gone[id] = true
			touch(a.adds, old.Prefix)
		}
		if old != nil || row != nil {
			n.ov.eps[id] = nil // until it compiles
		}
		n.nEndpoints -= count(old != nil)
		if row == nil {
			continue
		}
		e, ok := a.endpoint(row)
		var rules *paramrewrite.Rules
		if old != nil {
			rules = old.Rewrite
		}
		e.Rewrite = a.rewrite(store.OwnerEndpoint, id, ok, rules)
		if !ok {
			continue
		}
		n.nEndpoints++
		if e.Direction == DirReceives {
			a.recv[row.AccountID] = append(a.recv[row.AccountID], e)
			continue
		}
		a.adds[e.Prefix] = append(a.adds[e.Prefix], e)
		a.placed[id] = true
	}
	for _, id := range a.ids {
		na := a.accts[id]
		for _, e := range a.sendsOf(id) {
			if _, changed := d.Endpoints[e.ID]; changed {
				continue
			}
			if na == nil {
				b.failf("ip endpoint %d: account %d: not found", e.ID, id)
				continue
			}
			ne := *e
			ne.Account = na
			a.gone[e.ID], a.placed[e.ID] = true, true
			a.adds[e.Prefix] = append(a.adds[e.Prefix], ne)
		}
		a.receives(id, na)
	}
	a.sends()
}

// endpoint compiles a changed endpoint as Build does.
func (a *applier) endpoint(row *store.IPEndpoint) (Endpoint, bool) {
	p, fqdn, dir, ok := a.b.parseEndpoint(row)
	if !ok {
		return Endpoint{}, false
	}
	if dir == DirReceives && a.n.Account(row.AccountID) == nil {
		// Build groups receives endpoints by account first, and reports
		// only this.
		a.b.failf("ip endpoint %d: account %d: not found", row.ID, row.AccountID)
		return Endpoint{}, false
	}
	return a.b.endpoint(row, p, fqdn, dir)
}

// receives sets the receives endpoints of the account with that ID, whose
// new version is na (nil: deleted).
func (a *applier) receives(id int64, na *Account) {
	var list []Endpoint
	if old := a.old.Account(id); old != nil {
		for _, e := range old.Receives {
			switch _, changed := a.d.Endpoints[e.ID]; {
			case changed:
			case na == nil:
				a.b.failf("ip endpoint %d: account %d: not found", e.ID, id)
			default:
				e.Account = na
				list = append(list, e)
			}
		}
	}
	if na == nil {
		return
	}
	list = append(list, a.recv[id]...)
	slices.SortFunc(list, func(x, y Endpoint) int { return cmp.Compare(x.ID, y.ID) })
	na.Receives = nil
	if len(list) > 0 {
		na.Receives = slices.Clip(list)
	}
	for k := range na.Receives {
		a.n.ov.eps[na.Receives[k].ID] = &na.Receives[k]
	}
}

// sends replaces the CIDR table entry of each prefix whose endpoints changed:
// a new slice (copy on write) in a new table that shares the rest. Each
// prefix that can hold others (not a single address) is also entered in
// moved, with its new entry: the links of the entries under it may now be
// stale, which Identify tells by it.
func (a *applier) sends() {
	t, moved, movedMin := a.old.sends, a.old.moved, a.old.movedMin
	for _, p := range slices.SortedFunc(maps.Keys(a.adds), comparePrefixes) {
		old, _ := a.old.sends.Get(p)
		eps := make([]Endpoint, 0, len(old.eps)+len(a.adds[p]))
		for _, e := range old.eps {
			if !a.gone[e.ID] {
				eps = append(eps, e)
			}
		}
		eps = append(eps, a.adds[p]...)
		var l level // no endpoints: removed
		if len(eps) == 0 {
			t = t.DeletePersist(p)
		} else {
			slices.SortFunc(eps, func(x, y Endpoint) int { return cmp.Compare(x.ID, y.ID) })
			l.eps = eps
			if p.Bits() > 0 {
				if up, ok := t.LookupPrefix(netip.PrefixFrom(p.Addr(), p.Bits()-1)); ok {
					l.up = &up
				}
			}
			t = t.InsertPersist(p, l)
			for k := range eps {
				if a.placed[eps[k].ID] {
					a.n.ov.eps[eps[k].ID] = &eps[k]
				}
			}
		}
		if p.IsSingleIP() {
			continue
		}
		if moved == nil {
			moved, movedMin = new(bart.Table[level]), [2]uint8{255, 255}
		}
		moved = moved.InsertPersist(p, l)
		fam := count(p.Addr().Is6())
		movedMin[fam] = min(movedMin[fam], uint8(p.Bits()))
	}
	a.n.sends, a.n.moved, a.n.movedMin = t, moved, movedMin
}

func comparePrefixes(x, y netip.Prefix) int {
	return cmp.Or(x.Addr().Compare(y.Addr()), cmp.Compare(x.Bits(), y.Bits()))
}

// dids recompiles the DIDs of each account to rebuild, then settles which
// DID holds each number they had or have.
func (a *applier) dids() {
	s, n, d, b := a.old, a.n, a.d, a.b
	byAcct := make(map[int64][]*store.DID)
	for _, id := range slices.Sorted(maps.Keys(d.DIDs)) {
		r := d.DIDs[id]
		if r != nil || s.didOwner(id) != 0 {
			n.ov.didAcct[id] = 0 // until it compiles
		}
		if r == nil {
			continue
		}
		if n.Account(r.AccountID) == nil {
			b.failf("did %d: account %d: not found", id, r.AccountID)
			continue
		}
		byAcct[r.AccountID] = append(byAcct[r.AccountID], r)
	}
	type source struct {
		id   int64
		num  string
		user *int64
	}
	numbers := make(map[string][]*DID) // the DIDs of the rebuilt accounts that have each number they had or have
	for _, id := range a.ids {
		na, old := a.accts[id], s.Account(id)
		var src []source
		if old != nil {
			n.nDIDs -= len(old.DIDs)
			for _, x := range old.DIDs {
				touch(numbers, x.Number)
				switch _, changed := d.DIDs[x.ID]; {
				case changed:
				case na == nil:
					b.failf("did %d: account %d: not found", x.ID, id)
				default:
					var user *int64
					if x.User != nil {
						user = &x.User.ID
					}
					src = append(src, source{x.ID, x.Number, user})
				}
			}
		}
		if na == nil {
			continue
		}
		for _, r := range byAcct[id] {
			src = append(src, source{r.ID, strings.TrimPrefix(r.Number, "+"), r.SIPUserID})
		}
		slices.SortFunc(src, func(x, y source) int { return cmp.Compare(x.id, y.id) })
		var list []DID
		for _, x := range src {
			if dd, ok := b.did(x.id, x.num, x.user, na); ok {
				list = append(list, dd)
			}
		}
		sortDIDs(list)
		na.DIDs = nil
		if len(list) > 0 {
			na.DIDs = slices.Clip(list)
		}
		n.nDIDs += len(list)
		for k := range na.DIDs {
			x := &na.DIDs[k]
			numbers[x.Number] = append(numbers[x.Number], x)
			if _, changed := d.DIDs[x.ID]; changed {
				n.ov.didAcct[x.ID] = id
			}
		}
	}
	// As in Build, the DID of the lowest account (then ID) holds a number;
	// any other is a duplicate.
	for _, num := range slices.Sorted(maps.Keys(numbers)) {
		list := numbers[num]
		if h := s.DID(num); h != nil {
			if _, rebuilt := a.accts[h.Account.ID]; !rebuilt {
				list = append(list, h)
			}
		}
		if len(list) == 0 {
			if s.DID(num) != nil {
				n.ov.dids[num] = nil
			}
			continue
		}
		slices.SortFunc(list, func(x, y *DID) int {
			return cmp.Or(cmp.Compare(x.Account.ID, y.Account.ID), cmp.Compare(x.ID, y.ID))
		})
		n.ov.dids[num] = list[0]
		for _, x := range list[1:] {
			b.dupDID(x, list[0])
		}
	}
}
