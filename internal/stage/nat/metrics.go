package nat

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/promreg"
)

// outcome is what the stage did with one INVITE.
type outcome uint8

const (
	plain    outcome = iota // not behind NAT, nothing to mend
	nated                   // behind NAT, SDP already reachable
	sdpFixed                // SDP connection address replaced
	disabled                // disable_nat
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"plain", "nated", "sdp_fixed", "disabled"}

type metrics struct {
	outcomes [numOutcomes]prometheus.Counter
}

// newMetrics builds the collectors with every label up front (counting
// allocates nothing) and registers them on reg, if not nil.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sipward",
		Subsystem: "nat",
		Name:      "invites_total",
		Help:      "Initial INVITEs of endpoints and SIP users through the nat stage, by outcome (plain, nated, sdp_fixed, disabled).",
	}, []string{"outcome"})
	if reg != nil {
		var err error
		if vec, err = promreg.Register(reg, vec, "stage/nat"); err != nil {
			return nil, err
		}
	}
	m := &metrics{}
	for i, n := range outcomeNames {
		m.outcomes[i] = vec.WithLabelValues(n)
	}
	return m, nil
}
