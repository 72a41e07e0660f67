package registrar

// Message waiting (RFC 3842): a NOTIFY of event message-summary to every
// registered device of a SIP user when its voicemail changes. Sent without
// a subscription, as most desk phones expect from their registrar (they
// REGISTER and never SUBSCRIBE); a phone that does subscribe gets the same
// summary in its subscription's dialog (package mwi).

import (
	"context"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Summary is a mailbox's message counts.
type Summary struct{ New, Old int }

// Body is the application/simple-message-summary body of s for the
// mailbox of username at host.
func (s Summary) Body(username, host string) []byte {
	waiting := "no"
	if s.New > 0 {
		waiting = "yes"
	}
	return fmt.Appendf(nil, "Messages-Waiting: %s\r\nMessage-Account: sip:%s@%s\r\nVoice-Message: %d/%d (0/0)\r\n",
		waiting, username, host, s.New, s.Old)
}

// NotifyMessages sends s to every registered device of username and
// returns how many answered 2xx.
func (g *Registrar) NotifyMessages(ctx context.Context, username string, s Summary) int {
	g.mu.RLock()
	snd := g.sender
	g.mu.RUnlock()
	if snd == nil {
		return 0
	}
	ok := 0
	for _, b := range g.Lookup(username, g.cfg.Now()) {
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
