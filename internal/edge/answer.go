package edge

import (
	"errors"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/sipudp"
)

// Answer is the one place a pipeline.Result becomes a SIP answer: the
// Results the chains end with, and sipward's own answers from the B2BUA
// (100 Trying, a call no target answered). Drops send nothing; everything
// else answers with the Result's status, reason, headers, body and To tag.
// Reason phrases come from stages and never carry internal errors (those
// are in Result.Why, for the decision log only). What the B2BUA relays from
// a call's other leg, and what the transaction layers answer themselves
// (200 to a CANCEL, the INVITE's 487), are not answers in this sense.
func (e *Edge) Answer(r *pipeline.Request, res pipeline.Result) {
	if res.Drop || res.Answered() || r.Msg.IsAck() {
		return
	}
	status, reason := res.Status, res.Reason
	if !res.Provisional() && (status < 200 || status > 699) { // a stage answers finally; a 1xx here is a bug
		status, reason = 500, "Server Internal Error"
	}
	if reason == "" {
		reason = "Error"
	}
	limit := amplificationLimit(r)
	var err error
	if r.Tx != nil {
		resp := sip.NewResponseFromRequest(r.Msg, status, reason, nil)
		resp.SipVersion = "SIP/2.0" // sipgo copies the request's, which a 505 refuses
		if to := resp.To(); to != nil && res.ToTag != "" && status != 100 {
			to.Params.Add("tag", res.ToTag)
		}
		for _, h := range res.Headers {
			resp.AppendHeader(h)
		}
		if len(res.Body) > 0 {
			resp.SetBody(res.Body)
		}
		if limit > 0 && wireSize(resp) > limit {
			err = sipudp.ErrTooLarge
		} else {
			err = r.Tx.Respond(resp)
		}
	} else if !res.Provisional() {
		// A request the UDP transport handed up without a transaction.
		err = e.tp.Answer(r.Msg, r.Source, status, reason, res.Headers, r.Now, limit)
	}
	if errors.Is(err, sipudp.ErrTooLarge) {
		e.m.amplification.Inc()
		return
	}
	if err != nil {
		e.log.Debug("edge: send response failed", "status", status, "to", r.Source.String(), "transport", r.Transport, "err", err)
	}
}

// amplificationLimit is how long an answer to r may be: under twice the
// datagram a stranger (not identified, not authenticated) sent over UDP,
// whose source may be forged, so that sipward never reflects more than it
// received; no limit otherwise (0).
func amplificationLimit(r *pipeline.Request) int {
	if r.Size <= 0 || r.Auth.Method != pipeline.AuthNone {
		return 0
	}
	return 2*r.Size - 1
}

// wireSize is the length of res as it will be sent.
func wireSize(res *sip.Response) int {
	var c byteCounter
	res.StringWrite(&c)
	return int(c)
}

// byteCounter is an io.StringWriter that only counts.
type byteCounter int

func (c *byteCounter) WriteString(s string) (int, error) {
	*c += byteCounter(len(s))
	return len(s), nil
}
