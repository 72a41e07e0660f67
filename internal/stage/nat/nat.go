// Package nat is the pipeline stage that handles a caller behind NAT
// (the seed's "Force NAT" and "Far-end NAT traversal"): for an initial
// INVITE of an IP endpoint or SIP user it decides, by the principal's NAT
// mode and package sipnat's detection, whether the caller is behind NAT,
// and replaces the private connection addresses of its SDP offer with its
// source address (symmetric RTP) in pipeline.Request.Offer, so that the
// core sends media where the caller's NAT lets it in. What it did goes in
// pipeline.Request.NAT, which the decision shows. Where in-dialog requests
// to the caller go (its source or its Contact) is the B2BUA's, by the same
// mode.
//
//	force_nat    always NAT-ed: every SDP connection address becomes the source
//	disable_nat  never: SDP and Contact as given
//	neither      detection (Via or Contact not the source); private SDP
//	             addresses become the source in any case
package nat

import (
	"context"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/sipnat"
	"github.com/sipward/sipward/internal/snapshot"
)

// Name is the stage name, as it appears in traces and Result.Stage.
const Name = "nat"

type handler struct {
	next    pipeline.Handler
	metrics *metrics
}

func (h *handler) Name() string { return Name }

// ServeSIP handles the NAT of an initial INVITE's caller and passes it on;
// other requests, and requests without a principal (the core), pass
// untouched. It never stops the chain and never modifies r.Msg.
func (h *handler) ServeSIP(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
	if r.Msg.Method == sip.INVITE && r.Principal != nil {
		h.metrics.outcomes[h.handle(r)].Inc()
	}
	r.Trace.Pass(Name)
	return h.next.ServeSIP(ctx, r)
}

// handle sets r.NAT and r.Offer and returns the outcome counted.
func (h *handler) handle(r *pipeline.Request) outcome {
	mode := r.Principal.NAT
	if mode == snapshot.NATDisable {
		r.NAT = "disable_nat: Contact and SDP as given"
		r.MediaRelay = r.Principal.Relay == snapshot.RelayAlways
		return disabled
	}
	var notes []string
	behind, why := mode == snapshot.NATForce, "force_nat"
	if !behind {
		behind, why = sipnat.Detect(r.Source, r.Transport, r.Msg)
	}
	if behind {
		notes = append(notes, "behind NAT ("+why+"): requests to it go to "+r.Source.String())
	}
	offer := r.Offer
	if offer == nil && isSDP(r.Msg) {
		offer = r.Msg.Body()
	}
	res := plain
	if behind {
		res = nated
	}
	if len(offer) > 0 {
		if out, from := sipnat.FixSDP(offer, r.Source.Addr(), mode == snapshot.NATForce); from != "" {
			r.Offer = out
			notes = append(notes, "SDP address "+from+" replaced by "+r.Source.Addr().Unmap().String()+" (symmetric RTP)")
			res = sdpFixed
		}
	}
	switch r.Principal.Relay {
	case snapshot.RelayAlways:
		r.MediaRelay = true
	case snapshot.RelayAuto:
		r.MediaRelay = behind || res == sdpFixed
	}
	if len(notes) > 0 {
		r.NAT = strings.Join(notes, "; ")
	}
	return res
}

func isSDP(m *sip.Request) bool {
	ct := m.ContentType()
	return ct != nil && strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct.Value())), "application/sdp")
}
