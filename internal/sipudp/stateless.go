package edge

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
// Which requests qualify is decided twice: cheaply on the raw datagram in
// the edge's UDP readers (method, To tag, credentials, source), and then on the
// parsed request. Every other UDP request (calls from known sources, INVITEs
// with credentials, in-dialog requests) gets one of the edge's own server
// transactions (servertx.go); TCP and TLS keep sipgo's.

import (
	"bytes"
	"context"
	"hash/fnv"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

// statelessTagPrefix starts the To tag of every stateless answer, so that
// the ACK of a stateless non-2xx answer to an INVITE is known without a
// transaction.
const statelessTagPrefix = "swsl-"

// absorbTTL is how long a stateless REGISTER answer is kept for
// retransmissions: Timer F (64·T1), the longest a UAC retransmits.
const absorbTTL = 64 * 500 * time.Millisecond

// statelessQueue bounds the datagrams waiting for a stateless worker; past it
// the UDP reader handles the request itself (back-pressure, nothing dropped).
const statelessQueue = 4096

type statelessJob struct {
	req *sip.Request
}

// stateless is the stateless half of the edge's UDP server.
type stateless struct {
	e      *Edge
	conn   *udpSock
	parser *sip.Parser
	jobs   chan statelessJob
	absorb absorber
	bufs   sync.Pool
}

func newStateless(e *Edge, conn *udpSock) *stateless {
	return &stateless{e: e, conn: conn, parser: sip.NewParser(), jobs: make(chan statelessJob, statelessQueue),
		absorb: absorber{ttl: absorbTTL}, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// workers starts the pool; they stop when ctx ends.
func (s *stateless) workers(ctx context.Context, wg *sync.WaitGroup) {
	n := max(8, 4*runtime.GOMAXPROCS(0)) // a worker may wait on Redis (nonce counts)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case j := <-s.jobs:
					s.e.serve(j.req, nil)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
}

// filter is sipgo's transport read filter: TCP and TLS go through next (the
// firewall). UDP datagrams reach sipgo only through the edge's readers
// (udpread.go), which ran the firewall, the stateless path and the
// transaction layers already: they pass.
func (s *stateless) filter(next sip.TransportReadFilter) sip.TransportReadFilter {
	return func(info sip.TransportReadProps, data []byte) ([]byte, error) {
		if info.Transport == "udp" || info.Transport == "UDP" || next == nil {
			return data, nil
		}
		return next(info, data)
	}
}

// take answers data statelessly when it qualifies; any other request is
// given to the edge's UDP server transactions (servertx.go). It reports
// whether the datagram was taken; responses, datagrams that do not parse and
// requests without an RFC 3261 branch are left to sipgo. inline serves a new
// request on the caller's goroutine instead of a worker.
func (s *stateless) take(data []byte, src netip.AddrPort, inline bool) bool {
	if len(data) < 8 {
		return false // a keepalive (CRLF), or nothing sipgo could parse either
	}
	if string(data[:4]) == "SIP/" {
		return s.takeResponse(data, src)
	}
	m, ok := scanRaw(data)
	if ok {
		switch m.method {
		case sip.ACK:
			if bytes.HasPrefix(m.toTag, []byte(statelessTagPrefix)) {
				// The ACK of a stateless non-2xx answer: nothing to do, and
				// nothing a parse could change (an ACK is never answered).
				s.e.m.statelessACKs.Inc()
				return true
			}
			ok = false
		case sip.REGISTER, sip.OPTIONS:
			ok = m.toTag == nil
		case sip.INVITE:
			ok = m.toTag == nil && !m.credentials && s.unknownSource(src.Addr().Unmap())
		}
	}
	msg, err := s.parser.ParseSIP(data)
	if err != nil {
		return false // sipgo parses it again and logs (rate-limited) why it failed
	}
	req, isReq := msg.(*sip.Request)
	if !isReq {
		return false
	}
	req.SetTransport("UDP")
	req.SetSource(src.String())
	if !ok || !s.qualifies(req) {
		return s.e.stx.take(req, src, inline)
	}
	if req.Method == sip.REGISTER && req.GetHeader("Authorization") != nil {
		// A retransmission gets the first answer; one that arrives while the
		// first is still being served is dropped (the answer is on its way).
		if b, seen := s.absorb.claim(absorbKey(req), s.e.now()); seen {
			if b != nil {
				_, _ = s.conn.WriteToUDPAddrPort(b, src)
			}
			s.e.m.absorbed.Inc()
			return true
		}
	}
	if inline {
		s.e.serve(req, nil)
		return true
	}
	select {
	case s.jobs <- statelessJob{req: req}:
	default:
		s.e.serve(req, nil)
	}
	return true
}

// takeResponse gives a response to the edge's UDP client transaction it
// answers (clienttx.go); one that matches none is left to sipgo's.
func (s *stateless) takeResponse(data []byte, src netip.AddrPort) bool {
	msg, err := s.parser.ParseSIP(data)
	if err != nil {
		return false
	}
	res, ok := msg.(*sip.Response)
	if !ok {
		return false
	}
	res.SetTransport("UDP")
	res.SetSource(src.String())
	return s.e.uct.take(res)
}

// unknownSource reports whether an INVITE from addr can only be challenged
// or refused: it is neither the core nor inside a sends endpoint's prefix.
func (s *stateless) unknownSource(addr netip.Addr) bool {
	snap := s.e.cfg.Snapshot()
	return snap != nil && !snap.IsCore(addr) && !snap.KnownSource(addr)
}

// qualifies is the check on the parsed request (scanRaw is only a sieve).
func (s *stateless) qualifies(req *sip.Request) bool {
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

// send writes a stateless answer to the request's source and, for a
// REGISTER with credentials, keeps it for retransmissions. The answer is
// written straight from the request (writeAnswer), not built as a
// sip.Response first.
func (s *stateless) send(r *pipeline.Request, status int, reason string, extra []sip.Header) error {
	buf := s.bufs.Get().(*bytes.Buffer)
	defer s.bufs.Put(buf)
	buf.Reset()
	writeAnswer(buf, r.Msg, r.Source, status, reason, extra)
	if r.Msg.Method == sip.REGISTER && status >= 200 && r.Msg.GetHeader("Authorization") != nil {
		// kept before it leaves: the retransmission may follow at once
		s.absorb.put(absorbKey(r.Msg), bytes.Clone(buf.Bytes()), r.Now)
	}
	_, err := s.conn.WriteToUDPAddrPort(buf.Bytes(), r.Source)
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

// rawMsg is what scanRaw learns from a datagram without parsing it.
type rawMsg struct {
	method      sip.RequestMethod
	toTag       []byte // nil: the To header has no tag (or no To header was seen)
	credentials bool   // an Authorization or Proxy-Authorization header
}

var rawMethods = [...]sip.RequestMethod{sip.INVITE, sip.ACK, sip.REGISTER, sip.OPTIONS}

// scanRaw reads the method of a request and, from its header lines, the To
// tag and whether it carries credentials. It is a sieve, not a parser: it
// allocates nothing and its answer is checked again on the parsed request.
// ok is false for responses and for methods never answered statelessly.
func scanRaw(data []byte) (m rawMsg, ok bool) {
	for _, meth := range rawMethods {
		if len(data) > len(meth) && string(data[:len(meth)]) == string(meth) && data[len(meth)] == ' ' {
			m.method, ok = meth, true
			break
		}
	}
	if !ok {
		return m, false
	}
	i := bytes.IndexByte(data, '\n')
	for i >= 0 && i+1 < len(data) {
		line := data[i+1:]
		end := bytes.IndexByte(line, '\n')
		if end >= 0 {
			line = line[:end]
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break // end of headers
		}
		name, value, found := bytes.Cut(line, []byte{':'})
		if found {
			name = bytes.TrimRight(name, " \t")
			switch {
			case equalFoldASCII(name, "to") || equalFoldASCII(name, "t"):
				m.toTag = rawTag(value)
			case equalFoldASCII(name, "authorization") || equalFoldASCII(name, "proxy-authorization"):
				m.credentials = true
			}
		}
		if end < 0 {
			break
		}
		i += 1 + end
	}
	return m, true
}

// rawTag returns the value of the tag parameter of a To header value (after
// the URI's closing '>' when there is one), or nil.
func rawTag(v []byte) []byte {
	if j := bytes.LastIndexByte(v, '>'); j >= 0 {
		v = v[j+1:]
	}
	for len(v) > 0 {
		j := bytes.IndexByte(v, ';')
		if j < 0 {
			return nil
		}
		v = v[j+1:]
		p := bytes.TrimLeft(v, " \t")
		if len(p) < 3 || !equalFoldASCII(p[:3], "tag") {
			continue
		}
		if q := bytes.TrimLeft(p[3:], " \t"); len(q) > 0 && q[0] == '=' {
			p = bytes.TrimLeft(q[1:], " \t")
			if k := bytes.IndexAny(p, "; \t\r"); k >= 0 {
				p = p[:k]
			}
			if len(p) == 0 {
				return nil
			}
			return p
		}
	}
	return nil
}

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
