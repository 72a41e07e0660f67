package b2bua

// Requests inside a call (they carry a To tag, or are an ACK or CANCEL):
// the ACK of our 2xx is absorbed, a BYE ends the call (answered 200 here and
// sent on to the other leg as sipward's own BYE), a re-INVITE is answered
// here when the caller's endpoint intercepts them, and everything else is
// relayed to the other leg with its answer relayed back. sipward's own
// answers (481, and the relay's failures) are Results, for the edge to write.

import (
	"context"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

// dialogStage names the Results of requests inside a dialog.
const dialogStage = "dialog"

// noCall is the answer to a request that belongs to no call (RFC 3261
// §12.2.2).
var noCall = pipeline.Reject(dialogStage, 481, "Call/Transaction Does Not Exist", "no such call")

// Dialogs returns the in-dialog chain's terminal handler.
func (b *B2BUA) Dialogs() pipeline.Handler {
	return pipeline.HandlerFunc{N: dialogStage, F: b.inDialog}
}

// inDialog handles a request that carries a To tag, or an ACK or CANCEL.
// It returns Answered (status 0) when the request was relayed or needs no
// answer, else sipward's own answer.
func (b *B2BUA) inDialog(_ context.Context, r *pipeline.Request) (pipeline.Result, error) {
	req := r.Msg
	relayed := pipeline.Answered(dialogStage, 0)
	c, fromA := b.calls.find(req.CallID().Value())
	switch {
	case c == nil && req.IsAck():
		return relayed, nil // an ACK of a non-2xx final is absorbed by its transaction; a stray one needs nothing
	case c == nil, req.IsCancel():
		// The transaction layer matched CANCELs of pending INVITEs already; this one matched nothing.
		return noCall, nil
	}
	in, out := c.legs(fromA)
	// The request must carry the dialog's tags, or it is not from our peer.
	fromTag, _ := req.From().Params.Get("tag")
	toTag, _ := req.To().Params.Get("tag")
	c.mu.Lock()
	ours := fromTag == in.remoteTag() && toTag == in.localTag
	c.mu.Unlock()
	if !ours {
		return noCall, nil
	}
	switch req.Method {
	case sip.ACK:
		if fromA {
			c.acked()
		}
		return relayed, nil
	case sip.BYE:
		if r.Tx != nil {
			_ = r.Tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		}
		b.end(c, !fromA, fromA, "BYE from leg "+legName(fromA))
		return relayed, nil
	case sip.INVITE:
		if c.interceptReinvite {
			b.peerRefresh(in, req, r.Now)
			return b.intercept(c, in), nil
		}
	case sip.REFER:
		if res, handled := b.refer(r, c, fromA); handled {
			return res, nil
		}
	}
	return b.relay(r, c, in, out), nil
}

// intercept answers a re-INVITE on leg in itself: 200 with the SDP sipward
// last sent on that leg, so the other leg never sees it.
func (b *B2BUA) intercept(c *call, in *leg) pipeline.Result {
	c.mu.Lock()
	last, tr := in.answer, in.transport
	c.mu.Unlock()
	hdrs := append([]sip.Header{&sip.ContactHeader{Address: b.contact(tr)}}, in.timer.headers(false)...)
	if len(last) > 0 {
		hdrs = append(hdrs, sip.NewHeader("Content-Type", "application/sdp"))
	}
	res := pipeline.Reply(dialogStage, 200, "OK", "re-INVITE intercepted", hdrs...)
	res.Body = last
	return res
}

// relay forwards an in-dialog request from leg in to leg out and the final
// answer back. Failures to do so are sipward's own answers.
func (b *B2BUA) relay(r *pipeline.Request, c *call, in, out *leg) pipeline.Result {
	req := r.Msg
	body := req.Body()
	if isSDP(req) {
		body = in.mend(body)
	}
	if len(body) > 0 && c.codecs != nil && isSDP(req) {
		var ok bool
		if body, ok = c.codecs(body); !ok {
			return pipeline.Reject(dialogStage, 488, "Not Acceptable Here", "no codec of the caller's left in the re-offer")
		}
	}
	fromA := in == c.a
	if isSDP(req) {
		var err error
		if body, err = b.mediaInDialog(c, fromA, false, body); err != nil {
			return pipeline.Reject(dialogStage, 503, "Service Unavailable", "media relay: "+err.Error())
		}
	}
	fwd := b.forward(c, req, out, body, fromA)
	refresh := req.Method == sip.INVITE || req.Method == sip.UPDATE
	cl, err := b.client(out.transport)
	if err != nil {
		return pipeline.Reject(dialogStage, 503, "Service Unavailable", err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 64*b.t1)
	defer cancel()
	res, err := cl.Do(ctx, fwd)
	if err != nil {
		return pipeline.Reject(dialogStage, 408, "Request Timeout", "the other leg did not answer")
	}
	if refresh && res.IsSuccess() { // a refresh of both legs' sessions
		b.peerRefresh(in, req, r.Now)
		out.timer.refreshed(r.Now)
	}
	rb := out.mend(res.Body())
	if isSDP(res) && res.IsSuccess() {
		if rb, err = b.mediaInDialog(c, fromA, true, rb); err != nil {
			b.log.Warn("b2bua: media relay answer of a re-offer failed", "call", c.id, "err", err)
		}
	}
	if len(rb) > 0 && c.codecs != nil {
		rb, _ = c.codecs(rb)
	}
	if req.Method == sip.INVITE && res.IsSuccess() {
		// ACK the other leg ourselves; the requester's ACK is absorbed.
		ack := c.request(out, sip.ACK, nil, b.contact(out.transport))
		ack.CSeq().SeqNo = fwd.CSeq().SeqNo
		c.mu.Lock()
		in.answer = rb
		c.mu.Unlock()
		b.sendACK(cl, ack)
	}
	if len(rb) > 0 && isSDP(res) && res.IsSuccess() {
		c.mu.Lock()
		in.sent = rb
		c.mu.Unlock()
	}
	b.relayAnswer(r, c, in, res, rb)
	if req.Method == sip.BYE {
		b.end(c, false, false, "relayed BYE")
	}
	return pipeline.Answered(dialogStage, 0)
}

// forward builds the request relaying req (body its body, mended and
// filtered) on leg out: sipward's own in out's dialog, with req's relayed
// headers, and out's session timer on a refresh.
func (b *B2BUA) forward(c *call, req *sip.Request, out *leg, body []byte, fromA bool) *sip.Request {
	fwd := c.request(out, req.Method, body, b.contact(out.transport))
	b.relayHeaders(req, fwd, fromA)
	if req.Method == sip.PRACK {
		fwd.AppendHeader(rack(req, out.inviteSeq))
	}
	if req.Method == sip.INVITE || req.Method == sip.UPDATE {
		out.timer.addTo(fwd, true)
	}
	switch {
	case len(body) == 0:
	case isSDP(req):
		c.mu.Lock()
		out.sent = body
		c.mu.Unlock()
	default:
		if ct := req.ContentType(); ct != nil {
			fwd.RemoveHeader("Content-Type")
			fwd.AppendHeader(sip.NewHeader("Content-Type", ct.Value()))
		}
	}
	return fwd
}

// relayAnswer sends the other leg's answer res (its body rb, filtered) back
// on leg in.
func (b *B2BUA) relayAnswer(r *pipeline.Request, c *call, in *leg, res *sip.Response, rb []byte) {
	req := r.Msg
	ans := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, nil)
	if res.StatusCode >= 200 && res.StatusCode < 300 && (req.Method == sip.INVITE || req.Method == sip.UPDATE) {
		ans.AppendHeader(&sip.ContactHeader{Address: b.contact(in.transport)})
		in.timer.addTo(ans, false)
	}
	if len(rb) > 0 {
		if ct := res.ContentType(); ct != nil {
			ans.AppendHeader(sip.NewHeader("Content-Type", ct.Value()))
		}
		ans.SetBody(rb)
	}
	if r.Tx != nil {
		_ = r.Tx.Respond(ans)
	}
}

// relayedHeaders are the headers of an in-dialog request that mean
// something to the other leg's peer and carry nothing of this leg's
// topology: a transfer's (RFC 3515, RFC 3892, RFC 4488; a Replaces in
// Refer-To naming one of sipward's dialogs is mapped to the other leg's),
// a subscription's NOTIFY (RFC 6665), an INFO package's (RFC 6086) and a
// hang-up's reason (RFC 3326).
// By lower-case name, compact forms included, the name sent.
var relayedHeaders = map[string]string{"refer-to": "Refer-To", "r": "Refer-To", "referred-by": "Referred-By", "b": "Referred-By",
	"refer-sub": "Refer-Sub", "event": "Event", "o": "Event", "subscription-state": "Subscription-State",
	"info-package": "Info-Package", "reason": "Reason"}

// relayHeaders copies req's relayed headers onto fwd, the request sent on
// the other leg (req came on leg a when fromA).
func (b *B2BUA) relayHeaders(req, fwd *sip.Request, fromA bool) {
	for _, h := range req.Headers() {
		name, ok := relayedHeaders[strings.ToLower(h.Name())]
		if !ok {
			continue
		}
		v := h.Value()
		if name == "Refer-To" {
			if rt := referToOf(h); rt != nil {
				v = b.referTo(rt, fromA)
			}
		}
		fwd.AppendHeader(sip.NewHeader(name, v))
	}
}

func isSDP(m interface{ GetHeader(string) sip.Header }) bool {
	ct := m.GetHeader("Content-Type")
	return ct != nil && strings.HasPrefix(strings.ToLower(ct.Value()), "application/sdp")
}
