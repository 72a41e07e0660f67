package provision_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/secret"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/store/sqlstore"
)

func newService(t *testing.T) *provision.Service {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "sipward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return provision.New(st, provision.Options{Realm: "test", Sealer: sealer})
}

func newAccount(t *testing.T, svc *provision.Service, name string) int64 {
	t.Helper()
	a, _, err := svc.CreateAccount(t.Context(), provision.Operator, &provision.NewAccount{Account: store.Account{Name: name, Channels: 10}})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

func wantKind(t *testing.T, what string, err error, kind provision.Kind) *provision.Error {
	t.Helper()
	pe, ok := provision.AsError(err)
	if !ok || pe.Kind != kind {
		t.Fatalf("%s: got %v, want a provisioning error of kind %d", what, err, kind)
	}
	return pe
}

func TestCreateLoginScopes(t *testing.T) {
	svc := newService(t)
	ctx := t.Context()
	a, b := newAccount(t, svc, "a"), newAccount(t, svc, "b")
	acct := provision.Caller{AccountID: a}

	op := store.Login{Username: " Ops "}
	if err := svc.CreateLogin(ctx, provision.Operator, &op); err != nil {
		t.Fatal(err)
	}
	if op.Scope != store.ScopeOperator || op.Username != "ops" || len(op.Password) != secret.GeneratedPasswordLen {
		t.Errorf("operator login: scope %q, username %q, password %q: want operator, ops, a generated one", op.Scope, op.Username, op.Password)
	}
	if !secret.VerifyPassword(op.Hash, op.Password) {
		t.Error("the stored hash does not verify the generated password")
	}

	own := store.Login{Username: "alice", Password: "correct horse battery"}
	if err := svc.CreateLogin(ctx, acct, &own); err != nil {
		t.Fatal(err)
	}
	if own.Scope != store.ScopeAccount || own.AccountID == nil || *own.AccountID != a || own.Password != "" {
		t.Errorf("account login: %+v: want scope account of account %d, no password returned (it was given)", own, a)
	}

	wantKind(t, "account caller creating an operator login",
		svc.CreateLogin(ctx, acct, &store.Login{Username: "x", Scope: store.ScopeOperator}), provision.Forbidden)
	wantKind(t, "account caller creating a login of another account",
		svc.CreateLogin(ctx, acct, &store.Login{Username: "x", AccountID: &b}), provision.NotFound)
	wantKind(t, "operator creating a login of a missing account",
		svc.CreateLogin(ctx, provision.Operator, &store.Login{Username: "x", Scope: store.ScopeAccount, AccountID: new(int64(999))}), provision.NotFound)
	pe := wantKind(t, "duplicate username, other case",
		svc.CreateLogin(ctx, provision.Operator, &store.Login{Username: "ALICE", AccountID: &b}), provision.Conflict)
	if pe.Field != "username" || pe.Code != "duplicate_login" {
		t.Errorf("duplicate username: field %q code %q", pe.Field, pe.Code)
	}
	pe = wantKind(t, "weak password", svc.CreateLogin(ctx, acct, &store.Login{Username: "weak", Password: "short"}), provision.Invalid)
	if pe.Field != "password" {
		t.Errorf("weak password: field %q, want password", pe.Field)
	}
	wantKind(t, "bad username", svc.CreateLogin(ctx, acct, &store.Login{Username: "a b"}), provision.Invalid)
	wantKind(t, "account login named admin", svc.CreateLogin(ctx, acct, &store.Login{Username: "Admin"}), provision.Invalid)
}

func TestLoginsAreScopedToTheAccount(t *testing.T) {
	svc := newService(t)
	ctx := t.Context()
	a, b := newAccount(t, svc, "a"), newAccount(t, svc, "b")
	mk := func(name string, account *int64) store.Login {
		l := store.Login{Username: name, AccountID: account}
		if err := svc.CreateLogin(ctx, provision.Operator, &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	admin := mk("root", nil)
	la := mk("a1", &a)
	lb := mk("b1", &b)
	acct := provision.Caller{AccountID: a}

	items, total, err := svc.ListLogins(ctx, acct, store.LoginFilter{})
	if err != nil || total != 1 || len(items) != 1 || items[0].ID != la.ID {
		t.Errorf("account a lists %v (total %d, %v): want only its login", items, total, err)
	}
	if _, total, _ := svc.ListLogins(ctx, acct, store.LoginFilter{AccountID: b}); total != 0 {
		t.Errorf("account a listing account b's logins: total %d, want 0", total)
	}
	if _, total, _ := svc.ListLogins(ctx, provision.Operator, store.LoginFilter{}); total != 3 {
		t.Errorf("operator lists %d logins, want 3", total)
	}
	for _, id := range []int64{admin.ID, lb.ID} {
		_, err := svc.GetLogin(ctx, acct, id)
		wantKind(t, "account a getting another's login", err, provision.NotFound)
		wantKind(t, "account a deleting another's login", svc.DeleteLogin(ctx, acct, id), provision.NotFound)
		_, err = svc.ResetLoginPassword(ctx, acct, id)
		wantKind(t, "account a resetting another's password", err, provision.NotFound)
	}
	if err := svc.DeleteLogin(ctx, acct, la.ID); err != nil {
		t.Errorf("account a deleting its own login: %v", err)
	}
	pe := wantKind(t, "deleting the last operator login", svc.DeleteLogin(ctx, provision.Operator, admin.ID), provision.Conflict)
	if pe.Code != "last_operator" {
		t.Errorf("code %q, want last_operator", pe.Code)
	}
}

func TestAuthenticateLogin(t *testing.T) {
	svc := newService(t)
	ctx := t.Context()
	a := newAccount(t, svc, "a")
	l := store.Login{Username: "carol", AccountID: &a, Password: "a long enough password"}
	if err := svc.CreateLogin(ctx, provision.Operator, &l); err != nil {
		t.Fatal(err)
	}
	got, c, err := svc.AuthenticateLogin(ctx, " Carol", "a long enough password")
	if err != nil || got.ID != l.ID || c.Operator || c.AccountID != a {
		t.Errorf("good password: login %d caller %+v err %v", got.ID, c, err)
	}
	for _, tc := range []struct{ user, pw string }{{"carol", "wrong password!!"}, {"nobody", "a long enough password"}, {"", ""}} {
		if _, _, err := svc.AuthenticateLogin(ctx, tc.user, tc.pw); !errors.Is(err, provision.ErrBadLogin) {
			t.Errorf("AuthenticateLogin(%q, %q) = %v, want ErrBadLogin", tc.user, tc.pw, err)
		}
	}

	// A new password replaces the old one; scope cannot change.
	up := store.Login{ID: l.ID, Username: "carol", Password: "another long password"}
	if err := svc.UpdateLogin(ctx, provision.Caller{AccountID: a}, &up); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.AuthenticateLogin(ctx, "carol", "a long enough password"); !errors.Is(err, provision.ErrBadLogin) {
		t.Errorf("old password after a change: %v, want ErrBadLogin", err)
	}
	if _, _, err := svc.AuthenticateLogin(ctx, "carol", "another long password"); err != nil {
		t.Errorf("new password: %v", err)
	}
	wantKind(t, "changing the scope", svc.UpdateLogin(ctx, provision.Operator,
		&store.Login{ID: l.ID, Username: "carol", Scope: store.ScopeOperator}), provision.Invalid)

	pw, err := svc.ResetLoginPassword(ctx, provision.Operator, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.AuthenticateLogin(ctx, "carol", pw); err != nil {
		t.Errorf("reset password: %v", err)
	}
}

func TestEnsureAdminLogin(t *testing.T) {
	svc := newService(t)
	ctx := t.Context()
	pw, err := svc.EnsureAdminLogin(ctx, "")
	if err != nil || len(pw) != secret.GeneratedPasswordLen {
		t.Fatalf("first start: password %q, %v: want a generated one", pw, err)
	}
	if _, c, err := svc.AuthenticateLogin(ctx, "admin", pw); err != nil || !c.Operator {
		t.Errorf("generated admin password: caller %+v, %v", c, err)
	}
	if again, err := svc.EnsureAdminLogin(ctx, ""); err != nil || again != "" {
		t.Errorf("second start: %q, %v: want nothing to print", again, err)
	}

	// A configured password replaces the stored one, and is never printed.
	if out, err := svc.EnsureAdminLogin(ctx, "configured admin password"); err != nil || out != "" {
		t.Errorf("configured password: %q, %v", out, err)
	}
	if _, _, err := svc.AuthenticateLogin(ctx, "admin", pw); !errors.Is(err, provision.ErrBadLogin) {
		t.Errorf("generated password after a configured one: %v, want ErrBadLogin", err)
	}
	if _, _, err := svc.AuthenticateLogin(ctx, "admin", "configured admin password"); err != nil {
		t.Errorf("configured password: %v", err)
	}
	if _, err := svc.EnsureAdminLogin(ctx, "short"); err == nil {
		t.Error("a weak configured password was accepted")
	}

	// With another operator login stored, nothing is generated.
	svc2 := newService(t)
	op := store.Login{Username: "ops"}
	if err := svc2.CreateLogin(ctx, provision.Operator, &op); err != nil {
		t.Fatal(err)
	}
	if out, err := svc2.EnsureAdminLogin(ctx, ""); err != nil || out != "" {
		t.Errorf("with an operator login stored: %q, %v", out, err)
	}
}

func TestSessionKeyIsKept(t *testing.T) {
	svc := newService(t)
	k1, err := svc.SessionKey(t.Context())
	if err != nil || len(k1) != 32 {
		t.Fatalf("SessionKey: %x, %v", k1, err)
	}
	k2, err := svc.SessionKey(t.Context())
	if err != nil || !bytes.Equal(k1, k2) {
		t.Errorf("second SessionKey %x, %v: want the first %x", k2, err, k1)
	}
}
