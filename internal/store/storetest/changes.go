package storetest

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sipward/sipward/internal/store"
)

// The change log (Tx.ChangesSince).

// changesSince reads the change log after rev.
func changesSince(t *testing.T, s store.Store, rev int64) []store.Change {
	t.Helper()
	var changes []store.Change
	view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
		changes, err = tx.ChangesSince(ctx, rev)
		return err
	})
	return changes
}

// logs runs write in its own Update and checks that it advanced the revision
// and logged exactly what want returns (kinds and IDs; want runs after the
// write) at the new revision.
func logs(t *testing.T, s store.Store, what string, write func(ctx context.Context, tx store.Tx) error, want func() []store.Change) {
	t.Helper()
	before := revision(t, s)
	update(t, s, write)
	rev := revision(t, s)
	if rev <= before {
		t.Fatalf("%s: revision %d, was %d: want it to grow", what, rev, before)
	}
	w := want()
	for i := range w {
		w[i].Revision = rev
	}
	slices.SortFunc(w, func(a, b store.Change) int {
		return cmp.Or(strings.Compare(string(a.Kind), string(b.Kind)), cmp.Compare(a.ID, b.ID))
	})
	diff(t, what+": changes logged", w, changesSince(t, s, before))
}

func change(kind store.ChangeKind, id int64) store.Change { return store.Change{Kind: kind, ID: id} }

// testChangeLog checks that each write of each kind is logged, once, at the
// revision it committed at, and that the log reads back in revision order.
func testChangeLog(t *testing.T, s store.Store) {
	start := revision(t, s)
	var a store.Account
	logs(t, s, "CreateAccount", func(ctx context.Context, tx store.Tx) error {
		a = store.Account{Name: "acme", Channels: 10}
		return tx.CreateAccount(ctx, &a)
	}, func() []store.Change { return []store.Change{change(store.ChangeAccount, a.ID)} })
	b := newAccount(t, s, "other")
	logs(t, s, "UpdateAccount twice", func(ctx context.Context, tx store.Tx) error {
		a.Name = "acme 2"
		if err := tx.UpdateAccount(ctx, &a); err != nil {
			return err
		}
		a.Channels = 20
		return tx.UpdateAccount(ctx, &a)
	}, func() []store.Change { return []store.Change{change(store.ChangeAccount, a.ID)} })

	var e store.IPEndpoint
	logs(t, s, "CreateEndpoint", func(ctx context.Context, tx store.Tx) error {
		e = store.IPEndpoint{AccountID: a.ID, Address: "192.0.2.1", Direction: store.DirSends, Protocol: store.ProtoUDP}
		return tx.CreateEndpoint(ctx, &e)
	}, func() []store.Change { return []store.Change{change(store.ChangeEndpoint, e.ID)} })
	logs(t, s, "UpdateEndpoint", func(ctx context.Context, tx store.Tx) error {
		e.TechPrefix = "9"
		return tx.UpdateEndpoint(ctx, &e)
	}, func() []store.Change { return []store.Change{change(store.ChangeEndpoint, e.ID)} })

	var u store.SIPUser
	logs(t, s, "CreateSIPUser", func(ctx context.Context, tx store.Tx) error {
		u = store.SIPUser{AccountID: a.ID, Username: "alice", Realm: "example.com", Protocol: new(store.ProtoUDP)}
		return tx.CreateSIPUser(ctx, &u)
	}, func() []store.Change { return []store.Change{change(store.ChangeSIPUser, u.ID)} })
	logs(t, s, "UpdateSIPUser", func(ctx context.Context, tx store.Tx) error {
		u.HA1MD5 = strings.Repeat("0", 32)
		return tx.UpdateSIPUser(ctx, &u)
	}, func() []store.Change { return []store.Change{change(store.ChangeSIPUser, u.ID)} })

	var p store.CLIPattern
	logs(t, s, "CreateCLIPattern and UpdateCLIPattern", func(ctx context.Context, tx store.Tx) error {
		p = store.CLIPattern{AccountID: a.ID, Pattern: "4420"}
		if err := tx.CreateCLIPattern(ctx, &p); err != nil {
			return err
		}
		p.Pattern = "4421"
		return tx.UpdateCLIPattern(ctx, &p)
	}, func() []store.Change { return []store.Change{change(store.ChangeCLIPattern, p.ID)} })
	logs(t, s, "DeleteCLIPattern", func(ctx context.Context, tx store.Tx) error {
		return tx.DeleteCLIPattern(ctx, p.ID)
	}, func() []store.Change { return []store.Change{change(store.ChangeCLIPattern, p.ID)} })

	var d store.DID
	logs(t, s, "CreateDID", func(ctx context.Context, tx store.Tx) error {
		d = store.DID{AccountID: a.ID, Number: "441110000001"}
		return tx.CreateDID(ctx, &d)
	}, func() []store.Change { return []store.Change{change(store.ChangeDID, d.ID)} })
	logs(t, s, "UpdateDID", func(ctx context.Context, tx store.Tx) error {
		d.SIPUserID = &u.ID
		return tx.UpdateDID(ctx, &d)
	}, func() []store.Change { return []store.Change{change(store.ChangeDID, d.ID)} })

	// A rewrite rule's write also logs its owner, before and after.
	var r store.RewriteRule
	logs(t, s, "CreateRewriteRule", func(ctx context.Context, tx store.Tx) error {
		r = store.RewriteRule{OwnerKind: store.OwnerEndpoint, OwnerID: e.ID, Type: store.RewriteCLI, Match: "0"}
		return tx.CreateRewriteRule(ctx, &r)
	}, func() []store.Change {
		return []store.Change{change(store.ChangeRewriteRule, r.ID), change(store.ChangeEndpoint, e.ID)}
	})
	logs(t, s, "UpdateRewriteRule to another owner", func(ctx context.Context, tx store.Tx) error {
		r.OwnerKind, r.OwnerID = store.OwnerSIPUser, u.ID
		return tx.UpdateRewriteRule(ctx, &r)
	}, func() []store.Change {
		return []store.Change{change(store.ChangeRewriteRule, r.ID), change(store.ChangeEndpoint, e.ID), change(store.ChangeSIPUser, u.ID)}
	})
	logs(t, s, "DeleteRewriteRule", func(ctx context.Context, tx store.Tx) error {
		return tx.DeleteRewriteRule(ctx, r.ID)
	}, func() []store.Change {
		return []store.Change{change(store.ChangeRewriteRule, r.ID), change(store.ChangeSIPUser, u.ID)}
	})

	var ban store.Ban
	logs(t, s, "CreateBan and UpdateBan", func(ctx context.Context, tx store.Tx) error {
		ban = store.Ban{Address: "198.51.100.0/24", Source: store.BanOperator}
		if err := tx.CreateBan(ctx, &ban); err != nil {
			return err
		}
		ban.Reason = "flood"
		return tx.UpdateBan(ctx, &ban)
	}, func() []store.Change { return []store.Change{change(store.ChangeBan, ban.ID)} })
	logs(t, s, "DeleteBan", func(ctx context.Context, tx store.Tx) error {
		return tx.DeleteBan(ctx, ban.ID)
	}, func() []store.Change { return []store.Change{change(store.ChangeBan, ban.ID)} })

	var prof store.Profile
	logs(t, s, "CreateProfile", func(ctx context.Context, tx store.Tx) error {
		prof = store.Profile{Name: "gold"}
		return tx.CreateProfile(ctx, &prof)
	}, func() []store.Change { return []store.Change{change(store.ChangeProfile, prof.ID)} })
	tok := newToken(t, s, "ops", nil)
	logs(t, s, "UpdateToken", func(ctx context.Context, tx store.Tx) error {
		tok.Name = "ops 2"
		return tx.UpdateToken(ctx, &tok)
	}, func() []store.Change { return []store.Change{change(store.ChangeToken, tok.ID)} })
	var login store.Login
	logs(t, s, "CreateLogin", func(ctx context.Context, tx store.Tx) error {
		login = store.Login{Username: "op", Scope: store.ScopeOperator, Hash: "h"}
		return tx.CreateLogin(ctx, &login)
	}, func() []store.Change { return []store.Change{change(store.ChangeLogin, login.ID)} })

	// Several kinds in one Update share its revision.
	logs(t, s, "one Update, several kinds", func(ctx context.Context, tx store.Tx) error {
		b.CPS = 5
		if err := tx.UpdateAccount(ctx, &b); err != nil {
			return err
		}
		u.Channels = new(2)
		if err := tx.UpdateSIPUser(ctx, &u); err != nil {
			return err
		}
		return tx.DeleteDID(ctx, d.ID)
	}, func() []store.Change {
		return []store.Change{change(store.ChangeAccount, b.ID), change(store.ChangeSIPUser, u.ID), change(store.ChangeDID, d.ID)}
	})

	// The whole log reads back in revision order, each write at its own
	// revision, and nothing after the current revision.
	all := changesSince(t, s, start)
	if !slices.IsSortedFunc(all, func(x, y store.Change) int { return cmp.Compare(x.Revision, y.Revision) }) {
		t.Errorf("changes not in revision order: %+v", all)
	}
	if first := all[0]; first != (store.Change{Revision: start + 1, Kind: store.ChangeAccount, ID: a.ID}) {
		t.Errorf("first change since %d: %+v, want account %d at %d", start, first, a.ID, start+1)
	}
	if n := len(changesSince(t, s, revision(t, s))); n != 0 {
		t.Errorf("%d changes after the current revision, want 0", n)
	}
}

// testChangeLogNothing checks that Updates that change nothing log nothing:
// one that only reads, one whose writes all failed, one rolled back.
func testChangeLogNothing(t *testing.T, s store.Store) {
	a := newAccount(t, s, "acme")
	before := revision(t, s)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, _, err := tx.ListAccounts(ctx, store.AccountFilter{})
		return err
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, err := range []error{
			tx.DeleteSIPUser(ctx, 987654),
			tx.DeleteAccount(ctx, 987654),
			tx.DeleteEndpoint(ctx, 987654),
			tx.DeleteRewriteRule(ctx, 987654),
			tx.DeleteProfile(ctx, 987654),
			tx.UpdateAccount(ctx, &store.Account{ID: 987654, Name: "x"}),
		} {
			if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return nil
	})
	if got := changesSince(t, s, before); len(got) != 0 || revision(t, s) != before {
		t.Errorf("Updates that wrote nothing: revision %d (was %d), logged %+v", revision(t, s), before, got)
	}
	_ = s.Update(t.Context(), func(tx store.Tx) error {
		a.Name = "rolled back"
		if err := tx.UpdateAccount(t.Context(), &a); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if got := changesSince(t, s, before); len(got) != 0 || revision(t, s) != before {
		t.Errorf("a rolled-back Update logged %+v", got)
	}
}

// testChangeLogCascades checks that deletes log what they remove or change
// through references.
func testChangeLogCascades(t *testing.T, s store.Store) {
	f := newFamily(t, s, "doomed")
	other := newAccount(t, s, "other")
	// A DID of another account routed to the doomed account's user: the
	// delete clears its user.
	foreign := newDID(t, s, other.ID, "+15550000", ptr(f.user.ID))
	login := create(t, s, store.Tx.CreateLogin, store.Login{Username: "portal", Scope: store.ScopeAccount, AccountID: ptr(f.account.ID), Hash: "h"})

	g := newFamily(t, s, "user")
	logs(t, s, "DeleteSIPUser", func(ctx context.Context, tx store.Tx) error { return tx.DeleteSIPUser(ctx, g.user.ID) },
		func() []store.Change {
			return []store.Change{change(store.ChangeSIPUser, g.user.ID), change(store.ChangeRewriteRule, g.userRule.ID), change(store.ChangeDID, g.did.ID)}
		})
	logs(t, s, "DeleteEndpoint", func(ctx context.Context, tx store.Tx) error { return tx.DeleteEndpoint(ctx, g.endpoint.ID) },
		func() []store.Change {
			return []store.Change{change(store.ChangeEndpoint, g.endpoint.ID), change(store.ChangeRewriteRule, g.endpointRule.ID)}
		})

	logs(t, s, "DeleteAccount", func(ctx context.Context, tx store.Tx) error { return tx.DeleteAccount(ctx, f.account.ID) },
		func() []store.Change {
			return []store.Change{
				change(store.ChangeAccount, f.account.ID),
				change(store.ChangeEndpoint, f.endpoint.ID),
				change(store.ChangeSIPUser, f.user.ID),
				change(store.ChangeCLIPattern, f.cli.ID),
				change(store.ChangeDID, f.did.ID),
				change(store.ChangeDID, foreign.ID),
				change(store.ChangeToken, f.token.ID),
				change(store.ChangeLogin, login.ID),
				change(store.ChangeRewriteRule, f.endpointRule.ID),
				change(store.ChangeRewriteRule, f.userRule.ID),
			}
		})

	gold := create(t, s, store.Tx.CreateProfile, store.Profile{Name: "gold"})
	member := create(t, s, store.Tx.CreateSIPUser, store.SIPUser{AccountID: other.ID, Username: "m", Realm: "example.com", ProfileID: &gold.ID})
	logs(t, s, "DeleteProfile", func(ctx context.Context, tx store.Tx) error { return tx.DeleteProfile(ctx, gold.ID) },
		func() []store.Change {
			return []store.Change{change(store.ChangeProfile, gold.ID), change(store.ChangeSIPUser, member.ID)}
		})
}

// testChangesPruned checks that a revision from before the log began is
// refused with ErrChangesPruned, and the current one is not.
func testChangesPruned(t *testing.T, s store.Store) {
	newAccount(t, s, "acme")
	err := s.View(t.Context(), func(tx store.Tx) error {
		_, err := tx.ChangesSince(t.Context(), -1)
		return err
	})
	wantErr(t, "ChangesSince(-1)", err, store.ErrChangesPruned)
	if got := changesSince(t, s, revision(t, s)); len(got) != 0 {
		t.Errorf("changes since the current revision: %+v", got)
	}
}
