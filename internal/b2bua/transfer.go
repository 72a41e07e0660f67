package b2bua

// Smart Extension: transfers (REFER, RFC 3515) that sipward carries out
// itself in a call whose customer's device has it on (an IP endpoint's or
// SIP user's smart_extension), instead of relaying them.
//
// The REFER may come from the far side (the core transfers the customer)
// or from the customer's own device (a phone that cannot transfer by
// itself). Either way the leg it came on is the transferor's, the other leg
// the transferee's, and sipward: answers 202 and NOTIFYs the transferor
// with message/sipfrag (100 Trying, 180 Ringing, the final status); calls
// the Refer-To target through routing as the customer (Config.Route), with
// the REFER's Referred-By and its Replaces (attended transfer, RFC 3891; a
// Replaces naming the customer's own dialog with sipward is mapped to that
// call's far leg); once the target answers, re-INVITEs the transferee to
// the target's SDP (one re-INVITE: its session origin kept, its version
// raised) and hangs the transferor's leg up, the new leg taking its place
// in the call. The call keeps its one channel, its keepalive and its media
// relay session. When the target fails, the final NOTIFY says so and the
// call goes on as it was. Each transfer is a decision in the log.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/sdpfilter"
)

// transferStage names a transfer's Results and decisions.
const transferStage = "transfer"

// referral is one REFER sipward carries out.
type referral struct {
	c          *call
	from       *leg // the transferor's leg: the REFER came on it; the new leg replaces it
	stay       *leg // the transferee's leg
	fromA      bool // from is the call's leg a
	byCustomer bool // the customer's own device sent the REFER
	owner      pipeline.Identity
	target     sip.Uri // Refer-To, without its headers
	replaces   string  // Replaces of the new INVITE, or ""
	referredBy string
	event      string // the NOTIFYs' Event: refer;id=<the REFER's CSeq>
	decision   live.Decision
}

// refer takes a REFER on leg fromA of c when Smart Extension is on for
// the call's customer: it answers it (202, or why not) and carries the
// transfer out in the background. handled is false when the REFER is to
// be relayed.
func (b *B2BUA) refer(r *pipeline.Request, c *call, fromA bool) (res pipeline.Result, handled bool) {
	if b.cfg.Route == nil {
		return res, false
	}
	in, out := c.legs(fromA)
	c.mu.Lock()
	byCustomer, forCustomer, set := in.smart, out.smart, c.confirmed
	owner := out.owner
	if byCustomer {
		owner = in.owner
	}
	c.mu.Unlock()
	if !byCustomer && !forCustomer {
		return res, false
	}
	req := r.Msg
	var rt *sip.ReferToHeader
	if h := req.GetHeader("Refer-To"); h != nil {
		rt = referToOf(h)
	} else if h := req.GetHeader("r"); h != nil {
		rt = referToOf(h)
	}
	switch {
	case !set:
		return pipeline.Reject(transferStage, 491, "Request Pending", "REFER before the call was set up"), true
	case rt == nil || rt.Address.User == "":
		return pipeline.Reject(transferStage, 400, "Bad Request", "REFER without a Refer-To naming a number"), true
	case !c.transferring.CompareAndSwap(false, true):
		return pipeline.Reject(transferStage, 491, "Request Pending", "a transfer of this call is under way"), true
	}
	ref := &referral{c: c, from: in, stay: out, fromA: fromA, byCustomer: byCustomer, owner: owner,
		target: rt.Address, event: fmt.Sprintf("refer;id=%d", req.CSeq().SeqNo)}
	ref.target.Headers = nil
	if v, ok := rt.Address.Headers.Get("Replaces"); ok {
		if rep, err := url.QueryUnescape(v); err == nil {
			ref.replaces = rep
			if byCustomer { // it names the customer's own dialog: the target knows the far one
				ref.replaces = b.mapReplaces(rep, fromA)
			}
		}
	}
	if h := req.GetHeader("Referred-By"); h != nil {
		ref.referredBy = h.Value()
	} else if h := req.GetHeader("b"); h != nil {
		ref.referredBy = h.Value()
	} else {
		c.mu.Lock()
		ref.referredBy = "<" + in.remote.Address.String() + ">"
		c.mu.Unlock()
	}
	kind := "blind"
	if ref.replaces != "" {
		kind = "attended"
	}
	who := "the far side"
	if byCustomer {
		who = "the customer's device"
	}
	ref.decision = live.Decision{Time: r.Now, Method: string(sip.REFER), CallID: req.CallID().Value(), Source: r.Source.String(),
		Transport: r.Transport, To: ref.target.User, AccountID: owner.AccountID, Account: owner.AccountName,
		Auth: owner.Method.String(), Endpoint: owner.EndpointID, SIPUser: owner.SIPUserID, Passed: []string{},
		Stage: transferStage, Why: fmt.Sprintf("%s transfer by %s to %s (smart extension)", kind, who, ref.target.User)}
	if f := req.From(); f != nil {
		ref.decision.From = f.Address.User
	}
	b.cfg.Answer(r, pipeline.Reply(transferStage, 202, "Accepted", ref.decision.Why))
	go b.transfer(ref)
	return pipeline.Answered(transferStage, 202), true
}

// transfer carries a referral out and reports it to the transferor.
func (b *B2BUA) transfer(ref *referral) {
	defer ref.c.transferring.Store(false)
	b.notify(ref, 100, "Trying", false)
	status, reason, why := b.carryOut(ref)
	b.notify(ref, status, reason, true)
	if status < 300 {
		b.hangup(ref.c, ref.from)
	}
	ref.decision.Status, ref.decision.Result = status, "accepted"
	if status >= 300 {
		ref.decision.Result = "rejected"
	}
	ref.decision.Why += ": " + why
	b.log.Info("b2bua: transfer", "call", ref.c.id, "status", status, "why", ref.decision.Why)
	if b.cfg.Decide != nil {
		b.cfg.Decide(ref.decision)
	}
}

// carryOut calls the target and, when it answers, moves the transferee to
// it; the status is what the final NOTIFY reports.
func (b *B2BUA) carryOut(ref *referral) (status int, reason, why string) {
	c := ref.c
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.InviteTimeout+64*b.t1)
	defer cancel()
	plan, rej := b.cfg.Route(ctx, ref.owner, ref.target.User, time.Now())
	if rej != nil {
		return rej.Status, rej.Reason, "not routed: " + rej.Why
	}
	c.mu.Lock()
	offer := sdpfilter.SendRecv(ref.from.sent)
	c.mu.Unlock()
	n, answer, status, reason, why := b.dial(ctx, ref, plan, offer)
	if n == nil {
		return status, reason, why
	}
	select { // the caller's ACK of our 2xx may still be on its way: no re-INVITE before it
	case <-c.aAcked:
	case <-time.After(64 * b.t1):
	}
	if st, rs, err := b.moveMedia(ref, n, answer); err != nil {
		b.hangup(c, n)
		return st, rs, fmt.Sprintf("%s answered, but the transferee's re-INVITE failed (%v); the call goes on", why, err)
	}
	if old := b.calls.swap(c, ref.fromA, n); old == nil {
		b.hangup(c, n) // the call ended meanwhile
		return 487, "Request Terminated", why + " answered after the call had ended"
	}
	c.mu.Lock()
	c.view.To = plan.To
	c.view.Transfers++
	c.mu.Unlock()
	return 200, "OK", why + " answered; transferee re-INVITEd, transferor's leg hung up"
}

// dial calls the plan's targets in order, like a call's far leg, and
// returns the first that answers as a confirmed leg with its SDP answer —
// or, when none does, nil and the last failure.
func (b *B2BUA) dial(ctx context.Context, ref *referral, plan pipeline.Plan, offer []byte) (n *leg, answer []byte, status int, reason, why string) {
	status, reason, why = 503, "Service Unavailable", "no target"
	for _, tgt := range plan.Targets {
		n = &leg{callID: sip.GenerateTagN(24) + "@" + b.sender.Host(), localTag: sip.GenerateTagN(16),
			local: sip.Uri{Scheme: "sip", User: plan.From, Host: b.sender.Host()}, target: tgt.URI,
			remote: sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: plan.To, Host: tgt.URI.Host, Port: tgt.URI.Port}},
			dest:   tgt.Dest, transport: tgt.Transport, media: tgt.MediaAddr, smart: tgt.SmartExtension, owner: tgt.Owner}
		why = tgt.Why
		var res *sip.Response
		var err error
		res, err = b.ring(ctx, ref, n, tgt, offer)
		switch {
		case err != nil:
			status, reason = 503, "Service Unavailable"
			if errors.Is(err, sip.ErrTransactionTimeout) {
				status, reason = 408, "Request Timeout"
			}
			why = fmt.Sprintf("%s: %v", tgt.Why, err)
		case res.IsSuccess():
			n.sent, n.answer = offer, offer
			return n, n.mend(res.Body()), 200, "OK", tgt.Why
		default:
			status, reason, why = res.StatusCode, res.Reason, fmt.Sprintf("%s answered %d", tgt.Why, res.StatusCode)
			if !tgt.Failover || (res.StatusCode != 408 && (res.StatusCode < 500 || res.StatusCode > 599)) {
				return nil, nil, status, reason, why
			}
		}
		if !tgt.Failover {
			break
		}
	}
	return nil, nil, status, reason, why
}

// ring sends the new leg's INVITE to tgt and waits for its final answer,
// NOTIFYing the transferor of its first ringing; a 2xx is ACKed (and its
// retransmissions) and fills in the leg's dialog.
func (b *B2BUA) ring(ctx context.Context, ref *referral, n *leg, tgt pipeline.Target, offer []byte) (*sip.Response, error) {
	cl, err := b.client(tgt.Transport)
	if err != nil {
		return nil, err
	}
	inv := n.request(sip.INVITE, offer, b.contact(tgt.Transport))
	for _, h := range tgt.Headers {
		inv.AppendHeader(h)
	}
	if tgt.Signed != nil {
		for _, h := range tgt.Signed(inv.CallID().Value(), time.Now()) {
			inv.AppendHeader(h)
		}
	}
	inv.AppendHeader(sip.NewHeader("Referred-By", ref.referredBy))
	b.addOfferTimer(inv, ref.c, ref.c.expires)
	if ref.replaces != "" {
		inv.AppendHeader(sip.NewHeader("Replaces", ref.replaces))
	}
	tx, err := cl.TransactionRequest(context.Background(), inv)
	if err != nil {
		return nil, err
	}
	ring := time.NewTimer(b.cfg.InviteTimeout)
	defer ring.Stop()
	authSent, rang, provisional, cancelled := false, false, false, false
	for {
		select {
		case res := <-tx.Responses():
			switch {
			case res.StatusCode == 100:
			case res.IsProvisional():
				provisional = true
				if !rang {
					rang = true
					b.notify(ref, res.StatusCode, res.Reason, false)
				}
			case res.IsSuccess():
				b.confirmNew(ref.c, n, cl, tx, inv, res)
				b.answeredTimer(ref.c, n, res, ref.c.expires, time.Now())
				return res, nil
			case (res.StatusCode == 401 || res.StatusCode == 407) && tgt.Auth != nil && !authSent:
				authSent = true
				req, err := withCredentials(inv, res, tgt.Auth, b.cfg.Unseal, n.cseq.Add(1))
				if err != nil {
					tx.Terminate()
					return nil, fmt.Errorf("challenge not answered: %w", err)
				}
				tx.Terminate()
				if tx, err = cl.TransactionRequest(context.Background(), req); err != nil {
					return nil, err
				}
				inv, provisional = req, false
			default:
				tx.Terminate()
				if cancelled && res.StatusCode == 487 {
					res.StatusCode, res.Reason = 480, "Temporarily Unavailable"
				}
				return res, nil
			}
		case <-tx.Done():
			return nil, tx.Err()
		case <-ring.C:
			if provisional && !cancelled {
				cancelled = true
				b.sendCancel(cl, inv, ref.c.id)
			}
		case <-ctx.Done():
			if provisional && !cancelled {
				b.sendCancel(cl, inv, ref.c.id)
			}
			tx.Terminate()
			return nil, ctx.Err()
		}
	}
}

// confirmNew fills in the new leg's dialog from the target's 2xx to inv
// and ACKs it, and every retransmission of it.
func (b *B2BUA) confirmNew(c *call, n *leg, cl *sipgo.Client, tx sip.ClientTransaction, inv *sip.Request, res *sip.Response) {
	c.mu.Lock()
	n.remote = *res.To()
	n.remote.Params = res.To().Params.Clone()
	if ct := res.Contact(); ct != nil {
		n.target = ct.Address
	}
	rrs := res.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		if rr, ok := rrs[i].(*sip.RecordRouteHeader); ok {
			n.route = append(n.route, rr.Address)
		}
	}
	ack := n.request(sip.ACK, nil, b.contact(n.transport))
	c.mu.Unlock()
	ack.CSeq().SeqNo = inv.CSeq().SeqNo
	b.sendACK(cl, ack)
	tx.OnRetransmission(func(*sip.Response) { b.sendACK(cl, ack) })
}

// moveMedia re-INVITEs the transferee to the new leg's SDP answer (through
// the media relay when the call is relayed, filtered for the caller's
// codecs when the transferee is the caller). On failure it returns the
// status the final NOTIFY reports.
func (b *B2BUA) moveMedia(ref *referral, n *leg, answer []byte) (int, string, error) {
	c, stay := ref.c, ref.stay
	body, err := b.mediaInDialog(c, ref.fromA, false, answer)
	if err != nil {
		return 503, "Service Unavailable", fmt.Errorf("media relay: %w", err)
	}
	if len(body) > 0 && c.codecs != nil && !ref.fromA {
		var ok bool
		if body, ok = c.codecs(body); !ok {
			return 488, "Not Acceptable Here", errors.New("no codec of the caller's in the new party's answer")
		}
	}
	c.mu.Lock()
	body = sdpfilter.Reorigin(body, stay.sent)
	c.mu.Unlock()
	cl, err := b.client(stay.transport)
	if err != nil {
		return 503, "Service Unavailable", err
	}
	req := c.request(stay, sip.INVITE, body, b.contact(stay.transport))
	stay.timer.addTo(req, true)
	ctx, cancel := context.WithTimeout(context.Background(), 64*b.t1)
	defer cancel()
	res, err := cl.Do(ctx, req)
	if err != nil {
		return 408, "Request Timeout", fmt.Errorf("no answer: %w", err)
	}
	if !res.IsSuccess() {
		return res.StatusCode, res.Reason, fmt.Errorf("answered %d %s", res.StatusCode, res.Reason)
	}
	ack := c.request(stay, sip.ACK, nil, b.contact(stay.transport))
	ack.CSeq().SeqNo = req.CSeq().SeqNo
	b.sendACK(cl, ack)
	stay.timer.refreshed(time.Now())
	if _, err := b.mediaInDialog(c, ref.fromA, true, stay.mend(res.Body())); err != nil {
		b.log.Warn("b2bua: media relay answer of a transfer's re-INVITE failed", "call", c.id, "err", err)
	}
	c.mu.Lock()
	stay.sent, stay.answer = body, body
	c.mu.Unlock()
	return 200, "OK", nil
}

// notify sends the transferor a NOTIFY of the transfer's progress (RFC
// 3515 §2.4.5): a provisional one without waiting, the final one waiting
// for its answer (the transferor's leg is hung up after it).
func (b *B2BUA) notify(ref *referral, status int, reason string, final bool) {
	cl, err := b.client(ref.from.transport)
	if err != nil {
		return
	}
	req := ref.c.request(ref.from, sip.NOTIFY, nil, b.contact(ref.from.transport))
	req.AppendHeader(sip.NewHeader("Event", ref.event))
	state := "active;expires=60"
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.SetBody(fmt.Appendf(nil, "SIP/2.0 %d %s\r\n", status, reason))
	if !final {
		b.fire(cl, req)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 64*b.t1)
	defer cancel()
	if _, err := cl.Do(ctx, req); err != nil {
		b.log.Debug("b2bua: transfer NOTIFY got no answer", "call", ref.c.id, "err", err)
	}
}

// referToOf returns a Refer-To header parsed, nil when it does not parse.
func referToOf(h sip.Header) *sip.ReferToHeader {
	if rt, ok := h.(*sip.ReferToHeader); ok {
		return rt
	}
	rt := &sip.ReferToHeader{}
	var params sip.HeaderParams
	if _, err := sip.ParseAddressValue(h.Value(), &rt.Address, &params); err != nil {
		return nil
	}
	return rt
}

// referTo returns the value of a relayed Refer-To: as it came, or with its
// Replaces mapped to the other leg when it names one of sipward's dialogs
// on the side it came from (fromA).
func (b *B2BUA) referTo(rt *sip.ReferToHeader, fromA bool) string {
	v, ok := rt.Address.Headers.Get("Replaces")
	if !ok {
		return rt.Value()
	}
	rep, err := url.QueryUnescape(v)
	if err != nil {
		return rt.Value()
	}
	mapped := b.mapReplaces(rep, fromA)
	if mapped == rep {
		return rt.Value()
	}
	out := *rt
	out.Address.Headers = rt.Address.Headers.Clone()
	out.Address.Headers.Add("Replaces", url.QueryEscape(mapped))
	return out.Value()
}

// mapReplaces maps a Replaces value (RFC 3891: call-id;to-tag=…;from-tag=…)
// that names one of sipward's dialogs on the side a request came from (leg
// a's when fromA) to the other leg of that call, as its peer knows it; any
// other value is returned as is.
func (b *B2BUA) mapReplaces(rep string, fromA bool) string {
	callID, params, _ := strings.Cut(rep, ";")
	c, onA := b.calls.find(strings.TrimSpace(callID))
	if c == nil || onA != fromA {
		return rep
	}
	var toTag, fromTag string
	var rest []string
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "to-tag":
			toTag = strings.TrimSpace(v)
		case "from-tag":
			fromTag = strings.TrimSpace(v)
		case "":
		default:
			rest = append(rest, p)
		}
	}
	named, other := c.legs(onA)
	c.mu.Lock()
	defer c.mu.Unlock()
	local, remote := named.localTag, named.remoteTag()
	if !(toTag == local && fromTag == remote) && !(toTag == remote && fromTag == local) {
		return rep
	}
	// For the peer of the other leg, its own tag is the to-tag.
	out := other.callID + ";to-tag=" + other.remoteTag() + ";from-tag=" + other.localTag
	for _, p := range rest {
		out += ";" + p
	}
	return out
}
