package provision_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// A ban covering an account's IP endpoint is made, with a warning naming
// the account and the endpoint; a ban on no endpoint's address warns of
// nothing; host names are never covered.
func TestCreateBanWarnsNamingTheAccount(t *testing.T) {
	svc := newService(t)
	ctx := t.Context()
	acme := newAccount(t, svc, "Acme")
	eps := []store.IPEndpoint{
		{AccountID: acme, Address: "198.51.100.7", Direction: store.DirSends},
		{AccountID: acme, Address: "sbc.example.com", Direction: store.DirReceives},
	}
	for i := range eps {
		if _, err := svc.CreateEndpoint(ctx, provision.Operator, &eps[i]); err != nil {
			t.Fatal(err)
		}
	}
	ban := store.Ban{Address: "198.51.100.0/24", Reason: "scan"}
	warns, err := svc.CreateBan(ctx, provision.Operator, &ban)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`198.51.100.0/24 covers IP endpoint 198.51.100.7 (id %d) of account "Acme" (id %d): the firewall drops its SIP traffic until the ban is lifted or expires`, eps[0].ID, acme)
	if len(warns) != 1 || warns[0].Code != "ban_covers_endpoint" || warns[0].Message != want {
		t.Fatalf("warnings %+v; want one: %s", warns, want)
	}
	if _, err := svc.GetBan(ctx, provision.Operator, ban.ID); err != nil {
		t.Errorf("the ban was not made: %v", err)
	}
	if warns, err := svc.CreateBan(ctx, provision.Operator, &store.Ban{Address: "203.0.113.9"}); err != nil || len(warns) != 0 {
		t.Errorf("ban elsewhere: %v, %+v", err, warns)
	}
	if _, err := svc.CreateBan(ctx, provision.Caller{AccountID: acme}, &store.Ban{Address: "203.0.113.10"}); err == nil {
		t.Error("an account login made a ban")
	}
}

// EndpointBans finds the active ban covering each endpoint, hides the
// operator's reason from an account login, and skips other accounts'.
func TestEndpointBans(t *testing.T) {
	svc := newService(t)
	ctx := t.Context()
	now := time.Now()
	acme, other := newAccount(t, svc, "Acme"), newAccount(t, svc, "Other")
	mine := store.IPEndpoint{AccountID: acme, Address: "198.51.100.7", Direction: store.DirSends}
	theirs := store.IPEndpoint{AccountID: other, Address: "198.51.100.8", Direction: store.DirSends}
	free := store.IPEndpoint{AccountID: acme, Address: "192.0.2.1", Direction: store.DirSends}
	for _, e := range []*store.IPEndpoint{&mine, &theirs, &free} {
		if _, err := svc.CreateEndpoint(ctx, provision.Operator, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.CreateBan(ctx, provision.Operator, &store.Ban{Address: "198.51.100.0/24", Reason: "scan", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	all := []store.IPEndpoint{mine, theirs, free}
	got, err := svc.EndpointBans(ctx, provision.Operator, all, now)
	if err != nil || len(got) != 2 || got[mine.ID].Reason != "scan" || got[theirs.ID].Address != "198.51.100.0/24" {
		t.Errorf("operator: %v, %+v", err, got)
	}
	got, err = svc.EndpointBans(ctx, provision.Caller{AccountID: acme}, all, now)
	if err != nil || len(got) != 1 || got[mine.ID].Address != "198.51.100.0/24" || got[mine.ID].Reason != "" {
		t.Errorf("account login: %v, %+v", err, got)
	}
	if got, _ := svc.EndpointBans(ctx, provision.Operator, all, now.Add(2*time.Hour)); len(got) != 0 {
		t.Errorf("after the ban expired: %+v", got)
	}
}
