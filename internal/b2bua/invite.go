package b2bua

// An initial INVITE, to its setup: the caller's leg is answered 100 Trying,
// the far leg is tried on each of the plan's targets in order (failing over
// on 408, 5xx or a transport failure where the target allows it), its
// provisional answers are relayed, and its 2xx is ACKed and relayed — or,
// when no target answered, sipward answers the caller itself.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/sdpfilter"
	"github.com/sipward/sipward/internal/snapshot"
)

// Name returns "b2bua".
func (b *B2BUA) Name() string { return "b2bua" }

// ServeSIP runs an authorised initial INVITE (r.Plan filled by the route
// stage) to the end of its setup: a final answer on the caller's leg, or a
// confirmed call in the table. It always answers the caller (relaying the
// far leg, or through Config.Answer) and returns Answered with the status.
func (b *B2BUA) ServeSIP(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
	if res, small := b.tooSmall(r); small {
		if b.cfg.Release != nil {
			b.cfg.Release(r.Msg.CallID().Value()) // no call: its channels go back now
		}
		return res, nil
	}
	b.cfg.Answer(r, pipeline.Trying(Stage))
	status, notes := b.invite(ctx, r)
	res := pipeline.Answered(Stage, status)
	res.Why = "routed"
	if len(r.Plan.Targets) > 0 {
		res.Why = r.Plan.Targets[0].Why
	}
	if notes != "" {
		res.Why += "; " + notes
	}
	return res, nil
}

// newCall builds the call of the caller's INVITE.
func (b *B2BUA) newCall(r *pipeline.Request) *call {
	a := r.Msg
	c := &call{id: sip.GenerateTagN(12), started: r.Now, aReq: a, aAcked: make(chan struct{})}
	c.a, c.b = &c.inline[0], &c.inline[1]
	callID := a.CallID().Value()
	c.hold = callID
	c.release = func() {
		if b.cfg.Release != nil {
			b.cfg.Release(callID)
		}
	}
	c.a.callID, c.a.localTag = callID, sip.GenerateTagN(16)
	c.a.dest, c.a.transport = r.Source.String(), r.Transport
	if p := r.Principal; p != nil {
		if p.NAT == snapshot.NATDisable {
			c.a.dest = contactDest(a, r.Transport, c.a.dest) // disable_nat: requests to it go to its Contact
		} else {
			// Its re-offers are mended as the nat stage mended its offer.
			c.a.media, c.a.mediaAlways = r.Source.Addr(), p.NAT == snapshot.NATForce
		}
	}
	if f := a.From(); f != nil {
		c.a.remote = sip.ToHeader{DisplayName: f.DisplayName, Address: f.Address}
		if tag, ok := f.Params.Get("tag"); ok {
			c.a.remote.Params.Add("tag", tag)
		}
	}
	if t := a.To(); t != nil {
		c.a.local, c.a.localName = t.Address, t.DisplayName
	}
	c.a.target = a.Recipient
	if ct := a.Contact(); ct != nil {
		c.a.target = ct.Address
	}
	for _, h := range a.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			c.a.route = append(c.a.route, rr.Address)
		}
	}
	c.a.cseq.Store(1)
	c.a.owner = r.Auth
	c.timers, c.expires = timerSettings(r)
	if p := r.Principal; p != nil {
		c.a.smart = p.SmartExtension
		c.interceptReinvite = p.InterceptReinvite
		if set := sdpfilter.FromBits(uint32(p.Codecs)); !set.Empty() {
			// The caller's codec restrictions apply to answers and re-offers too.
			c.codecs = func(sdp []byte) ([]byte, bool) {
				out, res := sdpfilter.Filter(sdp, set, false)
				return out, res != sdpfilter.NothingLeft && res != sdpfilter.NoSRTP
			}
		}
	}
	c.view = CallView{ID: c.id, AccountID: r.Plan.AccountID, Account: r.Plan.AccountName, Auth: r.Auth.Method.String(),
		Endpoint: r.Auth.EndpointID, SIPUser: r.Auth.SIPUserID, Username: r.Auth.Username, From: r.Plan.From, To: r.Plan.To,
		Source: r.Source.String(), Start: r.Now, State: "early"}
	return c
}

// contactDest returns host:port of req's Contact (the transport's default
// port when it names none), or def when it has none.
func contactDest(req *sip.Request, transport, def string) string {
	ct := req.Contact()
	if ct == nil || ct.Address.Host == "" {
		return def
	}
	port := ct.Address.Port
	if port == 0 {
		port = 5060
		if transport == pipeline.TLS {
			port = 5061
		}
	}
	return net.JoinHostPort(ct.Address.Host, strconv.Itoa(port))
}

// outcome is how one target attempt ended: the status the caller was (or,
// with own, must be) answered with, and whether to try the next target.
type outcome struct {
	status int
	reason string
	next   bool   // try the next target instead of answering
	own    bool   // sipward answers the caller itself (nothing was relayed)
	why    string // for the decision log, when the attempt failed for a reason of sipward's
}

// invite tries the plan's targets and returns the status the caller was
// answered with, and the reasons of attempts that failed for sipward's own
// reasons (egress credentials refused), for the decision.
func (b *B2BUA) invite(ctx context.Context, r *pipeline.Request) (int, string) {
	c := b.newCall(r)
	var ok bool
	offer := r.Offer
	if offer == nil {
		offer = r.Msg.Body()
	}
	// The caller's CANCEL: the transaction answers it (200, then 487 on the
	// INVITE) and ends; the far leg is cancelled here.
	cancelled := make(chan struct{})
	r.Tx.OnCancel(func(*sip.Request) { closeOnce(cancelled) })

	last := outcome{status: 503, reason: "Service Unavailable", own: true}
	var notes string
	targets := r.Plan.Targets
	ring := newRingLimit(r.Plan, time.Now())
	for i, tgt := range targets {
		if b.cfg.Relay != nil && len(offer) > 0 && !c.relayed.Load() && (r.MediaRelay || tgt.MediaRelay) {
			note := "media through the relay"
			if out, err := b.mediaOffer(c, offer); err != nil {
				note = "media relay failed (" + err.Error() + "): media direct"
				b.log.Warn("b2bua: media relay offer failed", "call", c.id, "err", err)
			} else {
				offer = out
			}
			notes = strings.TrimPrefix(notes+"; "+note, "; ")
		}
		at := &attempt{b: b, c: c, r: r, tgt: tgt, offer: offer, cancelled: cancelled, mailbox: ring.mailbox}
		if at.ringFor, ok = ring.left(time.Now()); !ok {
			break // the user's ring timeout passed on an earlier contact: to the mailbox
		}
		last = at.run(ctx)
		if last.why != "" {
			notes = strings.TrimPrefix(notes+"; "+last.why, "; ")
		}
		if !last.next || i == len(targets)-1 {
			break
		}
		b.log.Debug("b2bua: target failed, trying the next", "call", c.id, "target", tgt.Why, "status", last.status)
	}
	if vm := r.Plan.Voicemail; vm != nil && toMailbox(last.status, last.next, last.own, isClosed(cancelled)) {
		notes = strings.TrimPrefix(fmt.Sprintf("%s; %d %s: to voicemail", notes, last.status, last.reason), "; ")
		at := &attempt{b: b, c: c, r: r, tgt: *vm, offer: offer, cancelled: cancelled}
		last = at.run(ctx)
	}
	if last.own || last.next { // nothing relayed: answer the caller with the last failure
		b.drop(c)
		b.cfg.Answer(r, pipeline.Result{Status: last.status, Reason: last.reason, ToTag: c.a.localTag, Stage: Stage})
	}
	return last.status, notes
}

// attempt is the far leg's INVITE to one target, until its final answer.
type attempt struct {
	b         *B2BUA
	c         *call
	r         *pipeline.Request
	tgt       pipeline.Target
	offer     []byte
	cancelled chan struct{} // closed by the caller's CANCEL

	cl           *sipgo.Client
	req          *sip.Request
	tx           sip.ClientTransaction
	provisional  bool          // a provisional came: the far leg can be cancelled
	authSent     bool          // the target's challenge was answered (egress authentication)
	offered      time.Duration // the session interval our INVITE offers (sessiontimer.go)
	timerRetried bool          // a 422 was answered with a longer interval
	cancelSent   bool
	noAnswer     bool // the ring timeout passed
	aCancelled   bool // the caller gave up
	// mailbox: the call goes to voicemail when this attempt fails
	// (voicemail.go), so its failure is not answered to the caller; ringFor,
	// when set, is how long it may ring.
	mailbox bool
	ringFor time.Duration
}

// run sends the far leg to the target and waits for its outcome.
func (at *attempt) run(ctx context.Context) outcome {
	b, c, tgt := at.b, at.c, at.tgt
	var err error
	if at.cl, err = b.client(tgt.Transport); err != nil {
		b.log.Warn("b2bua: cannot reach target", "target", tgt.Why, "err", err)
		return outcome{status: 503, reason: "Service Unavailable", next: tgt.Failover, own: true}
	}
	old := c.b.callID
	c.mu.Lock()
	c.b.callID = sip.GenerateTagN(24) + "@" + b.sender.Host()
	c.b.localTag = sip.GenerateTagN(16)
	c.b.dest, c.b.transport = tgt.Dest, tgt.Transport
	c.b.media, c.b.mediaAlways = tgt.MediaAddr, false
	c.b.smart, c.b.owner = tgt.SmartExtension, tgt.Owner
	c.b.cseq.Store(1)
	c.mu.Unlock()
	if !c.listed {
		c.listed = true
		b.calls.add(c)
	} else {
		b.calls.setB(c, old)
	}
	at.offered = c.expires
	at.req = at.farInvite()
	c.b.inviteSeq = at.req.CSeq().SeqNo
	if at.tx, err = at.cl.TransactionRequest(context.Background(), at.req); err != nil {
		b.log.Warn("b2bua: send INVITE on leg B failed", "call", c.id, "target", tgt.Why, "err", err)
		return outcome{status: 503, reason: "Service Unavailable", next: tgt.Failover, own: true}
	}
	return at.wait(ctx)
}

// farInvite builds our INVITE for the far leg: a new dialog, nothing copied
// from the caller's but the offer, Max-Forwards and the numbers decided.
func (at *attempt) farInvite() *sip.Request {
	c, tgt, plan := at.c, at.tgt, &at.r.Plan
	req := sip.NewRequest(sip.INVITE, tgt.URI)
	c.mu.Lock()
	c.b.local = sip.Uri{Scheme: "sip", User: plan.From, Host: at.b.sender.Host()}
	c.b.localName = c.a.remote.DisplayName
	from := &sip.FromHeader{DisplayName: c.b.localName, Address: c.b.local}
	from.Params.Add("tag", c.b.localTag)
	cid := sip.CallIDHeader(c.b.callID)
	c.mu.Unlock()
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: plan.To, Host: tgt.URI.Host, Port: tgt.URI.Port}}
	mf := sip.MaxForwardsHeader(69)
	if m := at.r.Msg.MaxForwards(); m != nil && m.Val() > 0 {
		mf = sip.MaxForwardsHeader(m.Val() - 1)
	}
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	req.AppendHeader(&mf)
	req.AppendHeader(&sip.ContactHeader{Address: at.b.contact(tgt.Transport)})
	if len(at.offer) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	// The body first: setting it looks its Content-Length up, and sipgo
	// lower-cases (allocating) every other header's name it passes.
	req.SetBody(at.offer)
	for _, h := range tgt.Headers {
		req.AppendHeader(h)
	}
	if tgt.Signed != nil {
		for _, h := range tgt.Signed(string(cid), time.Now()) {
			req.AppendHeader(h)
		}
	}
	at.b.addOfferTimer(req, c, at.offered)
	for _, h := range offer100rel(at.r.Msg) {
		req.AppendHeader(h)
	}
	req.SetTransport(strings.ToUpper(tgt.Transport))
	if tgt.Dest != "" {
		req.SetDestination(tgt.Dest)
	}
	return req
}

// wait follows the far leg's transaction until its final answer, relaying
// provisionals, and cancels it when the caller gives up or it rings too
// long.
func (at *attempt) wait(ctx context.Context) outcome {
	keep := false
	defer func() {
		if !keep {
			at.tx.Terminate()
		}
	}()
	ringFor := at.b.cfg.InviteTimeout
	if at.ringFor > 0 && at.ringFor < ringFor {
		ringFor = at.ringFor
	}
	ring := time.NewTimer(ringFor)
	defer ring.Stop()
	at.aCancelled = isClosed(at.cancelled)
	cancelled, aDone := at.cancelled, at.r.Tx.Done()
	for {
		select {
		case res := <-at.tx.Responses():
			if o, done := at.response(res); done {
				keep = res.IsSuccess() // Accepted: the transaction passes the far leg's 2xx retransmissions to us
				return o
			}
		case <-at.tx.Done():
			return at.ended()
		case <-ring.C:
			at.noAnswer = true
			at.cancel() // with no provisional yet nothing is cancelled: the transaction times out by itself
		case <-cancelled:
			cancelled, at.aCancelled = nil, true // keep waiting for the far leg's final answer
			at.cancel()
		case <-aDone:
			// The caller's transaction ended before our final answer (CANCEL,
			// or transport failure): the far leg must not go on ringing.
			aDone, at.aCancelled = nil, true
			at.cancel()
		case <-ctx.Done():
			at.cancel()
			ctx = context.Background()
		}
	}
}

// response handles one answer of the far leg; done says the attempt is
// over with o.
func (at *attempt) response(res *sip.Response) (o outcome, done bool) {
	b, c := at.b, at.c
	switch {
	case res.StatusCode == 100:
		return o, false
	case res.IsProvisional():
		at.provisional = true
		b.early(c, at.req, res)
		if at.aCancelled {
			at.cancel()
			return o, false
		}
		body, err := b.mediaAnswer(c, c.b.mend(res.Body()))
		if err != nil {
			b.log.Warn("b2bua: media relay answer of an early SDP failed", "call", c.id, "err", err)
			body = nil
		}
		if len(body) > 0 && c.codecs != nil {
			body, _ = c.codecs(body)
		}
		_ = b.answerA(c, at.r.Tx, res.StatusCode, res.Reason, body, reliable(res)...)
		return o, false
	case res.IsSuccess():
		return outcome{status: b.confirm(c, at.r, at.cl, at.tx, at.req, res, at.offered, at.aCancelled), reason: "OK"}, true
	}
	// A non-2xx final; the client transaction ACKs it itself.
	if at.aCancelled {
		b.drop(c)
		return outcome{status: 487, reason: "Request Terminated"}, true
	}
	if (res.StatusCode == 401 || res.StatusCode == 407) && at.tgt.Auth != nil {
		return at.challenged(res)
	}
	if res.StatusCode == 422 && c.timers && !at.timerRetried {
		if o, done := at.longerTimer(res); !done {
			return o, false
		}
	}
	if at.mailbox && divertable(res.StatusCode, at.noAnswer) {
		return outcome{status: res.StatusCode, reason: res.Reason, next: true}, true // voicemail.go takes the call
	}
	if at.tgt.Failover && (res.StatusCode == 408 || res.StatusCode >= 500 && res.StatusCode < 600) {
		return outcome{status: res.StatusCode, reason: res.Reason, next: true}, true
	}
	st, reason := res.StatusCode, res.Reason
	if at.noAnswer && st == 487 {
		// We cancelled the far leg because it rang too long: to the caller
		// that is no answer, not a cancellation.
		st, reason = 480, "Temporarily Unavailable"
	}
	b.drop(c)
	_ = b.answerA(c, at.r.Tx, st, reason, nil)
	return outcome{status: st, reason: reason}, true
}

// challenged answers the target's first 401/407 with its egress
// credentials, on a new transaction the attempt then follows; a second
// challenge (or one that cannot be answered) fails the attempt over to the
// next target, the reason in the decision.
func (at *attempt) challenged(res *sip.Response) (outcome, bool) {
	fail := func(why string) (outcome, bool) {
		at.b.log.Info("b2bua: egress authentication failed", "call", at.c.id, "why", why)
		return outcome{status: 503, reason: "Service Unavailable", next: at.tgt.Failover, own: true, why: why}, true
	}
	if at.authSent {
		return fail("egress credentials refused by " + at.tgt.Why)
	}
	at.authSent = true
	req, err := withCredentials(at.req, res, at.tgt.Auth, at.b.cfg.Unseal, at.c.b.cseq.Add(1))
	if err != nil {
		return fail(fmt.Sprintf("challenge of %s not answered: %v", at.tgt.Why, err))
	}
	tx, err := at.cl.TransactionRequest(context.Background(), req)
	if err != nil {
		return fail(fmt.Sprintf("sending credentials to %s: %v", at.tgt.Why, err))
	}
	// The challenged transaction has ACKed its answer and ends by itself.
	at.req, at.tx, at.provisional, at.cancelSent = req, tx, false, false
	at.c.b.inviteSeq = req.CSeq().SeqNo
	return outcome{}, false
}

// longerTimer answers the target's 422 once with the session interval its
// Min-SE asks for, on a new transaction the attempt then follows; done
// when it cannot be (the 422 is then the attempt's answer).
func (at *attempt) longerTimer(res *sip.Response) (outcome, bool) {
	at.timerRetried = true
	req, iv, ok := retryTimer(at.req, res, at.c.b.cseq.Add(1))
	if !ok {
		return outcome{}, true
	}
	tx, err := at.cl.TransactionRequest(context.Background(), req)
	if err != nil {
		return outcome{}, true
	}
	at.req, at.tx, at.provisional, at.cancelSent, at.offered = req, tx, false, false, iv
	at.c.b.inviteSeq = req.CSeq().SeqNo
	return outcome{}, false
}

// ended handles the far leg's transaction ending without a final answer.
func (at *attempt) ended() outcome {
	if at.aCancelled {
		at.b.drop(at.c)
		return outcome{status: 487, reason: "Request Terminated"}
	}
	err := at.tx.Err()
	o := outcome{status: 503, reason: "Service Unavailable", next: at.tgt.Failover, own: true}
	if errors.Is(err, sip.ErrTransactionTimeout) {
		o.status, o.reason = 408, "Request Timeout"
	}
	at.b.log.Debug("b2bua: leg B transaction ended without a final answer", "call", at.c.id, "err", err)
	return o
}

// cancel sends CANCEL for our INVITE once a provisional came (RFC 3261
// §9.1): same Request-URI, Call-ID, From, To, CSeq number and top Via.
func (at *attempt) cancel() {
	if at.cancelSent || !at.provisional {
		return
	}
	at.cancelSent = true
	at.b.sendCancel(at.cl, at.req, at.c.id)
}

// sendCancel sends CANCEL for the INVITE inv (RFC 3261 §9.1: same
// Request-URI, Call-ID, From, To, CSeq number and top Via) and waits for
// its answer in the background.
func (b *B2BUA) sendCancel(cl *sipgo.Client, inv *sip.Request, id string) {
	req := sip.NewRequest(sip.CANCEL, inv.Recipient)
	if v := inv.Via(); v != nil {
		vv := *v
		vv.Params = v.Params.Clone()
		req.AppendHeader(&vv)
	}
	from, to := *inv.From(), *inv.To()
	from.Params, to.Params = from.Params.Clone(), to.Params.Clone()
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.SetBody(nil)
	req.SetTransport(inv.Transport())
	req.SetDestination(inv.Destination())
	req.Laddr = inv.Laddr
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*b.t1)
		defer cancel()
		if _, err := cl.Do(ctx, req, func(*sipgo.Client, *sip.Request) error { return nil }); err != nil {
			b.log.Debug("b2bua: CANCEL on leg B got no answer", "call", id, "err", err)
		}
	}()
}
