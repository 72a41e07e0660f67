package b2bua

// The far leg's 2xx: the call is answered. The 2xx is ACKed (and every
// retransmission of it), the caller gets 200 with the far leg's answer
// (filtered for the caller's codecs), and the call is kept until a BYE; on
// UDP our 2xx is retransmitted until the caller's ACK (RFC 6026).

import (
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

// retransmitter is a server transaction that resends its 2xx itself until
// the ACK, on one timer (the UDP transport's).
type retransmitter interface {
	Retransmit2xx(acked func() bool, giveUp func())
}

// confirm handles the far leg's 2xx to req (sent on tx through cl, offering
// the session interval offered) and
// returns the status the caller got: 200, 487 when the caller had given up
// already, 488 when the answer keeps none of the caller's codecs, 500 when
// the 200 could not be sent.
func (b *B2BUA) confirm(c *call, r *pipeline.Request, cl *sipgo.Client, tx sip.ClientTransaction, req *sip.Request, res *sip.Response, offered time.Duration, cancelled bool) int {
	c.mu.Lock()
	c.b.remote = *res.To()
	c.b.remote.Params = res.To().Params.Clone()
	c.b.target = req.Recipient
	if ct := res.Contact(); ct != nil {
		c.b.target = ct.Address
	}
	rrs := res.GetHeaders("Record-Route")
	c.b.route = nil // an early dialog's, if any, is the 2xx's now
	for i := len(rrs) - 1; i >= 0; i-- {
		if rr, ok := rrs[i].(*sip.RecordRouteHeader); ok {
			c.b.route = append(c.b.route, rr.Address)
		}
	}
	c.b.sent = req.Body()
	b.answeredTimer(c, c.b, res, offered, time.Now())
	b.callerTimer(c, r.Msg, time.Now())
	c.confirmed = true
	c.view.State, c.view.Answered = "confirmed", time.Now()
	c.mu.Unlock()
	c.lastSeen.Store(time.Now().UnixNano())

	ack := c.request(c.b, sip.ACK, nil, b.contact(c.b.transport))
	ack.CSeq().SeqNo = req.CSeq().SeqNo
	b.sendACK(cl, ack)
	// The far leg retransmits its 2xx until our ACK arrives: re-ACK each retransmission.
	tx.OnRetransmission(func(*sip.Response) { b.sendACK(cl, ack) })

	if cancelled {
		// The caller gave up while the far leg answered: hang that up.
		b.hangup(c, c.b)
		b.drop(c)
		return 487
	}
	body, err := b.mediaAnswer(c, c.b.mend(res.Body()))
	if err != nil {
		// The far leg's media goes to the relay, which cannot tell the caller's: no call.
		b.log.Warn("b2bua: media relay answer failed", "call", c.id, "err", err)
		b.hangup(c, c.b)
		b.drop(c)
		b.cfg.Answer(r, pipeline.Result{Status: 503, Reason: "Service Unavailable", ToTag: c.a.localTag, Stage: Stage})
		return 503
	}
	if len(body) > 0 && c.codecs != nil {
		var ok bool
		if body, ok = c.codecs(body); !ok {
			b.hangup(c, c.b)
			b.drop(c)
			b.cfg.Answer(r, pipeline.Result{Status: 488, Reason: "Not Acceptable Here", ToTag: c.a.localTag, Stage: Stage})
			return 488
		}
	}
	c.mu.Lock()
	c.a.answer, c.a.sent = body, body
	c.mu.Unlock()
	if err := b.answerA(c, r.Tx, 200, "OK", body); err != nil {
		b.log.Warn("b2bua: answer 200 on leg A failed", "call", c.id, "err", err)
		b.hangup(c, c.b)
		b.drop(c)
		return 500
	}
	b.answered.Add(1)
	if c.a.transport == pipeline.UDP {
		b.retransmit2xx(c, r.Tx, body)
	}
	return 200
}

// retransmit2xx resends our 2xx to the caller until its ACK (RFC 6026
// leaves it to the TU; UDP only): by the transaction's own timer when it
// can, else on a goroutine with T1 doubling up to 4 s, for at most 64·T1;
// then the call is given up.
func (b *B2BUA) retransmit2xx(c *call, tx sip.ServerTransaction, body []byte) {
	giveUp := func() {
		b.log.Debug("b2bua: no ACK from leg A, ending the call", "call", c.id)
		b.end(c, true, false, "no ACK")
	}
	if rt, ours := tx.(retransmitter); ours {
		rt.Retransmit2xx(func() bool { return isClosed(c.aAcked) || c.ended.Load() }, giveUp)
		return
	}
	go func() {
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
				_ = b.answerA(c, tx, 200, "OK", body)
				interval = min(2*interval, 4*time.Second)
				t.Reset(interval)
			case <-deadline.C:
				giveUp()
				return
			}
		}
	}()
}
