package series

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The recorder's counts since start, for Prometheus: the same events as the
// dashboard's lines, counted once each (see the package doc for which is
// which).
var (
	descCalls         = prometheus.NewDesc("sipward_series_calls_total", "INVITEs passed on to the core (the dashboard's calls).", nil, nil)
	descChallenges    = prometheus.NewDesc("sipward_series_challenges_total", "INVITEs and REGISTERs answered 401/407 (the dashboard's challenges).", []string{"method"}, nil)
	descRegistrations = prometheus.NewDesc("sipward_series_registrations_total", "REGISTERs accepted (the dashboard's registrations).", nil, nil)
	descRejects       = prometheus.NewDesc("sipward_series_rejects_total",
		"INVITEs and REGISTERs refused or dropped, challenges excluded, by method, stage, status (0: dropped) and reason (the dashboard's rejected, register_rejects and rejects by stage).",
		[]string{"method", "stage", "status", "reason"}, nil)
	descBans = prometheus.NewDesc("sipward_series_bans_total", "Addresses banned on this node, by detection or an operator (the dashboard's bans).", nil, nil)
)

// Describe implements prometheus.Collector.
func (r *Recorder) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCalls, descChallenges, descRegistrations, descRejects, descBans} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (r *Recorder) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	l := r.lifetime
	keys := append([]kindKey(nil), r.kinds.keys...)
	challenges := r.challenges
	r.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(l.c[cCalls]))
	ch <- prometheus.MustNewConstMetric(descChallenges, prometheus.CounterValue, float64(challenges[0]), "INVITE")
	ch <- prometheus.MustNewConstMetric(descChallenges, prometheus.CounterValue, float64(challenges[1]), "REGISTER")
	ch <- prometheus.MustNewConstMetric(descRegistrations, prometheus.CounterValue, float64(l.c[cRegistrations]))
	ch <- prometheus.MustNewConstMetric(descBans, prometheus.CounterValue, float64(l.c[cBans]))
	for id, k := range keys {
		if n := l.kinds[id]; n > 0 {
			ch <- prometheus.MustNewConstMetric(descRejects, prometheus.CounterValue, float64(n),
				k.method, k.stage, strconv.Itoa(k.status), k.reason)
		}
	}
}

var _ prometheus.Collector = (*Recorder)(nil)
