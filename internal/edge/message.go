package edge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// ErrNotRegistered: the SIP user has no live registration to deliver to.
var ErrNotRegistered = errors.New("not registered")

// MessageResult says how one registered device answered a MESSAGE.
type MessageResult struct {
	Contact string `json:"contact"`
	Status  int    `json:"status"` // SIP status of the answer; 0 when none came
	Error   string `json:"error,omitempty"`
}

// SendMessage sends a SIP MESSAGE (text/plain) to every registered device of
// username, through the address each registered from, and reports each
// answer. It returns ErrNotRegistered when the user has no live binding.
func (e *Edge) SendMessage(ctx context.Context, username, from, text string) ([]MessageResult, error) {
	if e.cfg.Registrar == nil || e.b == nil {
		return nil, ErrNotRegistered
	}
	bs := e.cfg.Registrar.Lookup(username, e.now())
	if len(bs) == 0 {
		return nil, ErrNotRegistered
	}
	if from == "" {
		from = "sipward"
	}
	out := make([]MessageResult, len(bs))
	for i, b := range bs {
		out[i] = MessageResult{Contact: b.Contact}
		var uri sip.Uri
		if err := sip.ParseUri(b.Contact, &uri); err != nil {
			out[i].Error = "unusable contact"
			continue
		}
		cl, err := e.b.client(b.Transport)
		if err != nil {
			out[i].Error = err.Error()
			continue
		}
		req := sip.NewRequest(sip.MESSAGE, uri)
		req.SetTransport(strings.ToUpper(b.Transport))
		req.SetDestination(b.Source)
		f := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: e.b.host}}
		f.Params.Add("tag", sip.GenerateTagN(12))
		req.AppendHeader(f)
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: username, Host: uri.Host, Port: uri.Port}})
		req.AppendHeader(sip.NewHeader("Content-Type", "text/plain;charset=utf-8"))
		req.SetBody([]byte(text))
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := cl.Do(cctx, req)
		cancel()
		if err != nil {
			out[i].Error = fmt.Sprintf("no answer: %v", err)
			continue
		}
		out[i].Status = res.StatusCode
	}
	return out, nil
}
