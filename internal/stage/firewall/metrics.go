package firewall

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/promreg"
)

// dropReason is why a message was dropped; its String is the "reason"
// label of sipward_firewall_dropped_total.
type dropReason uint8

const (
	dropNone    dropReason = iota
	dropBanned             // source banned
	dropRate               // source over RatePerSource
	dropScanner            // a scanner's User-Agent
	numDropReasons
)

// String returns the metric label of r.
func (r dropReason) String() string {
	switch r {
	case dropBanned:
		return "banned"
	case dropRate:
		return "rate"
	case dropScanner:
		return "scanner"
	}
	return "none"
}

// metrics are the firewall's Prometheus collectors. Every label value is
// created up front, so each series exists from the start at 0 and counting
// allocates nothing.
type metrics struct {
	dropped        [numDropReasons]prometheus.Counter // [dropNone] unused
	bans           [numKinds]prometheus.Counter       // [0] unused
	tracked        prometheus.Gauge
	evicted        prometheus.Counter
	banPrefixes    prometheus.Gauge
	localOverflow  prometheus.Counter
	persistDropped prometheus.Counter
	persistFailed  prometheus.Counter
	sharedFallback prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "sipward", Subsystem: "firewall", Name: name, Help: help}
	}
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts(opts("dropped_total",
		"Messages dropped by the firewall (read filter or stage), by reason: banned, rate or scanner.")), []string{"reason"})
	bans := prometheus.NewCounterVec(prometheus.CounterOpts(opts("bans_total",
		"Bans made by fraud detection, by what was detected: auth_failure, unknown_source_invite, scanner or stream_flood.")), []string{"source"})
	tracked := prometheus.NewGauge(prometheus.GaugeOpts(opts("tracked_sources",
		"(source, kind) pairs the fraud detector is counting failures of.")))
	evicted := prometheus.NewCounter(prometheus.CounterOpts(opts("tracked_evicted_total",
		"Pairs the fraud detector forgot before their window ended because max_tracked was reached.")))
	banPrefixes := prometheus.NewGauge(prometheus.GaugeOpts(opts("ban_prefixes",
		"Prefixes in the ban table in force, expired ones included until the next SetBans.")))
	localOverflow := prometheus.NewCounter(prometheus.CounterOpts(opts("local_bans_overflow_total",
		"Detection bans not put in force locally because max_local_bans were pending; they apply once stored.")))
	persistDropped := prometheus.NewCounter(prometheus.CounterOpts(opts("persist_dropped_total",
		"Detection bans not persisted because the queue was full or the firewall was closing.")))
	persistFailed := prometheus.NewCounter(prometheus.CounterOpts(opts("persist_failed_total",
		"Detection bans whose Persist call failed.")))

	if reg != nil {
		var err error
		if dropped, err = register(reg, dropped); err != nil {
			return nil, err
		}
		if bans, err = register(reg, bans); err != nil {
			return nil, err
		}
		if tracked, err = register(reg, tracked); err != nil {
			return nil, err
		}
		if evicted, err = register(reg, evicted); err != nil {
			return nil, err
		}
		if banPrefixes, err = register(reg, banPrefixes); err != nil {
			return nil, err
		}
		if localOverflow, err = register(reg, localOverflow); err != nil {
			return nil, err
		}
		if persistDropped, err = register(reg, persistDropped); err != nil {
			return nil, err
		}
		if persistFailed, err = register(reg, persistFailed); err != nil {
			return nil, err
		}
	}
	sharedFallback, err := counter(reg, "shared_fallback_total",
		"Failures counted on this node alone because the cluster's shared count (Config.Shared) failed.")
	if err != nil {
		return nil, err
	}
	m := &metrics{
		sharedFallback: sharedFallback,
		tracked:        tracked,
		evicted:        evicted,
		banPrefixes:    banPrefixes,
		localOverflow:  localOverflow,
		persistDropped: persistDropped,
		persistFailed:  persistFailed,
	}
	for r := dropNone + 1; r < numDropReasons; r++ {
		m.dropped[r] = dropped.WithLabelValues(r.String())
	}
	for k := Kind(1); k < numKinds; k++ {
		m.bans[k] = bans.WithLabelValues(k.String())
	}
	return m, nil
}

// counter returns a new counter sipward_firewall_<name>, registered on reg
// when it is not nil.
func counter(reg prometheus.Registerer, name, help string) (prometheus.Counter, error) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sipward", Subsystem: "firewall", Name: name, Help: help})
	if reg == nil {
		return c, nil
	}
	return register(reg, c)
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	return promreg.Register(reg, c, "stage/firewall")
}
