package codecs

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/sdpfilter"
	"github.com/sipward/sipward/internal/snapshot"
)

// Set is a set of restricted codecs (package sdpfilter's).
type Set = sdpfilter.Set

// Policy returns what the codecs stage enforces on a request: the codecs
// restricted for the calling IP endpoint or SIP user, and whether it must
// use SRTP (protocol tls-srtp). It is called once per INVITE with an SDP
// body, after identification, so r.Auth is filled in. It must not block,
// and should not allocate: it reads the request's configuration snapshot.
type Policy func(r *pipeline.Request) (restricted Set, requireSRTP bool)

// PrincipalPolicy is the Policy sipward serves with: the restricted codecs
// of the request's principal (its IP endpoint or SIP user), and SRTP when
// the principal's protocol is tls-srtp. Nothing for a request without a
// principal (from the core).
func PrincipalPolicy(r *pipeline.Request) (Set, bool) {
	p := r.Principal
	if p == nil {
		return Set{}, false
	}
	return sdpfilter.FromBits(uint32(p.Codecs)), p.Protocol == snapshot.ProtoTLSSRTP
}

// Config configures the codecs stage.
type Config struct {
	// Policy says what to enforce per request. Required.
	Policy Policy

	// Registerer receives the stage's metrics (see metrics.go); a
	// *prometheus.Registry will do. nil means the metrics are kept but not
	// registered anywhere; the process-wide default registry is never used.
	// Registering twice on the same Registerer (a chain rebuilt on reload)
	// reuses the first collectors.
	Registerer prometheus.Registerer
}

// New returns the codecs stage. It fails when cfg has no Policy or when
// the metrics cannot be registered.
func New(cfg Config) (pipeline.Stage, error) {
	if cfg.Policy == nil {
		return nil, errors.New("stage/codecs: config: policy: is required")
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return &handler{next: next, policy: cfg.Policy, metrics: m}
	}, nil
}
