package identify

import (
	"errors"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/snapshot"
)

// Config configures the identify stage.
type Config struct {
	// Snapshot returns the serving configuration snapshot (the edge passes
	// snapshot.Holder.Load). Required. It is called once per request.
	//
	// Interim: when pipeline.Request carries the snapshot the edge loaded for
	// the request, the stage will read it from there and this field goes.
	Snapshot func() *snapshot.Snapshot

	// Registerer receives the stage's metrics (see metrics.go). nil means the
	// metrics are kept but not registered anywhere; the process-wide default
	// registry is never used. Registering twice on the same Registerer (a
	// chain rebuilt on reload) reuses the first collectors.
	Registerer prometheus.Registerer

	// Delivery, when set, recognises a call a peer node of the cluster
	// hands over for one of this node's registrations (a signed
	// delivery, package cluster): ok with the binding's username and
	// contact. Such a request is identified as AuthNode, not a customer's.
	// nil: no request is a delivery.
	Delivery func(msg *sip.Request, now time.Time) (username, contact string, ok bool)
}

// New returns the identify stage. It fails when cfg.Snapshot is nil or the
// metrics cannot be registered.
func New(cfg Config) (pipeline.Stage, error) {
	if cfg.Snapshot == nil {
		return nil, errors.New("stage/identify: config: snapshot: required")
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return &handler{next: next, snapshot: cfg.Snapshot, metrics: m, delivery: cfg.Delivery}
	}, nil
}
