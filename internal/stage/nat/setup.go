package nat

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/pipeline"
)

// Config configures the nat stage.
type Config struct {
	// Registerer receives the stage's metrics; nil: kept but not registered.
	// Registering twice on the same Registerer reuses the first collectors.
	Registerer prometheus.Registerer
}

// New returns the nat stage. It fails when its metrics cannot be registered.
func New(cfg Config) (pipeline.Stage, error) {
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return &handler{next: next, metrics: m}
	}, nil
}
