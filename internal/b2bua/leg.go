package b2bua

import (
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/sipnat"
)

// leg is one side of a call: a dialog sipward takes part in — as the UAS
// on the caller's leg, as the UAC on the far leg. Every request sipward
// sends inside the dialog is built from it (request).
type leg struct {
	callID    string
	local     sip.Uri // our URI on this leg: the caller's To on the first leg, our From on the far leg
	localName string  // its display name
	localTag  string
	// remote is the peer: its URI, display name and tag. Its params are
	// sent as they are in the To of our requests.
	remote    sip.ToHeader
	target    sip.Uri   // remote target: the peer's Contact
	route     []sip.Uri // route set, in the order of the Route headers we send
	dest      string    // where requests go (host:port; a NAT binding), or "" for the target's host
	transport string    // udp | tcp | tls
	cseq      atomic.Uint32
	answer    []byte // the SDP we last sent on this leg in an answer (an intercepted re-INVITE is answered with it)
	sent      []byte // the SDP we last sent on this leg, offer or answer (a transfer offers it to the new party)
	// smart: the peer is a customer's device with Smart Extension on
	// (transfer.go); owner is who it is, for routing a transfer's new leg.
	smart bool
	owner pipeline.Identity
	// media, when valid, is the peer's public address: the private
	// connection addresses of the SDP it sends (all of them but media
	// itself with mediaAlways, force_nat) become it (a peer behind NAT).
	media       netip.Addr
	mediaAlways bool
	timer       sessionTimer // RFC 4028 (sessiontimer.go)
	inviteSeq   uint32       // far leg: the CSeq of our INVITE (a relayed PRACK's RAck names it)
}

// mend returns sdp the peer of l sent, its addresses made reachable when
// the peer is behind NAT (package sipnat).
func (l *leg) mend(sdp []byte) []byte {
	if !l.media.IsValid() || len(sdp) == 0 {
		return sdp
	}
	out, _ := sipnat.FixSDP(sdp, l.media, l.mediaAlways)
	return out
}

// remoteTag returns the peer's tag.
func (l *leg) remoteTag() string {
	t, _ := l.remote.Params.Get("tag")
	return t
}

// request builds a request inside the leg's dialog: From our side with our
// tag, To the peer with its tag, the next CSeq (an ACK takes the current
// one: its number is the INVITE's, which the caller sets), the route set,
// and contact as the Contact of an INVITE, UPDATE or NOTIFY. The call's
// lock must be held.
func (l *leg) request(method sip.RequestMethod, body []byte, contact sip.Uri) *sip.Request {
	req := sip.NewRequest(method, l.target)
	from := &sip.FromHeader{DisplayName: l.localName, Address: l.local}
	from.Params.Add("tag", l.localTag)
	to := l.remote
	to.Params = l.remote.Params.Clone()
	cid := sip.CallIDHeader(l.callID)
	req.AppendHeader(from)
	req.AppendHeader(&to)
	req.AppendHeader(&cid)
	seq := l.cseq.Load()
	if method != sip.ACK {
		seq = l.cseq.Add(1)
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	for _, u := range l.route {
		req.AppendHeader(&sip.RouteHeader{Address: u})
	}
	if method == sip.INVITE || method == sip.UPDATE || method == sip.NOTIFY {
		req.AppendHeader(&sip.ContactHeader{Address: contact})
	}
	if len(body) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(body)
	req.SetTransport(strings.ToUpper(l.transport))
	if l.dest != "" {
		req.SetDestination(l.dest)
	}
	return req
}
