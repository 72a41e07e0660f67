package edge

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"
)

// keepalive sends an in-dialog OPTIONS to both legs of every confirmed call
// each interval; a leg that does not answer (or answers 481/408) gets both
// legs hung up and the channels freed, so a vanished peer cannot hold
// channels for ever.
//
// A call is probed only once it has been quiet (since its 2xx, or since its
// last answered probe) for half an interval or more: a call set up just
// before a tick is not probed at once. Probing every call at each tick
// whatever its age sent an OPTIONS into calls a few milliseconds old, which
// some UAs (SIPp among them) take as an unexpected message and abort the
// call, and made every tick a burst of one probe per active call.
func (e *Edge) keepalive(ctx context.Context) {
	t := time.NewTicker(e.cfg.Keepalive)
	defer t.Stop()
	quiet := int64(e.cfg.Keepalive / 2)
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-t.C:
		}
		for _, c := range e.b.calls.all() {
			c.mu.Lock()
			ok := c.confirmed
			c.mu.Unlock()
			if !ok || c.ended.Load() || now.UnixNano()-c.lastSeen.Load() < quiet {
				continue
			}
			go e.probe(ctx, c)
		}
	}
}

func (e *Edge) probe(ctx context.Context, c *call) {
	for _, legA := range []bool{true, false} {
		var req *sip.Request
		tr := c.bTrans
		if legA {
			req, tr = e.b.inDialogA(c, sip.OPTIONS, nil), c.aTrans
		} else {
			req = e.b.inDialogB(c, sip.OPTIONS, nil)
		}
		cl, err := e.b.client(tr)
		if err != nil {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 64*e.b.t1)
		res, err := cl.Do(cctx, req)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil || res.StatusCode == 481 || res.StatusCode == 408 {
			e.b.end(c, !legA, legA, "keepalive: leg "+legName(legA)+" stopped answering")
			return
		}
	}
	c.lastSeen.Store(time.Now().UnixNano())
}
