package edge

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/series"
)

// Handle is what every sipgo request handler calls: it classifies the
// request, runs its chain, and answers the Result on tx. It is exported for
// fuzzing and benchmarks, which drive the real chain without sockets.
func (e *Edge) Handle(req *sip.Request, tx sip.ServerTransaction) { e.serve(req, tx, 0) }

// handle is every sipgo request handler (TCP, TLS, and what the UDP
// transport leaves to sipgo): it serves the request on a warm worker
// (package warm) while sipgo's goroutine waits.
func (e *Edge) handle(req *sip.Request, tx sip.ServerTransaction) {
	e.warm.Run(func() { e.serve(req, tx, 0) })
}

// serve classifies a request, runs its chain, and answers the Result: on
// tx, or without a transaction over UDP when tx is nil. size is the
// datagram's length over UDP, 0 over streams.
func (e *Edge) serve(req *sip.Request, tx sip.ServerTransaction, size int) {
	now := e.now()
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return // no usable source address: nothing to answer to
	}
	r := &pipeline.Request{Msg: req, Source: netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), Transport: transportOf(req), Now: now, Tx: tx,
		Snap: e.cfg.Snapshot(), Size: size}
	defer func() {
		if p := recover(); p != nil {
			e.m.panics.Inc()
			if e.panicLog.allow(e.now()) {
				e.log.Error("edge: panic in request handler (answered 500)", "method", req.Method, "panic", fmt.Sprint(p))
			}
			e.Answer(r, pipeline.Reject("edge", 500, "Server Internal Error", "panic"))
		}
	}()
	if tx == nil && !req.IsAck() {
		e.m.stateless.Inc()
	}
	ch, inDialog := e.chainOf(req)
	var res pipeline.Result
	if ch == nil { // a new call while draining
		res = pipeline.Reject("edge", 503, "Service Unavailable", "draining for shutdown", sip.NewHeader("Retry-After", "30"))
	} else if res, err = ch.ServeSIP(context.Background(), r); err != nil {
		e.m.failures.Inc()
		if e.failLog.allow(now) {
			e.log.Error("edge: request failed (answered 503)", "method", req.Method, "err", err)
		}
		res = pipeline.Reject("edge", 503, "Service Unavailable", "technical failure: "+err.Error())
		res.Why = "technical failure"
	}
	e.Answer(r, res)
	e.m.requests.WithLabelValues(string(req.Method), answerClass(res.Status, res.Drop)).Inc()
	if ch != nil && !inDialog && (req.Method == sip.INVITE || req.Method == sip.REGISTER) {
		e.record(r, res, err)
	}
}

// chainOf returns the chain of req, and whether req belongs to a dialog;
// nil for a new call while draining.
func (e *Edge) chainOf(req *sip.Request) (pipeline.Handler, bool) {
	if req.Method == sip.SUBSCRIBE && e.chains.subscribe != nil {
		return e.chains.subscribe, false // refreshes too: a subscription is not a call
	}
	// In-dialog requests belong to a call; no authentication (the dialog's tags are checked).
	if req.IsAck() || req.IsCancel() || hasToTag(req) {
		return e.chains.dialog, true
	}
	switch req.Method {
	case sip.INVITE:
		select {
		case <-e.draining:
			return nil, false
		default:
			return e.chains.invite, false
		}
	case sip.REGISTER:
		return e.chains.register, false
	case sip.OPTIONS:
		return e.chains.options, false
	}
	return e.chains.other, false
}

func hasToTag(req *sip.Request) bool {
	to := req.To()
	return to != nil && to.Params.Has("tag")
}

func transportOf(req *sip.Request) string {
	switch req.Transport() {
	case "TCP":
		return pipeline.TCP
	case "TLS":
		return pipeline.TLS
	}
	return pipeline.UDP
}

// record keeps the decision for an INVITE or REGISTER.
func (e *Edge) record(r *pipeline.Request, res pipeline.Result, err error) {
	d := Decision{Time: r.Now, Method: string(r.Msg.Method), Source: r.Source.String(), Transport: r.Transport,
		AccountID: r.Auth.AccountID, Account: r.Auth.AccountName, Auth: r.Auth.Method.String(),
		Endpoint: r.Auth.EndpointID, SIPUser: r.Auth.SIPUserID,
		Stage: res.Stage, Status: res.Status, Why: res.Why, NAT: r.NAT}
	if cid := r.Msg.CallID(); cid != nil {
		d.CallID = cid.Value()
	}
	if f := r.Msg.From(); f != nil {
		d.From = f.Address.User
	}
	d.To = r.Msg.Recipient.User
	switch {
	case err != nil:
		d.Result = "failed"
	case res.Drop:
		d.Result = "dropped"
	case res.Status >= 200 && res.Status < 300:
		d.Result = "accepted"
	default:
		d.Result = "rejected"
	}
	e.decisions.addTrace(d, r.Trace)
	e.m.decisions.WithLabelValues(nonEmpty(res.Stage, "edge"), answerClass(res.Status, res.Drop)).Inc()
	e.count(r, res)
}

// count gives the decision to the dashboard's series: a call when the INVITE
// reached the B2BUA (it answered), a registration on a 2xx to a REGISTER,
// else a challenge or refusal. A call a peer node handed over is the
// peer's to count.
func (e *Edge) count(r *pipeline.Request, res pipeline.Result) {
	if e.cfg.Series == nil || r.Auth.Method == pipeline.AuthNode {
		return
	}
	ev := series.Event{Method: string(r.Msg.Method), AccountID: r.Auth.AccountID, Source: r.Source.Addr(),
		Stage: nonEmpty(res.Stage, "edge"), Reason: res.Reason}
	if !res.Drop {
		ev.Status = res.Status
	}
	if r.Msg.Method == sip.REGISTER {
		ev.Accepted = !res.Drop && res.Status >= 200 && res.Status < 300
	} else {
		ev.Accepted = res.Answered()
		if r.Plan.AccountID != 0 {
			ev.AccountID = r.Plan.AccountID // a call from the core: the DID's account
		}
	}
	e.cfg.Series.Record(ev, r.Now)
}

// Record adds a decision taken after a request's chain (the B2BUA's
// transfers) to the log.
func (e *Edge) Record(d Decision) {
	e.decisions.add(d)
	e.m.decisions.WithLabelValues(nonEmpty(d.Stage, "edge"), answerClass(d.Status, false)).Inc()
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
