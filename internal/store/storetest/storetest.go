// Package storetest is the conformance suite of the store.Store contract.
// Every implementation runs it from its tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openEmpty(t) })
//	}
//
// A store that also keeps registrar bindings (store.Registrations) runs
// RunRegistrations too.
//
// The suite uses stdlib testing and go-cmp. Times are compared to the
// millisecond, so an implementation may keep them at any finer precision.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sipward/sipward/internal/store"
)

// Run runs the conformance suite. newStore returns a new, empty store for
// one subtest and registers its cleanup (closing it) with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Accounts", testAccounts},
		{"Endpoints", testEndpoints},
		{"SIPUsers", testSIPUsers},
		{"SumSIPUserChannels", testSumSIPUserChannels},
		{"CLIPatterns", testCLIPatterns},
		{"DIDs", testDIDs},
		{"RewriteRules", testRewriteRules},
		{"Profiles", testProfiles},
		{"Bans", testBans},
		{"Tokens", testTokens},
		{"Settings", testSettings},
		{"CreateIgnoresID", testCreateIgnoresID},
		{"UpdateKeepsCreatedAt", testUpdateKeepsCreatedAt},
		{"NotFound", testNotFound},
		{"MissingParent", testMissingParent},
		{"Conflicts", testConflicts},
		{"ListAccounts", testListAccounts},
		{"ListEndpoints", testListEndpoints},
		{"ListSIPUsers", testListSIPUsers},
		{"ListCLIPatterns", testListCLIPatterns},
		{"ListDIDs", testListDIDs},
		{"ListRewriteRules", testListRewriteRules},
		{"ListProfiles", testListProfiles},
		{"ListBans", testListBans},
		{"ListTokens", testListTokens},
		{"ListSortKeys", testListSortKeys},
		{"DeleteAccountCascades", testDeleteAccountCascades},
		{"DeleteSIPUser", testDeleteSIPUser},
		{"DeleteEndpoint", testDeleteEndpoint},
		{"DeleteProfile", testDeleteProfile},
		{"ProfileInheritance", testProfileInheritance},
		{"Rollback", testRollback},
		{"FailedWriteKeepsTx", testFailedWriteKeepsTx},
		{"Revision", testRevision},
		{"ViewIsReadOnly", testViewIsReadOnly},
		{"ViewBesideUpdate", testViewBesideUpdate},
		{"Serialised", func(t *testing.T, s store.Store) { Serialised(t, s, s) }},
		{"ChangeLog", testChangeLog},
		{"ChangeLogNothing", testChangeLogNothing},
		{"ChangeLogCascades", testChangeLogCascades},
		{"ChangesPruned", testChangesPruned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// errFull is what the Serialised transactions return when the cap is reached.
var errFull = errors.New("storetest: account full")

// Serialised checks that Updates serialise: two goroutines, one on a and one
// on b, each read the channels an account's SIP users hold and add a user only
// if the sum stays within the account's cap, which leaves room for one. Each
// transaction, having read, waits a moment for the other to read too; a store
// that lets both read before either writes lets both add a user.
//
// a and b may be the same store, or two stores on one database, which checks
// that the serialisation holds across processes or nodes.
func Serialised(t *testing.T, a, b store.Store) {
	acc := create(t, a, store.Tx.CreateAccount, store.Account{Name: "capped", Channels: 10})
	const channels = 6 // two users would hold 12 > 10

	ctx := t.Context()
	stores := [2]store.Store{a, b}
	read := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	var errs [2]error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 2 {
		wg.Go(func() {
			<-start
			var once sync.Once
			errs[i] = stores[i].Update(ctx, func(tx store.Tx) error {
				sum, err := tx.SumSIPUserChannels(ctx, acc.ID, 0)
				if err != nil {
					return err
				}
				once.Do(func() { close(read[i]) })
				select {
				case <-read[1-i]: // not serialised: the other read before we wrote
				case <-time.After(200 * time.Millisecond):
				}
				if sum+channels > acc.Channels {
					return errFull
				}
				return tx.CreateSIPUser(ctx, &store.SIPUser{
					AccountID: acc.ID, Username: fmt.Sprintf("user%d", i), Realm: "example.com", Channels: new(channels),
				})
			})
		})
	}
	close(start)
	wg.Wait()

	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, errFull):
			t.Errorf("update %d: %v", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d updates succeeded, want 1 (errors: %v)", ok, errs)
	}
	var sum int
	view(t, a, func(ctx context.Context, tx store.Tx) (err error) {
		sum, err = tx.SumSIPUserChannels(ctx, acc.ID, 0)
		return err
	})
	if sum > acc.Channels {
		t.Errorf("account holds %d channels, over its cap of %d", sum, acc.Channels)
	}
}

// Helpers. fn runs inside Update or View on the test's goroutine; it returns
// errors rather than calling t.Fatal.

var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b time.Time) bool {
		return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
	}),
	cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) }), // nil == empty
}

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, cmpOpts...); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

func update(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func view(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.View(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("view: %v", err)
	}
}

// write runs op(v) in its own Update and returns the error.
func write[T any](t *testing.T, s store.Store, op func(store.Tx, context.Context, *T) error, v *T) error {
	ctx := t.Context()
	return s.Update(ctx, func(tx store.Tx) error { return op(tx, ctx, v) })
}

// create runs op(&v) (a Create or Update) in its own Update and returns v as
// op left it.
func create[T any](t *testing.T, s store.Store, op func(store.Tx, context.Context, *T) error, v T) T {
	t.Helper()
	if err := write(t, s, op, &v); err != nil {
		t.Fatalf("write %T: %v", v, err)
	}
	return v
}

func lookup[T any](t *testing.T, s store.Store, op func(store.Tx, context.Context, int64) (T, error), id int64) (T, error) {
	ctx := t.Context()
	var v T
	err := s.View(ctx, func(tx store.Tx) (err error) {
		v, err = op(tx, ctx, id)
		return err
	})
	return v, err
}

func get[T any](t *testing.T, s store.Store, op func(store.Tx, context.Context, int64) (T, error), id int64) T {
	t.Helper()
	v, err := lookup(t, s, op, id)
	if err != nil {
		t.Fatalf("get %T %d: %v", v, id, err)
	}
	return v
}

// gone checks that op (a Get) finds no object with that ID.
func gone[T any](t *testing.T, s store.Store, what string, op func(store.Tx, context.Context, int64) (T, error), id int64) {
	t.Helper()
	_, err := lookup(t, s, op, id)
	wantErr(t, fmt.Sprintf("get %s %d", what, id), err, store.ErrNotFound)
}

func remove(t *testing.T, s store.Store, op func(store.Tx, context.Context, int64) error, id int64) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error { return op(tx, ctx, id) })
}

func list[T, F any](t *testing.T, s store.Store, op func(store.Tx, context.Context, F) ([]T, int, error), f F) ([]T, int) {
	t.Helper()
	var items []T
	var total int
	view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
		items, total, err = op(tx, ctx, f)
		return err
	})
	return items, total
}

// listCase is one list query and the IDs, in order, and total it must return.
type listCase[F any] struct {
	name  string
	f     F
	ids   []int64
	total int
}

func checkLists[T, F any](t *testing.T, s store.Store, op func(store.Tx, context.Context, F) ([]T, int, error), cases []listCase[F]) {
	t.Helper()
	for _, c := range cases {
		items, total := list(t, s, op, c.f)
		ids := make([]int64, len(items))
		for i, it := range items {
			ids[i] = reflect.ValueOf(it).FieldByName("ID").Int()
		}
		if d := cmp.Diff(c.ids, ids, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("%s: IDs mismatch (-want +got):\n%s", c.name, d)
		}
		if total != c.total {
			t.Errorf("%s: total %d, want %d", c.name, total, c.total)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// Fixtures.

func newAccount(t *testing.T, s store.Store, name string) store.Account {
	t.Helper()
	return create(t, s, store.Tx.CreateAccount, store.Account{Name: name, Channels: 100})
}

func newEndpoint(t *testing.T, s store.Store, accountID int64, addr string, dir store.Direction) store.IPEndpoint {
	t.Helper()
	return create(t, s, store.Tx.CreateEndpoint, store.IPEndpoint{
		AccountID: accountID, Address: addr, Direction: dir, Protocol: store.ProtoUDP, Port: 5060,
	})
}

func newSIPUser(t *testing.T, s store.Store, accountID int64, username, realm string, channels int) store.SIPUser {
	t.Helper()
	return create(t, s, store.Tx.CreateSIPUser, store.SIPUser{
		AccountID: accountID, Username: username, Realm: realm, Channels: new(channels),
		Protocol: new(store.ProtoUDP), NATPing: new(store.NATPingDisabled),
	})
}

func newRule(t *testing.T, s store.Store, kind store.OwnerKind, owner int64, order int) store.RewriteRule {
	t.Helper()
	return create(t, s, store.Tx.CreateRewriteRule, store.RewriteRule{
		OwnerKind: kind, OwnerID: owner, Type: store.RewriteDestination, Match: "00", Replacement: "+", Order: order,
	})
}

func newDID(t *testing.T, s store.Store, accountID int64, number string, user *int64) store.DID {
	t.Helper()
	return create(t, s, store.Tx.CreateDID, store.DID{AccountID: accountID, Number: number, SIPUserID: user})
}

func newToken(t *testing.T, s store.Store, name string, account *int64) store.Token {
	t.Helper()
	scope := store.ScopeOperator
	if account != nil {
		scope = store.ScopeAccount
	}
	return create(t, s, store.Tx.CreateToken, store.Token{Name: name, Scope: scope, AccountID: account, Hash: "hash-" + name})
}

// checkStamps checks that Create set both timestamps, in UTC.
func checkStamps(t *testing.T, what string, created, updated time.Time) {
	t.Helper()
	if created.IsZero() || updated.IsZero() {
		t.Errorf("%s: CreatedAt %v, UpdatedAt %v: want both set", what, created, updated)
	}
	if created.Location() != time.UTC || updated.Location() != time.UTC {
		t.Errorf("%s: CreatedAt %v, UpdatedAt %v: want UTC", what, created, updated)
	}
}

// checkUpdateStamps checks that Update kept CreatedAt and did not move
// UpdatedAt back.
func checkUpdateStamps(t *testing.T, what string, before, created, updated time.Time) {
	t.Helper()
	if !created.Truncate(time.Millisecond).Equal(before.Truncate(time.Millisecond)) {
		t.Errorf("%s: CreatedAt %v after update, want %v", what, created, before)
	}
	if updated.Truncate(time.Millisecond).Before(before.Truncate(time.Millisecond)) {
		t.Errorf("%s: UpdatedAt %v before CreatedAt %v", what, updated, before)
	}
}

// Round trips.

func testAccounts(t *testing.T, s store.Store) {
	a := create(t, s, store.Tx.CreateAccount, store.Account{
		Name: "Acme", Channels: 10, CPS: 5, BlockFrom: 1000, BlockSize: 100,
	})
	if a.ID == 0 {
		t.Fatal("CreateAccount left ID 0")
	}
	checkStamps(t, "created account", a.CreatedAt, a.UpdatedAt)
	diff(t, "created account", a, get(t, s, store.Tx.GetAccount, a.ID))

	b := newAccount(t, s, "second")
	if b.ID == a.ID {
		t.Errorf("two accounts have ID %d", a.ID)
	}

	created := a.CreatedAt
	a = create(t, s, store.Tx.UpdateAccount, store.Account{
		ID: a.ID, Name: "Acme Ltd", Channels: 20, CPS: 0, BlockFrom: 5000, BlockSize: 10,
	})
	got := get(t, s, store.Tx.GetAccount, a.ID)
	checkUpdateStamps(t, "updated account", created, got.CreatedAt, got.UpdatedAt)
	want := store.Account{ID: a.ID, Name: "Acme Ltd", Channels: 20, BlockFrom: 5000, BlockSize: 10,
		CreatedAt: got.CreatedAt, UpdatedAt: got.UpdatedAt}
	diff(t, "updated account", want, got)
	diff(t, "other account", b, get(t, s, store.Tx.GetAccount, b.ID))

	remove(t, s, store.Tx.DeleteAccount, a.ID)
	gone(t, s, "account", store.Tx.GetAccount, a.ID)
	diff(t, "other account", b, get(t, s, store.Tx.GetAccount, b.ID))
}

func testEndpoints(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "acme")
	in := store.IPEndpoint{
		AccountID: acc.ID, Address: "192.0.2.0/24", Direction: store.DirReceives, Channels: 30, CPS: 3,
		Protocol: store.ProtoTLS, Port: 5061, Manufacturer: "Acme", Version: "1.2", DialPattern: `^00\d+$`,
		TechPrefix: "99#", CLIPrefix: "+44", ForceFrom: "sip:gw@example.com", Username: "egress",
		Password: "s3cret", PasswordSealed: []byte{0, 1, 2, 254, 255}, ForceNAT: true, InterceptReinvite: true,
		OutboundProxy: "proxy.example.com", CLIAuth: true, DisableNAT: true, SmartExtension: true, RestrictedCodecs: []string{"PCMA", "G729"},
		SessionTimers: true, SessionExpires: 600,
	}
	e := create(t, s, store.Tx.CreateEndpoint, in)
	if e.ID == 0 {
		t.Fatal("CreateEndpoint left ID 0")
	}
	checkStamps(t, "created endpoint", e.CreatedAt, e.UpdatedAt)
	want := in
	want.ID, want.CreatedAt, want.UpdatedAt = e.ID, e.CreatedAt, e.UpdatedAt
	want.Password = ""      // write-only
	want.PasswordSet = true // derived
	diff(t, "created endpoint", want, get(t, s, store.Tx.GetEndpoint, e.ID))

	// Update replaces every field; no sealed password means none is set.
	up := store.IPEndpoint{
		ID: e.ID, AccountID: acc.ID, Address: "2001:db8::/32", Direction: store.DirSends,
		Protocol: store.ProtoTCP, PasswordSet: true, RestrictedCodecs: []string{}, SessionExpires: 86400,
	}
	create(t, s, store.Tx.UpdateEndpoint, up)
	got := get(t, s, store.Tx.GetEndpoint, e.ID)
	checkUpdateStamps(t, "updated endpoint", e.CreatedAt, got.CreatedAt, got.UpdatedAt)
	want = up
	want.PasswordSet = false
	want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
	diff(t, "updated endpoint", want, got)

	// nil and empty slices both come back empty and non-nil.
	for _, codecs := range [][]string{nil, {}} {
		e := newEndpoint(t, s, acc.ID, "198.51.100.1", store.DirSends)
		e.RestrictedCodecs = codecs
		create(t, s, store.Tx.UpdateEndpoint, e)
		if got := get(t, s, store.Tx.GetEndpoint, e.ID); got.RestrictedCodecs == nil || len(got.RestrictedCodecs) != 0 {
			t.Errorf("RestrictedCodecs stored as %#v: got %#v, want []string{}", codecs, got.RestrictedCodecs)
		}
	}

	remove(t, s, store.Tx.DeleteEndpoint, e.ID)
	gone(t, s, "endpoint", store.Tx.GetEndpoint, e.ID)
}

func testSIPUsers(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "acme")
	prof := create(t, s, store.Tx.CreateProfile, store.Profile{Name: "default", RestrictedCodecs: []string{}})
	in := store.SIPUser{
		AccountID: acc.ID, Username: "alice", Realm: "sip.example.com", Password: "pw",
		HA1MD5: "0123456789abcdef0123456789abcdef", HA1SHA256: "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
		ProfileID: ptr(prof.ID), Channels: new(4), CPS: new(2), Protocol: new(store.ProtoTLSSRTP),
		IPWhitelist: []string{"192.0.2.0/24", "2001:db8::1/128"}, NATPing: new(store.NATPingTimeout),
		RetainDID: true, SmartExtension: true, RestrictedCodecs: []string{"opus"}, SessionTimers: true, SessionExpires: 600,
		Voicemail: store.Voicemail{Enabled: true, Email: "alice@example.com", PIN: "1234", PINHash: "pin-hash"},
	}
	u := create(t, s, store.Tx.CreateSIPUser, in)
	if u.ID == 0 {
		t.Fatal("CreateSIPUser left ID 0")
	}
	checkStamps(t, "created sip user", u.CreatedAt, u.UpdatedAt)
	want := in
	want.ID, want.CreatedAt, want.UpdatedAt = u.ID, u.CreatedAt, u.UpdatedAt
	want.Password = ""           // write-only
	want.Voicemail.PIN = ""      // write-only
	want.Voicemail.PINSet = true // derived
	store.Resolve(&want, &prof)  // derived: all its own
	diff(t, "created sip user", want, get(t, s, store.Tx.GetSIPUser, u.ID))

	var byName store.SIPUser
	view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
		byName, err = tx.GetSIPUserByName(ctx, "sip.example.com", "alice")
		return err
	})
	diff(t, "sip user by name", want, byName)
	// The username is matched exactly: case counts.
	for _, k := range [][2]string{{"sip.example.com", "bob"}, {"other.example.com", "alice"}, {"sip.example.com", "ALICE"}} {
		err := s.View(t.Context(), func(tx store.Tx) error {
			_, err := tx.GetSIPUserByName(t.Context(), k[0], k[1])
			return err
		})
		wantErr(t, fmt.Sprintf("GetSIPUserByName(%q, %q)", k[0], k[1]), err, store.ErrNotFound)
	}

	// Update replaces every field; nil pointer and slices, no PIN.
	up := store.SIPUser{
		ID: u.ID, AccountID: acc.ID, Username: "alice2", Realm: "sip.example.com",
		HA1MD5: "md5", HA1SHA256: "sha", Protocol: new(store.ProtoUDP), NATPing: new(store.NATPingEnabled),
		Voicemail: store.Voicemail{Email: "x@example.com", PINSet: true}, SessionExpires: 86400,
	}
	create(t, s, store.Tx.UpdateSIPUser, up)
	got := get(t, s, store.Tx.GetSIPUser, u.ID)
	checkUpdateStamps(t, "updated sip user", u.CreatedAt, got.CreatedAt, got.UpdatedAt)
	want = up
	want.IPWhitelist = []string{}
	want.Voicemail.PINSet = false
	store.Resolve(&want, nil) // channels, cps and codecs from the defaults
	want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
	diff(t, "updated sip user", want, got)

	remove(t, s, store.Tx.DeleteSIPUser, u.ID)
	gone(t, s, "sip user", store.Tx.GetSIPUser, u.ID)
}

func testSumSIPUserChannels(t *testing.T, s store.Store) {
	a := newAccount(t, s, "a")
	b := newAccount(t, s, "b")
	empty := newAccount(t, s, "empty")
	u1 := newSIPUser(t, s, a.ID, "u1", "example.com", 10)
	newSIPUser(t, s, a.ID, "u2", "example.com", 20)
	newSIPUser(t, s, a.ID, "u3", "example.com", 0)
	newSIPUser(t, s, b.ID, "u4", "example.com", 7)

	for _, c := range []struct {
		account, exclude int64
		want             int
	}{
		{a.ID, 0, 30},
		{a.ID, u1.ID, 20},
		{b.ID, 0, 7},
		{b.ID, u1.ID, 7}, // u1 is not b's
		{empty.ID, 0, 0},
		{999999, 0, 0},
	} {
		var got int
		view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
			got, err = tx.SumSIPUserChannels(ctx, c.account, c.exclude)
			return err
		})
		if got != c.want {
			t.Errorf("SumSIPUserChannels(%d, %d) = %d, want %d", c.account, c.exclude, got, c.want)
		}
	}
}

func testCLIPatterns(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "acme")
	p := create(t, s, store.Tx.CreateCLIPattern, store.CLIPattern{AccountID: acc.ID, Pattern: `^\+4420\d{8}$`, Regex: true})
	if p.ID == 0 {
		t.Fatal("CreateCLIPattern left ID 0")
	}
	diff(t, "created cli pattern", p, get(t, s, store.Tx.GetCLIPattern, p.ID))
	up := create(t, s, store.Tx.UpdateCLIPattern, store.CLIPattern{ID: p.ID, AccountID: acc.ID, Pattern: "+442071234567"})
	diff(t, "updated cli pattern", up, get(t, s, store.Tx.GetCLIPattern, p.ID))
	remove(t, s, store.Tx.DeleteCLIPattern, p.ID)
	gone(t, s, "cli pattern", store.Tx.GetCLIPattern, p.ID)
}

func testDIDs(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "acme")
	u := newSIPUser(t, s, acc.ID, "alice", "example.com", 1)
	d := create(t, s, store.Tx.CreateDID, store.DID{AccountID: acc.ID, Number: "+442071234567", SIPUserID: ptr(u.ID)})
	if d.ID == 0 {
		t.Fatal("CreateDID left ID 0")
	}
	diff(t, "created did", d, get(t, s, store.Tx.GetDID, d.ID))
	up := create(t, s, store.Tx.UpdateDID, store.DID{ID: d.ID, AccountID: acc.ID, Number: "+442071234568"})
	diff(t, "updated did", up, get(t, s, store.Tx.GetDID, d.ID))
	remove(t, s, store.Tx.DeleteDID, d.ID)
	gone(t, s, "did", store.Tx.GetDID, d.ID)
}

func testRewriteRules(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "acme")
	e := newEndpoint(t, s, acc.ID, "192.0.2.1", store.DirSends)
	u := newSIPUser(t, s, acc.ID, "alice", "example.com", 1)
	r := create(t, s, store.Tx.CreateRewriteRule, store.RewriteRule{
		OwnerKind: store.OwnerEndpoint, OwnerID: e.ID, Type: store.RewriteCLI, Regex: true,
		Match: `^0(\d+)$`, Replacement: `+44$1`, Order: 7,
	})
	if r.ID == 0 {
		t.Fatal("CreateRewriteRule left ID 0")
	}
	diff(t, "created rewrite rule", r, get(t, s, store.Tx.GetRewriteRule, r.ID))
	up := create(t, s, store.Tx.UpdateRewriteRule, store.RewriteRule{
		ID: r.ID, OwnerKind: store.OwnerSIPUser, OwnerID: u.ID, Type: store.RewriteDestination,
		Match: "00", Replacement: "+", Order: -1,
	})
	diff(t, "updated rewrite rule", up, get(t, s, store.Tx.GetRewriteRule, r.ID))
	remove(t, s, store.Tx.DeleteRewriteRule, r.ID)
	gone(t, s, "rewrite rule", store.Tx.GetRewriteRule, r.ID)
}

func testProfiles(t *testing.T, s store.Store) {
	in := store.Profile{Name: "gold", Channels: 8, CPS: 4, Protocol: store.ProtoTLS, NATPing: store.NATPingEnabled,
		RestrictedCodecs: []string{"PCMU", "PCMA"}}
	p := create(t, s, store.Tx.CreateProfile, in)
	if p.ID == 0 {
		t.Fatal("CreateProfile left ID 0")
	}
	want := in
	want.ID = p.ID
	diff(t, "created profile", want, get(t, s, store.Tx.GetProfile, p.ID))
	create(t, s, store.Tx.UpdateProfile, store.Profile{ID: p.ID, Name: "platinum"})
	want = store.Profile{ID: p.ID, Name: "platinum", RestrictedCodecs: []string{}}
	diff(t, "updated profile", want, get(t, s, store.Tx.GetProfile, p.ID))
	remove(t, s, store.Tx.DeleteProfile, p.ID)
	gone(t, s, "profile", store.Tx.GetProfile, p.ID)
}

func testBans(t *testing.T, s store.Store) {
	zone := time.FixedZone("UTC+5", 5*3600)
	expires := time.Date(2031, 2, 3, 4, 5, 6, 789_000_000, zone)
	in := store.Ban{Address: "192.0.2.7/32", Reason: "flood", Source: store.BanDetection, ExpiresAt: expires}
	b := create(t, s, store.Tx.CreateBan, in)
	if b.ID == 0 {
		t.Fatal("CreateBan left ID 0")
	}
	if b.CreatedAt.IsZero() {
		t.Error("CreateBan left CreatedAt zero")
	}
	got := get(t, s, store.Tx.GetBan, b.ID)
	want := in
	want.ID, want.CreatedAt = b.ID, b.CreatedAt
	diff(t, "created ban", want, got)
	if got.ExpiresAt.Location() != time.UTC || got.CreatedAt.Location() != time.UTC {
		t.Errorf("ban times %v, %v: want UTC", got.CreatedAt, got.ExpiresAt)
	}

	// Never expires.
	create(t, s, store.Tx.UpdateBan, store.Ban{ID: b.ID, Address: "192.0.2.0/24", Source: store.BanOperator})
	got = get(t, s, store.Tx.GetBan, b.ID)
	want = store.Ban{ID: b.ID, Address: "192.0.2.0/24", Source: store.BanOperator, CreatedAt: b.CreatedAt}
	diff(t, "updated ban", want, got)
	if !got.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt = %v, want zero", got.ExpiresAt)
	}

	remove(t, s, store.Tx.DeleteBan, b.ID)
	gone(t, s, "ban", store.Tx.GetBan, b.ID)
}

func testTokens(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "acme")
	for _, account := range []*int64{nil, ptr(acc.ID)} {
		in := store.Token{Name: "ci", Scope: store.ScopeAccount, AccountID: account, Hash: fmt.Sprintf("hash-%v", account != nil),
			Secret: "the-secret"}
		k := create(t, s, store.Tx.CreateToken, in)
		if k.ID == 0 {
			t.Fatal("CreateToken left ID 0")
		}
		if k.CreatedAt.IsZero() {
			t.Error("CreateToken left CreatedAt zero")
		}
		want := in
		want.ID, want.CreatedAt = k.ID, k.CreatedAt
		want.Secret = "" // returned once, never stored
		diff(t, "created token", want, get(t, s, store.Tx.GetToken, k.ID))

		var byHash store.Token
		view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
			byHash, err = tx.GetTokenByHash(ctx, in.Hash)
			return err
		})
		diff(t, "token by hash", want, byHash)

		renamed := want
		renamed.Name = "ci-renamed"
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpdateToken(ctx, &renamed) })
		diff(t, "renamed token", renamed, get(t, s, store.Tx.GetToken, k.ID))
		want = renamed

		remove(t, s, store.Tx.DeleteToken, k.ID)
		gone(t, s, "token", store.Tx.GetToken, k.ID)
		err := s.View(t.Context(), func(tx store.Tx) error {
			_, err := tx.GetTokenByHash(t.Context(), in.Hash)
			return err
		})
		wantErr(t, "GetTokenByHash of a deleted token", err, store.ErrNotFound)
	}
}

func testSettings(t *testing.T, s store.Store) {
	getSetting := func(key string) (string, error) {
		var v string
		err := s.View(t.Context(), func(tx store.Tx) (err error) {
			v, err = tx.GetSetting(t.Context(), key)
			return err
		})
		return v, err
	}
	_, err := getSetting("nonce_key")
	wantErr(t, "GetSetting of a missing key", err, store.ErrNotFound)

	for _, v := range []string{"first", "second", ""} {
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutSetting(ctx, "nonce_key", v) })
		got, err := getSetting("nonce_key")
		if err != nil || got != v {
			t.Errorf("GetSetting after PutSetting(%q) = %q, %v", v, got, err)
		}
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutSetting(ctx, "other", "x") })
	if got, err := getSetting("nonce_key"); err != nil || got != "" {
		t.Errorf("GetSetting(nonce_key) after another key was put = %q, %v", got, err)
	}
}

// Create and Update stamps.

// idOf returns a pointer to v's ID field.
func idOf[T any](v *T) *int64 {
	return reflect.ValueOf(v).Elem().FieldByName("ID").Addr().Interface().(*int64)
}

// timeOf returns a pointer to v's time field name, or nil if T has none.
func timeOf[T any](v *T, name string) *time.Time {
	f := reflect.ValueOf(v).Elem().FieldByName(name)
	if !f.IsValid() {
		return nil
	}
	return f.Addr().Interface().(*time.Time)
}

// stale is a time no store would stamp now.
var stale = time.Date(2000, 1, 2, 3, 4, 5, 0, time.UTC)

// checkCreateIgnoresID creates first, then second with first's ID (and
// stale timestamps, where T has them): Create must give second an ID of its
// own and its own timestamps, and leave first alone.
func checkCreateIgnoresID[T any](t *testing.T, s store.Store, what string,
	createOp func(store.Tx, context.Context, *T) error, getOp func(store.Tx, context.Context, int64) (T, error), first, second T) {
	t.Helper()
	first = create(t, s, createOp, first)
	id := *idOf(&first)
	*idOf(&second) = id
	for _, name := range []string{"CreatedAt", "UpdatedAt"} {
		if ts := timeOf(&second, name); ts != nil {
			*ts = stale
		}
	}
	second = create(t, s, createOp, second)
	if got := *idOf(&second); got == id {
		t.Errorf("%s: Create kept the caller's ID %d, which an existing %s has", what, id, what)
	}
	for _, name := range []string{"CreatedAt", "UpdatedAt"} {
		if ts := timeOf(&second, name); ts != nil && (ts.IsZero() || ts.Equal(stale)) {
			t.Errorf("%s: Create left %s = %v, want it set now", what, name, *ts)
		}
	}
	diff(t, what+" created first", first, get(t, s, getOp, id))
	diff(t, what+" created with the first's ID", second, get(t, s, getOp, *idOf(&second)))
}

func testCreateIgnoresID(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "acme")
	e := newEndpoint(t, s, acc.ID, "192.0.2.1", store.DirSends)
	u := newSIPUser(t, s, acc.ID, "alice", "example.com", 1)
	checkCreateIgnoresID(t, s, "account", store.Tx.CreateAccount, store.Tx.GetAccount,
		store.Account{Name: "a1"}, store.Account{Name: "a2"})
	checkCreateIgnoresID(t, s, "endpoint", store.Tx.CreateEndpoint, store.Tx.GetEndpoint,
		store.IPEndpoint{AccountID: acc.ID, Address: "192.0.2.2", Direction: store.DirSends},
		store.IPEndpoint{AccountID: acc.ID, Address: "192.0.2.3", Direction: store.DirReceives})
	checkCreateIgnoresID(t, s, "sip user", store.Tx.CreateSIPUser, store.Tx.GetSIPUser,
		store.SIPUser{AccountID: acc.ID, Username: "u1", Realm: "example.com"},
		store.SIPUser{AccountID: acc.ID, Username: "u2", Realm: "example.com"})
	checkCreateIgnoresID(t, s, "cli pattern", store.Tx.CreateCLIPattern, store.Tx.GetCLIPattern,
		store.CLIPattern{AccountID: acc.ID, Pattern: "1"}, store.CLIPattern{AccountID: acc.ID, Pattern: "2"})
	checkCreateIgnoresID(t, s, "did", store.Tx.CreateDID, store.Tx.GetDID,
		store.DID{AccountID: acc.ID, Number: "+15550001"}, store.DID{AccountID: acc.ID, Number: "+15550002"})
	checkCreateIgnoresID(t, s, "rewrite rule", store.Tx.CreateRewriteRule, store.Tx.GetRewriteRule,
		store.RewriteRule{OwnerKind: store.OwnerEndpoint, OwnerID: e.ID, Type: store.RewriteCLI},
		store.RewriteRule{OwnerKind: store.OwnerSIPUser, OwnerID: u.ID, Type: store.RewriteDestination})
	checkCreateIgnoresID(t, s, "profile", store.Tx.CreateProfile, store.Tx.GetProfile,
		store.Profile{Name: "p1"}, store.Profile{Name: "p2"})
	checkCreateIgnoresID(t, s, "ban", store.Tx.CreateBan, store.Tx.GetBan,
		store.Ban{Address: "192.0.2.9/32", Source: store.BanOperator}, store.Ban{Address: "192.0.2.10/32", Source: store.BanDetection})
	checkCreateIgnoresID(t, s, "token", store.Tx.CreateToken, store.Tx.GetToken,
		store.Token{Name: "k1", Scope: store.ScopeOperator, Hash: "h1"},
		store.Token{Name: "k2", Scope: store.ScopeAccount, AccountID: ptr(acc.ID), Hash: "h2"})
}

// checkUpdateKeepsCreatedAt updates v twice, its CreatedAt first zero and
// then stale: each time Update must keep the stored CreatedAt, copy it back
// into v, and set UpdatedAt (where T has it) no earlier than CreatedAt.
func checkUpdateKeepsCreatedAt[T any](t *testing.T, s store.Store, what string,
	updateOp func(store.Tx, context.Context, *T) error, getOp func(store.Tx, context.Context, int64) (T, error), v T) {
	t.Helper()
	created := *timeOf(&v, "CreatedAt")
	for _, callerSet := range []time.Time{{}, stale} {
		*timeOf(&v, "CreatedAt") = callerSet
		if u := timeOf(&v, "UpdatedAt"); u != nil {
			*u = stale
		}
		v = create(t, s, updateOp, v)
		if got := *timeOf(&v, "CreatedAt"); !got.Truncate(time.Millisecond).Equal(created.Truncate(time.Millisecond)) {
			t.Errorf("%s updated with CreatedAt %v: CreatedAt copied back %v, want %v", what, callerSet, got, created)
		}
		if u := timeOf(&v, "UpdatedAt"); u != nil && u.Truncate(time.Millisecond).Before(created.Truncate(time.Millisecond)) {
			t.Errorf("%s updated: UpdatedAt %v, before CreatedAt %v", what, *u, created)
		}
		got := get(t, s, getOp, *idOf(&v))
		if stored := *timeOf(&got, "CreatedAt"); !stored.Truncate(time.Millisecond).Equal(created.Truncate(time.Millisecond)) {
			t.Errorf("%s updated with CreatedAt %v: stored CreatedAt %v, want %v", what, callerSet, stored, created)
		}
		diff(t, what+" updated", v, got)
	}
}

func testUpdateKeepsCreatedAt(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "acme")
	checkUpdateKeepsCreatedAt(t, s, "account", store.Tx.UpdateAccount, store.Tx.GetAccount, acc)
	checkUpdateKeepsCreatedAt(t, s, "endpoint", store.Tx.UpdateEndpoint, store.Tx.GetEndpoint,
		newEndpoint(t, s, acc.ID, "192.0.2.1", store.DirSends))
	checkUpdateKeepsCreatedAt(t, s, "sip user", store.Tx.UpdateSIPUser, store.Tx.GetSIPUser,
		newSIPUser(t, s, acc.ID, "alice", "example.com", 1))
	checkUpdateKeepsCreatedAt(t, s, "ban", store.Tx.UpdateBan, store.Tx.GetBan,
		create(t, s, store.Tx.CreateBan, store.Ban{Address: "192.0.2.9/32", Source: store.BanOperator}))
}

// Errors.

func testNotFound(t *testing.T, s store.Store) {
	const missing = 987654
	acc := newAccount(t, s, "acme")
	e := newEndpoint(t, s, acc.ID, "192.0.2.1", store.DirSends)
	u := newSIPUser(t, s, acc.ID, "alice", "example.com", 1)

	ops := []struct {
		name string
		fn   func(ctx context.Context, tx store.Tx) error
	}{
		{"GetAccount", func(ctx context.Context, tx store.Tx) error { _, err := tx.GetAccount(ctx, missing); return err }},
		{"UpdateAccount", func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateAccount(ctx, &store.Account{ID: missing, Name: "x"})
		}},
		{"DeleteAccount", func(ctx context.Context, tx store.Tx) error { return tx.DeleteAccount(ctx, missing) }},

		{"GetEndpoint", func(ctx context.Context, tx store.Tx) error { _, err := tx.GetEndpoint(ctx, missing); return err }},
		{"UpdateEndpoint", func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateEndpoint(ctx, &store.IPEndpoint{ID: missing, AccountID: acc.ID, Address: "192.0.2.9", Direction: store.DirSends})
		}},
		{"DeleteEndpoint", func(ctx context.Context, tx store.Tx) error { return tx.DeleteEndpoint(ctx, missing) }},

		{"GetSIPUser", func(ctx context.Context, tx store.Tx) error { _, err := tx.GetSIPUser(ctx, missing); return err }},
		{"UpdateSIPUser", func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateSIPUser(ctx, &store.SIPUser{ID: missing, AccountID: acc.ID, Username: "nobody", Realm: "example.com"})
		}},
		{"DeleteSIPUser", func(ctx context.Context, tx store.Tx) error { return tx.DeleteSIPUser(ctx, missing) }},

		{"GetCLIPattern", func(ctx context.Context, tx store.Tx) error { _, err := tx.GetCLIPattern(ctx, missing); return err }},
		{"UpdateCLIPattern", func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateCLIPattern(ctx, &store.CLIPattern{ID: missing, AccountID: acc.ID, Pattern: "1"})
		}},
		{"DeleteCLIPattern", func(ctx context.Context, tx store.Tx) error { return tx.DeleteCLIPattern(ctx, missing) }},

		{"GetDID", func(ctx context.Context, tx store.Tx) error { _, err := tx.GetDID(ctx, missing); return err }},
		{"UpdateDID", func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateDID(ctx, &store.DID{ID: missing, AccountID: acc.ID, Number: "+1555"})
		}},
		{"DeleteDID", func(ctx context.Context, tx store.Tx) error { return tx.DeleteDID(ctx, missing) }},

		{"GetRewriteRule", func(ctx context.Context, tx store.Tx) error { _, err := tx.GetRewriteRule(ctx, missing); return err }},
		{"UpdateRewriteRule", func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateRewriteRule(ctx, &store.RewriteRule{ID: missing, OwnerKind: store.OwnerEndpoint, OwnerID: e.ID,
				Type: store.RewriteDestination})
		}},
		{"UpdateRewriteRule(sip user)", func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateRewriteRule(ctx, &store.RewriteRule{ID: missing, OwnerKind: store.OwnerSIPUser, OwnerID: u.ID,
				Type: store.RewriteCLI})
		}},
		{"DeleteRewriteRule", func(ctx context.Context, tx store.Tx) error { return tx.DeleteRewriteRule(ctx, missing) }},

		{"GetProfile", func(ctx context.Context, tx store.Tx) error { _, err := tx.GetProfile(ctx, missing); return err }},
		{"UpdateProfile", func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateProfile(ctx, &store.Profile{ID: missing, Name: "nothing"})
		}},
		{"DeleteProfile", func(ctx context.Context, tx store.Tx) error { return tx.DeleteProfile(ctx, missing) }},

		{"GetBan", func(ctx context.Context, tx store.Tx) error { _, err := tx.GetBan(ctx, missing); return err }},
		{"UpdateBan", func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateBan(ctx, &store.Ban{ID: missing, Address: "192.0.2.1/32", Source: store.BanOperator})
		}},
		{"DeleteBan", func(ctx context.Context, tx store.Tx) error { return tx.DeleteBan(ctx, missing) }},

		{"GetToken", func(ctx context.Context, tx store.Tx) error { _, err := tx.GetToken(ctx, missing); return err }},
		{"GetTokenByHash", func(ctx context.Context, tx store.Tx) error { _, err := tx.GetTokenByHash(ctx, "nope"); return err }},
		{"DeleteToken", func(ctx context.Context, tx store.Tx) error { return tx.DeleteToken(ctx, missing) }},

		{"GetSetting", func(ctx context.Context, tx store.Tx) error { _, err := tx.GetSetting(ctx, "nope"); return err }},
	}
	rev := revision(t, s)
	for _, op := range ops {
		err := s.Update(t.Context(), func(tx store.Tx) error { return op.fn(t.Context(), tx) })
		wantErr(t, op.name+" of a missing object", err, store.ErrNotFound)
	}
	if got := revision(t, s); got != rev {
		t.Errorf("revision moved from %d to %d though every update failed", rev, got)
	}
}

// testMissingParent checks that a Create or Update that refers to a missing
// parent (account, profile, SIP user, rewrite rule owner) returns
// ErrNotFound and changes nothing, and that the store checks only that a
// reference exists, not that it belongs to the same account.
func testMissingParent(t *testing.T, s store.Store) {
	const missing = 987654
	acc := newAccount(t, s, "acme")
	e := newEndpoint(t, s, acc.ID, "192.0.2.1", store.DirSends)
	u := newSIPUser(t, s, acc.ID, "alice", "example.com", 1)
	cli := create(t, s, store.Tx.CreateCLIPattern, store.CLIPattern{AccountID: acc.ID, Pattern: "1"})
	d := newDID(t, s, acc.ID, "+15550001", nil)
	r := newRule(t, s, store.OwnerEndpoint, e.ID, 0)

	ops := []struct {
		name string
		fn   func(ctx context.Context, tx store.Tx) error
	}{
		{"CreateEndpoint of a missing account", func(ctx context.Context, tx store.Tx) error {
			return tx.CreateEndpoint(ctx, &store.IPEndpoint{AccountID: missing, Address: "192.0.2.2", Direction: store.DirSends})
		}},
		{"UpdateEndpoint to a missing account", func(ctx context.Context, tx store.Tx) error {
			v := e
			v.AccountID = missing
			return tx.UpdateEndpoint(ctx, &v)
		}},
		{"CreateSIPUser of a missing account", func(ctx context.Context, tx store.Tx) error {
			return tx.CreateSIPUser(ctx, &store.SIPUser{AccountID: missing, Username: "bob", Realm: "example.com"})
		}},
		{"CreateSIPUser with a missing profile", func(ctx context.Context, tx store.Tx) error {
			return tx.CreateSIPUser(ctx, &store.SIPUser{AccountID: acc.ID, Username: "bob", Realm: "example.com", ProfileID: ptr(int64(missing))})
		}},
		{"UpdateSIPUser to a missing account", func(ctx context.Context, tx store.Tx) error {
			v := u
			v.AccountID = missing
			return tx.UpdateSIPUser(ctx, &v)
		}},
		{"UpdateSIPUser to a missing profile", func(ctx context.Context, tx store.Tx) error {
			v := u
			v.ProfileID = ptr(int64(missing))
			return tx.UpdateSIPUser(ctx, &v)
		}},
		{"CreateCLIPattern of a missing account", func(ctx context.Context, tx store.Tx) error {
			return tx.CreateCLIPattern(ctx, &store.CLIPattern{AccountID: missing, Pattern: "2"})
		}},
		{"UpdateCLIPattern to a missing account", func(ctx context.Context, tx store.Tx) error {
			v := cli
			v.AccountID = missing
			return tx.UpdateCLIPattern(ctx, &v)
		}},
		{"CreateDID of a missing account", func(ctx context.Context, tx store.Tx) error {
			return tx.CreateDID(ctx, &store.DID{AccountID: missing, Number: "+15550002"})
		}},
		{"CreateDID of a missing sip user", func(ctx context.Context, tx store.Tx) error {
			return tx.CreateDID(ctx, &store.DID{AccountID: acc.ID, Number: "+15550002", SIPUserID: ptr(int64(missing))})
		}},
		{"UpdateDID to a missing account", func(ctx context.Context, tx store.Tx) error {
			v := d
			v.AccountID = missing
			return tx.UpdateDID(ctx, &v)
		}},
		{"UpdateDID to a missing sip user", func(ctx context.Context, tx store.Tx) error {
			v := d
			v.SIPUserID = ptr(int64(missing))
			return tx.UpdateDID(ctx, &v)
		}},
		{"CreateRewriteRule of a missing endpoint", func(ctx context.Context, tx store.Tx) error {
			return tx.CreateRewriteRule(ctx, &store.RewriteRule{OwnerKind: store.OwnerEndpoint, OwnerID: missing, Type: store.RewriteCLI})
		}},
		{"CreateRewriteRule of a missing sip user", func(ctx context.Context, tx store.Tx) error {
			return tx.CreateRewriteRule(ctx, &store.RewriteRule{OwnerKind: store.OwnerSIPUser, OwnerID: missing, Type: store.RewriteCLI})
		}},
		{"UpdateRewriteRule to a missing endpoint", func(ctx context.Context, tx store.Tx) error {
			v := r
			v.OwnerID = missing
			return tx.UpdateRewriteRule(ctx, &v)
		}},
		{"UpdateRewriteRule to a missing sip user", func(ctx context.Context, tx store.Tx) error {
			v := r
			v.OwnerKind, v.OwnerID = store.OwnerSIPUser, missing
			return tx.UpdateRewriteRule(ctx, &v)
		}},
		{"CreateToken of a missing account", func(ctx context.Context, tx store.Tx) error {
			return tx.CreateToken(ctx, &store.Token{Name: "k", Scope: store.ScopeAccount, AccountID: ptr(int64(missing)), Hash: "h"})
		}},
	}
	rev := revision(t, s)
	for _, op := range ops {
		err := s.Update(t.Context(), func(tx store.Tx) error { return op.fn(t.Context(), tx) })
		wantErr(t, op.name, err, store.ErrNotFound)
	}
	if got := revision(t, s); got != rev {
		t.Errorf("revision moved from %d to %d though every update failed", rev, got)
	}
	diff(t, "endpoint", e, get(t, s, store.Tx.GetEndpoint, e.ID))
	diff(t, "sip user", u, get(t, s, store.Tx.GetSIPUser, u.ID))
	diff(t, "cli pattern", cli, get(t, s, store.Tx.GetCLIPattern, cli.ID))
	diff(t, "did", d, get(t, s, store.Tx.GetDID, d.ID))
	diff(t, "rewrite rule", r, get(t, s, store.Tx.GetRewriteRule, r.ID))
	_, ne := list(t, s, store.Tx.ListEndpoints, store.EndpointFilter{})
	_, nu := list(t, s, store.Tx.ListSIPUsers, store.SIPUserFilter{})
	_, nc := list(t, s, store.Tx.ListCLIPatterns, store.CLIPatternFilter{})
	_, nd := list(t, s, store.Tx.ListDIDs, store.DIDFilter{})
	_, nr := list(t, s, store.Tx.ListRewriteRules, store.RewriteFilter{})
	_, nk := list(t, s, store.Tx.ListTokens, store.TokenFilter{})
	if ne != 1 || nu != 1 || nc != 1 || nd != 1 || nr != 1 || nk != 0 {
		t.Errorf("after refused writes: %d endpoints, %d sip users, %d cli patterns, %d dids, %d rules, %d tokens; want 1, 1, 1, 1, 1, 0",
			ne, nu, nc, nd, nr, nk)
	}

	// A reference to another account's SIP user exists, so the store takes it.
	other := newAccount(t, s, "other")
	newDID(t, s, other.ID, "+15550003", ptr(u.ID))
}

func testConflicts(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "acme")
	other := newAccount(t, s, "other")

	// SIP username: unique per realm, across accounts.
	alice := newSIPUser(t, s, acc.ID, "alice", "a.example.com", 1)
	bob := newSIPUser(t, s, acc.ID, "bob", "a.example.com", 1)
	newSIPUser(t, s, acc.ID, "alice", "b.example.com", 1) // same name, other realm: fine
	newSIPUser(t, s, acc.ID, "Alice", "a.example.com", 1) // usernames are case-sensitive: fine
	for _, u := range []store.SIPUser{
		{AccountID: acc.ID, Username: "alice", Realm: "a.example.com"},
		{AccountID: other.ID, Username: "alice", Realm: "a.example.com"},
	} {
		wantErr(t, fmt.Sprintf("CreateSIPUser %q@%q in account %d", u.Username, u.Realm, u.AccountID),
			write(t, s, store.Tx.CreateSIPUser, &u), store.ErrConflict)
	}
	bob.Username = alice.Username
	wantErr(t, "UpdateSIPUser to a taken name", write(t, s, store.Tx.UpdateSIPUser, &bob), store.ErrConflict)

	// DID number: unique.
	d := newDID(t, s, acc.ID, "+15550001", nil)
	d2 := newDID(t, s, acc.ID, "+15550002", nil)
	wantErr(t, "CreateDID of a taken number", write(t, s, store.Tx.CreateDID, &store.DID{AccountID: other.ID, Number: d.Number}),
		store.ErrConflict)
	d2.Number = d.Number
	wantErr(t, "UpdateDID to a taken number", write(t, s, store.Tx.UpdateDID, &d2), store.ErrConflict)

	// Profile name: unique.
	p := create(t, s, store.Tx.CreateProfile, store.Profile{Name: "gold"})
	p2 := create(t, s, store.Tx.CreateProfile, store.Profile{Name: "silver"})
	wantErr(t, "CreateProfile of a taken name", write(t, s, store.Tx.CreateProfile, &store.Profile{Name: p.Name}), store.ErrConflict)
	p2.Name = p.Name
	wantErr(t, "UpdateProfile to a taken name", write(t, s, store.Tx.UpdateProfile, &p2), store.ErrConflict)

	// Token hash: unique.
	k := newToken(t, s, "ci", nil)
	wantErr(t, "CreateToken of a taken hash", write(t, s, store.Tx.CreateToken,
		&store.Token{Name: "other", Scope: store.ScopeAccount, AccountID: ptr(other.ID), Hash: k.Hash}), store.ErrConflict)

	// Nothing above got in.
	_, n := list(t, s, store.Tx.ListSIPUsers, store.SIPUserFilter{})
	_, nd := list(t, s, store.Tx.ListDIDs, store.DIDFilter{})
	_, np := list(t, s, store.Tx.ListProfiles, store.ProfileFilter{})
	_, nk := list(t, s, store.Tx.ListTokens, store.TokenFilter{})
	if n != 4 || nd != 2 || np != 2 || nk != 1 {
		t.Errorf("after refused writes: %d sip users, %d dids, %d profiles, %d tokens; want 4, 2, 2, 1", n, nd, np, nk)
	}
}

// Lists.

func testListAccounts(t *testing.T, s store.Store) {
	var id []int64
	for _, name := range []string{"Alpha One", "beta", "alpha two", "Gamma", "100% pure", "under_score", "underscore"} {
		id = append(id, newAccount(t, s, name).ID)
	}
	checkLists(t, s, store.Tx.ListAccounts, []listCase[store.AccountFilter]{
		{"all", store.AccountFilter{}, id, 7},
		{"name, any case", store.AccountFilter{Name: "ALPHA"}, []int64{id[0], id[2]}, 2},
		{"name with %", store.AccountFilter{Name: "%"}, []int64{id[4]}, 1},
		{"name with _", store.AccountFilter{Name: "r_s"}, []int64{id[5]}, 1},
		{"name matches none", store.AccountFilter{Name: "delta"}, nil, 0},
		{"first page", store.AccountFilter{Page: store.Page{Limit: 2}}, id[:2], 7},
		{"second page", store.AccountFilter{Page: store.Page{Limit: 2, Offset: 2}}, id[2:4], 7},
		{"last page", store.AccountFilter{Page: store.Page{Limit: 5, Offset: 5}}, id[5:], 7},
		{"offset only", store.AccountFilter{Page: store.Page{Offset: 6}}, id[6:], 7},
		{"past the end", store.AccountFilter{Page: store.Page{Limit: 2, Offset: 10}}, nil, 7},
		{"filter and page", store.AccountFilter{Name: "alpha", Page: store.Page{Limit: 1, Offset: 1}}, []int64{id[2]}, 2},
		{"by name, any case", store.AccountFilter{Page: store.Page{Sort: "name"}}, []int64{id[4], id[0], id[2], id[1], id[3], id[5], id[6]}, 7},
		{"by name, descending", store.AccountFilter{Page: store.Page{Sort: "name", Desc: true}}, []int64{id[6], id[5], id[3], id[1], id[2], id[0], id[4]}, 7},
		{"by name, second page", store.AccountFilter{Page: store.Page{Sort: "name", Limit: 2, Offset: 2}}, []int64{id[2], id[1]}, 7},
		{"ties by ID, descending too", store.AccountFilter{Page: store.Page{Sort: "channels", Desc: true, Limit: 3}}, []int64{id[6], id[5], id[4]}, 7},
	})
	err := s.View(t.Context(), func(tx store.Tx) error {
		_, _, err := tx.ListAccounts(t.Context(), store.AccountFilter{Page: store.Page{Sort: "id; DROP TABLE accounts"}})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "not a sort key") {
		t.Errorf("ListAccounts with an unknown sort key: error %v, want one naming it", err)
	}
	for _, key := range store.AccountSorts {
		if _, _, err := listErr(s, store.AccountFilter{Page: store.Page{Sort: key, Desc: true}}); err != nil {
			t.Errorf("ListAccounts by %s: %v", key, err)
		}
	}
}

// testListSortKeys: every documented sort key of every list works, both ways.
func testListSortKeys(t *testing.T, s store.Store) {
	a := newAccount(t, s, "a")
	lists := map[string]struct {
		keys []string
		list func(tx store.Tx, p store.Page) error
	}{
		"accounts": {store.AccountSorts, func(tx store.Tx, p store.Page) error {
			_, _, err := tx.ListAccounts(t.Context(), store.AccountFilter{Page: p})
			return err
		}},
		"endpoints": {store.EndpointSorts, func(tx store.Tx, p store.Page) error {
			_, _, err := tx.ListEndpoints(t.Context(), store.EndpointFilter{Page: p, AccountID: a.ID})
			return err
		}},
		"sip users": {store.SIPUserSorts, func(tx store.Tx, p store.Page) error {
			_, _, err := tx.ListSIPUsers(t.Context(), store.SIPUserFilter{Page: p})
			return err
		}},
		"cli": {store.CLISorts, func(tx store.Tx, p store.Page) error {
			_, _, err := tx.ListCLIPatterns(t.Context(), store.CLIPatternFilter{Page: p})
			return err
		}},
		"dids": {store.DIDSorts, func(tx store.Tx, p store.Page) error {
			_, _, err := tx.ListDIDs(t.Context(), store.DIDFilter{Page: p})
			return err
		}},
		"profiles": {store.ProfileSorts, func(tx store.Tx, p store.Page) error {
			_, _, err := tx.ListProfiles(t.Context(), store.ProfileFilter{Page: p})
			return err
		}},
		"bans": {store.BanSorts, func(tx store.Tx, p store.Page) error {
			_, _, err := tx.ListBans(t.Context(), store.BanFilter{Page: p})
			return err
		}},
		"logins": {store.LoginSorts, func(tx store.Tx, p store.Page) error {
			_, _, err := tx.ListLogins(t.Context(), store.LoginFilter{Page: p})
			return err
		}},
	}
	for name, l := range lists {
		for _, key := range l.keys {
			for _, desc := range []bool{false, true} {
				if err := s.View(t.Context(), func(tx store.Tx) error { return l.list(tx, store.Page{Sort: key, Desc: desc, Limit: 5}) }); err != nil {
					t.Errorf("%s by %s (desc %v): %v", name, key, desc, err)
				}
			}
		}
	}
}

func listErr(s store.Store, f store.AccountFilter) (items []store.Account, total int, err error) {
	err = s.View(context.Background(), func(tx store.Tx) error {
		items, total, err = tx.ListAccounts(context.Background(), f)
		return err
	})
	return items, total, err
}

func testListEndpoints(t *testing.T, s store.Store) {
	a := newAccount(t, s, "a")
	b := newAccount(t, s, "b")
	e := []int64{
		newEndpoint(t, s, a.ID, "192.0.2.1", store.DirSends).ID,
		newEndpoint(t, s, a.ID, "192.0.2.2", store.DirReceives).ID,
		newEndpoint(t, s, a.ID, "SIP.Example.com", store.DirReceives).ID,
		newEndpoint(t, s, b.ID, "198.51.100.1", store.DirSends).ID,
	}
	checkLists(t, s, store.Tx.ListEndpoints, []listCase[store.EndpointFilter]{
		{"all", store.EndpointFilter{}, e, 4},
		{"account", store.EndpointFilter{AccountID: a.ID}, e[:3], 3},
		{"address", store.EndpointFilter{Address: "192.0.2."}, e[:2], 2},
		{"address, any case", store.EndpointFilter{Address: "example.COM"}, e[2:3], 1},
		{"direction", store.EndpointFilter{Direction: store.DirReceives}, e[1:3], 2},
		{"account and direction", store.EndpointFilter{AccountID: b.ID, Direction: store.DirSends}, e[3:], 1},
		{"account and page", store.EndpointFilter{AccountID: a.ID, Page: store.Page{Limit: 1, Offset: 1}}, e[1:2], 3},
		{"unknown account", store.EndpointFilter{AccountID: 999999}, nil, 0},
	})
}

func testListSIPUsers(t *testing.T, s store.Store) {
	a := newAccount(t, s, "a")
	b := newAccount(t, s, "b")
	u := []int64{
		newSIPUser(t, s, a.ID, "alice", "r1.example.com", 1).ID,
		newSIPUser(t, s, a.ID, "bob", "r1.example.com", 1).ID,
		newSIPUser(t, s, a.ID, "Alice2", "r2.example.com", 1).ID,
		newSIPUser(t, s, b.ID, "carol", "r1.example.com", 1).ID,
	}
	checkLists(t, s, store.Tx.ListSIPUsers, []listCase[store.SIPUserFilter]{
		{"all", store.SIPUserFilter{}, u, 4},
		{"account", store.SIPUserFilter{AccountID: a.ID}, u[:3], 3},
		{"username, any case", store.SIPUserFilter{Username: "ALICE"}, []int64{u[0], u[2]}, 2},
		{"username, middle, any case", store.SIPUserFilter{Username: "lIC"}, []int64{u[0], u[2]}, 2},
		{"account and username", store.SIPUserFilter{AccountID: b.ID, Username: "alice"}, nil, 0},
		{"page", store.SIPUserFilter{Page: store.Page{Limit: 3, Offset: 1}}, u[1:], 4},
	})
}

func testListCLIPatterns(t *testing.T, s store.Store) {
	a := newAccount(t, s, "a")
	b := newAccount(t, s, "b")
	var p []int64
	for i, acc := range []int64{a.ID, b.ID, a.ID} {
		p = append(p, create(t, s, store.Tx.CreateCLIPattern, store.CLIPattern{AccountID: acc, Pattern: fmt.Sprint(i)}).ID)
	}
	checkLists(t, s, store.Tx.ListCLIPatterns, []listCase[store.CLIPatternFilter]{
		{"all", store.CLIPatternFilter{}, p, 3},
		{"account", store.CLIPatternFilter{AccountID: a.ID}, []int64{p[0], p[2]}, 2},
		{"account and page", store.CLIPatternFilter{AccountID: a.ID, Page: store.Page{Limit: 1}}, p[:1], 2},
	})
}

func testListDIDs(t *testing.T, s store.Store) {
	a := newAccount(t, s, "a")
	b := newAccount(t, s, "b")
	u := newSIPUser(t, s, a.ID, "alice", "example.com", 1)
	d := []int64{
		newDID(t, s, a.ID, "+441234", nil).ID,
		newDID(t, s, a.ID, "+441235", ptr(u.ID)).ID,
		newDID(t, s, b.ID, "+15551234", nil).ID,
	}
	checkLists(t, s, store.Tx.ListDIDs, []listCase[store.DIDFilter]{
		{"all", store.DIDFilter{}, d, 3},
		{"account", store.DIDFilter{AccountID: b.ID}, d[2:], 1},
		{"number", store.DIDFilter{Number: "4412"}, d[:2], 2},
		{"number, middle", store.DIDFilter{Number: "1234"}, []int64{d[0], d[2]}, 2},
		{"sip user", store.DIDFilter{SIPUserID: u.ID}, d[1:2], 1},
		{"page", store.DIDFilter{Page: store.Page{Limit: 1, Offset: 2}}, d[2:], 3},
	})
}

func testListRewriteRules(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "a")
	e1 := newEndpoint(t, s, acc.ID, "192.0.2.1", store.DirSends)
	e2 := newEndpoint(t, s, acc.ID, "192.0.2.2", store.DirSends)
	u := newSIPUser(t, s, acc.ID, "alice", "example.com", 1)
	r := []int64{
		newRule(t, s, store.OwnerEndpoint, e1.ID, 2).ID, // 0
		newRule(t, s, store.OwnerEndpoint, e1.ID, 1).ID, // 1
		newRule(t, s, store.OwnerEndpoint, e1.ID, 1).ID, // 2
		newRule(t, s, store.OwnerSIPUser, u.ID, 0).ID,   // 3
		newRule(t, s, store.OwnerEndpoint, e2.ID, 5).ID, // 4
	}
	checkLists(t, s, store.Tx.ListRewriteRules, []listCase[store.RewriteFilter]{
		{"all, by order then id", store.RewriteFilter{}, []int64{r[3], r[1], r[2], r[0], r[4]}, 5},
		{"owner", store.RewriteFilter{OwnerKind: store.OwnerEndpoint, OwnerID: e1.ID}, []int64{r[1], r[2], r[0]}, 3},
		{"owner kind", store.RewriteFilter{OwnerKind: store.OwnerSIPUser}, r[3:4], 1},
		{"owner and page", store.RewriteFilter{OwnerKind: store.OwnerEndpoint, OwnerID: e1.ID, Page: store.Page{Limit: 2, Offset: 1}},
			[]int64{r[2], r[0]}, 3},
	})
}

func testListProfiles(t *testing.T, s store.Store) {
	var p []int64
	for _, name := range []string{"Gold", "silver", "golden"} {
		p = append(p, create(t, s, store.Tx.CreateProfile, store.Profile{Name: name}).ID)
	}
	checkLists(t, s, store.Tx.ListProfiles, []listCase[store.ProfileFilter]{
		{"all", store.ProfileFilter{}, p, 3},
		{"name, any case", store.ProfileFilter{Name: "GOLD"}, []int64{p[0], p[2]}, 2},
		{"name, middle, any case", store.ProfileFilter{Name: "LdE"}, p[2:], 1},
		{"page", store.ProfileFilter{Page: store.Page{Limit: 1, Offset: 1}}, p[1:2], 3},
	})
}

func testListBans(t *testing.T, s store.Store) {
	at := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	mk := func(addr string, src store.BanSource, expires time.Time) int64 {
		return create(t, s, store.Tx.CreateBan, store.Ban{Address: addr, Source: src, ExpiresAt: expires}).ID
	}
	b := []int64{
		mk("192.0.2.1/32", store.BanOperator, time.Time{}),            // never expires
		mk("192.0.2.0/24", store.BanDetection, at.Add(time.Hour)),     // active at `at`
		mk("198.51.100.7/32", store.BanDetection, at.Add(-time.Hour)), // expired
		mk("2001:DB8::/32", store.BanOperator, at),                    // expires at `at`: not active
	}
	checkLists(t, s, store.Tx.ListBans, []listCase[store.BanFilter]{
		{"all", store.BanFilter{}, b, 4},
		{"active", store.BanFilter{ActiveAt: at}, b[:2], 2},
		{"active, other zone", store.BanFilter{ActiveAt: at.In(time.FixedZone("UTC-7", -7*3600))}, b[:2], 2},
		{"active earlier", store.BanFilter{ActiveAt: at.Add(-2 * time.Hour)}, b, 4},
		{"source", store.BanFilter{Source: store.BanDetection}, b[1:3], 2},
		{"source and active", store.BanFilter{Source: store.BanDetection, ActiveAt: at}, b[1:2], 1},
		{"address", store.BanFilter{Address: "192.0.2."}, b[:2], 2},
		{"address, any case", store.BanFilter{Address: "db8::"}, b[3:], 1},
		{"page", store.BanFilter{Page: store.Page{Limit: 2, Offset: 1}}, b[1:3], 4},
		{"by expiry, never last", store.BanFilter{Page: store.Page{Sort: "expires"}}, []int64{b[2], b[3], b[1], b[0]}, 4},
		{"by expiry, descending", store.BanFilter{Page: store.Page{Sort: "expires", Desc: true}}, []int64{b[0], b[1], b[3], b[2]}, 4},
		{"by address", store.BanFilter{Page: store.Page{Sort: "address"}}, []int64{b[1], b[0], b[2], b[3]}, 4},
	})
}

func testListTokens(t *testing.T, s store.Store) {
	a := newAccount(t, s, "a")
	b := newAccount(t, s, "b")
	k := []int64{
		newToken(t, s, "operator", nil).ID,
		newToken(t, s, "a1", ptr(a.ID)).ID,
		newToken(t, s, "b1", ptr(b.ID)).ID,
		newToken(t, s, "a2", ptr(a.ID)).ID,
	}
	checkLists(t, s, store.Tx.ListTokens, []listCase[store.TokenFilter]{
		{"all", store.TokenFilter{}, k, 4},
		{"account", store.TokenFilter{AccountID: a.ID}, []int64{k[1], k[3]}, 2},
		{"account and page", store.TokenFilter{AccountID: a.ID, Page: store.Page{Offset: 1}}, k[3:], 2},
	})
}

// Deletes.

// family is an account with one of everything that belongs to it.
type family struct {
	account      store.Account
	endpoint     store.IPEndpoint
	user         store.SIPUser
	cli          store.CLIPattern
	did          store.DID
	token        store.Token
	endpointRule store.RewriteRule
	userRule     store.RewriteRule
}

func newFamily(t *testing.T, s store.Store, name string) family {
	t.Helper()
	var f family
	f.account = newAccount(t, s, name)
	f.endpoint = newEndpoint(t, s, f.account.ID, "192.0.2."+fmt.Sprint(len(name)), store.DirSends)
	f.user = newSIPUser(t, s, f.account.ID, name, "example.com", 1)
	f.cli = create(t, s, store.Tx.CreateCLIPattern, store.CLIPattern{AccountID: f.account.ID, Pattern: "+1555" + name})
	f.did = newDID(t, s, f.account.ID, "+1555"+name, ptr(f.user.ID))
	f.token = newToken(t, s, name, ptr(f.account.ID))
	f.endpointRule = newRule(t, s, store.OwnerEndpoint, f.endpoint.ID, 0)
	f.userRule = newRule(t, s, store.OwnerSIPUser, f.user.ID, 0)
	return f
}

func testDeleteAccountCascades(t *testing.T, s store.Store) {
	doomed := newFamily(t, s, "doomed")
	kept := newFamily(t, s, "kept")
	remove(t, s, store.Tx.DeleteAccount, doomed.account.ID)

	gone(t, s, "account", store.Tx.GetAccount, doomed.account.ID)
	gone(t, s, "endpoint", store.Tx.GetEndpoint, doomed.endpoint.ID)
	gone(t, s, "sip user", store.Tx.GetSIPUser, doomed.user.ID)
	gone(t, s, "cli pattern", store.Tx.GetCLIPattern, doomed.cli.ID)
	gone(t, s, "did", store.Tx.GetDID, doomed.did.ID)
	gone(t, s, "token", store.Tx.GetToken, doomed.token.ID)
	gone(t, s, "endpoint rewrite rule", store.Tx.GetRewriteRule, doomed.endpointRule.ID)
	gone(t, s, "sip user rewrite rule", store.Tx.GetRewriteRule, doomed.userRule.ID)

	diff(t, "kept account", kept.account, get(t, s, store.Tx.GetAccount, kept.account.ID))
	diff(t, "kept endpoint", kept.endpoint, get(t, s, store.Tx.GetEndpoint, kept.endpoint.ID))
	diff(t, "kept sip user", kept.user, get(t, s, store.Tx.GetSIPUser, kept.user.ID))
	diff(t, "kept cli pattern", kept.cli, get(t, s, store.Tx.GetCLIPattern, kept.cli.ID))
	diff(t, "kept did", kept.did, get(t, s, store.Tx.GetDID, kept.did.ID))
	diff(t, "kept token", kept.token, get(t, s, store.Tx.GetToken, kept.token.ID))
	diff(t, "kept endpoint rule", kept.endpointRule, get(t, s, store.Tx.GetRewriteRule, kept.endpointRule.ID))
	diff(t, "kept sip user rule", kept.userRule, get(t, s, store.Tx.GetRewriteRule, kept.userRule.ID))
}

func testDeleteSIPUser(t *testing.T, s store.Store) {
	f := newFamily(t, s, "acme")
	other := newSIPUser(t, s, f.account.ID, "other", "example.com", 1)
	otherDID := newDID(t, s, f.account.ID, "+15559999", ptr(other.ID))
	otherRule := newRule(t, s, store.OwnerSIPUser, other.ID, 0)

	remove(t, s, store.Tx.DeleteSIPUser, f.user.ID)
	gone(t, s, "sip user", store.Tx.GetSIPUser, f.user.ID)
	gone(t, s, "its rewrite rule", store.Tx.GetRewriteRule, f.userRule.ID)
	want := f.did
	want.SIPUserID = nil // the DID stays with the account
	diff(t, "its did", want, get(t, s, store.Tx.GetDID, f.did.ID))

	diff(t, "other did", otherDID, get(t, s, store.Tx.GetDID, otherDID.ID))
	diff(t, "other user's rule", otherRule, get(t, s, store.Tx.GetRewriteRule, otherRule.ID))
	// The endpoint's rule may have the same owner ID; it is not the user's.
	diff(t, "endpoint rule", f.endpointRule, get(t, s, store.Tx.GetRewriteRule, f.endpointRule.ID))
}

func testDeleteEndpoint(t *testing.T, s store.Store) {
	f := newFamily(t, s, "acme")
	other := newEndpoint(t, s, f.account.ID, "198.51.100.1", store.DirReceives)
	otherRule := newRule(t, s, store.OwnerEndpoint, other.ID, 0)

	remove(t, s, store.Tx.DeleteEndpoint, f.endpoint.ID)
	gone(t, s, "endpoint", store.Tx.GetEndpoint, f.endpoint.ID)
	gone(t, s, "its rewrite rule", store.Tx.GetRewriteRule, f.endpointRule.ID)
	diff(t, "other endpoint's rule", otherRule, get(t, s, store.Tx.GetRewriteRule, otherRule.ID))
	diff(t, "sip user rule", f.userRule, get(t, s, store.Tx.GetRewriteRule, f.userRule.ID))
}

// testDeleteProfile checks that deleting a profile clears the ProfileID of
// its users and leaves the rest of them, and other profiles' users, alone.
func testDeleteProfile(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "acme")
	gold := create(t, s, store.Tx.CreateProfile, store.Profile{Name: "gold"})
	silver := create(t, s, store.Tx.CreateProfile, store.Profile{Name: "silver"})
	var users []store.SIPUser
	for i, p := range []int64{gold.ID, gold.ID, silver.ID} {
		users = append(users, create(t, s, store.Tx.CreateSIPUser, store.SIPUser{
			AccountID: acc.ID, Username: fmt.Sprint("u", i), Realm: "example.com", ProfileID: ptr(p), Channels: new(3),
		}))
	}
	remove(t, s, store.Tx.DeleteProfile, gold.ID)
	gone(t, s, "profile", store.Tx.GetProfile, gold.ID)
	for _, u := range users[:2] {
		got := get(t, s, store.Tx.GetSIPUser, u.ID)
		want := u
		want.ProfileID = nil
		want.UpdatedAt = got.UpdatedAt // the contract does not say whether it moves
		// What it inherited becomes its own: nothing that applies changes.
		e := u.Effective
		want.CPS, want.Protocol, want.NATPing = &e.CPS.Value, &e.Protocol.Value, &e.NATPing.Value
		want.RestrictedCodecs = e.RestrictedCodecs.Value
		store.Resolve(&want, nil)
		diff(t, "user of the deleted profile", want, got)
	}
	diff(t, "user of another profile", users[2], get(t, s, store.Tx.GetSIPUser, users[2].ID))
	diff(t, "other profile", silver, get(t, s, store.Tx.GetProfile, silver.ID))
}

// Transactions.

func revision(t *testing.T, s store.Store) int64 {
	t.Helper()
	rev, err := s.Revision(t.Context())
	if err != nil {
		t.Fatalf("revision: %v", err)
	}
	return rev
}

func testRollback(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "kept")
	rev := revision(t, s)
	errBoom := errors.New("boom")
	err := s.Update(t.Context(), func(tx store.Tx) error {
		ctx := t.Context()
		if err := tx.CreateAccount(ctx, &store.Account{Name: "rolled back"}); err != nil {
			return err
		}
		if err := tx.PutSetting(ctx, "k", "v"); err != nil {
			return err
		}
		a := acc
		a.Name = "renamed"
		if err := tx.UpdateAccount(ctx, &a); err != nil {
			return err
		}
		return fmt.Errorf("wrapped: %w", errBoom)
	})
	wantErr(t, "Update whose fn failed", err, errBoom)

	items, total := list(t, s, store.Tx.ListAccounts, store.AccountFilter{})
	if total != 1 || len(items) != 1 {
		t.Fatalf("after rollback: %d accounts, want 1", total)
	}
	diff(t, "account after rollback", acc, items[0])
	err = s.View(t.Context(), func(tx store.Tx) error {
		_, err := tx.GetSetting(t.Context(), "k")
		return err
	})
	wantErr(t, "setting written in a rolled-back update", err, store.ErrNotFound)
	if got := revision(t, s); got != rev {
		t.Errorf("revision moved from %d to %d on rollback", rev, got)
	}
}

// testFailedWriteKeepsTx checks that fn may go on after Tx methods failed
// (conflicts, missing objects, a missing parent), that the failed calls
// changed nothing, and that what fn wrote before and after commits.
func testFailedWriteKeepsTx(t *testing.T, s store.Store) {
	const missing = 987654
	create(t, s, store.Tx.CreateProfile, store.Profile{Name: "taken"})
	acc := newAccount(t, s, "acme")
	rev := revision(t, s)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		before := store.Profile{Name: "before"}
		if err := tx.CreateProfile(ctx, &before); err != nil {
			return err
		}
		renamed := before
		renamed.Name = "taken"
		renamedAcc := acc
		renamedAcc.Name = "renamed"
		for _, c := range []struct {
			name   string
			err    error
			target error
		}{
			{"CreateProfile of a taken name", tx.CreateProfile(ctx, &store.Profile{Name: "taken"}), store.ErrConflict},
			{"UpdateProfile to a taken name", tx.UpdateProfile(ctx, &renamed), store.ErrConflict},
			{"CreateSIPUser of a missing account", tx.CreateSIPUser(ctx, &store.SIPUser{AccountID: missing, Username: "u", Realm: "r"}),
				store.ErrNotFound},
			{"UpdateAccount of a missing ID", tx.UpdateAccount(ctx, &store.Account{ID: missing, Name: "x"}), store.ErrNotFound},
			{"DeleteAccount of a missing ID", tx.DeleteAccount(ctx, missing), store.ErrNotFound},
			{"GetAccount of a missing ID", func() error { _, err := tx.GetAccount(ctx, missing); return err }(), store.ErrNotFound},
			{"UpdateAccount after the failures", tx.UpdateAccount(ctx, &renamedAcc), nil},
		} {
			if !errors.Is(c.err, c.target) {
				return fmt.Errorf("%s: got %v, want %v", c.name, c.err, c.target)
			}
		}
		return tx.CreateProfile(ctx, &store.Profile{Name: "after"})
	})
	items, _ := list(t, s, store.Tx.ListProfiles, store.ProfileFilter{})
	var names []string
	for _, p := range items {
		names = append(names, p.Name)
	}
	diff(t, "profiles", []string{"taken", "before", "after"}, names)
	if _, total := list(t, s, store.Tx.ListSIPUsers, store.SIPUserFilter{}); total != 0 {
		t.Errorf("%d sip users after a refused create, want 0", total)
	}
	if got := get(t, s, store.Tx.GetAccount, acc.ID); got.Name != "renamed" {
		t.Errorf("account name %q, want %q", got.Name, "renamed")
	}
	if got := revision(t, s); got <= rev {
		t.Errorf("revision %d after the update committed, was %d: want it to grow", got, rev)
	}
}

func testRevision(t *testing.T, s store.Store) {
	r0 := revision(t, s)
	newAccount(t, s, "a")
	r1 := revision(t, s)
	if r1 <= r0 {
		t.Errorf("revision %d after a write, was %d: want it to grow", r1, r0)
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		_, _, err := tx.ListAccounts(ctx, store.AccountFilter{})
		return err
	})
	if got := revision(t, s); got != r1 {
		t.Errorf("revision %d after a View, want %d", got, r1)
	}
	_ = s.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.CreateAccount(t.Context(), &store.Account{Name: "b"}); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if got := revision(t, s); got != r1 {
		t.Errorf("revision %d after a rolled-back Update, want %d", got, r1)
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutSetting(ctx, "k", "v") })
	r2 := revision(t, s)
	if r2 <= r1 {
		t.Errorf("revision %d after a second write, was %d: want it to grow", r2, r1)
	}
}

func testViewIsReadOnly(t *testing.T, s store.Store) {
	rev := revision(t, s)
	err := s.View(t.Context(), func(tx store.Tx) error {
		return tx.CreateAccount(t.Context(), &store.Account{Name: "sneaky"})
	})
	if err == nil {
		t.Error("CreateAccount in View succeeded")
	}
	if _, total := list(t, s, store.Tx.ListAccounts, store.AccountFilter{}); total != 0 {
		t.Errorf("%d accounts after a write in View, want 0", total)
	}
	if got := revision(t, s); got != rev {
		t.Errorf("revision moved from %d to %d after a View", rev, got)
	}
}

// testViewBesideUpdate checks that a View runs while an Update is open, and
// does not see its uncommitted writes.
func testViewBesideUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	inside, release := make(chan struct{}), make(chan struct{})
	errTimeout := errors.New("update was not released: View waited for it")
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, func(tx store.Tx) error {
			if err := tx.CreateAccount(ctx, &store.Account{Name: "uncommitted"}); err != nil {
				return err
			}
			close(inside)
			select {
			case <-release:
				return nil
			case <-time.After(10 * time.Second):
				return errTimeout
			}
		})
	}()
	select {
	case <-inside:
	case err := <-done:
		t.Fatalf("update: %v", err)
	}
	_, total := list(t, s, store.Tx.ListAccounts, store.AccountFilter{})
	close(release)
	if total != 0 {
		t.Errorf("View saw %d accounts of an open Update, want 0", total)
	}
	if err := <-done; err != nil {
		t.Fatalf("update: %v", err)
	}
	if _, total := list(t, s, store.Tx.ListAccounts, store.AccountFilter{}); total != 1 {
		t.Errorf("%d accounts after the Update committed, want 1", total)
	}
}

// testProfileInheritance checks that a user takes each setting it leaves
// nil from its profile (or the defaults), that a profile's update writes
// through to the users that inherit it (and logs them), and that a user's
// own values stay.
func testProfileInheritance(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "acme")
	gold := create(t, s, store.Tx.CreateProfile, store.Profile{Name: "gold", Channels: 4, CPS: 3, Protocol: store.ProtoTLS,
		NATPing: store.NATPingEnabled, RestrictedCodecs: []string{"G729"}})
	heir := create(t, s, store.Tx.CreateSIPUser, store.SIPUser{AccountID: acc.ID, Username: "heir", Realm: "example.com", ProfileID: &gold.ID})
	own := create(t, s, store.Tx.CreateSIPUser, store.SIPUser{AccountID: acc.ID, Username: "own", Realm: "example.com", ProfileID: &gold.ID,
		Channels: new(2), RestrictedCodecs: []string{}})
	bare := create(t, s, store.Tx.CreateSIPUser, store.SIPUser{AccountID: acc.ID, Username: "bare", Realm: "example.com"})

	p := func(v int) store.Setting[int] { return store.Setting[int]{Value: v, From: store.FromProfile} }
	wantHeir := store.Effective{Channels: p(4), CPS: p(3),
		Protocol:         store.Setting[store.Protocol]{Value: store.ProtoTLS, From: store.FromProfile},
		NATPing:          store.Setting[store.NATPing]{Value: store.NATPingEnabled, From: store.FromProfile},
		RestrictedCodecs: store.Setting[[]string]{Value: []string{"G729"}, From: store.FromProfile}}
	diff(t, "heir's effective settings", wantHeir, get(t, s, store.Tx.GetSIPUser, heir.ID).Effective)
	got := get(t, s, store.Tx.GetSIPUser, own.ID)
	if got.Effective.Channels != (store.Setting[int]{Value: 2, From: store.FromUser}) || got.Effective.CPS != p(3) ||
		got.Effective.RestrictedCodecs.From != store.FromUser || len(got.Effective.RestrictedCodecs.Value) != 0 ||
		got.RestrictedCodecs == nil || got.CPS != nil {
		t.Errorf("own's settings: own %v/%v, effective %+v", got.Channels, got.RestrictedCodecs, got.Effective)
	}
	if e := get(t, s, store.Tx.GetSIPUser, bare.ID).Effective; e.Channels != (store.Setting[int]{Value: 1, From: store.FromDefault}) ||
		e.Protocol.Value != store.ProtoUDP || e.NATPing.Value != store.NATPingDisabled {
		t.Errorf("bare's effective settings: %+v, want the defaults", e)
	}
	var sum int
	view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
		sum, err = tx.SumSIPUserChannels(ctx, acc.ID, 0)
		return err
	})
	if sum != 4+2+1 {
		t.Errorf("SumSIPUserChannels = %d, want the effective 7", sum)
	}

	gold.Channels, gold.CPS = 6, 5
	logs(t, s, "UpdateProfile", func(ctx context.Context, tx store.Tx) error { return tx.UpdateProfile(ctx, &gold) },
		func() []store.Change {
			return []store.Change{change(store.ChangeProfile, gold.ID), change(store.ChangeSIPUser, heir.ID), change(store.ChangeSIPUser, own.ID)}
		})
	wantHeir.Channels, wantHeir.CPS = p(6), p(5)
	diff(t, "heir after the profile's update", wantHeir, get(t, s, store.Tx.GetSIPUser, heir.ID).Effective)
	if e := get(t, s, store.Tx.GetSIPUser, own.ID).Effective; e.Channels.Value != 2 || e.CPS != p(5) {
		t.Errorf("own after the profile's update: %+v, want its own 2 channels and the profile's 5 cps", e)
	}
}
