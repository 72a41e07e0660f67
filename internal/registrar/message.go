package registrar

// SIP MESSAGE (RFC 3428) from the API and the web UI to a SIP user's
// registered devices.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/live"
)

// ErrNotRegistered: the SIP user has no live registration to deliver to.
var ErrNotRegistered = live.ErrNotRegistered

// MessageResult says how one registered device answered a MESSAGE.
type MessageResult = live.MessageResult

// SendMessage sends a SIP MESSAGE (text/plain) to every registered device of
// username, through the address each registered from, and reports each
// answer. It returns ErrNotRegistered when the user has no live binding.
func (g *Registrar) SendMessage(ctx context.Context, username, from, text string) ([]MessageResult, error) {
	g.mu.RLock()
	s := g.sender
	g.mu.RUnlock()
	if s == nil {
		return nil, ErrNotRegistered
	}
	bs := g.Local(username, g.cfg.Now())
	if len(bs) == 0 {
		return nil, ErrNotRegistered
	}
	if from == "" {
		from = "sipward"
	}
	out := make([]MessageResult, len(bs))
	for i, b := range bs {
		out[i] = MessageResult{Contact: b.Contact}
		req, cl, err := toBinding(s, b, sip.MESSAGE, from, username)
		if err != nil {
			out[i].Error = err.Error()
			continue
		}
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

// toBinding builds an out-of-dialog request of method from user from to
// the registered device b of username, sent to the address it registered
// from, and returns the client to send it with.
func toBinding(s Sender, b Binding, method sip.RequestMethod, from, username string) (*sip.Request, *sipgo.Client, error) {
	var uri sip.Uri
	if err := sip.ParseUri(b.Contact, &uri); err != nil {
		return nil, nil, errors.New("unusable contact")
	}
	cl, err := s.Client(b.Transport)
	if err != nil {
		return nil, nil, err
	}
	req := sip.NewRequest(method, uri)
	req.SetTransport(strings.ToUpper(b.Transport))
	req.SetDestination(b.Source)
	f := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: s.Host()}}
	f.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(f)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: username, Host: uri.Host, Port: uri.Port}})
	return req, cl, nil
}
