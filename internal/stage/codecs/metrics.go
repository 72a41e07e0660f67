package codecs

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/sdpfilter"
)

// metrics are the stage's Prometheus collectors.
type metrics struct {
	// filtered is indexed by sdpfilter.Outcome.
	filtered [len(sdpfilter.Outcomes)]prometheus.Counter
}

// newMetrics builds the collectors and registers them on reg, if not nil.
// Every outcome label is created up front, so each series exists from the
// start at 0 and counting allocates nothing.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	filtered := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sipward",
		Subsystem: "codecs",
		Name:      "filtered_total",
		Help:      "SDP offers checked by the codecs stage, by outcome (unchanged, changed, nothing_left, no_srtp, malformed).",
	}, []string{"outcome"})
	if reg != nil {
		if err := reg.Register(filtered); err != nil {
			var are prometheus.AlreadyRegisteredError
			existing, ok := (*prometheus.CounterVec)(nil), false
			if errors.As(err, &are) {
				existing, ok = are.ExistingCollector.(*prometheus.CounterVec)
			}
			if !ok {
				return nil, fmt.Errorf("stage/codecs: register metrics: %w", err)
			}
			filtered = existing
		}
	}
	m := &metrics{}
	for _, o := range sdpfilter.Outcomes {
		m.filtered[o] = filtered.WithLabelValues(o.String())
	}
	return m, nil
}
