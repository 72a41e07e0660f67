package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// health is the answer of /healthz.
type health struct {
	Status        string `json:"status"` // ok | degraded
	Store         string `json:"store"`
	Snapshot      int64  `json:"snapshot_revision"`
	StoreRevision int64  `json:"store_revision"` // the configuration's; the snapshot catches up within about 200 ms
	SnapshotError string `json:"snapshot_error,omitempty"`
	// Redis is "ok", "unreachable since …: node-local limits" or "" without
	// --redis.
	Redis string `json:"redis,omitempty"`
}

// healthHandler serves /healthz. A degraded node — its store or Redis does
// not answer, or a configuration revision did not build — still serves
// calls (on its last snapshot, with node-local limits), so it answers 200
// and says what is degraded: a load balancer keeps it, an operator sees it.
func healthHandler(st store.Store, side *sipSide) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := health{Status: "ok", Store: "ok", Snapshot: side.holder.Load().Revision()}
		if rev, err := st.Revision(r.Context()); err != nil {
			h.Status, h.Store = "degraded", "unreachable: serving the last snapshot"
		} else {
			h.StoreRevision = rev
		}
		if rev, err := side.watcher.LastError(); err != nil {
			h.Status, h.SnapshotError = "degraded", fmt.Sprintf("revision %d did not build: %v", rev, err)
		}
		if up := side.redisUp; up != nil {
			h.Redis = "ok"
			if !up.Up() {
				h.Status = "degraded"
				h.Redis = "unreachable since " + up.Since().UTC().Format(time.RFC3339) + ": node-local limits"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(h)
	})
}
