// Package limits is the pipeline stage that enforces channel limits
// (concurrent calls per endpoint, SIP user and account) and CPS (new calls
// per second per endpoint or SIP user) on initial INVITEs, and the contracts
// of the live state it counts in: Channels and Rates.
//
// LocalChannels and LocalRates keep that state in process (one node);
// package cluster keeps it in Redis so that limits hold across nodes. Both
// pass the conformance suite in package limitstest.
//
// Lifecycle of a channel: this stage acquires the channels of an initial
// INVITE, with the Call-ID as the hold's name, and passes the request on.
// From then on the B2BUA owns the hold: it releases it on the call's final
// failure response, BYE or keepalive teardown, and refreshes it from its
// keepalive. The one exception: when next does not take the call on (it
// returns an error, or a Result that is a rejection: not Answered and Drop
// or Status >= 300), or panics, the stage releases what it acquired before
// returning. Once next returns Answered(), whatever the status, the hold is
// the B2BUA's. Holds that nobody releases end with their lease.
package limits

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/snapshot"
)

// Name is the stage name, as it appears in traces and Result.Stage.
const Name = "limits"

// handler is the stage in the chain.
type handler struct {
	next     pipeline.Handler
	channels Channels
	rates    Rates
	limits   func(r *pipeline.Request) []Limit // nil: PrincipalLimits
	rate     func(r *pipeline.Request) Rate    // nil: PrincipalRate
	metrics  *metrics
	scratch  *sync.Pool // of *[2]Limit, for PrincipalLimits without allocating
}

// PrincipalLimits appends to dst the channel limits of r's principal (its
// IP endpoint or SIP user), then of its account, and returns dst; none
// without a principal.
func PrincipalLimits(r *pipeline.Request, dst []Limit) []Limit {
	p := r.Principal
	if p == nil {
		return dst
	}
	kind := Endpoint
	if p.Kind == snapshot.KindSIPUser {
		kind = SIPUser
	}
	dst = append(dst, Limit{Key: Key{Kind: kind, ID: p.ID}, Max: int(p.Channels)})
	if p.Account != nil {
		dst = append(dst, Limit{Key: Key{Kind: Account, ID: p.Account.ID}, Max: int(p.Account.Channels)})
	}
	return dst
}

// PrincipalRate is the CPS limit of r's principal: its IP endpoint's or
// SIP user's; none without a principal.
func PrincipalRate(r *pipeline.Request) Rate {
	p := r.Principal
	if p == nil {
		return Rate{}
	}
	kind := Endpoint
	if p.Kind == snapshot.KindSIPUser {
		kind = SIPUser
	}
	return Rate{Key: Key{Kind: kind, ID: p.ID}, PerSecond: int(p.CPS)}
}

// Name returns "limits".
func (h *handler) Name() string { return Name }

// ServeSIP limits initial INVITEs of identified customers (r.Auth.Method
// AuthIP or AuthDigest); every other request passes untouched. Calls from
// the core are not limited here: their destination is chosen later, by
// route.
//
// It checks CPS first (an attempt refused on channels still used a token),
// then acquires channels. Over a limit it answers 503 with a Reason header
// naming the limit; a Call-ID that already holds channels (a merged or
// looped request, or a Call-ID reused while its call is up) gets 482. A
// failure of the state (Redis down) is returned as an error.
func (h *handler) ServeSIP(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
	if !limited(r) {
		r.Trace.Pass(Name)
		return h.next.ServeSIP(ctx, r)
	}
	if h.rates != nil {
		rt := PrincipalRate(r)
		if h.rate != nil {
			rt = h.rate(r)
		}
		if rt.PerSecond > 0 {
			ok, err := h.rates.Allow(ctx, rt.Key, rt.PerSecond, r.Now)
			if err != nil {
				return pipeline.Result{}, fmt.Errorf("stage/limits: check cps of %v: %w", rt.Key, err)
			}
			if !ok {
				h.metrics.rejected[limitCPS].Inc()
				return cpsRejection(rt), nil
			}
		}
	}
	var lims []Limit
	var scratch *[2]Limit
	if h.limits != nil {
		lims = h.limits(r)
	} else {
		scratch = h.scratch.Get().(*[2]Limit)
		lims = PrincipalLimits(r, scratch[:0])
	}
	if len(lims) == 0 {
		if scratch != nil {
			h.scratch.Put(scratch)
		}
		r.Trace.Pass(Name)
		return h.next.ServeSIP(ctx, r)
	}
	cid := r.Msg.CallID()
	if cid == nil || cid.Value() == "" {
		// sanity drops these before; never let one past unlimited.
		if scratch != nil {
			h.scratch.Put(scratch)
		}
		return pipeline.Reject(Name, 400, "Bad Request", "no Call-ID to hold channels by"), nil
	}
	callID := cid.Value()
	d, err := h.channels.Acquire(ctx, lims, callID, r.Now)
	if scratch != nil {
		h.scratch.Put(scratch) // Acquire keeps nothing of lims
	}
	switch {
	case errors.Is(err, ErrHeld):
		h.metrics.rejected[limitHeld].Inc()
		return pipeline.Reject(Name, 482, "Loop Detected",
			"Call-ID already holds channels: merged or looped request, or Call-ID reused during its call"), nil
	case err != nil:
		return pipeline.Result{}, fmt.Errorf("stage/limits: acquire channels: %w", err)
	case !d.Granted():
		l := limitChannels
		if d.Kind == Account {
			l = limitAccountChannels
		}
		h.metrics.rejected[l].Inc()
		return channelRejection(d), nil
	}
	return h.serveHeld(ctx, r, callID)
}

// serveHeld passes a request that holds channels to next, and releases them
// unless next took the call on.
func (h *handler) serveHeld(ctx context.Context, r *pipeline.Request, callID string) (res pipeline.Result, err error) {
	taken := false
	defer func() {
		if taken {
			return
		}
		// Also on panic; the panic goes on. The request's context may be
		// done already: release regardless.
		if rerr := h.channels.Release(context.WithoutCancel(ctx), callID); rerr != nil {
			h.metrics.releaseFailures.Inc()
		}
	}()
	r.Trace.Pass(Name)
	res, err = h.next.ServeSIP(ctx, r)
	taken = err == nil && !rejection(res)
	return res, err
}

// limited reports whether r is a request the stage limits: an initial
// INVITE (no To tag) of an identified customer.
func limited(r *pipeline.Request) bool {
	if r.Msg == nil || r.Msg.Method != sip.INVITE {
		return false
	}
	if r.Auth.Method != pipeline.AuthIP && r.Auth.Method != pipeline.AuthDigest {
		return false
	}
	if to := r.Msg.To(); to != nil && to.Params.Has("tag") {
		return false
	}
	return true
}

// rejection reports whether res means next did not take the call on.
func rejection(res pipeline.Result) bool {
	return !res.Answered() && (res.Drop || res.Status >= 300)
}

// channelRejection is the Result of a refused Acquire.
func channelRejection(d Denied) pipeline.Result {
	reason, text := "Channel limit reached", "channel limit reached"
	if d.Kind == Account {
		reason, text = "Account channel limit reached", "account channel limit reached"
	}
	detail := d.Key.String() + ": " + strconv.Itoa(d.Max)
	why := fmt.Sprintf("%s: %v holds %d of %d channels", text, d.Key, d.InUse, d.Max)
	return pipeline.Reject(Name, 503, reason, why, reasonHeader(text, detail))
}

// cpsRejection is the Result of a refused Allow.
func cpsRejection(rt Rate) pipeline.Result {
	const text = "cps limit reached"
	detail := rt.Key.String() + ": " + strconv.Itoa(rt.PerSecond) + "/s"
	why := fmt.Sprintf("%s: %v over %d new calls per second", text, rt.Key, rt.PerSecond)
	return pipeline.Reject(Name, 503, "CPS limit reached", why, reasonHeader(text, detail))
}

// reasonHeader is the RFC 3326 Reason header that tells a customer switch
// which limit refused the call: SIP;cause=503;text="<text> (<detail>)".
// text and detail are built here from fixed words and numbers, so they
// need no quoting.
func reasonHeader(text, detail string) sip.Header {
	return sip.NewHeader("Reason", `SIP;cause=503;text="`+text+" ("+detail+`)"`)
}
