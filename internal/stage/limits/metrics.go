package limits

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/promreg"
)

// limit is which limit stopped a call; its String is the "limit" label of
// sipward_limits_rejected_total.
type limit uint8

// Limits that stop calls.
const (
	limitChannels        limit = iota // 503: endpoint or SIP user channels
	limitAccountChannels              // 503: account channels
	limitCPS                          // 503: endpoint or SIP user CPS
	limitHeld                         // 482: Call-ID already holds channels
	numLimits
)

var limitLabels = [numLimits]string{
	limitChannels:        "channels",
	limitAccountChannels: "account_channels",
	limitCPS:             "cps",
	limitHeld:            "duplicate_call_id",
}

// String returns the metric label of l.
func (l limit) String() string {
	if l < numLimits {
		return limitLabels[l]
	}
	return "unknown"
}

// gaugeTimeout bounds the Channels.All call of one scrape.
const gaugeTimeout = 2 * time.Second

// metrics are the stage's Prometheus collectors.
type metrics struct {
	rejected        [numLimits]prometheus.Counter
	releaseFailures prometheus.Counter
}

// newMetrics builds the collectors and registers them on reg, if not nil.
// Every label value is created up front, so each series exists from the
// start at 0 and counting allocates nothing.
func newMetrics(reg prometheus.Registerer, ch Channels) (*metrics, error) {
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sipward",
		Subsystem: "limits",
		Name:      "rejected_total",
		Help:      "Initial INVITEs refused by the limits stage, by limit.",
	}, []string{"limit"})
	failures := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "sipward",
		Subsystem: "limits",
		Name:      "release_failures_total",
		Help:      "Channel releases after a rejection by a later stage that failed; the hold ends with its lease.",
	})
	inUse := &inUseCollector{channels: ch}
	if reg != nil {
		var err error
		if rejected, err = register(reg, rejected); err != nil {
			return nil, err
		}
		if failures, err = register(reg, failures); err != nil {
			return nil, err
		}
		if _, err = register(reg, inUse); err != nil {
			return nil, err
		}
	}
	m := &metrics{releaseFailures: failures}
	for l := range numLimits {
		m.rejected[l] = rejected.WithLabelValues(l.String())
	}
	return m, nil
}

// inUseDesc describes sipward_limits_channels_in_use.
var inUseDesc = prometheus.NewDesc("sipward_limits_channels_in_use",
	"Channels held, summed by kind of key (a call counts once under its endpoint or SIP user and once under its account). "+
		"With Redis state every node reports the cluster-wide figure.",
	[]string{"kind"}, nil)

// inUseCollector reads Channels.All at scrape time and reports the channels
// in use per Kind. A failing All (Redis down) reports nothing for that
// scrape.
type inUseCollector struct{ channels Channels }

// Describe implements prometheus.Collector.
func (c *inUseCollector) Describe(ch chan<- *prometheus.Desc) { ch <- inUseDesc }

// Collect implements prometheus.Collector.
func (c *inUseCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), gaugeTimeout)
	defer cancel()
	all, err := c.channels.All(ctx)
	if err != nil {
		// An invalid metric would fail the whole scrape; health reports
		// the state being down.
		return
	}
	var sums [numKinds]int
	for _, n := range all {
		if n.Kind.Valid() {
			sums[n.Kind] += n.InUse
		}
	}
	for _, k := range Kinds {
		ch <- prometheus.MustNewConstMetric(inUseDesc, prometheus.GaugeValue, float64(sums[k]), k.String())
	}
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	return promreg.Register(reg, c, "stage/limits")
}
