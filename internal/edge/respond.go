package edge

import (
	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

// answer is the one place a pipeline.Result becomes a SIP response. Drops
// send nothing; everything else answers with the Result's status, reason
// and headers. Reason phrases come from stages and never carry internal
// errors (those are in Result.Why, for the decision log only).
func (e *Edge) answer(r *pipeline.Request, res pipeline.Result) {
	if res.Drop || res.Answered() || r.Msg.IsAck() {
		return
	}
	status, reason := res.Status, res.Reason
	if status < 200 || status > 699 { // a stage answers finally; a 1xx here is a bug
		status, reason = 500, "Server Internal Error"
	}
	if reason == "" {
		reason = "Error"
	}
	var err error
	if r.Tx != nil {
		resp := sip.NewResponseFromRequest(r.Msg, status, reason, nil)
		for _, h := range res.Headers {
			resp.AppendHeader(h)
		}
		err = r.Tx.Respond(resp)
	} else {
		err = e.sl.send(r, status, reason, res.Headers) // a stateless answer over UDP
	}
	if err != nil {
		e.log.Debug("edge: send response failed", "status", status, "to", r.Source.String(), "transport", r.Transport, "err", err)
	}
}
