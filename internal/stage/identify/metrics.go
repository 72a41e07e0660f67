package identify

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/snapshot"
)

// results are the values of the "result" label, one per snapshot.MatchKind.
var results = [...]snapshot.MatchKind{snapshot.Matched, snapshot.Core, snapshot.Unmatched, snapshot.Ambiguous, snapshot.WrongTransport}

// metrics are the stage's Prometheus collectors.
type metrics struct {
	// requests is indexed by snapshot.MatchKind.
	requests [len(results)]prometheus.Counter
}

// newMetrics builds the collectors and registers them on reg, if not nil.
// Every result label is created up front, so each series exists from the
// start at 0 and counting allocates nothing.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sipward",
		Subsystem: "identify",
		Name:      "requests_total",
		Help:      "Requests seen by the identify stage, by result: matched (an IP endpoint), core, unmatched (left to digest authentication), ambiguous (403), transport (403).",
	}, []string{"result"})
	if reg != nil {
		if err := reg.Register(requests); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("stage/identify: register metrics: %w", err)
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("stage/identify: register metrics: %w", err)
			}
			requests = existing
		}
	}
	m := &metrics{}
	for _, k := range results {
		m.requests[k] = requests.WithLabelValues(k.String())
	}
	return m, nil
}
