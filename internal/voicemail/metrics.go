package voicemail

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/promreg"
)

// metrics are the agent's Prometheus series.
type metrics struct {
	calls    *prometheus.GaugeVec   // sipward_voicemail_calls{mode}: calls the agent holds now
	messages *prometheus.CounterVec // sipward_voicemail_messages_total{end}: messages kept, by how they ended
	gaps     prometheus.Counter     // sipward_voicemail_rtp_gaps_total: RTP packets missing from recordings (filled with silence)
	pins     prometheus.Counter     // sipward_voicemail_wrong_pins_total
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sipward_voicemail_calls",
			Help: "Calls the voicemail agent holds now, by mode (deposit, retrieve)."}, []string{"mode"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sipward_voicemail_messages_total",
			Help: "Voicemail messages kept, by how the recording ended (hangup, #, silence, max length)."}, []string{"end"}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{Name: "sipward_voicemail_rtp_gaps_total",
			Help: "RTP packets missing from voicemail recordings (by sequence number; filled with silence)."}),
		pins: prometheus.NewCounter(prometheus.CounterOpts{Name: "sipward_voicemail_wrong_pins_total",
			Help: "Wrong voicemail PINs keyed in (each also counts towards the firewall's ban of its source)."}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.calls, err = promreg.Register(reg, m.calls, "voicemail"); err != nil {
		return nil, err
	}
	if m.messages, err = promreg.Register(reg, m.messages, "voicemail"); err != nil {
		return nil, err
	}
	if m.gaps, err = promreg.Register(reg, m.gaps, "voicemail"); err != nil {
		return nil, err
	}
	m.pins, err = promreg.Register(reg, m.pins, "voicemail")
	return m, err
}
