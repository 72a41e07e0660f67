package registrar

// Message waiting (RFC 3842) without a subscription: a NOTIFY of event
// message-summary to every registered device of a SIP user, as most desk
// phones expect from their registrar (they REGISTER and never SUBSCRIBE).
// Package mwi decides when, and serves the phones that do subscribe.

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/mwi"
)

// NotifyMessages sends s to every registered device of username and
// returns how many answered 2xx.
func (g *Registrar) NotifyMessages(ctx context.Context, username string, s mwi.Summary) int {
	g.mu.RLock()
	snd := g.sender
	g.mu.RUnlock()
	if snd == nil {
		return 0
	}
	ok := 0
	for _, b := range g.Local(username, g.cfg.Now()) {
		req, cl, err := toBinding(snd, b, sip.NOTIFY, username, username)
		if err != nil {
			continue
		}
		req.AppendHeader(sip.NewHeader("Event", "message-summary"))
		req.AppendHeader(sip.NewHeader("Subscription-State", "active"))
		req.AppendHeader(sip.NewHeader("Content-Type", "application/simple-message-summary"))
		req.SetBody(s.Body(username, snd.Host()))
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := cl.Do(cctx, req)
		cancel()
		if err == nil && res.IsSuccess() {
			ok++
		}
	}
	return ok
}
