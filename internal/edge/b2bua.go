package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

// Target is one place a call may be sent, tried in order.
type Target struct {
	URI       sip.Uri      // Request-URI of leg B
	Dest      string       // host:port to send to (a registration's source address), or "" for the URI's host
	Transport string       // udp | tcp | tls
	Headers   []sip.Header // extra headers (identity towards the core)
	Failover  bool         // on 408/5xx/transport failure, try the next target instead of answering
	Auth      *sipgo.DigestAuth
	Why       string // for the decision log: "upstream sip:core.example:5060"
}

// CallSpec is what the route stage decided for an initial INVITE.
type CallSpec struct {
	Targets []Target
	From    string // CLI to present on leg B
	To      string // dialled number on leg B
	View    CallView
	// Codecs filters SDP answers from leg B (and re-INVITE bodies) for leg A; nil passes them.
	Codecs            func(sdp []byte) ([]byte, bool)
	InterceptReinvite bool
	// Release frees the call's channels; called exactly once when the call ends or fails.
	Release func()
}

// b2bua runs calls: leg A answered as UAS, leg B sent as UAC.
type b2bua struct {
	clients   map[string]*sipgo.Client // by transport
	contacts  map[string]sip.Uri       // our Contact per transport
	host      string                   // our host for From/To/Via
	calls     *callTable
	log       *slog.Logger
	t1        time.Duration
	inviteTTL time.Duration // how long leg B may ring before we give up (no final answer)
	metrics   *metrics
}

func (b *b2bua) client(transport string) (*sipgo.Client, error) {
	c := b.clients[transport]
	if c == nil {
		return nil, fmt.Errorf("edge: no %s listener to send from", transport)
	}
	return c, nil
}

// answer sends a response on leg A, with our tag and, for 1xx/2xx, our Contact.
func (b *b2bua) answer(c *call, tx sip.ServerTransaction, status int, reason string, body []byte, hdrs ...sip.Header) error {
	c.mu.Lock()
	a := c.aReq
	c.mu.Unlock()
	if a == nil {
		return nil // A acknowledged our 2xx: nothing is left to answer
	}
	res := sip.NewResponseFromRequest(a, status, reason, nil)
	if to := res.To(); to != nil && status != 100 {
		to.Params.Add("tag", c.aTag)
	}
	if status > 100 && status < 300 {
		ct := b.contacts[c.aTrans]
		res.AppendHeader(&sip.ContactHeader{Address: ct})
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if len(body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody(body)
	}
	return tx.Respond(res)
}

// invite runs an authorised initial INVITE to completion of its setup: a
// final answer relayed to leg A, or a confirmed call in the table. It
// returns the status it answered with.
func (b *b2bua) invite(ctx context.Context, r *pipeline.Request, spec CallSpec) int {
	a := r.Msg
	c := &call{
		id: sip.GenerateTagN(12), started: r.Now, view: spec.View,
		aReq: a, aCallID: a.CallID().Value(), aTag: sip.GenerateTagN(16),
		aDest: r.Source.String(), aTrans: r.Transport, aAcked: make(chan struct{}),
		interceptReinvite: spec.InterceptReinvite, codecs: spec.Codecs, release: spec.Release,
	}
	c.view.ID, c.view.Start, c.view.State = c.id, r.Now, "early"
	if f := a.From(); f != nil {
		c.aFrom = *f
		c.aFromTag, _ = f.Params.Get("tag")
	}
	if t := a.To(); t != nil {
		c.aTo = sip.FromHeader{DisplayName: t.DisplayName, Address: t.Address}
	}
	if ct := a.Contact(); ct != nil {
		c.aContact = ct.Address
	} else {
		c.aContact = a.Recipient
	}
	for _, h := range a.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			c.aRoute = append(c.aRoute, rr.Address)
		}
	}
	c.aCSeq.Store(1)
	offer := r.Offer
	if offer == nil {
		offer = a.Body()
	}

	// Leg A's CANCEL: sipgo answers it (200, then 487 on the INVITE) and ends the transaction.
	cancelled := make(chan struct{})
	r.Tx.OnCancel(func(*sip.Request) { closeOnce(cancelled) })

	last := 503
	lastReason := "Service Unavailable"
	for i, tgt := range spec.Targets {
		st, reason, next := b.tryTarget(ctx, c, r, tgt, spec, offer, cancelled, i == 0)
		if !next || i == len(spec.Targets)-1 {
			if next { // failover exhausted: answer with the last failure
				c.free()
				b.calls.remove(c)
				_ = b.answer(c, r.Tx, st, reason, nil)
			}
			return st
		}
		last, lastReason = st, reason
		b.log.Debug("edge: target failed, trying the next", "call", c.id, "target", tgt.Why, "status", st)
	}
	c.free()
	_ = b.answer(c, r.Tx, last, lastReason, nil)
	return last
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// tryTarget sends leg B to one target. It returns the status leg A was (or,
// when next is true, should be) answered with, and whether the caller
// should try the next target instead.
func (b *b2bua) tryTarget(ctx context.Context, c *call, r *pipeline.Request, tgt Target, spec CallSpec, offer []byte, cancelled chan struct{}, first bool) (status int, reason string, next bool) {
	cl, err := b.client(tgt.Transport)
	if err != nil {
		b.log.Warn("edge: cannot reach target", "target", tgt.Why, "err", err)
		return 503, "Service Unavailable", tgt.Failover
	}
	old := c.bCallID
	c.bCallID = sip.GenerateTagN(24) + "@" + b.host
	c.bTag = sip.GenerateTagN(16)
	c.bDest, c.bTrans = tgt.Dest, tgt.Transport
	c.bCSeq.Store(1)
	if first {
		b.calls.add(c)
	} else {
		b.calls.setB(c, old)
	}
	breq := b.newLegB(c, r, tgt, spec, offer)
	c.mu.Lock()
	if f := breq.From(); f != nil {
		c.bFrom = sip.FromHeader{DisplayName: f.DisplayName, Address: f.Address}
	}
	c.mu.Unlock()

	btx, err := cl.TransactionRequest(context.Background(), breq)
	if err != nil {
		b.log.Warn("edge: send INVITE on leg B failed", "call", c.id, "target", tgt.Why, "err", err)
		return 503, "Service Unavailable", tgt.Failover
	}
	keep := false
	defer func() {
		if !keep {
			btx.Terminate()
		}
	}()
	ring := time.NewTimer(b.inviteTTL)
	defer ring.Stop()
	var provisional, cancelSent, noAnswer bool
	aCancelled := isClosed(cancelled)
	sendCancel := func() {
		if cancelSent || !provisional {
			return
		}
		cancelSent = true
		b.cancelLegB(c, breq, cl)
	}
	aDone := r.Tx.Done()
	for {
		select {
		case res := <-btx.Responses():
			switch {
			case res.StatusCode == 100:
				continue
			case res.IsProvisional():
				provisional = true
				if aCancelled {
					sendCancel()
					continue
				}
				body := res.Body()
				if len(body) > 0 && c.codecs != nil {
					body, _ = c.codecs(body)
				}
				_ = b.answer(c, r.Tx, res.StatusCode, res.Reason, body)
			case res.IsSuccess():
				keep = true // Accepted state: it passes leg B's 2xx retransmissions to us
				return b.confirm(c, r, cl, btx, breq, res, aCancelled), "OK", false
			default:
				// sipgo's client transaction ACKs non-2xx finals itself.
				if aCancelled {
					c.free()
					b.calls.remove(c)
					return 487, "Request Terminated", false
				}
				if tgt.Failover && (res.StatusCode == 408 || res.StatusCode >= 500 && res.StatusCode < 600) {
					return res.StatusCode, res.Reason, true
				}
				st, reason := res.StatusCode, res.Reason
				if noAnswer && st == 487 {
					// We cancelled leg B because it rang too long: to the
					// caller that is no answer, not a cancellation.
					st, reason = 480, "Temporarily Unavailable"
				}
				c.free()
				b.calls.remove(c)
				_ = b.answer(c, r.Tx, st, reason, nil)
				return st, reason, false
			}
		case <-btx.Done():
			if aCancelled {
				c.free()
				b.calls.remove(c)
				return 487, "Request Terminated", false
			}
			err := btx.Err()
			st, rs := 503, "Service Unavailable"
			if errors.Is(err, sip.ErrTransactionTimeout) {
				st, rs = 408, "Request Timeout"
			}
			b.log.Debug("edge: leg B transaction ended without a final answer", "call", c.id, "err", err)
			if tgt.Failover {
				return st, rs, true
			}
			c.free()
			b.calls.remove(c)
			_ = b.answer(c, r.Tx, st, rs, nil)
			return st, rs, false
		case <-ring.C:
			noAnswer = true
			sendCancel()
			if !provisional { // nothing to cancel: the transaction times out by itself
				continue
			}
		case <-cancelled:
			cancelled, aCancelled = nil, true // keep waiting for leg B's final answer
			sendCancel()
		case <-aDone:
			// Leg A's transaction ended before our final answer (CANCEL, or
			// transport failure): leg B must not go on ringing.
			aDone, aCancelled = nil, true
			sendCancel()
		case <-ctx.Done():
			sendCancel()
			ctx = context.Background()
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// newLegB builds our INVITE for leg B: a new dialog, nothing copied from
// leg A but the offer, Max-Forwards, and the numbers we decided.
func (b *b2bua) newLegB(c *call, r *pipeline.Request, tgt Target, spec CallSpec, offer []byte) *sip.Request {
	req := sip.NewRequest(sip.INVITE, tgt.URI)
	from := &sip.FromHeader{DisplayName: c.aFrom.DisplayName, Address: sip.Uri{Scheme: "sip", User: spec.From, Host: b.host}}
	from.Params.Add("tag", c.bTag)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: spec.To, Host: tgt.URI.Host, Port: tgt.URI.Port}}
	cid := sip.CallIDHeader(c.bCallID)
	mf := sip.MaxForwardsHeader(69)
	if m := r.Msg.MaxForwards(); m != nil && m.Val() > 0 {
		mf = sip.MaxForwardsHeader(m.Val() - 1)
	}
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	req.AppendHeader(&mf)
	req.AppendHeader(&sip.ContactHeader{Address: b.contacts[tgt.Transport]})
	for _, h := range tgt.Headers {
		req.AppendHeader(h)
	}
	if len(offer) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(offer)
	req.SetTransport(strings.ToUpper(tgt.Transport))
	if tgt.Dest != "" {
		req.SetDestination(tgt.Dest)
	}
	return req
}

// cancelLegB sends CANCEL for our INVITE (RFC 3261 §9.1): same Request-URI,
// Call-ID, From, To, CSeq number and top Via.
func (b *b2bua) cancelLegB(c *call, invite *sip.Request, cl *sipgo.Client) {
	req := sip.NewRequest(sip.CANCEL, invite.Recipient)
	if v := invite.Via(); v != nil {
		vv := *v
		vv.Params = v.Params.Clone()
		req.AppendHeader(&vv)
	}
	from, to := *invite.From(), *invite.To()
	from.Params, to.Params = from.Params.Clone(), to.Params.Clone()
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	cid := sip.CallIDHeader(c.bCallID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: invite.CSeq().SeqNo, MethodName: sip.CANCEL})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.SetBody(nil)
	req.SetTransport(invite.Transport())
	req.SetDestination(invite.Destination())
	req.Laddr = invite.Laddr
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 32*b.t1*2)
		defer cancel()
		_, err := cl.Do(ctx, req, func(*sipgo.Client, *sip.Request) error { return nil })
		if err != nil {
			b.log.Debug("edge: CANCEL on leg B got no answer", "call", c.id, "err", err)
		}
	}()
}

// confirm handles leg B's 2xx: ACK it, answer leg A 200 with the filtered
// answer, and keep the call until BYE.
func (b *b2bua) confirm(c *call, r *pipeline.Request, cl *sipgo.Client, btx sip.ClientTransaction, breq *sip.Request, res *sip.Response, cancelled bool) int {
	c.mu.Lock()
	c.bTo = *res.To()
	c.bTo.Params = res.To().Params.Clone()
	c.bToTag, _ = c.bTo.Params.Get("tag")
	if ct := res.Contact(); ct != nil {
		c.bContact = ct.Address
	} else {
		c.bContact = breq.Recipient
	}
	rrs := res.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		if rr, ok := rrs[i].(*sip.RecordRouteHeader); ok {
			c.bRoute = append(c.bRoute, rr.Address)
		}
	}
	c.confirmed = true
	c.view.State, c.view.Answered = "confirmed", time.Now()
	c.mu.Unlock()
	c.lastSeen.Store(time.Now().UnixNano())

	ack := b.inDialogB(c, sip.ACK, nil)
	ack.CSeq().SeqNo = breq.CSeq().SeqNo
	b.sendACK(cl, ack)
	// Leg B retransmits its 2xx until our ACK arrives: re-ACK each retransmission.
	btx.OnRetransmission(func(*sip.Response) { b.sendACK(cl, ack) })

	if cancelled {
		// Leg A gave up while leg B answered: hang up leg B.
		b.hangupB(c)
		c.free()
		b.calls.remove(c)
		return 487
	}
	body := res.Body()
	if len(body) > 0 && c.codecs != nil {
		var ok bool
		if body, ok = c.codecs(body); !ok {
			b.hangupB(c)
			c.free()
			b.calls.remove(c)
			_ = b.answer(c, r.Tx, 488, "Not Acceptable Here", nil)
			return 488
		}
	}
	c.lastAnsA = body
	if err := b.answer(c, r.Tx, 200, "OK", body); err != nil {
		b.log.Warn("edge: answer 200 on leg A failed", "call", c.id, "err", err)
		b.hangupB(c)
		c.free()
		b.calls.remove(c)
		return 500
	}
	b.metrics.callsAnswered.Inc()
	// RFC 6026: we retransmit our 2xx on unreliable transports until A's ACK.
	if c.aTrans == pipeline.UDP {
		if tx, ours := r.Tx.(*udpTx); ours {
			tx.retransmit2xx(func() bool { return isClosed(c.aAcked) || c.ended.Load() }, func() {
				b.log.Debug("edge: no ACK from leg A, ending the call", "call", c.id)
				b.end(c, true, false, "no ACK")
			})
		} else {
			go b.retransmit2xx(c, r.Tx, body)
		}
	}
	return 200
}

func (b *b2bua) sendACK(cl *sipgo.Client, ack *sip.Request) {
	if err := cl.WriteRequest(ack); err != nil {
		b.log.Debug("edge: send ACK failed", "err", err)
	}
}

// retransmit2xx resends the 2xx to leg A with T1 doubling up to T2 (4 s)
// until leg A's ACK arrives, for at most 64*T1; then gives up on the call.
func (b *b2bua) retransmit2xx(c *call, tx sip.ServerTransaction, body []byte) {
	acks := tx.Acks()
	interval := b.t1
	deadline := time.NewTimer(64 * b.t1)
	defer deadline.Stop()
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-c.aAcked:
			return
		case <-acks:
			c.aAckOnce.Do(func() { close(c.aAcked) })
			return
		case <-t.C:
			if c.ended.Load() {
				return
			}
			_ = b.answer(c, tx, 200, "OK", body)
			interval *= 2
			if interval > 4*time.Second {
				interval = 4 * time.Second
			}
			t.Reset(interval)
		case <-deadline.C:
			b.log.Debug("edge: no ACK from leg A, ending the call", "call", c.id)
			b.end(c, true, false, "no ACK")
			return
		}
	}
}

// inDialogB builds a request inside leg B's dialog.
func (b *b2bua) inDialogB(c *call, method sip.RequestMethod, body []byte) *sip.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	req := sip.NewRequest(method, c.bContact)
	from := &sip.FromHeader{DisplayName: c.bFrom.DisplayName, Address: c.bFrom.Address}
	from.Params.Add("tag", c.bTag)
	to := c.bTo
	to.Params = c.bTo.Params.Clone()
	cid := sip.CallIDHeader(c.bCallID)
	req.AppendHeader(from)
	req.AppendHeader(&to)
	req.AppendHeader(&cid)
	seq := c.bCSeq.Add(1)
	if method == sip.ACK {
		seq = 1
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	for _, u := range c.bRoute {
		req.AppendHeader(&sip.RouteHeader{Address: u})
	}
	if method == sip.INVITE || method == sip.UPDATE {
		req.AppendHeader(&sip.ContactHeader{Address: b.contacts[c.bTrans]})
	}
	if len(body) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(body)
	req.SetTransport(strings.ToUpper(c.bTrans))
	if c.bDest != "" {
		req.SetDestination(c.bDest)
	}
	return req
}

// inDialogA builds a request inside leg A's dialog (we are its UAS: From is
// A's To with our tag, To is A's From).
func (b *b2bua) inDialogA(c *call, method sip.RequestMethod, body []byte) *sip.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	req := sip.NewRequest(method, c.aContact)
	from := &sip.FromHeader{DisplayName: c.aTo.DisplayName, Address: c.aTo.Address}
	from.Params.Add("tag", c.aTag)
	to := &sip.ToHeader{DisplayName: c.aFrom.DisplayName, Address: c.aFrom.Address}
	to.Params.Add("tag", c.aFromTag)
	cid := sip.CallIDHeader(c.aCallID)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: c.aCSeq.Add(1), MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	for _, u := range c.aRoute {
		req.AppendHeader(&sip.RouteHeader{Address: u})
	}
	if method == sip.INVITE || method == sip.UPDATE {
		req.AppendHeader(&sip.ContactHeader{Address: b.contacts[c.aTrans]})
	}
	if len(body) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(body)
	req.SetTransport(strings.ToUpper(c.aTrans))
	req.SetDestination(c.aDest)
	return req
}

// hangupB sends BYE on leg B without waiting for the answer.
func (b *b2bua) hangupB(c *call) {
	cl, err := b.client(c.bTrans)
	if err != nil {
		return
	}
	bye := b.inDialogB(c, sip.BYE, nil)
	b.fire(cl, bye)
}

func (b *b2bua) hangupA(c *call) {
	cl, err := b.client(c.aTrans)
	if err != nil {
		return
	}
	bye := b.inDialogA(c, sip.BYE, nil)
	b.fire(cl, bye)
}

// fire sends a request whose answer changes nothing (BYE teardown). Over
// UDP the transaction is one of ours and runs to its end by itself
// (clienttx.go); otherwise sipgo's is sent and waited for in the background
// (a TCP or TLS send may have to connect first).
func (b *b2bua) fire(cl *sipgo.Client, req *sip.Request) {
	if strings.EqualFold(req.Transport(), "UDP") {
		tx, err := cl.TransactionRequest(context.Background(), req)
		if err != nil {
			b.log.Debug("edge: send in-dialog request failed", "method", req.Method, "err", err)
			return
		}
		if utx, ours := tx.(*udpClientTx); ours {
			utx.discard()
		} else { // a host-name destination: sipgo's
			go b.await(tx, req)
		}
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 64*b.t1)
		defer cancel()
		if _, err := cl.Do(ctx, req); err != nil {
			b.log.Debug("edge: in-dialog request got no answer", "method", req.Method, "err", err)
		}
	}()
}

// await waits for the final answer of sipgo's transaction tx, then ends it.
func (b *b2bua) await(tx sip.ClientTransaction, req *sip.Request) {
	defer tx.Terminate()
	t := time.NewTimer(64 * b.t1)
	defer t.Stop()
	for {
		select {
		case res := <-tx.Responses():
			if !res.IsProvisional() {
				return
			}
		case <-tx.Done():
			b.log.Debug("edge: in-dialog request got no answer", "method", req.Method, "err", tx.Err())
			return
		case <-t.C:
			return
		}
	}
}

// end tears a call down: BYE to the legs named, channels freed, call removed.
func (b *b2bua) end(c *call, byeA, byeB bool, why string) {
	if !c.ended.CompareAndSwap(false, true) {
		return
	}
	if byeA {
		b.hangupA(c)
	}
	if byeB {
		b.hangupB(c)
	}
	c.free()
	b.calls.remove(c)
	closeOnce(c.aAcked)
	b.log.Debug("edge: call ended", "call", c.id, "why", why)
}

// inDialog handles a request that belongs to an existing call: BYE ends it,
// re-INVITE/UPDATE/INFO/… are relayed to the other leg (or answered here
// when re-INVITEs are intercepted), ACK is absorbed.
func (b *b2bua) inDialog(req *sip.Request, tx sip.ServerTransaction, c *call, fromA bool) {
	// The request must carry the dialog's tags, or it is not from our peer.
	fromTag, _ := req.From().Params.Get("tag")
	toTag, _ := req.To().Params.Get("tag")
	if fromA && (fromTag != c.aFromTag || toTag != c.aTag) || !fromA && (fromTag != c.bToTag || toTag != c.bTag) {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	switch req.Method {
	case sip.ACK:
		if fromA {
			c.aAckOnce.Do(func() { close(c.aAcked) })
			// The call is set up: A's INVITE (parsed, with its SDP) is no
			// longer needed for the rest of the call.
			c.mu.Lock()
			c.aReq = nil
			c.mu.Unlock()
		}
		return
	case sip.BYE:
		respond(tx, req, 200, "OK")
		b.end(c, !fromA, fromA, "BYE from leg "+legName(fromA))
		return
	case sip.INVITE:
		if c.interceptReinvite {
			last := c.lastAnsA
			if !fromA {
				last = c.lastAnsB
			}
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			cti := b.contacts[c.aTrans]
			if !fromA {
				cti = b.contacts[c.bTrans]
			}
			res.AppendHeader(&sip.ContactHeader{Address: cti})
			if len(last) > 0 {
				res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
				res.SetBody(last)
			}
			_ = tx.Respond(res)
			return
		}
	}
	b.relay(req, tx, c, fromA)
}

func legName(a bool) string {
	if a {
		return "A"
	}
	return "B"
}

// relay forwards an in-dialog request to the other leg and its final answer back.
func (b *b2bua) relay(req *sip.Request, tx sip.ServerTransaction, c *call, fromA bool) {
	body := req.Body()
	if len(body) > 0 && c.codecs != nil && isSDP(req) {
		var ok bool
		if body, ok = c.codecs(body); !ok {
			respond(tx, req, 488, "Not Acceptable Here")
			return
		}
	}
	var out *sip.Request
	var trans string
	if fromA {
		out, trans = b.inDialogB(c, req.Method, body), c.bTrans
	} else {
		out, trans = b.inDialogA(c, req.Method, body), c.aTrans
	}
	if !isSDP(req) && len(body) > 0 {
		if ct := req.ContentType(); ct != nil {
			out.RemoveHeader("Content-Type")
			out.AppendHeader(sip.NewHeader("Content-Type", ct.Value()))
		}
	}
	cl, err := b.client(trans)
	if err != nil {
		respond(tx, req, 503, "Service Unavailable")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 64*b.t1)
	defer cancel()
	res, err := cl.Do(ctx, out)
	if err != nil {
		respond(tx, req, 408, "Request Timeout")
		return
	}
	rb := res.Body()
	if len(rb) > 0 && c.codecs != nil {
		rb, _ = c.codecs(rb)
	}
	if req.Method == sip.INVITE && res.IsSuccess() {
		// ACK the other leg ourselves; the requester's ACK is absorbed.
		ack := out
		if fromA {
			ack = b.inDialogB(c, sip.ACK, nil)
			c.lastAnsA = rb
		} else {
			ack = b.inDialogA(c, sip.ACK, nil)
			c.lastAnsB = rb
		}
		ack.CSeq().SeqNo = out.CSeq().SeqNo
		b.sendACK(cl, ack)
	}
	ans := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, nil)
	if res.StatusCode >= 200 && res.StatusCode < 300 && (req.Method == sip.INVITE || req.Method == sip.UPDATE) {
		ct := b.contacts[c.aTrans]
		if !fromA {
			ct = b.contacts[c.bTrans]
		}
		ans.AppendHeader(&sip.ContactHeader{Address: ct})
	}
	if len(rb) > 0 {
		if ct := res.ContentType(); ct != nil {
			ans.AppendHeader(sip.NewHeader("Content-Type", ct.Value()))
		}
		ans.SetBody(rb)
	}
	_ = tx.Respond(ans)
	if req.Method == sip.BYE {
		b.end(c, false, false, "relayed BYE")
	}
}

func isSDP(m interface{ GetHeader(string) sip.Header }) bool {
	ct := m.GetHeader("Content-Type")
	return ct != nil && strings.HasPrefix(strings.ToLower(ct.Value()), "application/sdp")
}

// respond answers a request statelessly-simple: status and reason only. An
// ACK is never answered (and may have no transaction).
func respond(tx sip.ServerTransaction, req *sip.Request, status int, reason string, hdrs ...sip.Header) {
	if req.IsAck() || tx == nil {
		return
	}
	res := sip.NewResponseFromRequest(req, status, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}
