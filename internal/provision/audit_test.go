package provision_test

import (
	"testing"
	"time"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// Expired bans are lifted as unbans by the firewall; a ban still running
// and one that never expires stay. A failed change leaves no entry.
func TestExpireBansAndFailedChanges(t *testing.T) {
	svc := newService(t)
	ctx := t.Context()
	now := time.Now()
	if err := svc.AddDetectedBan(ctx, store.Ban{Address: "203.0.113.1", Reason: "scan", ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := svc.AddDetectedBan(ctx, store.Ban{Address: "203.0.113.2", Reason: "scan", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateBan(ctx, provision.Operator, &store.Ban{Address: "203.0.113.3", Reason: "forever"}); err != nil {
		t.Fatal(err)
	}
	n, err := svc.ExpireBans(ctx, now.Add(2*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("ExpireBans = %d, %v; want 1", n, err)
	}
	bans, _, _ := svc.ListBans(ctx, provision.Operator, store.BanFilter{})
	if len(bans) != 2 {
		t.Errorf("bans left: %v, want the running and the permanent one", bans)
	}
	unbans, _, err := svc.ListAudit(ctx, provision.Operator, store.AuditFilter{Action: store.AuditUnban})
	if err != nil || len(unbans) != 1 || unbans[0].Actor != store.ActorFirewall || unbans[0].ActorScope != "system" ||
		unbans[0].Changes["address"].Before != "203.0.113.1" {
		t.Errorf("unban entries %+v, %v; want one by the firewall of 203.0.113.1", unbans, err)
	}
	forever, _, _ := svc.ListAudit(ctx, provision.Operator, store.AuditFilter{Action: store.AuditBan, Actor: "operator"})
	if len(forever) != 1 || forever[0].Changes["reason"].After != "forever" {
		t.Fatalf("the operator's ban: %+v", forever)
	} else if c, ok := forever[0].Changes["expires_at"]; ok {
		t.Errorf("a ban that never expires shows expires_at %v → %v; want no such change", c.Before, c.After)
	}
	bansBy, _, _ := svc.ListAudit(ctx, provision.Operator, store.AuditFilter{Action: store.AuditBan, Actor: "firewall"})
	if len(bansBy) != 2 {
		t.Errorf("ban entries by the firewall: %d, want 2", len(bansBy))
	}

	before, _, _ := svc.ListAudit(ctx, provision.Operator, store.AuditFilter{})
	a := newAccount(t, svc, "Acme")
	if err := svc.UpdateAccount(ctx, provision.Operator, &store.Account{ID: a, Name: "", Channels: 10}); err == nil {
		t.Fatal("an account without a name was saved")
	}
	after, _, _ := svc.ListAudit(ctx, provision.Operator, store.AuditFilter{})
	if len(after) != len(before)+1 || after[0].Action != store.AuditCreate {
		t.Errorf("entries after a create and a refused update: %d → %d, want one more (the create)", len(before), len(after))
	}
	if n, err := svc.PruneAudit(ctx, now.Add(48*time.Hour), 24*time.Hour); err != nil || n != int64(len(after)) {
		t.Errorf("PruneAudit a day after a day's retention = %d, %v; want all %d", n, err, len(after))
	}
	if n, err := svc.PruneAudit(ctx, now.Add(48*time.Hour), 0); err != nil || n != 0 {
		t.Errorf("PruneAudit with retention 0 = %d, %v; want nothing pruned", n, err)
	}
}
