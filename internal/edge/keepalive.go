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
func (e *Edge) keepalive(ctx context.Context) {
	t := time.NewTicker(e.cfg.Keepalive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, c := range e.b.calls.all() {
			c.mu.Lock()
			ok := c.confirmed
			c.mu.Unlock()
			if !ok || c.ended.Load() {
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
