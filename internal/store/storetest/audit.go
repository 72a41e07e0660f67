package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// AuditStore is a store that also reads and prunes the audit trail.
type AuditStore interface {
	store.Store
	store.AuditLog
}

// RunAudit runs the conformance suite of the audit trail (Tx.AppendAudit
// and store.AuditLog). newStore returns a new, empty store for one subtest
// and registers its cleanup with t.Cleanup.
func RunAudit(t *testing.T, newStore func(t *testing.T) AuditStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s AuditStore)
	}{
		{"RoundTrip", testAuditRoundTrip},
		{"RolledBack", testAuditRolledBack},
		{"Filters", testAuditFilters},
		{"Prune", testAuditPrune},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func appendAudit(t *testing.T, s store.Store, es ...*store.AuditEntry) {
	t.Helper()
	err := s.Update(context.Background(), func(tx store.Tx) error {
		for _, e := range es {
			if err := tx.AppendAudit(context.Background(), e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("append audit: %v", err)
	}
}

func testAuditRoundTrip(t *testing.T, s AuditStore) {
	ctx := context.Background()
	rev0, _ := s.Revision(ctx)
	acc := int64(7)
	at := time.Date(2026, 12, 7, 20, 0, 0, 123456000, time.UTC)
	e := &store.AuditEntry{Time: at, Actor: "token:ci", ActorScope: "operator", AccountID: &acc, Source: "192.0.2.1",
		Via: "api", Action: store.AuditUpdate, Object: "ip_endpoint", ObjectID: 12,
		Changes: map[string]store.FieldChange{"channels": {Before: 10.0, After: 20.0}, "password": {Before: store.AuditHidden, After: store.AuditChanged}}}
	appendAudit(t, s, e)
	if e.ID == 0 {
		t.Fatal("AppendAudit did not set the ID")
	}
	if rev, _ := s.Revision(ctx); rev != rev0 {
		t.Errorf("an audit entry alone moved the revision from %d to %d", rev0, rev)
	}
	got, total, err := s.ListAudit(ctx, store.AuditFilter{})
	if err != nil || total != 1 || len(got) != 1 {
		t.Fatalf("ListAudit = %d items, total %d, %v; want 1", len(got), total, err)
	}
	g := got[0]
	if !g.Time.Equal(at) || g.Actor != e.Actor || g.ActorScope != e.ActorScope || g.AccountID == nil || *g.AccountID != 7 ||
		g.Source != e.Source || g.Via != e.Via || g.Action != e.Action || g.Object != e.Object || g.ObjectID != 12 {
		t.Errorf("read back %+v, want %+v", g, *e)
	}
	if c := g.Changes["channels"]; c.Before != 10.0 || c.After != 20.0 || len(g.Changes) != 2 {
		t.Errorf("changes read back %+v", g.Changes)
	}
}

func testAuditRolledBack(t *testing.T, s AuditStore) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.AppendAudit(ctx, &store.AuditEntry{Actor: "x", ActorScope: "operator", Action: "create", Object: "account", ObjectID: 1}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	if _, total, _ := s.ListAudit(ctx, store.AuditFilter{}); total != 0 {
		t.Errorf("an entry of a rolled-back change was kept (%d entries)", total)
	}
	err = s.View(ctx, func(tx store.Tx) error {
		return tx.AppendAudit(ctx, &store.AuditEntry{Actor: "x", Action: "create", Object: "account"})
	})
	if err == nil {
		t.Error("AppendAudit inside View succeeded")
	}
}

func testAuditFilters(t *testing.T, s AuditStore) {
	ctx := context.Background()
	a1, a2 := int64(1), int64(2)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	appendAudit(t, s,
		&store.AuditEntry{Time: t0, Actor: "login:alice", ActorScope: "account", AccountID: &a1, Action: "create", Object: "sip_user", ObjectID: 5},
		&store.AuditEntry{Time: t0.Add(time.Hour), Actor: "token:Bob", ActorScope: "operator", AccountID: &a2, Action: "update", Object: "sip_user", ObjectID: 6},
		&store.AuditEntry{Time: t0.Add(2 * time.Hour), Actor: "firewall", ActorScope: "system", Action: "ban", Object: "ban", ObjectID: 1},
		&store.AuditEntry{Time: t0.Add(3 * time.Hour), Actor: "token:bob", ActorScope: "operator", AccountID: &a1, Action: "delete", Object: "ip_endpoint", ObjectID: 5},
	)
	for _, tc := range []struct {
		name string
		f    store.AuditFilter
		want []int64 // object IDs, newest first
	}{
		{"all", store.AuditFilter{}, []int64{5, 1, 6, 5}},
		{"object", store.AuditFilter{Object: "sip_user"}, []int64{6, 5}},
		{"object and id", store.AuditFilter{Object: "sip_user", ObjectID: 5}, []int64{5}},
		{"account", store.AuditFilter{AccountID: 1}, []int64{5, 5}},
		{"actor substring, any case", store.AuditFilter{Actor: "BOB"}, []int64{5, 6}},
		{"action", store.AuditFilter{Action: "ban"}, []int64{1}},
		{"since", store.AuditFilter{Since: t0.Add(2 * time.Hour)}, []int64{5, 1}},
		{"until", store.AuditFilter{Until: t0.Add(time.Hour)}, []int64{5}},
		{"no system", store.AuditFilter{NoSystem: true}, []int64{5, 6, 5}},
		{"page", store.AuditFilter{Page: store.Page{Limit: 2, Offset: 1}}, []int64{1, 6}},
	} {
		got, total, err := s.ListAudit(ctx, tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var ids []int64
		for _, e := range got {
			ids = append(ids, e.ObjectID)
		}
		if len(ids) != len(tc.want) || (len(ids) > 0 && !equalIDs(ids, tc.want)) {
			t.Errorf("%s: object ids %v, want %v", tc.name, ids, tc.want)
		}
		if tc.f.Limit == 0 && total != len(tc.want) {
			t.Errorf("%s: total %d, want %d", tc.name, total, len(tc.want))
		}
		if tc.name == "page" && total != 4 {
			t.Errorf("page: total %d, want 4", total)
		}
	}
}

func equalIDs(a, b []int64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testAuditPrune(t *testing.T, s AuditStore) {
	ctx := context.Background()
	now := time.Now().UTC()
	appendAudit(t, s,
		&store.AuditEntry{Time: now.Add(-500 * 24 * time.Hour), Actor: "a", ActorScope: "operator", Action: "create", Object: "account", ObjectID: 1},
		&store.AuditEntry{Time: now.Add(-time.Hour), Actor: "a", ActorScope: "operator", Action: "create", Object: "account", ObjectID: 2},
	)
	n, err := s.PruneAudit(ctx, now.Add(-400*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("PruneAudit = %d, %v; want 1", n, err)
	}
	got, _, _ := s.ListAudit(ctx, store.AuditFilter{})
	if len(got) != 1 || got[0].ObjectID != 2 {
		t.Errorf("after pruning: %+v, want only account 2's entry", got)
	}
}
