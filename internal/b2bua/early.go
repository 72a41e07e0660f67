package b2bua

// Early dialogs: a provisional answer with a To tag opens the far leg's
// dialog before the 2xx, so that requests inside it — UPDATE (RFC 3311)
// and PRACK — can be relayed both ways before the call is answered.
// Reliable provisionals (RFC 3262, 100rel) are negotiated end to end: the
// far leg is offered 100rel only when the caller supports it (required
// when the caller requires it), a reliable provisional reaches the caller
// reliable with the far leg's RSeq, and the caller's PRACK reaches the far
// leg with its RAck naming our INVITE.

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// early records the far leg's early dialog from a provisional answer res
// to inv (its tag, Contact and route set), once per tag.
func (b *B2BUA) early(c *call, inv *sip.Request, res *sip.Response) {
	to := res.To()
	tag, ok := "", false
	if to != nil {
		tag, ok = to.Params.Get("tag")
	}
	if !ok || tag == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.b.remoteTag() == tag {
		return
	}
	c.b.remote = *to
	c.b.remote.Params = to.Params.Clone()
	c.b.target = inv.Recipient
	if ct := res.Contact(); ct != nil {
		c.b.target = ct.Address
	}
	c.b.route = nil
	rrs := res.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		if rr, ok := rrs[i].(*sip.RecordRouteHeader); ok {
			c.b.route = append(c.b.route, rr.Address)
		}
	}
}

// offer100rel returns the far INVITE's 100rel headers for the caller's
// INVITE inv: Supported when the caller supports it, Require as well when
// it requires it.
func offer100rel(inv *sip.Request) []sip.Header {
	req := hasTag(inv, "Require", "100rel")
	if !req && !hasTag(inv, "Supported", "100rel") {
		return nil
	}
	hs := []sip.Header{sip.NewHeader("Supported", "100rel")}
	if req {
		hs = append(hs, sip.NewHeader("Require", "100rel"))
	}
	return hs
}

// reliable returns the headers that keep a reliable provisional res
// reliable towards the caller: Require: 100rel and its RSeq.
func reliable(res *sip.Response) []sip.Header {
	if !hasTag(res, "Require", "100rel") {
		return nil
	}
	rseq := header(res, "RSeq", "")
	if rseq == nil {
		return nil
	}
	return []sip.Header{sip.NewHeader("Require", "100rel"), sip.NewHeader("RSeq", strings.TrimSpace(rseq.Value()))}
}

// rack returns a relayed PRACK's RAck: the response number the caller
// acknowledges, and our INVITE's CSeq (seq) on the far leg.
func rack(prack *sip.Request, seq uint32) sip.Header {
	rseq := "0"
	if h := prack.GetHeader("RAck"); h != nil {
		if f := strings.Fields(h.Value()); len(f) > 0 {
			rseq = f[0]
		}
	}
	return sip.NewHeader("RAck", rseq+" "+strconv.FormatUint(uint64(seq), 10)+" INVITE")
}
