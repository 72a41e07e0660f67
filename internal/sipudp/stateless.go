package sipudp

// Stateless answers over UDP.
//
// sipgo gives every request a server transaction: a goroutine, timers and
// about 4 KB kept for 32 s after the answer (SIPGO-NOTES pitfall 2). Most of
// an edge's traffic does not need one: digest challenges, registrations and
// OPTIONS pings are answered at once and nothing follows them. Like
// Kamailio's sl module, the edge answers these without a transaction, from a
// small pool of long-lived workers, and keeps what RFC 3261 needs of a
// transaction by other means:
//
//   - a retransmitted challenge is challenged again (a new nonce; harmless);
//   - the ACK of a stateless non-2xx answer to an INVITE is recognised by
//     its To tag (statelessTagPrefix) and dropped unparsed past the tag;
//   - a retransmitted REGISTER that carried credentials is answered from
//     the absorber with the very bytes sent the first time: processing it
//     again would fail the nonce-count replay check and the registrar's CSeq
//     order check.
//
// Which requests qualify is decided by the demultiplexer (demux.go). Every
// other UDP request (calls from known sources, INVITEs with credentials,
// in-dialog requests) gets one of the transport's own server transactions
// (servertx.go); TCP and TLS keep sipgo's.

import (
	"bytes"
	"errors"
	"hash/fnv"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// statelessTagPrefix starts the To tag of every stateless answer, so that
// the ACK of a stateless non-2xx answer to an INVITE is known without a
// transaction.
const statelessTagPrefix = "swsl-"

// absorbTTL is how long a stateless REGISTER answer is kept for
// retransmissions: Timer F (64·T1), the longest a UAC retransmits.
const absorbTTL = 64 * 500 * time.Millisecond

// ErrTooLarge is Answer's error for an answer over its limit, not sent.
var ErrTooLarge = errors.New("sipudp: answer larger than its limit: not sent")

// stateless writes answers without a transaction, and keeps the answers
// to REGISTERs with credentials for their retransmissions.
type stateless struct {
	conn   *udpSock
	absorb absorber
	bufs   sync.Pool
}

func newStateless(conn *udpSock) *stateless {
	return &stateless{conn: conn, absorb: absorber{ttl: absorbTTL}, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// answer writes a final answer to req, received from src, and, for a
// REGISTER with credentials, keeps it for retransmissions. The answer is
// written straight from the request (writeAnswer), not built as a
// sip.Response first.
func (s *stateless) answer(req *sip.Request, src netip.AddrPort, status int, reason string, extra []sip.Header, now time.Time, limit int) error {
	buf := s.bufs.Get().(*bytes.Buffer)
	defer s.bufs.Put(buf)
	buf.Reset()
	writeAnswer(buf, req, src, status, reason, extra)
	if limit > 0 && buf.Len() > limit {
		return ErrTooLarge
	}
	if req.Method == sip.REGISTER && status >= 200 && req.GetHeader("Authorization") != nil {
		// kept before it leaves: the retransmission may follow at once
		s.absorb.put(absorbKey(req), bytes.Clone(buf.Bytes()), now)
	}
	_, err := s.conn.WriteToUDPAddrPort(buf.Bytes(), src)
	return err
}

// writeAnswer writes the final answer (status >= 200) to req, received from
// src, into buf: what sip.NewResponseFromRequest and StringWrite give, with
// the stateless To tag (statelessTag) when the request had none and extra
// after the copied headers, without cloning a header or making a random To
// tag only to replace it.
func writeAnswer(buf *bytes.Buffer, req *sip.Request, src netip.AddrPort, status int, reason string, extra []sip.Header) {
	line := func(h sip.Header) {
		h.StringWrite(buf)
		buf.WriteString("\r\n")
	}
	buf.WriteString("SIP/2.0 ")
	buf.Write(strconv.AppendInt(buf.AvailableBuffer(), int64(status), 10))
	buf.WriteByte(' ')
	buf.WriteString(reason)
	buf.WriteString("\r\n")
	// RFC 3261 §20, table 3: Record-Route is copied into 2xx (and 18x)
	// answers, except to REGISTER.
	copyRR := req.Method != sip.REGISTER && !req.IsAck() && status < 300
	top := true
	for _, h := range req.Headers() {
		switch h := h.(type) {
		case *sip.ViaHeader:
			// RFC 3581 §4: an empty rport on the top Via gets the source
			// port, with received.
			if v, ok := h.Params.Get("rport"); top && ok && v == "" && src.IsValid() {
				h = h.Clone()
				h.Params.Add("rport", strconv.Itoa(int(src.Port())))
				h.Params.Add("received", src.Addr().String())
			}
			top = false
			line(h)
		case *sip.RecordRouteHeader:
			if copyRR {
				line(h)
			}
		}
	}
	if h := req.From(); h != nil {
		line(h)
	}
	if h := req.To(); h != nil {
		h.StringWrite(buf)
		if !h.Params.Has("tag") {
			buf.WriteString(";tag=")
			buf.WriteString(statelessTag(req))
		}
		buf.WriteString("\r\n")
	}
	if h := req.CallID(); h != nil {
		line(h)
	}
	if h := req.CSeq(); h != nil {
		line(h)
	}
	for _, h := range extra {
		line(h)
	}
	buf.WriteString("Content-Length: 0\r\n\r\n")
}

// statelessTag is the To tag of a stateless answer: the same for every
// retransmission of a request (RFC 3261 §8.2.6.2), from its Call-ID, CSeq
// and branch.
func statelessTag(req *sip.Request) string {
	h := fnv.New64a()
	if c := req.CallID(); c != nil {
		h.Write([]byte(c.Value()))
	}
	if c := req.CSeq(); c != nil {
		h.Write(strconv.AppendUint(nil, uint64(c.SeqNo), 10))
	}
	if v := req.Via(); v != nil {
		b, _ := v.Params.Get("branch")
		h.Write([]byte(b))
	}
	return statelessTagPrefix + strconv.FormatUint(h.Sum64(), 36)
}

// absorbKey identifies a request's retransmissions: Call-ID, CSeq number
// and the top Via's branch.
func absorbKey(req *sip.Request) string {
	var b []byte
	if c := req.CallID(); c != nil {
		b = append(b, c.Value()...)
	}
	b = append(b, 0)
	if c := req.CSeq(); c != nil {
		b = strconv.AppendUint(b, uint64(c.SeqNo), 10)
	}
	b = append(b, 0)
	if v := req.Via(); v != nil {
		br, _ := v.Params.Get("branch")
		b = append(b, br...)
	}
	return string(b)
}

// absorber keeps stateless answers for retransmissions in two generations:
// an entry lives between ttl and 2·ttl, and expiring costs one map swap.
type absorber struct {
	ttl       time.Duration
	mu        sync.Mutex
	cur, prev map[string][]byte
	since     time.Time // when cur started
}

func (a *absorber) rotate(now time.Time) {
	if a.cur == nil {
		a.cur, a.since = map[string][]byte{}, now
		return
	}
	if now.Sub(a.since) >= a.ttl {
		a.prev, a.cur, a.since = a.cur, make(map[string][]byte, len(a.cur)), now
	}
}

func (a *absorber) put(key string, b []byte, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rotate(now)
	a.cur[key] = b
}

// claim returns the answer kept for key and true when key was seen before
// (the answer is nil while the first request is still being served);
// otherwise it marks key as being served and returns false.
func (a *absorber) claim(key string, now time.Time) ([]byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rotate(now)
	if b, ok := a.cur[key]; ok {
		return b, true
	}
	if b, ok := a.prev[key]; ok {
		return b, true
	}
	a.cur[key] = nil
	return nil, false
}

// len returns how many answers are kept.
func (a *absorber) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.cur) + len(a.prev)
}
