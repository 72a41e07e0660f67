package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/sipward/sipward/internal/provision"
)

// Housekeeping intervals: expired bans are lifted within a minute; the audit
// trail is pruned hourly (its retention is counted in days).
const (
	banSweepEvery   = time.Minute
	auditPruneEvery = time.Hour
)

// housekeep lifts expired bans and prunes the audit trail until ctx ends.
// Every node does it; the store serialises the writes, so a second node
// finds nothing left to do.
func housekeep(ctx context.Context, svc *provision.Service, retention time.Duration, log *slog.Logger) {
	bans := time.NewTicker(banSweepEvery)
	defer bans.Stop()
	prune := time.NewTicker(auditPruneEvery)
	defer prune.Stop()
	pruneAudit := func() {
		n, err := svc.PruneAudit(ctx, time.Now(), retention)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("audit trail: prune failed", "error", err)
		case n > 0:
			log.Info("audit trail: pruned old entries", "entries", n, "retention", retention)
		}
	}
	pruneAudit()
	for {
		select {
		case <-ctx.Done():
			return
		case <-bans.C:
			if n, err := svc.ExpireBans(ctx, time.Now()); err != nil && ctx.Err() == nil {
				log.Warn("firewall: lifting expired bans failed", "error", err)
			} else if n > 0 {
				log.Info("firewall: lifted expired bans", "bans", n)
			}
		case <-prune.C:
			pruneAudit()
		}
	}
}
