package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// RunLogins runs the conformance tests of web UI sign-ins (the Login
// methods of store.Tx). newStore returns a new, empty store, as for Run.
func RunLogins(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RoundTrip", testLoginRoundTrip},
		{"Conflicts", testLoginConflicts},
		{"NotFound", testLoginNotFound},
		{"List", testListLogins},
		{"DeleteAccountCascades", testLoginCascade},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func newLogin(t *testing.T, s store.Store, username string, account *int64) store.Login {
	t.Helper()
	scope := store.ScopeOperator
	if account != nil {
		scope = store.ScopeAccount
	}
	return create(t, s, store.Tx.CreateLogin, store.Login{Username: username, Scope: scope, AccountID: account,
		Hash: "$argon2id$hash-of-" + username})
}

func testLoginRoundTrip(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "acme")
	for _, account := range []*int64{nil, ptr(acc.ID)} {
		scope := store.ScopeOperator
		if account != nil {
			scope = store.ScopeAccount
		}
		in := store.Login{ID: 4242, Username: "user-" + string(scope), Scope: scope, AccountID: account,
			Hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", Password: "not stored"}
		l := create(t, s, store.Tx.CreateLogin, in)
		if l.ID == 0 || l.ID == 4242 {
			t.Fatalf("CreateLogin set ID %d: want a new one", l.ID)
		}
		checkStamps(t, "created login", l.CreatedAt, l.UpdatedAt)
		want := in
		want.ID, want.CreatedAt, want.UpdatedAt = l.ID, l.CreatedAt, l.UpdatedAt
		want.Password = "" // never stored
		diff(t, "created login", want, get(t, s, store.Tx.GetLogin, l.ID))

		var byName store.Login
		view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
			byName, err = tx.GetLoginByUsername(ctx, in.Username)
			return err
		})
		diff(t, "login by username", want, byName)

		up := get(t, s, store.Tx.GetLogin, l.ID)
		up.Hash, up.Username = "$argon2id$other", in.Username+"-renamed"
		up.CreatedAt = up.CreatedAt.Add(-time.Hour)
		got := create(t, s, store.Tx.UpdateLogin, up)
		checkUpdateStamps(t, "updated login", l.CreatedAt, got.CreatedAt, got.UpdatedAt)
		if !got.CreatedAt.Equal(l.CreatedAt) {
			t.Errorf("UpdateLogin changed CreatedAt from %v to %v", l.CreatedAt, got.CreatedAt)
		}
		want = up
		want.CreatedAt, want.UpdatedAt = l.CreatedAt, got.UpdatedAt
		diff(t, "updated login", want, get(t, s, store.Tx.GetLogin, l.ID))

		remove(t, s, store.Tx.DeleteLogin, l.ID)
		gone(t, s, "login", store.Tx.GetLogin, l.ID)
		err := s.View(t.Context(), func(tx store.Tx) error {
			_, err := tx.GetLoginByUsername(t.Context(), up.Username)
			return err
		})
		wantErr(t, "GetLoginByUsername of a deleted login", err, store.ErrNotFound)
	}
}

func testLoginConflicts(t *testing.T, s store.Store) {
	acc := newAccount(t, s, "acme")
	admin := newLogin(t, s, "admin", nil)
	bob := newLogin(t, s, "bob", ptr(acc.ID))
	newLogin(t, s, "Admin", nil) // usernames are case-sensitive in the store: fine

	dup := store.Login{Username: admin.Username, Scope: store.ScopeAccount, AccountID: ptr(acc.ID), Hash: "x"}
	wantErr(t, "CreateLogin of a taken username", write(t, s, store.Tx.CreateLogin, &dup), store.ErrConflict)
	bob.Username = admin.Username
	wantErr(t, "UpdateLogin to a taken username", write(t, s, store.Tx.UpdateLogin, &bob), store.ErrConflict)

	// A refused write does not spoil the transaction.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		d := dup
		if err := tx.CreateLogin(ctx, &d); err == nil {
			t.Error("CreateLogin of a taken username in a transaction: no error")
		}
		l := store.Login{Username: "carol", Scope: store.ScopeOperator, Hash: "y"}
		return tx.CreateLogin(ctx, &l)
	})
	if _, n := list(t, s, store.Tx.ListLogins, store.LoginFilter{}); n != 4 {
		t.Errorf("after refused writes: %d logins, want 4", n)
	}
}

func testLoginNotFound(t *testing.T, s store.Store) {
	const missing = 987654
	acc := newAccount(t, s, "acme")
	ops := []struct {
		name string
		fn   func(ctx context.Context, tx store.Tx) error
	}{
		{"GetLogin", func(ctx context.Context, tx store.Tx) error { _, err := tx.GetLogin(ctx, missing); return err }},
		{"GetLoginByUsername", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.GetLoginByUsername(ctx, "nobody")
			return err
		}},
		{"UpdateLogin", func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateLogin(ctx, &store.Login{ID: missing, Username: "x", Scope: store.ScopeOperator, Hash: "h"})
		}},
		{"DeleteLogin", func(ctx context.Context, tx store.Tx) error { return tx.DeleteLogin(ctx, missing) }},
		{"CreateLogin(missing account)", func(ctx context.Context, tx store.Tx) error {
			return tx.CreateLogin(ctx, &store.Login{Username: "x", Scope: store.ScopeAccount, AccountID: ptr(int64(missing)), Hash: "h"})
		}},
		{"UpdateLogin(missing account)", func(ctx context.Context, tx store.Tx) error {
			l := store.Login{Username: "y", Scope: store.ScopeAccount, AccountID: ptr(acc.ID), Hash: "h"}
			if err := tx.CreateLogin(ctx, &l); err != nil {
				return err
			}
			l.AccountID = ptr(int64(missing))
			return tx.UpdateLogin(ctx, &l)
		}},
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

func testListLogins(t *testing.T, s store.Store) {
	a := newAccount(t, s, "a")
	b := newAccount(t, s, "b")
	admin := newLogin(t, s, "admin", nil)
	alice := newLogin(t, s, "Alice", ptr(a.ID))
	bob := newLogin(t, s, "bob", ptr(b.ID))
	ali := newLogin(t, s, "ali-ops", nil)
	checkLists(t, s, store.Tx.ListLogins, []listCase[store.LoginFilter]{
		{"all", store.LoginFilter{}, []int64{admin.ID, alice.ID, bob.ID, ali.ID}, 4},
		{"account a", store.LoginFilter{AccountID: a.ID}, []int64{alice.ID}, 1},
		{"operators", store.LoginFilter{Scope: store.ScopeOperator}, []int64{admin.ID, ali.ID}, 2},
		{"username ALI", store.LoginFilter{Username: "ALI"}, []int64{alice.ID, ali.ID}, 2},
		{"username and scope", store.LoginFilter{Username: "ali", Scope: store.ScopeAccount}, []int64{alice.ID}, 1},
		{"page", store.LoginFilter{Page: store.Page{Limit: 2, Offset: 1}}, []int64{alice.ID, bob.ID}, 4},
		{"no match", store.LoginFilter{Username: "%"}, nil, 0},
	})
}

func testLoginCascade(t *testing.T, s store.Store) {
	a := newAccount(t, s, "a")
	b := newAccount(t, s, "b")
	gone1 := newLogin(t, s, "a-user", ptr(a.ID))
	kept := newLogin(t, s, "b-user", ptr(b.ID))
	admin := newLogin(t, s, "admin", nil)
	remove(t, s, store.Tx.DeleteAccount, a.ID)
	gone(t, s, "login of a deleted account", store.Tx.GetLogin, gone1.ID)
	get(t, s, store.Tx.GetLogin, kept.ID)
	get(t, s, store.Tx.GetLogin, admin.ID)
}
