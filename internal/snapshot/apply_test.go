package snapshot

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sipward/sipward/internal/paramrewrite"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/store/sqlstore"
)

var (
	applySeed  = flag.Uint64("apply.seed", 0, "seed of TestApplyMatchesBuild (0: from the clock)")
	applySteps = flag.Int("apply.steps", 300, "random operations of TestApplyMatchesBuild")
)

// TestApplyMatchesBuild is the differential test of Apply: against SQLite,
// it runs random operations (creates, updates and deletes of every kind of
// object, some of them invalid), each committed through the store, and after
// each one applies the delta (LoadDelta since the serving snapshot) to the
// serving snapshot and compares the result with Build of a fresh Load on
// every lookup, over probes of every name, ID, number, source and CLI the
// operations can produce. Both must fail alike when the change is invalid
// (the serving snapshot then stays, and the next delta spans both changes).
// It also checks that the serving snapshot did not change under Apply.
//
// Run it longer, or again with the seed it logs:
//
//	go test -run TestApplyMatchesBuild -apply.steps 5000 ./internal/snapshot/
//	go test -run TestApplyMatchesBuild -apply.seed 12345 ./internal/snapshot/
func TestApplyMatchesBuild(t *testing.T) {
	seed := *applySeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -apply.seed %d)", seed, seed)
	w := newWorld(t, seed)
	w.seed()

	serving, err := Build(w.load(), testOptions)
	if err != nil {
		t.Fatal(err)
	}
	prev := serving // Build of serving's revision, to check Apply left serving alone
	var applied, rebuilt, failed int
	var pending []string // operations since the serving snapshot
	for step := range *applySteps {
		desc, undo := w.step()
		if desc == "" {
			continue // refused by the store (a conflict): nothing committed
		}
		pending = append(pending, desc)
		ds := w.load()
		want, wantErr := Build(ds, testOptions)
		d, err := LoadDelta(w.ctx, w.st, serving.Revision())
		if err != nil {
			t.Fatalf("step %d: LoadDelta: %v", step, err)
		}
		got, gotErr := serving.Apply(d, testOptions)
		where := fmt.Sprintf("step %d (seed %d) after %s", step, seed, strings.Join(pending, "; then "))
		switch {
		case errors.Is(gotErr, ErrRebuild):
			rebuilt++
			if wantErr == nil {
				serving, prev, pending = want, want, nil
			}
		case wantErr != nil || gotErr != nil:
			sameBuildError(t, where, gotErr, wantErr)
			failed++
		default:
			applied++
			ids := maxID(ds) + 2
			compareSnapshots(t, where, got, want, ids)
			compareSnapshots(t, where+" (the old snapshot)", serving, prev, ids)
			serving, prev, pending = got, want, nil
		}
		if t.Failed() {
			t.FailNow()
		}
		if wantErr != nil && undo != nil {
			w.update(undo) // back to a valid configuration, as a change of its own
		}
	}
	t.Logf("%d applied, %d rebuilt, %d failed alike; overlay %d objects", applied, rebuilt, failed, serving.ov.size())
	if applied < *applySteps/2 {
		t.Errorf("only %d of %d changes applied incrementally", applied, *applySteps)
	}
}

// sameBuildError checks that Apply and Build failed alike: the same culprits.
func sameBuildError(t testing.TB, where string, got, want error) {
	t.Helper()
	var g, w *BuildError
	if !errors.As(got, &g) || !errors.As(want, &w) {
		t.Errorf("%s: Apply error %v, Build error %v: want both to fail, with a BuildError", where, got, want)
		return
	}
	if g.Revision != w.Revision || len(g.Errs)+g.More != len(w.Errs)+w.More {
		t.Errorf("%s: Apply failed with\n\t%v\nBuild with\n\t%v", where, got, want)
		return
	}
	if w.More > 0 {
		return // which ten are named depends on the order
	}
	msgs := func(errs []error) []string {
		var out []string
		for _, err := range errs {
			out = append(out, err.Error())
		}
		slices.Sort(out)
		return out
	}
	if d := cmp.Diff(msgs(w.Errs), msgs(g.Errs)); d != "" {
		t.Errorf("%s: culprits differ (-Build +Apply):\n%s", where, d)
	}
}

// Comparison.

// compareSnapshots checks that got answers every lookup as want does, and
// that within each snapshot every pointer leads to the current version of
// what it names (so comparing by ID below the top level is enough).
func compareSnapshots(t testing.TB, where string, got, want *Snapshot, ids int64) {
	t.Helper()
	for _, s := range []*Snapshot{got, want} {
		if err := consistent(s, ids); err != nil {
			t.Errorf("%s: %s snapshot: %v", where, map[bool]string{true: "applied", false: "built"}[s == got], err)
		}
	}
	if d := cmp.Diff(want.BanList(), got.BanList(), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("%s: ban lists differ (-want +got):\n%s", where, d)
	}
	counts := func(s *Snapshot) []int64 {
		return []int64{s.Revision(), int64(s.Accounts()), int64(s.Endpoints()), int64(s.Users()), int64(s.DIDs()), int64(s.Bans())}
	}
	if d := cmp.Diff(counts(want), counts(got)); d != "" {
		t.Errorf("%s: revision, accounts, endpoints, users, DIDs, bans differ (-want +got):\n%s", where, d)
	}
	diff := func(what string, w, g any) {
		t.Helper()
		if reflect.DeepEqual(w, g) {
			return // the quick way, for the usual case
		}
		if d := cmp.Diff(w, g, viewOpts...); d != "" {
			t.Errorf("%s: %s (-want +got):\n%s", where, what, d)
		}
	}
	for id := range ids {
		diff(fmt.Sprintf("Account(%d)", id), viewAccount(want.Account(id)), viewAccount(got.Account(id)))
		diff(fmt.Sprintf("Endpoint(%d)", id), viewEndpoint(want.Endpoint(id)), viewEndpoint(got.Endpoint(id)))
		diff(fmt.Sprintf("UserByID(%d)", id), viewUser(want.UserByID(id)), viewUser(got.UserByID(id)))
	}
	for _, name := range probeNames {
		diff(fmt.Sprintf("User(%q)", name), viewUser(want.User(name)), viewUser(got.User(name)))
	}
	for _, num := range probeNumbers {
		for _, n := range []string{num, "+" + num} {
			diff(fmt.Sprintf("DID(%q)", n), viewDID(want.DID(n)), viewDID(got.DID(n)))
		}
	}
	same := make(map[[2]*Endpoint]bool) // endpoints matched, compared once
	sameEndpoint := func(g, w *Endpoint) bool {
		if g == nil || w == nil {
			return g == w
		}
		eq, ok := same[[2]*Endpoint{g, w}]
		if !ok {
			eq = cmp.Equal(viewEndpoint(g), viewEndpoint(w), viewOpts...)
			same[[2]*Endpoint{g, w}] = eq
		}
		return eq
	}
	for _, src := range probeSources {
		if g, w := got.KnownSource(src), want.KnownSource(src); g != w {
			t.Errorf("%s: KnownSource(%v) = %v, want %v", where, src, g, w)
		}
		for _, transport := range []string{"udp", "tls"} {
			for _, dialled := range probeDialled {
				for _, cli := range probeCLIs {
					g, w := got.Identify(src, transport, dialled, cli), want.Identify(src, transport, dialled, cli)
					if reduce(g) != reduce(w) || !sameEndpoint(g.Endpoint, w.Endpoint) || !sameEndpoint(g.Other, w.Other) {
						t.Errorf("%s: Identify(%v, %s, %q, %q) = %+v, want %+v", where, src, transport, dialled, cli, reduce(g), reduce(w))
					}
					if g.Endpoint != nil && got.Account(g.Endpoint.Account.ID) != g.Endpoint.Account {
						t.Errorf("%s: Identify(%v, …) matched endpoint %d whose account is stale", where, src, g.Endpoint.ID)
					}
				}
			}
		}
	}
	for id := range ids {
		ga, wa := got.Account(id), want.Account(id)
		if ga == nil || wa == nil {
			continue
		}
		for _, cli := range probeCLIs {
			if ga.MatchCLI(cli) != wa.MatchCLI(cli) || ga.CLIAuthenticates(cli) != wa.CLIAuthenticates(cli) {
				t.Errorf("%s: account %d: MatchCLI/CLIAuthenticates(%q) differ", where, id, cli)
			}
		}
	}
}

// consistent checks that every pointer in s leads to the current version of
// what it names: the object the lookup by ID returns, and the CIDR table
// entry that Identify falls back to, the one a lookup finds.
func consistent(s *Snapshot, ids int64) error {
	for p, l := range s.sends.All() {
		if len(l.eps) == 0 || l.eps[0].Prefix != p {
			return fmt.Errorf("table entry %v holds %d endpoints of another prefix", p, len(l.eps))
		}
		var want level
		var wantOK bool
		if p.Bits() > 0 {
			want, wantOK = s.sends.LookupPrefix(netip.PrefixFrom(p.Addr(), p.Bits()-1))
		}
		got, ok := s.enclosing(&l)
		if ok != wantOK || ok && (&got.eps[0] != &want.eps[0] || len(got.eps) != len(want.eps)) {
			prefix := func(l level, ok bool) string {
				if !ok {
					return "none"
				}
				return fmt.Sprintf("%v (%d endpoints at %p)", l.eps[0].Prefix, len(l.eps), &l.eps[0])
			}
			return fmt.Errorf("table entry %v: enclosing entry %s, want %s", p, prefix(got, ok), prefix(want, wantOK))
		}
	}
	for id := range ids {
		if a := s.Account(id); a != nil {
			for k := range a.Receives {
				e := &a.Receives[k]
				if e.Account != a || s.Endpoint(e.ID) != e {
					return fmt.Errorf("account %d: receives endpoint %d is not Endpoint(%d) or points elsewhere", id, e.ID, e.ID)
				}
			}
			for k := range a.DIDs {
				x := &a.DIDs[k]
				if x.Account != a || x.User != nil && s.UserByID(x.User.ID) != x.User {
					return fmt.Errorf("account %d: did %d points at a stale account or user", id, x.ID)
				}
				if h := s.DID(x.Number); h != nil && h.ID == x.ID && h != x {
					return fmt.Errorf("account %d: DID(%s) is not the account's did %d", id, x.Number, x.ID)
				}
			}
		}
		if u := s.UserByID(id); u != nil && s.Account(u.Account.ID) != u.Account {
			return fmt.Errorf("sip user %d points at a stale account", id)
		}
		if e := s.Endpoint(id); e != nil && s.Account(e.Account.ID) != e.Account {
			return fmt.Errorf("ip endpoint %d points at a stale account", id)
		}
	}
	for _, name := range probeNames {
		if u := s.User(name); u != nil && s.UserByID(u.ID) != u {
			return fmt.Errorf("User(%q) is not UserByID(%d)", name, u.ID)
		}
	}
	return nil
}

// Views: what a lookup returns, with pointers to other objects reduced to
// their IDs (consistent checks those).

var viewOpts = []cmp.Option{cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Prefix{})}

type accountView struct {
	ID, BlockFrom, BlockSize int64
	Name                     string
	Channels, CPS            int32
	Exact, Regex             []string
	CLIs                     []string
	Receives                 []endpointView
	DIDs                     []didView
}

type endpointView struct {
	Endpoint
	AccountID int64
	Rules     []string
}

type userView struct {
	User
	AccountID int64
	Rules     []string
}

type didView struct {
	ID      int64
	Number  string
	Account int64
	User    int64
}

func viewAccount(a *Account) *accountView {
	if a == nil {
		return nil
	}
	v := &accountView{ID: a.ID, BlockFrom: a.BlockFrom, BlockSize: a.BlockSize, Name: a.Name, Channels: a.Channels, CPS: a.CPS, Exact: a.cliExact}
	for _, re := range a.cliRegex {
		v.Regex = append(v.Regex, re.String())
	}
	for _, c := range a.clis {
		p := c.exact
		if c.re != nil {
			p = "re:" + c.re.String()
		}
		v.CLIs = append(v.CLIs, fmt.Sprintf("%d=%s", c.id, p))
	}
	for k := range a.Receives {
		v.Receives = append(v.Receives, *viewEndpoint(&a.Receives[k]))
	}
	for k := range a.DIDs {
		v.DIDs = append(v.DIDs, *viewDID(&a.DIDs[k]))
	}
	return v
}

func viewEndpoint(e *Endpoint) *endpointView {
	if e == nil {
		return nil
	}
	v := &endpointView{Endpoint: *e, AccountID: e.Account.ID, Rules: viewRules(e.Rewrite)}
	v.Account, v.Rewrite = nil, nil
	return v
}

func viewUser(u *User) *userView {
	if u == nil {
		return nil
	}
	v := &userView{User: *u, AccountID: u.Account.ID, Rules: viewRules(u.Rewrite)}
	v.Account, v.Rewrite = nil, nil
	return v
}

func viewDID(d *DID) *didView {
	if d == nil {
		return nil
	}
	v := &didView{ID: d.ID, Number: d.Number, Account: d.Account.ID}
	if d.User != nil {
		v.User = d.User.ID
	}
	return v
}

// viewRules describes compiled rules by what they do to a few inputs.
func viewRules(rs *paramrewrite.Rules) []string {
	if rs == nil {
		return nil
	}
	var out []string
	for _, typ := range []store.RewriteType{store.RewriteDestination, store.RewriteCLI} {
		for _, in := range []string{"0044123", "044123", "44123", "123", "00", "9"} {
			o, id, ok := rs.Apply(typ, in)
			out = append(out, fmt.Sprintf("%s %s → %s %d %v", typ, in, o, id, ok))
		}
	}
	return out
}

// Probes: every ID, name, number, source, dialled number and CLI the
// operations below can produce, and some they cannot.

var (
	sendsPool = []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3", "10.1.2.4", "10.1.3.0/24",
		"192.0.2.10", "198.51.100.7", "2001:db8::/32", "2001:db8:1::/48", "2001:db8:1::5", "0.0.0.0/0"}
	receivesPool = []string{"pbx.example.com", "192.0.2.50", "sip.example.net", "2001:db8:9::1"}
	banPool      = []string{"192.0.2.0/24", "192.0.2.10", "10.1.2.0/24", "10.1.2.3", "2001:db8:1::/48", "198.51.100.0/24"}
	techPool     = []string{"", "", "", "1", "11", "2#", "9"}
	namePool     = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar"}
	numberPool   = func() []string {
		var out []string
		for i := range 16 {
			out = append(out, fmt.Sprintf("4411100000%02d", i))
		}
		return out
	}()

	probeNames   = append(slices.Clone(namePool), "nobody")
	probeNumbers = append(slices.Clone(numberPool), "449")
	probeDialled = []string{"", "1123", "11123", "2#44", "9555", "44123"}
	probeCLIs    = []string{"", numberPool[0], "+" + numberPool[1], numberPool[5], "4420123", "999"}
	probeSources = func() []netip.Addr {
		var out []netip.Addr
		for _, s := range append(slices.Clone(sendsPool), banPool...) {
			p, _, err := parseAddress(s)
			if err != nil {
				panic(err)
			}
			last := lastAddr(p)
			out = append(out, p.Addr(), last)
			if next := last.Next(); next.IsValid() {
				out = append(out, next)
			}
		}
		for _, s := range []string{"10.9.9.9", "11.0.0.1", "2001:db8:2::1", "::ffff:10.1.2.3", "203.0.113.5"} {
			out = append(out, netip.MustParseAddr(s))
		}
		slices.SortFunc(out, func(x, y netip.Addr) int { return x.Compare(y) })
		return slices.Compact(out)
	}()
)

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// The world: a store and random operations on it.

type world struct {
	t   *testing.T
	ctx context.Context
	st  *sqlstore.Store
	rng *rand.Rand
	ds  Dataset // the store's content, read before each operation

	seeding  bool                                  // make valid rows only
	lastDesc string                                // what the last create did
	last     func(context.Context, store.Tx) error // and how to undo it
}

func newWorld(t *testing.T, seed uint64) *world {
	return &world{t: t, ctx: t.Context(), st: openSQLite(t), rng: rand.New(rand.NewPCG(seed, seed^0x5eed))}
}

// openSQLite opens a new store on SQLite in a temporary directory.
func openSQLite(t testing.TB) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "sipward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (w *world) load() Dataset {
	w.t.Helper()
	ds, err := Load(w.ctx, w.st)
	if err != nil {
		w.t.Fatal(err)
	}
	return ds
}

// update commits fn; a refused write (a conflict, a missing parent) is not
// a failure.
func (w *world) update(fn func(ctx context.Context, tx store.Tx) error) error {
	w.t.Helper()
	err := w.st.Update(w.ctx, func(tx store.Tx) error { return fn(w.ctx, tx) })
	if err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
		w.t.Fatalf("update: %v", err)
	}
	return err
}

// maxID returns the largest ID of any object in ds.
func maxID(ds Dataset) int64 {
	var m int64
	for _, a := range ds.Accounts {
		m = max(m, a.ID)
	}
	for _, e := range ds.Endpoints {
		m = max(m, e.ID)
	}
	for _, u := range ds.Users {
		m = max(m, u.ID)
	}
	for _, d := range ds.DIDs {
		m = max(m, d.ID)
	}
	return m
}

func (w *world) pick(n int) int { return w.rng.IntN(n) }

func (w *world) chance(percent int) bool { return w.rng.IntN(100) < percent }

// bad is chance, except while seeding: it makes a row invalid.
func (w *world) bad(percent int) bool { return !w.seeding && w.chance(percent) }

func pickFrom[T any](w *world, list []T) T { return list[w.pick(len(list))] }

func (w *world) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[w.pick(16)]
	}
	return string(b)
}

// seed stores a starting configuration.
func (w *world) seed() {
	w.seeding = true
	defer func() { w.seeding = false }()
	for range 5 {
		w.update(w.createAccount)
	}
	w.ds = w.load()
	for range 20 {
		w.update(w.createEndpoint)
		w.ds = w.load()
	}
	for range 12 {
		w.update(w.createUser)
		w.ds = w.load()
	}
	for range 10 {
		w.update(w.createDID)
		w.ds = w.load()
	}
	for range 4 {
		w.update(w.createCLI)
		w.update(w.createRule)
		w.update(w.createBan)
		w.ds = w.load()
	}
}

// op is one random operation inside an Update. It returns what it did and
// how to undo it (nil: nothing to undo), for when it made the
// configuration invalid.
type op func(ctx context.Context, tx store.Tx) (desc string, undo func(ctx context.Context, tx store.Tx) error, err error)

// step runs one random operation (or a few in one Update) and returns what
// it did ("": refused) and how to undo it.
func (w *world) step() (string, func(ctx context.Context, tx store.Tx) error) {
	w.ds = w.load()
	n := 1
	if w.chance(8) {
		n = 2 + w.pick(3)
	}
	var descs []string
	var undos []func(ctx context.Context, tx store.Tx) error
	err := w.update(func(ctx context.Context, tx store.Tx) error {
		for range n {
			desc, undo, err := w.randomOp()(ctx, tx)
			if err != nil {
				return err
			}
			descs = append(descs, desc)
			if undo != nil {
				undos = append(undos, undo)
			}
		}
		return nil
	})
	if err != nil {
		return "", nil
	}
	undo := func(ctx context.Context, tx store.Tx) error {
		for i := len(undos) - 1; i >= 0; i-- {
			if err := undos[i](ctx, tx); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return nil
	}
	return strings.Join(descs, " + "), undo
}

func (w *world) randomOp() op {
	type weighted struct {
		weight int
		op     op
	}
	ops := []weighted{
		{2, w.op(w.createAccount)}, {3, w.updateAccount}, {1, w.deleteAccount},
		{4, w.op(w.createUser)}, {6, w.updateUser}, {2, w.deleteUser},
		{4, w.op(w.createEndpoint)}, {6, w.updateEndpoint}, {2, w.deleteEndpoint},
		{2, w.op(w.createCLI)}, {2, w.updateCLI}, {1, w.deleteCLI},
		{3, w.op(w.createDID)}, {3, w.updateDID}, {1, w.deleteDID},
		{2, w.op(w.createRule)}, {2, w.updateRule}, {1, w.deleteRule},
		{2, w.op(w.createBan)}, {1, w.updateBan}, {1, w.deleteBan},
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	r := w.pick(total)
	for _, o := range ops {
		if r -= o.weight; r < 0 {
			return o.op
		}
	}
	panic("unreachable")
}

// op adapts a create: its undo deletes what it created.
func (w *world) op(create func(ctx context.Context, tx store.Tx) error) op {
	return func(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
		w.last = nil
		if err := create(ctx, tx); err != nil {
			return "", nil, err
		}
		return w.lastDesc, w.last, nil
	}
}

func (w *world) account() int64 {
	if len(w.ds.Accounts) == 0 || w.chance(2) {
		return 999 // missing: the write is refused
	}
	return pickFrom(w, w.ds.Accounts).ID
}

func (w *world) createAccount(ctx context.Context, tx store.Tx) error {
	a := store.Account{Name: fmt.Sprintf("acct-%d", w.pick(1000)), Channels: 10 + w.pick(100), CPS: w.pick(5)}
	if w.bad(4) {
		a.Channels = -1
	}
	if err := tx.CreateAccount(ctx, &a); err != nil {
		return err
	}
	w.created(fmt.Sprintf("create account %d %+v", a.ID, a), func(ctx context.Context, tx store.Tx) error { return tx.DeleteAccount(ctx, a.ID) })
	return nil
}

// created records what a create did and its undo, for op.
func (w *world) created(desc string, undo func(context.Context, store.Tx) error) {
	w.lastDesc, w.last = desc, undo
}

func (w *world) updateAccount(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.Accounts) == 0 {
		return "no account to update", nil, nil
	}
	old := pickFrom(w, w.ds.Accounts)
	a := old
	switch w.pick(3) {
	case 0:
		a.Name += "'"
	case 1:
		a.Channels, a.CPS = w.pick(200), w.pick(10)
	default:
		a.BlockFrom, a.BlockSize = 1000+int64(w.pick(100)), int64(w.pick(100))
	}
	if w.bad(4) {
		a.CPS = -5
	}
	return fmt.Sprintf("update account %d to %+v", a.ID, a), restore(store.Tx.UpdateAccount, old), tx.UpdateAccount(ctx, &a)
}

// restore returns an undo that writes old back.
func restore[T any](update func(store.Tx, context.Context, *T) error, old T) func(context.Context, store.Tx) error {
	return func(ctx context.Context, tx store.Tx) error { return update(tx, ctx, &old) }
}

func (w *world) deleteAccount(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.Accounts) < 3 {
		return "keep the last accounts", nil, nil
	}
	id := pickFrom(w, w.ds.Accounts).ID
	return fmt.Sprintf("delete account %d", id), nil, tx.DeleteAccount(ctx, id)
}

func (w *world) userRow() store.SIPUser {
	u := store.SIPUser{AccountID: w.account(), Username: pickFrom(w, namePool), Realm: "sipward",
		HA1MD5: w.hex(32), Protocol: new(store.ProtoUDP), NATPing: new(store.NATPingDisabled), Channels: new(w.pick(5))}
	if w.chance(10) {
		u.Realm = "elsewhere"
	}
	if w.chance(30) {
		u.HA1SHA256 = strings.ToUpper(w.hex(64))
	}
	if w.chance(20) {
		u.IPWhitelist = []string{"192.0.2.0/24", "2001:db8::1"}[:1+w.pick(2)]
	}
	if w.chance(20) {
		u.Protocol = new(pickFrom(w, []store.Protocol{store.ProtoTCP, store.ProtoTLS, store.ProtoTLSSRTP}))
	}
	if w.bad(3) {
		u.HA1MD5 = "not hex"
	}
	if w.bad(2) {
		u.IPWhitelist = []string{"pbx.example.com"}
	}
	return u
}

func (w *world) createUser(ctx context.Context, tx store.Tx) error {
	u := w.userRow()
	if err := tx.CreateSIPUser(ctx, &u); err != nil {
		return err
	}
	w.created(fmt.Sprintf("create sip user %d %s@%s of account %d", u.ID, u.Username, u.Realm, u.AccountID),
		func(ctx context.Context, tx store.Tx) error { return tx.DeleteSIPUser(ctx, u.ID) })
	return nil
}

func (w *world) updateUser(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.Users) == 0 {
		return "no user to update", nil, nil
	}
	old := pickFrom(w, w.ds.Users)
	u, r := old, w.userRow()
	var what string
	switch w.pick(6) {
	case 0:
		u.HA1MD5, what = r.HA1MD5, "ha1"
	case 1:
		u.Username, what = r.Username, "rename to "+r.Username
	case 2:
		u.Realm, what = r.Realm, "realm "+r.Realm
	case 3:
		u.IPWhitelist, what = r.IPWhitelist, fmt.Sprintf("whitelist %v", r.IPWhitelist)
	case 4:
		u.AccountID, what = r.AccountID, fmt.Sprintf("move to account %d", r.AccountID)
	default:
		u.Protocol, u.Channels, what = r.Protocol, r.Channels, "protocol "+string(*r.Protocol)
	}
	return fmt.Sprintf("update sip user %d: %s", u.ID, what), restore(store.Tx.UpdateSIPUser, old), tx.UpdateSIPUser(ctx, &u)
}

func (w *world) deleteUser(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.Users) == 0 {
		return "no user to delete", nil, nil
	}
	id := pickFrom(w, w.ds.Users).ID
	return fmt.Sprintf("delete sip user %d", id), nil, tx.DeleteSIPUser(ctx, id)
}

func (w *world) endpointRow() store.IPEndpoint {
	e := store.IPEndpoint{AccountID: w.account(), Direction: store.DirSends, Address: pickFrom(w, sendsPool),
		Protocol: store.ProtoUDP, Port: 5060, TechPrefix: pickFrom(w, techPool), CLIAuth: w.chance(20)}
	if w.chance(25) {
		e.Direction, e.Address = store.DirReceives, pickFrom(w, receivesPool)
	}
	if w.chance(15) {
		e.Protocol = pickFrom(w, []store.Protocol{store.ProtoTCP, store.ProtoTLS})
	}
	if w.chance(10) {
		e.RestrictedCodecs = []string{"G729", "opus"}
	}
	if w.bad(2) {
		e.Address = "not an address!"
	}
	if w.bad(2) {
		e.Protocol = "sctp"
	}
	if w.bad(2) {
		e.Direction, e.Address = store.DirSends, "pbx.example.com"
	}
	return e
}

func (w *world) createEndpoint(ctx context.Context, tx store.Tx) error {
	e := w.endpointRow()
	if err := tx.CreateEndpoint(ctx, &e); err != nil {
		return err
	}
	w.created(fmt.Sprintf("create ip endpoint %d %s %s tech %q cli %v of account %d", e.ID, e.Direction, e.Address, e.TechPrefix, e.CLIAuth, e.AccountID),
		func(ctx context.Context, tx store.Tx) error { return tx.DeleteEndpoint(ctx, e.ID) })
	return nil
}

func (w *world) updateEndpoint(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.Endpoints) == 0 {
		return "no endpoint to update", nil, nil
	}
	old := pickFrom(w, w.ds.Endpoints)
	e, r := old, w.endpointRow()
	var what string
	switch w.pick(6) {
	case 0:
		e.Address, e.Direction, what = r.Address, r.Direction, fmt.Sprintf("%s %s", r.Direction, r.Address)
	case 1:
		e.TechPrefix, what = r.TechPrefix, fmt.Sprintf("tech %q", r.TechPrefix)
	case 2:
		e.CLIAuth, what = !e.CLIAuth, fmt.Sprintf("cli auth %v", !e.CLIAuth)
	case 3:
		e.AccountID, what = r.AccountID, fmt.Sprintf("move to account %d", r.AccountID)
	case 4:
		e.Protocol, what = r.Protocol, "protocol "+string(r.Protocol)
	default:
		e.Channels, e.ForceNAT, e.RestrictedCodecs, what = w.pick(10), !e.ForceNAT, r.RestrictedCodecs, "limits"
	}
	return fmt.Sprintf("update ip endpoint %d: %s", e.ID, what), restore(store.Tx.UpdateEndpoint, old), tx.UpdateEndpoint(ctx, &e)
}

func (w *world) deleteEndpoint(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.Endpoints) == 0 {
		return "no endpoint to delete", nil, nil
	}
	id := pickFrom(w, w.ds.Endpoints).ID
	return fmt.Sprintf("delete ip endpoint %d", id), nil, tx.DeleteEndpoint(ctx, id)
}

func (w *world) cliRow() store.CLIPattern {
	p := store.CLIPattern{AccountID: w.account(), Pattern: pickFrom(w, numberPool)}
	switch w.pick(6) {
	case 0:
		p.Pattern = "+" + p.Pattern
	case 1:
		p.Pattern, p.Regex = pickFrom(w, []string{"^44", "^4420", "3$", "^44111"}), true
	case 2:
		p.Pattern = "4420123"
	}
	if w.bad(4) {
		p.Pattern, p.Regex = "(", true
	}
	return p
}

func (w *world) createCLI(ctx context.Context, tx store.Tx) error {
	p := w.cliRow()
	if err := tx.CreateCLIPattern(ctx, &p); err != nil {
		return err
	}
	w.created(fmt.Sprintf("create cli pattern %d %q regex %v of account %d", p.ID, p.Pattern, p.Regex, p.AccountID),
		func(ctx context.Context, tx store.Tx) error { return tx.DeleteCLIPattern(ctx, p.ID) })
	return nil
}

func (w *world) updateCLI(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.CLIPatterns) == 0 {
		return "no cli pattern to update", nil, nil
	}
	old := pickFrom(w, w.ds.CLIPatterns)
	p := w.cliRow()
	p.ID = old.ID
	if w.chance(50) {
		p.AccountID = old.AccountID
	}
	return fmt.Sprintf("update cli pattern %d to %q regex %v of account %d", p.ID, p.Pattern, p.Regex, p.AccountID),
		restore(store.Tx.UpdateCLIPattern, old), tx.UpdateCLIPattern(ctx, &p)
}

func (w *world) deleteCLI(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.CLIPatterns) == 0 {
		return "no cli pattern to delete", nil, nil
	}
	id := pickFrom(w, w.ds.CLIPatterns).ID
	return fmt.Sprintf("delete cli pattern %d", id), nil, tx.DeleteCLIPattern(ctx, id)
}

// didRow makes a DID, routed to a user of its account most of the time.
func (w *world) didRow() store.DID {
	d := store.DID{AccountID: w.account(), Number: pickFrom(w, numberPool)}
	if w.bad(5) {
		d.Number = "+" + d.Number // may collide with the number without '+'
	}
	var users []store.SIPUser
	for _, u := range w.ds.Users {
		if u.AccountID == d.AccountID || w.bad(3) {
			users = append(users, u)
		}
	}
	if len(users) > 0 && w.chance(60) {
		d.SIPUserID = ptr(pickFrom(w, users).ID)
	}
	return d
}

func (w *world) createDID(ctx context.Context, tx store.Tx) error {
	d := w.didRow()
	if err := tx.CreateDID(ctx, &d); err != nil {
		return err
	}
	w.created(fmt.Sprintf("create did %d %s of account %d user %v", d.ID, d.Number, d.AccountID, ptrString(d.SIPUserID)),
		func(ctx context.Context, tx store.Tx) error { return tx.DeleteDID(ctx, d.ID) })
	return nil
}

func ptrString(p *int64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

func (w *world) updateDID(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.DIDs) == 0 {
		return "no did to update", nil, nil
	}
	old := pickFrom(w, w.ds.DIDs)
	d, r := old, w.didRow()
	switch w.pick(3) {
	case 0:
		d.SIPUserID = r.SIPUserID
	case 1:
		d.Number = r.Number
	default:
		d.AccountID, d.SIPUserID = r.AccountID, r.SIPUserID
	}
	return fmt.Sprintf("update did %d to %s of account %d user %v", d.ID, d.Number, d.AccountID, ptrString(d.SIPUserID)),
		restore(store.Tx.UpdateDID, old), tx.UpdateDID(ctx, &d)
}

func (w *world) deleteDID(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.DIDs) == 0 {
		return "no did to delete", nil, nil
	}
	id := pickFrom(w, w.ds.DIDs).ID
	return fmt.Sprintf("delete did %d", id), nil, tx.DeleteDID(ctx, id)
}

// ruleRow makes a rule of an existing endpoint or user (ok false: none).
func (w *world) ruleRow() (store.RewriteRule, bool) {
	r := store.RewriteRule{Type: store.RewriteDestination, Match: pickFrom(w, []string{"0", "00", "44"}), Replacement: "44", Order: w.pick(3)}
	switch {
	case len(w.ds.Users) > 0 && w.chance(40):
		r.OwnerKind, r.OwnerID = store.OwnerSIPUser, pickFrom(w, w.ds.Users).ID
	case len(w.ds.Endpoints) > 0:
		r.OwnerKind, r.OwnerID = store.OwnerEndpoint, pickFrom(w, w.ds.Endpoints).ID
	default:
		return r, false
	}
	if w.chance(40) {
		r.Type = store.RewriteCLI
	}
	if w.chance(30) {
		r.Regex, r.Match, r.Replacement = true, `^0(\d+)$`, "44$1"
	}
	if w.bad(4) {
		r.Regex, r.Match = true, "(4"
	}
	if w.bad(2) {
		r.Type = "bogus"
	}
	return r, true
}

func (w *world) createRule(ctx context.Context, tx store.Tx) error {
	r, ok := w.ruleRow()
	if !ok {
		w.created("no owner for a rule", nil)
		return nil
	}
	if err := tx.CreateRewriteRule(ctx, &r); err != nil {
		return err
	}
	w.created(fmt.Sprintf("create rewrite rule %d of %s %d: %s %q→%q", r.ID, r.OwnerKind, r.OwnerID, r.Type, r.Match, r.Replacement),
		func(ctx context.Context, tx store.Tx) error { return tx.DeleteRewriteRule(ctx, r.ID) })
	return nil
}

func (w *world) updateRule(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.Rewrites) == 0 {
		return "no rule to update", nil, nil
	}
	old := pickFrom(w, w.ds.Rewrites)
	r, ok := w.ruleRow()
	if !ok {
		return "no owner for a rule", nil, nil
	}
	r.ID = old.ID
	if w.chance(50) {
		r.OwnerKind, r.OwnerID = old.OwnerKind, old.OwnerID
	}
	return fmt.Sprintf("update rewrite rule %d of %s %d: %s %q→%q", r.ID, r.OwnerKind, r.OwnerID, r.Type, r.Match, r.Replacement),
		restore(store.Tx.UpdateRewriteRule, old), tx.UpdateRewriteRule(ctx, &r)
}

func (w *world) deleteRule(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.Rewrites) == 0 {
		return "no rule to delete", nil, nil
	}
	id := pickFrom(w, w.ds.Rewrites).ID
	return fmt.Sprintf("delete rewrite rule %d", id), nil, tx.DeleteRewriteRule(ctx, id)
}

func (w *world) banRow() store.Ban {
	b := store.Ban{Address: pickFrom(w, banPool), Source: store.BanDetection}
	switch w.pick(3) {
	case 0:
		b.ExpiresAt = time.Now().Add(time.Hour)
	case 1:
		b.ExpiresAt = time.Now().Add(-time.Hour)
	}
	if w.bad(3) {
		b.Address = "ban.example.com"
	}
	return b
}

func (w *world) createBan(ctx context.Context, tx store.Tx) error {
	b := w.banRow()
	if err := tx.CreateBan(ctx, &b); err != nil {
		return err
	}
	w.created(fmt.Sprintf("create ban %d %s until %v", b.ID, b.Address, b.ExpiresAt),
		func(ctx context.Context, tx store.Tx) error { return tx.DeleteBan(ctx, b.ID) })
	return nil
}

func (w *world) updateBan(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.Bans) == 0 {
		return "no ban to update", nil, nil
	}
	old := pickFrom(w, w.ds.Bans)
	b := w.banRow()
	b.ID, b.CreatedAt = old.ID, old.CreatedAt
	return fmt.Sprintf("update ban %d to %s until %v", b.ID, b.Address, b.ExpiresAt), restore(store.Tx.UpdateBan, old), tx.UpdateBan(ctx, &b)
}

func (w *world) deleteBan(ctx context.Context, tx store.Tx) (string, func(context.Context, store.Tx) error, error) {
	if len(w.ds.Bans) == 0 {
		return "no ban to delete", nil, nil
	}
	id := pickFrom(w, w.ds.Bans).ID
	return fmt.Sprintf("delete ban %d", id), nil, tx.DeleteBan(ctx, id)
}

// deltaOf returns the Delta that leads from one dataset to another, as
// LoadDelta would read it from a store that logged the change.
func deltaOf(from, to Dataset) Delta {
	d := Delta{Since: from.Revision, Revision: to.Revision,
		Accounts:    diffRows(from.Accounts, to.Accounts, func(a store.Account) int64 { return a.ID }),
		Endpoints:   diffRows(from.Endpoints, to.Endpoints, func(e store.IPEndpoint) int64 { return e.ID }),
		Users:       diffRows(from.Users, to.Users, func(u store.SIPUser) int64 { return u.ID }),
		CLIPatterns: diffRows(from.CLIPatterns, to.CLIPatterns, func(p store.CLIPattern) int64 { return p.ID }),
		DIDs:        diffRows(from.DIDs, to.DIDs, func(x store.DID) int64 { return x.ID }),
		Rewrites:    map[RuleOwner][]store.RewriteRule{},
	}
	rules := func(ds Dataset) map[RuleOwner][]store.RewriteRule {
		m := map[RuleOwner][]store.RewriteRule{}
		for _, r := range ds.Rewrites {
			k := RuleOwner{r.OwnerKind, r.OwnerID}
			m[k] = append(m[k], r)
		}
		return m
	}
	before, after := rules(from), rules(to)
	mark := func(k RuleOwner) {
		if k.Kind == store.OwnerSIPUser {
			d.Users[k.ID] = rowOf(to.Users, k.ID, func(u store.SIPUser) int64 { return u.ID })
		} else {
			d.Endpoints[k.ID] = rowOf(to.Endpoints, k.ID, func(e store.IPEndpoint) int64 { return e.ID })
		}
	}
	for k := range before {
		if !cmp.Equal(before[k], after[k], cmpopts.EquateEmpty()) {
			mark(k)
		}
	}
	for k := range after {
		if !cmp.Equal(before[k], after[k], cmpopts.EquateEmpty()) {
			mark(k)
		}
	}
	for id, e := range d.Endpoints {
		if e != nil {
			d.Rewrites[RuleOwner{store.OwnerEndpoint, id}] = after[RuleOwner{store.OwnerEndpoint, id}]
		}
	}
	for id, u := range d.Users {
		if u != nil {
			d.Rewrites[RuleOwner{store.OwnerSIPUser, id}] = after[RuleOwner{store.OwnerSIPUser, id}]
		}
	}
	if !cmp.Equal(from.Bans, to.Bans) {
		d.Bans, d.BansChanged = to.Bans, true
	}
	return d
}

// diffRows returns the rows of to that differ from from's, by ID (nil: gone).
func diffRows[T any](from, to []T, id func(T) int64) map[int64]*T {
	out := map[int64]*T{}
	old := map[int64]T{}
	for _, v := range from {
		old[id(v)] = v
	}
	for _, v := range to {
		if o, ok := old[id(v)]; !ok || !cmp.Equal(o, v, cmpopts.EquateEmpty()) {
			out[id(v)] = &v
		}
		delete(old, id(v))
	}
	for k := range old {
		out[k] = nil
	}
	return out
}

// rowOf returns the row of rows with that ID, or nil.
func rowOf[T any](rows []T, want int64, id func(T) int64) *T {
	for i := range rows {
		if id(rows[i]) == want {
			return &rows[i]
		}
	}
	return nil
}

// TestApplyFixture applies single changes to the fixture and compares the
// result with Build of the changed dataset (or expects both to fail alike,
// or ErrRebuild), and checks that the snapshot applied to did not change.
func TestApplyFixture(t *testing.T) {
	const (
		apply = iota
		rebuild
		fail
	)
	user := func(ds *Dataset, id int64) *store.SIPUser {
		return rowOf(ds.Users, id, func(u store.SIPUser) int64 { return u.ID })
	}
	ep := func(ds *Dataset, id int64) *store.IPEndpoint {
		return rowOf(ds.Endpoints, id, func(e store.IPEndpoint) int64 { return e.ID })
	}
	tests := []struct {
		name   string
		modify func(ds *Dataset)
		want   int
	}{
		{"user ha1", func(ds *Dataset) { user(ds, 1001).HA1MD5 = strings.Repeat("C", 32) }, apply},
		{"user renamed", func(ds *Dataset) { user(ds, 1001).Username = "dave" }, apply},
		// Names several users hold (alice: 1000 here, 1002 elsewhere; carol:
		// 1003 elsewhere, 1004 here) are settled by Build's rule, not rebuilt.
		{"user renamed to a name in use", func(ds *Dataset) { user(ds, 1001).Username = "carol" }, apply},
		{"user with a shared name", func(ds *Dataset) { user(ds, 1000).Channels = new(9) }, apply},
		{"holder of a shared name deleted: the other realm's user gets it", func(ds *Dataset) {
			ds.Users = slices.DeleteFunc(ds.Users, func(u store.SIPUser) bool { return u.ID == 1004 })
		}, apply},
		{"holder of a shared name moves realm: the lower ID gets it", func(ds *Dataset) { user(ds, 1004).Realm = "elsewhere" }, apply},
		{"a name held elsewhere taken here by a new user", func(ds *Dataset) {
			ds.Users = append(ds.Users, store.SIPUser{ID: 1005, AccountID: 1, Username: "carol2", Realm: "elsewhere", HA1MD5: md5A},
				store.SIPUser{ID: 1006, AccountID: 1, Username: "carol2", Realm: "sipward", HA1MD5: md5A})
		}, apply},
		{"two users swap names", func(ds *Dataset) { user(ds, 1000).Username = "bob"; user(ds, 1001).Username = "alice" }, apply},
		{"renamed off a shared name", func(ds *Dataset) { user(ds, 1000).Username = "alicia" }, apply},
		{"user moved to another account", func(ds *Dataset) { user(ds, 1001).AccountID = 3 }, apply},
		{"user created", func(ds *Dataset) {
			ds.Users = append(ds.Users, store.SIPUser{ID: 1005, AccountID: 1, Username: "eve", Realm: "sipward", HA1MD5: md5A, IPWhitelist: []string{"10.0.0.0/8"}})
		}, apply},
		{"user deleted", func(ds *Dataset) {
			ds.Users = slices.DeleteFunc(ds.Users, func(u store.SIPUser) bool { return u.ID == 1001 })
		}, apply},
		{"user invalid", func(ds *Dataset) { user(ds, 1001).HA1MD5 = "xyz" }, fail},
		{"account renamed", func(ds *Dataset) { ds.Accounts[1].Name = "Beta 2"; ds.Accounts[1].CPS = 7 }, apply},
		{"account limit invalid", func(ds *Dataset) { ds.Accounts[1].Channels = -1 }, fail},
		{"account deleted with a shared name", func(ds *Dataset) {
			ds.Accounts = ds.Accounts[:2]
			ds.Users = slices.DeleteFunc(ds.Users, func(u store.SIPUser) bool { return u.AccountID == 3 })
			ds.Endpoints = slices.DeleteFunc(ds.Endpoints, func(e store.IPEndpoint) bool { return e.AccountID == 3 })
		}, apply},
		{"account added", func(ds *Dataset) { ds.Accounts = append(ds.Accounts, store.Account{ID: 4, Name: "Delta"}) }, apply},
		{"account deleted, what it holds left", func(ds *Dataset) { ds.Accounts = ds.Accounts[:2] }, fail},
		{"endpoint moved", func(ds *Dataset) { ep(ds, 60).Address = "10.1.0.8" }, apply},
		{"endpoint tech prefix", func(ds *Dataset) { ep(ds, 10).TechPrefix = "2" }, apply},
		{"endpoint to receives", func(ds *Dataset) { ep(ds, 100).Direction = store.DirReceives }, apply},
		{"receives to sends", func(ds *Dataset) { ep(ds, 202).Direction = store.DirSends }, apply},
		{"endpoint added to a shared prefix", func(ds *Dataset) {
			ds.Endpoints = append(ds.Endpoints, store.IPEndpoint{ID: 150, AccountID: 3, Address: "127.0.0.2", Direction: store.DirSends, TechPrefix: "3"})
		}, apply},
		{"endpoint deleted", func(ds *Dataset) {
			ds.Endpoints = slices.DeleteFunc(ds.Endpoints, func(e store.IPEndpoint) bool { return e.ID == 51 })
		}, apply},
		{"endpoint host name sends", func(ds *Dataset) { ep(ds, 60).Address = "pbx.example.com" }, fail},
		{"cli pattern added", func(ds *Dataset) {
			ds.CLIPatterns = append(ds.CLIPatterns, store.CLIPattern{ID: 4, AccountID: 3, Pattern: "^4455", Regex: true})
		}, apply},
		{"cli pattern moved", func(ds *Dataset) { ds.CLIPatterns[0].AccountID = 2 }, apply},
		{"cli pattern invalid", func(ds *Dataset) { ds.CLIPatterns[1].Pattern = "(" }, fail},
		{"did routed to a user", func(ds *Dataset) { ds.DIDs[0].SIPUserID = ptr(int64(1001)) }, apply},
		{"did routed to another account's user", func(ds *Dataset) { ds.DIDs[0].SIPUserID = ptr(int64(1003)) }, fail},
		{"did number taken", func(ds *Dataset) { ds.DIDs[2].Number = "+441110000009" }, fail},
		{"did moved", func(ds *Dataset) { ds.DIDs[2].AccountID = 3 }, apply},
		{"rewrite rule changed", func(ds *Dataset) { ds.Rewrites[0].Replacement = "33" }, apply},
		{"rewrite rule invalid", func(ds *Dataset) { *ds = badRewrite(*ds) }, fail},
		{"ban added", func(ds *Dataset) {
			ds.Bans = append(ds.Bans, store.Ban{ID: 6, Address: "10.1.0.0/16", Source: store.BanOperator, ExpiresAt: t0.Add(time.Hour)})
		}, apply},
		{"ban removed", func(ds *Dataset) { ds.Bans = ds.Bans[1:] }, apply},
	}
	base := mustBuild(t, fixture())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := fixture()
			tt.modify(&to)
			to.Revision++
			want, wantErr := Build(to, testOptions)
			got, err := base.Apply(deltaOf(fixture(), to), testOptions)
			switch tt.want {
			case apply:
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				compareSnapshots(t, tt.name, got, want, 1100)
			case rebuild:
				if !errors.Is(err, ErrRebuild) {
					t.Fatalf("Apply = %v, want ErrRebuild", err)
				}
			case fail:
				if wantErr == nil {
					t.Fatal("Build succeeded; the case is not invalid")
				}
				sameBuildError(t, tt.name, err, wantErr)
			}
			compareSnapshots(t, tt.name+" (the old snapshot)", base, mustBuild(t, fixture()), 1100)
		})
	}
}

// TestApplyRebuilds: deltas that do not follow the snapshot, and changed
// options, are not applied.
func TestApplyRebuilds(t *testing.T) {
	s := mustBuild(t, fixture())
	next := fixture()
	next.Revision = 8
	d := deltaOf(fixture(), next)
	for name, c := range map[string]struct {
		d   Delta
		opt Options
	}{
		"gap":          {Delta{Since: 8, Revision: 9}, testOptions},
		"older":        {Delta{Since: 5, Revision: 6}, testOptions},
		"realm":        {d, Options{Realm: "other", CoreAddrs: testOptions.CoreAddrs}},
		"core":         {d, Options{Realm: testOptions.Realm}},
		"over the cap": {Delta{Since: 7, Revision: 8, Users: bigUserDelta()}, testOptions},
	} {
		if _, err := s.Apply(c.d, c.opt); !errors.Is(err, ErrRebuild) {
			t.Errorf("%s: Apply = %v, want ErrRebuild", name, err)
		}
	}
	if got, err := s.Apply(d, testOptions); err != nil || got.Revision() != 8 || got.ov != nil {
		t.Errorf("empty delta: %v, %v; want revision 8, no overlay", got, err)
	}
}

func bigUserDelta() map[int64]*store.SIPUser {
	m := map[int64]*store.SIPUser{}
	for i := range int64(maxOverlay + 1) {
		m[5000+i] = nil
	}
	return m
}

// withOverlay returns the fixture's snapshot with changes applied to every
// kind of object, so that lookups go through the overlay.
func withOverlay(t testing.TB) *Snapshot {
	t.Helper()
	to := fixture()
	to.Revision++
	to.Accounts[1].Name = "Beta 2" // re-points bob, eps 20, 21, 40, 60, 80, 110, 130, DID 1
	to.Users[1].HA1MD5 = strings.Repeat("d", 32)
	to.Users = append(to.Users, store.SIPUser{ID: 1005, AccountID: 1, Username: "eve", Realm: "sipward", HA1MD5: md5A})
	to.Endpoints[7].Address = "10.1.0.9" // ep 60
	to.Endpoints = append(to.Endpoints, store.IPEndpoint{ID: 150, AccountID: 3, Address: "10.1.0.7", Direction: store.DirSends})
	to.DIDs[0].SIPUserID = ptr(int64(1001))
	to.CLIPatterns[0].Pattern = "441110000005"
	to.Bans = append(to.Bans, store.Ban{ID: 6, Address: "10.1.0.0/16", Source: store.BanOperator})
	s, err := mustBuild(t, fixture()).Apply(deltaOf(fixture(), to), testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if s.ov == nil || len(s.ov.users) == 0 || len(s.ov.eps) == 0 || len(s.ov.accts) == 0 || len(s.ov.names) == 0 || len(s.ov.dids) == 0 {
		t.Fatalf("overlay %+v: want every kind in it", s.ov)
	}
	compareSnapshots(t, "withOverlay", s, mustBuild(t, to), 1100)
	return s
}

// TestApplyBigAccount: an account with more users than the overlay takes is
// rebuilt, not applied.
func TestApplyBigAccount(t *testing.T) {
	ds := Dataset{Revision: 1, Accounts: []store.Account{{ID: 1, Name: "big"}}}
	for i := range maxOverlay + 1 {
		ds.Users = append(ds.Users, store.SIPUser{ID: int64(i + 1), AccountID: 1, Username: fmt.Sprint("u", i), Realm: "sipward"})
	}
	s := mustBuild(t, ds)
	to := ds
	to.Revision = 2
	to.Accounts = []store.Account{{ID: 1, Name: "bigger"}}
	if _, err := s.Apply(Delta{Since: 1, Revision: 2, Accounts: map[int64]*store.Account{1: &to.Accounts[0]}}, testOptions); !errors.Is(err, ErrRebuild) {
		t.Errorf("Apply = %v, want ErrRebuild", err)
	}
}

// TestApplyConcurrentReaders: readers of the serving snapshots race with
// Apply and the swaps (run it with -race): Apply must not write to what the
// snapshot it applies to shares.
func TestApplyConcurrentReaders(t *testing.T) {
	var h Holder
	h.Store(mustBuild(t, fixture()))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	for range 3 {
		go func() {
			defer func() { done <- struct{}{} }()
			for ctx.Err() == nil {
				s := h.Load()
				for _, src := range probeSources {
					_ = s.Identify(src, "udp", "1144123", "441110000001")
				}
				for _, name := range []string{"alice", "bob", "eve"} {
					if u := s.User(name); u != nil {
						_ = u.Account.Name
					}
				}
				if d := s.DID("442220000002"); d != nil && d.User != nil {
					_ = d.User.HA1MD5
				}
			}
		}()
	}
	from := fixture()
	for i := range 40 {
		to := fixture()
		to.Revision = from.Revision + 1
		to.Accounts[i%3].Name = fmt.Sprint("name ", i)
		to.Users[1].HA1MD5 = strings.Repeat(fmt.Sprint(i%10), 32)
		to.Endpoints[i%len(to.Endpoints)].TechPrefix = fmt.Sprint(i % 7)
		to.DIDs[0].SIPUserID = []*int64{nil, ptr(int64(1001))}[i%2]
		s, err := h.Load().Apply(deltaOf(from, to), testOptions)
		if errors.Is(err, ErrRebuild) {
			s, err = Build(to, testOptions)
		}
		if err != nil {
			t.Fatal(err)
		}
		h.Store(s)
		from = to
	}
	cancel()
	for range 3 {
		<-done
	}
}
