package snapshot_test

// This file is the only one in package snapshot that uses a real store
// (store/sqlstore on SQLite). It is kept apart so that it can be dropped if
// sqlstore's API changes under it.

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/store/sqlstore"
)

// TestLoadSQLStore: Load reads everything Build needs from SQLite, a Watcher
// follows a committed write, and the result identifies as expected.
func TestLoadSQLStore(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "sipward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	var alpha, beta store.Account
	var ep store.IPEndpoint
	err = st.Update(ctx, func(tx store.Tx) error {
		alpha, beta = store.Account{Name: "Alpha", Channels: 10}, store.Account{Name: "Beta", Channels: 10}
		for _, a := range []*store.Account{&alpha, &beta} {
			if err := tx.CreateAccount(ctx, a); err != nil {
				return err
			}
		}
		for _, e := range []*store.IPEndpoint{
			{AccountID: alpha.ID, Address: "127.0.0.2", Direction: store.DirSends, Protocol: store.ProtoUDP, Port: 5060, TechPrefix: "11", RestrictedCodecs: []string{}},
			{AccountID: beta.ID, Address: "127.0.0.2", Direction: store.DirSends, Protocol: store.ProtoUDP, Port: 5060, TechPrefix: "22", RestrictedCodecs: []string{"G729"}},
		} {
			if err := tx.CreateEndpoint(ctx, e); err != nil {
				return err
			}
			ep = *e
		}
		u := store.SIPUser{AccountID: alpha.ID, Username: "alice", Realm: "sipward", HA1MD5: "0123456789abcdef0123456789abcdef",
			Protocol: new(store.ProtoUDP), NATPing: new(store.NATPingDisabled), IPWhitelist: []string{}, RestrictedCodecs: []string{}}
		if err := tx.CreateSIPUser(ctx, &u); err != nil {
			return err
		}
		if err := tx.CreateDID(ctx, &store.DID{AccountID: alpha.ID, Number: "441110000001", SIPUserID: &u.ID}); err != nil {
			return err
		}
		if err := tx.CreateCLIPattern(ctx, &store.CLIPattern{AccountID: beta.ID, Pattern: "^44", Regex: true}); err != nil {
			return err
		}
		return tx.CreateRewriteRule(ctx, &store.RewriteRule{OwnerKind: store.OwnerEndpoint, OwnerID: ep.ID,
			Type: store.RewriteDestination, Match: "0", Replacement: "44"})
	})
	if err != nil {
		t.Fatal(err)
	}

	var h snapshot.Holder
	w := snapshot.NewWatcher(st, &h, snapshot.Options{Realm: "sipward"}, nil)
	if err := w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	s := h.Load()
	if s.Accounts() != 2 || s.Endpoints() != 2 || s.Users() != 1 || s.DIDs() != 1 {
		t.Fatalf("snapshot has %d accounts, %d endpoints, %d users, %d DIDs", s.Accounts(), s.Endpoints(), s.Users(), s.DIDs())
	}
	m := s.Identify(netip.MustParseAddr("127.0.0.2"), "udp", "22123", "")
	if m.Kind != snapshot.Matched || m.Endpoint.ID != ep.ID || m.Endpoint.Account.ID != beta.ID || m.Dialled != "123" {
		t.Fatalf("Identify = %v endpoint %+v dialled %q", m.Kind, m.Endpoint, m.Dialled)
	}
	if out, _, _ := m.Endpoint.Rewrite.Apply(store.RewriteDestination, "0123"); out != "44123" {
		t.Errorf("rewrite = %q", out)
	}
	if d := s.DID("441110000001"); d == nil || d.User == nil || d.User.Username != "alice" {
		t.Errorf("DID = %+v", d)
	}

	// A committed write is picked up at the next poll.
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.DeleteEndpoint(ctx, ep.ID) }); err != nil {
		t.Fatal(err)
	}
	if err := w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if h.Load().Revision() <= s.Revision() || h.Load().Endpoints() != 1 {
		t.Errorf("after delete: revision %d (was %d), %d endpoints", h.Load().Revision(), s.Revision(), h.Load().Endpoints())
	}
	if !w.Healthy() {
		t.Error("watcher not healthy")
	}
}
