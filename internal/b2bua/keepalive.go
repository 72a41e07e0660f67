package b2bua

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/ticker"
)

// Keepalive sends an in-dialog OPTIONS to both legs of every confirmed
// call each Config.Keepalive, until ctx ends; a leg that does not answer
// (or answers 481/408) gets the other leg hung up and the channels freed, so
// a vanished peer cannot hold channels for ever. It returns at once when
// Keepalive is 0.
//
// A call is probed only once it has been quiet (since its 2xx, or since its
// last answered probe) for half an interval or more: a call set up just
// before a tick is not probed at once. Probing every call at each tick
// whatever its age sent an OPTIONS into calls a few milliseconds old, which
// some UAs (SIPp among them) take as an unexpected message and abort the
// call, and made every tick a burst of one probe per active call.
func (b *B2BUA) Keepalive(ctx context.Context) {
	if b.cfg.Keepalive <= 0 {
		return
	}
	quiet := int64(b.cfg.Keepalive / 2)
	ticker.Every(ctx, b.cfg.Keepalive, func(now time.Time) {
		for _, c := range b.calls.all() {
			c.mu.Lock()
			ok := c.confirmed
			c.mu.Unlock()
			if !ok || c.ended.Load() || now.UnixNano()-c.lastSeen.Load() < quiet {
				continue
			}
			go b.probe(ctx, c)
		}
	})
}

// probe sends one OPTIONS on each leg of c, the caller's first.
func (b *B2BUA) probe(ctx context.Context, c *call) {
	for _, legA := range []bool{true, false} {
		l, _ := c.legs(legA)
		cl, err := b.client(l.transport)
		if err != nil {
			return
		}
		req := c.request(l, sip.OPTIONS, nil, b.contact(l.transport))
		cctx, cancel := context.WithTimeout(ctx, 64*b.t1)
		res, err := cl.Do(cctx, req)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil || res.StatusCode == 481 || res.StatusCode == 408 {
			b.end(c, !legA, legA, "keepalive: leg "+legName(legA)+" stopped answering")
			return
		}
	}
	c.lastSeen.Store(time.Now().UnixNano())
}
