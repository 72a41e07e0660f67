package sipudp

// The datagram demultiplexer.
//
// Every datagram the readers take off the socket (after the read filter)
// comes here once and goes to exactly one place:
//
//   - a response → the client transaction it answers (clienttx.go), or, when
//     it matches none, back to sipgo (a response to one of sipgo's own);
//   - the ACK of a stateless non-2xx answer → dropped unparsed past its To
//     tag (nothing answers an ACK, and nothing a parse could change);
//   - a retransmitted REGISTER with credentials → the answer kept for it
//     (stateless.go's absorber);
//   - a request that can be answered without a transaction (a credential-less
//     INVITE from an unknown source, an out-of-dialog REGISTER or OPTIONS) →
//     the stateless workers, which hand it up with no transaction;
//   - any other request → the server transactions (servertx.go), which hand
//     a new request up with its transaction and answer retransmissions
//     themselves;
//   - what does not parse, or lacks what a transaction needs → back to sipgo,
//     which answers 400 or logs (rate-limited) why it failed.
//
// Which requests qualify for the stateless path is decided twice: cheaply on
// the raw datagram (scanRaw: method, To tag, credentials, and the source),
// and then on the parsed request (qualifies).

import (
	"bytes"
	"context"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// statelessQueue bounds the requests waiting for a stateless worker; past it
// the UDP reader handles the request itself (back-pressure, nothing dropped).
const statelessQueue = 4096

// statelessJob is a request for a stateless worker, with its datagram's size.
type statelessJob struct {
	req  *sip.Request
	size int
}

// demux sends each datagram where it belongs (see the file comment).
type demux struct {
	parser  *sip.Parser
	sl      *stateless
	stx     *udpTxLayer
	uct     *udpClientLayer
	handle  func(req *sip.Request, tx sip.ServerTransaction, size int)
	unknown func(netip.Addr) bool
	now     func() time.Time
	jobs    chan statelessJob

	acks     atomic.Uint64 // ACKs of stateless answers dropped unparsed
	absorbed atomic.Uint64 // REGISTER retransmissions answered from the absorber
}

// workers runs the stateless workers until ctx ends.
func (d *demux) workers(ctx context.Context, wg *sync.WaitGroup) {
	n := max(8, 4*runtime.GOMAXPROCS(0)) // a worker may wait on Redis (nonce counts)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case j := <-d.jobs:
					d.handle(j.req, nil, j.size)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
}

// take sends data from src where it belongs and reports whether it was
// taken; false leaves it to sipgo. inline serves a new request on the
// caller's goroutine instead of a worker.
func (d *demux) take(data []byte, src netip.AddrPort, inline bool) bool {
	if len(data) < 8 {
		return false // a keepalive (CRLF), or nothing sipgo could parse either
	}
	if string(data[:4]) == "SIP/" {
		return d.takeResponse(data, src)
	}
	m, ok := scanRaw(data)
	if ok {
		switch m.method {
		case sip.ACK:
			if bytes.HasPrefix(m.toTag, []byte(statelessTagPrefix)) {
				d.acks.Add(1)
				return true
			}
			ok = false
		case sip.REGISTER, sip.OPTIONS:
			ok = m.toTag == nil
		case sip.INVITE:
			ok = m.toTag == nil && !m.credentials && d.unknown != nil && d.unknown(src.Addr().Unmap())
		}
	}
	msg, err := d.parser.ParseSIP(data)
	if err != nil {
		return false // sipgo parses it again and logs (rate-limited) why it failed
	}
	req, isReq := msg.(*sip.Request)
	if !isReq {
		return false
	}
	req.SetTransport("UDP")
	req.SetSource(src.String())
	if !ok || !qualifies(req) {
		return d.stx.take(req, src, inline, len(data))
	}
	return d.takeStateless(req, src, inline, len(data))
}

// takeStateless serves a request that needs no transaction: a retransmitted
// REGISTER with credentials gets the first answer again; anything else goes
// to a worker (or is served inline).
func (d *demux) takeStateless(req *sip.Request, src netip.AddrPort, inline bool, size int) bool {
	if req.Method == sip.REGISTER && req.GetHeader("Authorization") != nil {
		// A retransmission gets the first answer; one that arrives while the
		// first is still being served is dropped (the answer is on its way).
		if b, seen := d.sl.absorb.claim(absorbKey(req), d.now()); seen {
			if b != nil {
				_, _ = d.sl.conn.WriteToUDPAddrPort(b, src)
			}
			d.absorbed.Add(1)
			return true
		}
	}
	if inline {
		d.handle(req, nil, size)
		return true
	}
	select {
	case d.jobs <- statelessJob{req: req, size: size}:
	default:
		d.handle(req, nil, size)
	}
	return true
}

// takeResponse gives a response to the client transaction it answers
// (clienttx.go); one that matches none is left to sipgo's.
func (d *demux) takeResponse(data []byte, src netip.AddrPort) bool {
	msg, err := d.parser.ParseSIP(data)
	if err != nil {
		return false
	}
	res, ok := msg.(*sip.Response)
	if !ok {
		return false
	}
	res.SetTransport("UDP")
	res.SetSource(src.String())
	return d.uct.take(res)
}

// qualifies is the check on the parsed request (scanRaw is only a sieve).
func qualifies(req *sip.Request) bool {
	if req.CallID() == nil || req.CSeq() == nil || req.Via() == nil || req.From() == nil || req.To() == nil {
		return false // sanity answers these through sipgo
	}
	hasTag := req.To().Params.Has("tag")
	switch req.Method {
	case sip.REGISTER, sip.OPTIONS:
		return !hasTag
	case sip.INVITE: // the source was checked before parsing (take)
		return !hasTag && req.GetHeader("Proxy-Authorization") == nil && req.GetHeader("Authorization") == nil
	}
	return false
}
