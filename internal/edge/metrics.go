package edge

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/sipudp"
)

// metrics are the edge's: requests and decisions, and the UDP transport's
// counters. The B2BUA and the registrar register their own (active calls,
// calls answered, bindings).
type metrics struct {
	requests      *prometheus.CounterVec // by method and final status class
	decisions     *prometheus.CounterVec // by stage that stopped the request, or "route"
	panics        prometheus.Counter
	failures      prometheus.Counter
	stateless     prometheus.Counter
	amplification prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, udp func() sipudp.Counts) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipward_edge_requests_total", Help: "SIP requests handled, by method and answer class (drop; relayed: an in-dialog request passed to the other leg; 1xx…6xx).",
		}, []string{"method", "answer"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipward_edge_decisions_total", Help: "INVITE and REGISTER decisions, by the stage that decided and the answer.",
		}, []string{"stage", "answer"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sipward_edge_panics_total", Help: "Panics recovered in request handlers (answered 500).",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sipward_edge_failures_total", Help: "Technical failures (store, Redis) answered 503.",
		}),
		stateless: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sipward_edge_stateless_total", Help: "UDP requests answered without a transaction (challenges, REGISTER, OPTIONS).",
		}),
	}
	m.amplification = prometheus.NewCounter(prometheus.CounterOpts{Name: "sipward_edge_amplification_drops_total",
		Help: "Answers to strangers over UDP not sent because they were twice the request's size or more (reflection)."})
	cs := []prometheus.Collector{m.requests, m.decisions, m.panics, m.failures, m.stateless, m.amplification,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sipward_edge_absorbed_retransmissions_total",
			Help: "Retransmitted REGISTERs answered again with the stateless answer kept for them."},
			func() float64 { return float64(udp().Absorbed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sipward_edge_stateless_acks_total",
			Help: "ACKs of stateless non-2xx answers (challenges, refusals), dropped unparsed."},
			func() float64 { return float64(udp().StatelessACKs) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipward_edge_udp_transactions",
			Help: "UDP transactions kept, server and client (pending, or absorbing retransmissions after their answer)."},
			func() float64 { return float64(udp().Transactions) }),
	}
	if reg != nil {
		for _, c := range cs {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func answerClass(status int, drop bool) string {
	if drop {
		return "drop"
	}
	switch {
	case status == 0:
		return "relayed" // in a dialog: passed to the other leg, whose answer (if any) is relayed
	case status < 200:
		return "1xx"
	case status < 300:
		return "2xx"
	case status < 400:
		return "3xx"
	case status < 500:
		return "4xx"
	case status < 600:
		return "5xx"
	}
	return "6xx"
}
