package authn

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	results *prometheus.CounterVec
}

// Results counted in sipward_authn_requests_total.
var resultLabels = []string{"ok", "challenged", "bad_credentials", "stale", "whitelist", "transport", "error"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sipward_authn_requests_total",
		Help: "Requests that reached digest authentication, by result.",
	}, []string{"result"})}
	for _, l := range resultLabels {
		m.results.WithLabelValues(l)
	}
	if reg != nil {
		if err := reg.Register(m.results); err != nil {
			return nil, err
		}
	}
	return m, nil
}
