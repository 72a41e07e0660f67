package firewall_test

import (
	"context"
	"log"
	"net/netip"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/stage/firewall"
	"github.com/sipward/sipward/internal/store"
)

// The wiring in the edge: one Firewall is the sipgo read filter, the first
// stage of the chain, and the sink of authentication failures.
func Example() {
	reg := prometheus.NewRegistry()
	var trusted func(netip.Addr) bool // from the current snapshot: IP endpoints and core
	var persist func(context.Context, store.Ban) error

	fw, err := firewall.New(firewall.Config{
		Trusted:    func(a netip.Addr) bool { return trusted != nil && trusted(a) },
		Persist:    persist,
		Registerer: reg,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = fw.Close(context.Background()) }()

	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransportLayerOptions(
		sip.WithTransportLayerReadFilter(fw.ReadFilter),
	))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = ua.Close() }()

	_ = fw.Stage() // first in pipeline.Build(route, fw.Stage(), sanityStage, ...)

	// On every snapshot change:
	_ = fw.SetBans([]store.Ban{{Address: "203.0.113.0/24", Source: store.BanOperator}})

	// From authn, on wrong credentials:
	fw.Detector().Failure(netip.MustParseAddr("198.51.100.7"), firewall.AuthFailure, time.Now())
}
