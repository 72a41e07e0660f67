// Package codecs is the pipeline stage that enforces an IP endpoint's or
// SIP user's codec restrictions on the SDP of an INVITE: restricted codecs
// are removed from the offer, an offer left without an audio codec is
// answered 488 Not Acceptable Here, and so is an offer without SRTP from an
// endpoint that must use it (protocol tls-srtp).
//
// The filtering itself is package sdpfilter's. The filtered offer is not
// written into the inbound request, which sipgo shares with its server
// transaction: it goes to pipeline.Request.Offer, which the B2BUA sends on
// the far leg instead of the inbound body; the B2BUA filters the answer
// coming back with the same Set.
package codecs

import (
	"context"
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/sdpfilter"
)

// Name is the stage name, as it appears in traces and Result.Stage.
const Name = "codecs"

// Warning header values (RFC 3261 §20.43) sent with 488.
const (
	warnMedia     = `305 sipward "Incompatible media format"`
	warnTransport = `302 sipward "Incompatible transport protocol"`
)

// handler is the stage in the chain.
type handler struct {
	next    pipeline.Handler
	policy  Policy
	metrics *metrics
}

// Name returns "codecs".
func (h *handler) Name() string { return Name }

// ServeSIP filters the SDP offer of an INVITE (r.Offer if an earlier stage
// set it, else the body of r.Msg with Content-Type application/sdp).
// Requests without one, and requests the Policy restricts nothing for, pass
// untouched. Changed → r.Offer holds the filtered SDP and the request goes
// on; NothingLeft or NoSRTP → 488 Not Acceptable Here with a Warning;
// Unchanged or Malformed → the request goes on as it is (a malformed offer
// is the far end's to refuse). It never returns an error and never
// modifies r.Msg.
func (h *handler) ServeSIP(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
	if r.Msg.Method == sip.INVITE {
		if res, stop := h.check(r); stop {
			return res, nil
		}
	}
	r.Trace.Pass(Name)
	return h.next.ServeSIP(ctx, r)
}

// check filters the offer of r; stop says the chain ends with res.
func (h *handler) check(r *pipeline.Request) (res pipeline.Result, stop bool) {
	offer := r.Offer
	if offer == nil {
		offer = r.Msg.Body()
		if len(offer) == 0 || !isSDP(r.Msg) {
			return res, false // no offer: a late offer is filtered by the B2BUA in the 2xx
		}
	}
	set, srtp := h.policy(r)
	if set.Empty() && !srtp {
		return res, false
	}
	out, rep := sdpfilter.Inspect(offer, set, srtp)
	h.metrics.filtered[rep.Outcome].Inc()
	switch rep.Outcome {
	case sdpfilter.Changed:
		r.Offer = out
	case sdpfilter.NothingLeft:
		why := "no stream with a codec left after removing restricted " + rep.Removed.String()
		if rep.Stream > 0 {
			why = fmt.Sprintf("no codec left in audio stream %d after removing restricted %s", rep.Stream, rep.Removed)
		}
		return pipeline.Reject(Name, 488, "Not Acceptable Here", why, sip.NewHeader("Warning", warnMedia)), true
	case sdpfilter.NoSRTP:
		why := fmt.Sprintf("SRTP required, but audio stream %d is %q without a=crypto", rep.Stream, short(rep.Proto))
		return pipeline.Reject(Name, 488, "Not Acceptable Here", why, sip.NewHeader("Warning", warnTransport)), true
	}
	return res, false
}

// isSDP reports whether the Content-Type of m is application/sdp. It reads
// the header field the parser typed rather than calling m.ContentType(),
// which parses lazily and so writes to the shared request.
func isSDP(m *sip.Request) bool {
	for _, h := range m.Headers() {
		if ct, ok := h.(*sip.ContentTypeHeader); ok {
			mt, _, _ := strings.Cut(string(*ct), ";")
			return strings.EqualFold(strings.TrimSpace(mt), "application/sdp")
		}
	}
	return false
}

// short returns b cut to 32 bytes, for the decision log.
func short(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "..."
	}
	return string(b)
}
