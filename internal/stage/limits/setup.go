package limits

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/pipeline"
)

// Rate is the CPS limit of one Key: at most PerSecond new calls per second
// (burst PerSecond). PerSecond 0 means unlimited.
type Rate struct {
	Key
	PerSecond int
}

// Config configures the limits stage.
type Config struct {
	// Channels counts concurrent calls. Required.
	Channels Channels

	// Rates limits new calls per second. nil means no CPS limit.
	Rates Rates

	// Limits returns the channel limits of an identified initial INVITE:
	// its endpoint or SIP user, then its account (the order decides which
	// one Denied names when both are full). It is called after identify
	// and authn, so r.Auth and r.Principal are set. The slice is only read,
	// never kept or modified. nil means PrincipalLimits (sipward's policy:
	// the principal's channels and its account's); an empty result takes
	// no channels.
	Limits func(r *pipeline.Request) []Limit

	// Rate returns the CPS limit of an identified initial INVITE: its
	// endpoint or SIP user. nil means PrincipalRate; PerSecond 0 means no
	// CPS check.
	Rate func(r *pipeline.Request) Rate

	// Registerer receives the stage's metrics (see metrics.go). nil means
	// they are kept but not registered anywhere. Registering twice on the
	// same Registerer (a chain rebuilt on reload) reuses the first
	// collectors; the channels gauge keeps reading the first Channels.
	Registerer prometheus.Registerer
}

// New returns the limits stage. It fails when cfg has no Channels or the
// metrics cannot be registered.
func New(cfg Config) (pipeline.Stage, error) {
	if cfg.Channels == nil {
		return nil, errors.New("stage/limits: config: channels: required")
	}
	m, err := newMetrics(cfg.Registerer, cfg.Channels)
	if err != nil {
		return nil, fmt.Errorf("stage/limits: %w", err)
	}
	scratch := &sync.Pool{New: func() any { return new([2]Limit) }}
	return func(next pipeline.Handler) pipeline.Handler {
		return &handler{
			next:     next,
			channels: cfg.Channels,
			rates:    cfg.Rates,
			limits:   cfg.Limits,
			rate:     cfg.Rate,
			metrics:  m,
			scratch:  scratch,
		}
	}, nil
}
