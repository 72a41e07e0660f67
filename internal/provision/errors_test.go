package provision_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// fieldsOf lists the field of each rejection in err.
func fieldsOf(err error) []string {
	var out []string
	for _, e := range provision.AllErrors(err) {
		out = append(out, e.Field)
	}
	return out
}

// TestEveryFieldErrorAtOnce: a duplicate username no longer hides a
// too-short password, and format errors come with it; the first error is
// still the one AsError (and so the API's code and field) reports.
func TestEveryFieldErrorAtOnce(t *testing.T) {
	svc := newService(t)
	id := newAccount(t, svc, "Acme")
	u := store.SIPUser{AccountID: id, Username: "alice", Password: "a-long-enough-password"}
	if err := svc.CreateSIPUser(t.Context(), provision.Operator, &u); err != nil {
		t.Fatal(err)
	}
	dup := store.SIPUser{AccountID: id, Username: "alice", Password: "short", CPS: new(-1),
		Voicemail: store.Voicemail{Email: "not an address"}}
	err := svc.CreateSIPUser(t.Context(), provision.Operator, &dup)
	want := []string{"cps", "voicemail.email", "username", "password"}
	if diff := cmp.Diff(want, fieldsOf(err)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if pe := wantKind(t, "first", err, provision.Invalid); pe.Field != "cps" {
		t.Errorf("first error: %v, want cps", pe)
	}
	only := store.SIPUser{AccountID: id, Username: "alice", Password: "short"}
	err = svc.CreateSIPUser(t.Context(), provision.Operator, &only)
	if pe := wantKind(t, "duplicate", err, provision.Conflict); pe.Code != "duplicate_user" || len(provision.AllErrors(err)) != 2 {
		t.Errorf("got %v, want duplicate_user first, then the password", err)
	}
}

// TestAccountErrorsCollectedAndPrefixed: an account's own fields and its
// nested endpoint's fields each name the culprit.
func TestAccountErrorsCollectedAndPrefixed(t *testing.T) {
	svc := newService(t)
	na := provision.NewAccount{Account: store.Account{Name: "", Channels: -1}}
	_, _, err := svc.CreateAccount(t.Context(), provision.Operator, &na)
	if diff := cmp.Diff([]string{"name", "channels"}, fieldsOf(err)); diff != "" {
		t.Errorf("account fields (-want +got):\n%s", diff)
	}
	na = provision.NewAccount{Account: store.Account{Name: "Acme"},
		IPEndpoints: []store.IPEndpoint{{Address: "10.0.0.300", Port: 70000, CPS: -2}}}
	_, _, err = svc.CreateAccount(t.Context(), provision.Operator, &na)
	want := []string{"ip_endpoints[0].address", "ip_endpoints[0].port", "ip_endpoints[0].cps"}
	if diff := cmp.Diff(want, fieldsOf(err)); diff != "" {
		t.Errorf("endpoint fields (-want +got):\n%s", diff)
	}
}
