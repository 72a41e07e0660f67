// Package sanity is the pipeline stage that makes the RFC 3261 checks
// sipgo's parser does not: Max-Forwards, CSeq against the method, the top
// Via, From tag, Content-Length against the body, size limits, CR/LF/NUL
// in header values, the Request-URI scheme, Require option tags and the
// INVITE body type.
//
// A malformed request is answered 400 (or a more specific 4xx/5xx) when a
// response can be built, and dropped when it cannot (no Via, CSeq, From, To
// or Call-ID) or when it is an ACK, which is never answered. The stage runs
// before identification, so it costs no store access, and it is
// allocation-free for a request that passes.
package sanity

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

// Name is the stage name, as it appears in traces and Result.Stage.
const Name = "sanity"

// handler is the stage in the chain.
type handler struct {
	next    pipeline.Handler
	check   *Checker
	metrics *metrics
}

// Name returns "sanity".
func (h *handler) Name() string { return Name }

// ServeSIP checks r.Msg. A request that passes goes to next and next's
// Result is returned unchanged; one that fails stops the chain with a
// Result (a rejection or a drop), never an error.
func (h *handler) ServeSIP(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
	v := h.check.check(r.Msg, r.Transport)
	if v.reason != reasonNone {
		h.metrics.rejected[v.reason].Inc()
		return v.res, nil
	}
	if v.noMaxForwards {
		h.metrics.maxForwardsAbsent.Inc()
	}
	r.Trace.Pass(Name)
	return h.next.ServeSIP(ctx, r)
}

// Check checks one request received over transport (pipeline.UDP, TCP or
// TLS). It returns ok when the request passes; otherwise the Result says
// how to answer (or Drop). It does not modify req and, for a request that
// passes, does not allocate.
//
// Check expects a request built by sipgo's parser: it reads the header
// fields as the parser types them (a Max-Forwards added by hand as a
// generic header is not seen as one).
func (c *Checker) Check(req *sip.Request, transport string) (res pipeline.Result, ok bool) {
	v := c.check(req, transport)
	return v.res, v.reason == reasonNone
}

// verdict is the outcome of check, with what the stage counts.
type verdict struct {
	res           pipeline.Result
	reason        reason
	noMaxForwards bool // passed without Max-Forwards (counted, not rejected)
}

// maxCSeq is the largest CSeq sequence number, 2**31-1 (RFC 3261 §8.1.1.5).
const maxCSeq = 1<<31 - 1

// magicCookie starts every RFC 3261 branch (§8.1.1.7).
const magicCookie = "z9hG4bK"

// check runs the checks in the order of RFC 3261 §8.2 (syntax, then header
// inspection, then content), so that the most basic fault is the one
// reported.
func (c *Checker) check(req *sip.Request, transport string) verdict {
	if req == nil {
		return drop(reasonMissingHeader, "no request")
	}
	isACK := req.Method == sip.ACK
	fail := func(status int, phrase string, why reason, detail string, hdrs ...sip.Header) verdict {
		if isACK {
			// An ACK is never answered (RFC 3261 §17.2.3); nothing to do but drop.
			return drop(why, "ACK: "+detail)
		}
		return verdict{res: pipeline.Reject(Name, status, phrase, detail, hdrs...), reason: why}
	}

	var s scan
	s.walk(c, req)

	// A response copies Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2);
	// without them there is nothing to answer to.
	switch {
	case s.via == nil:
		return drop(reasonMissingHeader, "no Via")
	case s.cseq == nil:
		return drop(reasonMissingHeader, "no CSeq")
	case s.from == nil:
		return drop(reasonMissingHeader, "no From")
	case s.to == nil:
		return drop(reasonMissingHeader, "no To")
	case s.callID == nil:
		return drop(reasonMissingHeader, "no Call-ID")
	}

	// Start line.
	if !isToken(string(req.Method)) {
		return fail(400, "Bad Request", reasonMethod, "request method is not a token")
	}
	if !strings.EqualFold(req.SipVersion, "SIP/2.0") {
		return fail(505, "Version Not Supported", reasonVersion, "SIP version is not SIP/2.0")
	}

	// The message as a whole.
	switch {
	case s.badByte:
		return fail(400, "Bad Request", reasonBadChar, "CR, LF or NUL in "+short(s.badWhere))
	case s.headers > c.maxHeaders:
		return fail(400, "Bad Request", reasonHeaderCount, fmt.Sprintf("%d header fields, limit %d", s.headers, c.maxHeaders))
	case s.longest > c.maxHeader:
		return fail(400, "Bad Request", reasonHeaderSize, fmt.Sprintf("a header field of about %d bytes, limit %d", s.longest, c.maxHeader))
	case s.size+len(req.Body()) > c.maxMessage:
		return fail(513, "Message Too Large", reasonMessageSize, fmt.Sprintf("message of about %d bytes, limit %d", s.size+len(req.Body()), c.maxMessage))
	case s.duplicate != "":
		return fail(400, "Bad Request", reasonDuplicate, "more than one "+s.duplicate+" header field")
	}

	// Request-URI.
	u := &req.Recipient
	if !isScheme(u.Scheme, "sip") && !isScheme(u.Scheme, "sips") && !isScheme(u.Scheme, "tel") {
		return fail(416, "Unsupported URI Scheme", reasonURIScheme, "Request-URI scheme is not sip, sips or tel")
	}
	if len(u.Headers) > 0 {
		// RFC 3261 §19.1.5 / RFC 4475 §3.1.2.11 (escruri): headers are not
		// allowed in a Request-URI.
		return fail(400, "Bad Request", reasonURIHeaders, "Request-URI carries escaped headers")
	}
	// An IPv6 reference (§25.1) holds an IPv6 address: sipgo keeps whatever
	// is between the brackets (RFC 5118 §4.10: three colons before an
	// embedded IPv4 address is not one).
	for _, h := range [...]struct {
		name string
		host string
	}{{"Request-URI", u.Host}, {"From", s.from.Address.Host}, {"To", s.to.Address.Host}} {
		if !validIPv6Reference(h.host) {
			return fail(400, "Bad Request", reasonIPv6Reference, h.name+" host is a bracketed reference to no IPv6 address")
		}
	}

	// Max-Forwards (RFC 3261 §16.3 step 3; RFC 7332 for a B2BUA). A missing
	// Max-Forwards passes: the edge builds leg B's own, as a proxy would add
	// one (§16.6 step 3). The stage counts it.
	noMF := s.maxForwards == nil
	if !noMF {
		switch mf := uint32(*s.maxForwards); {
		case mf > 255:
			return fail(400, "Bad Request", reasonMaxForwards, fmt.Sprintf("Max-Forwards %d is over 255", mf))
		case mf == 0 && req.Method != sip.OPTIONS:
			// OPTIONS is answered by the edge itself (§16.3 step 3 allows
			// it); anything else would be forwarded.
			return fail(483, "Too Many Hops", reasonTooManyHops, "Max-Forwards is 0")
		}
	}

	// CSeq (§8.1.1.5). sipgo upper-cases the request method but not the CSeq
	// method, so they are compared without case.
	if s.cseq.SeqNo > maxCSeq {
		return fail(400, "Bad Request", reasonCSeq, "CSeq number is over 2**31-1")
	}
	if !strings.EqualFold(string(s.cseq.MethodName), string(req.Method)) {
		return fail(400, "Bad Request", reasonCSeq, fmt.Sprintf("CSeq method %q does not match request method %q",
			short(string(s.cseq.MethodName)), short(string(req.Method))))
	}

	// Top Via (§8.1.1.7, §18.2.1).
	v := s.via
	if !strings.EqualFold(v.ProtocolName, "SIP") || v.ProtocolVersion != "2.0" || !isToken(v.Transport) || v.Host == "" {
		return fail(400, "Bad Request", reasonVia, "top Via is not SIP/2.0/<transport> <host>")
	}
	// A top Via without a branch is an RFC 2543 request (RFC 4475 §3.1.1.7
	// longreq, §3.4.1 inv2543): its transaction is matched the RFC 2543 way
	// (§17.2.3), so it passes.
	branch, _ := v.Params.Get("branch")
	if branch == magicCookie {
		// RFC 4475 §3.2.1 (badbranch).
		return fail(400, "Bad Request", reasonBranch, "top Via branch is the bare magic cookie")
	}

	// A From without a tag is an RFC 2543 request too: its tag is null
	// (§12.1.1, §19.3), and it passes.
	// A REGISTER's To is the address of record: a SIP or SIPS URI (§10.2,
	// RFC 4475 §3.3.4 unksm2).
	if req.Method == sip.REGISTER && !isScheme(s.to.Address.Scheme, "sip") && !isScheme(s.to.Address.Scheme, "sips") {
		return fail(400, "Bad Request", reasonAOR, "REGISTER To is not a sip or sips URI")
	}

	// Content-Length against the body (§7.5, §18.3, §20.14). Over UDP sipgo
	// already cuts the body to Content-Length and refuses a shorter one.
	body := len(req.Body())
	stream := strings.EqualFold(transport, pipeline.TCP) || strings.EqualFold(transport, pipeline.TLS)
	if s.contentLength == nil {
		if stream {
			return fail(400, "Bad Request", reasonContentLength, "no Content-Length on a stream transport")
		}
	} else if cl := int(*s.contentLength); (stream && cl != body) || cl > body {
		return fail(400, "Bad Request", reasonContentLength, fmt.Sprintf("Content-Length %d, body %d bytes", cl, body))
	}
	if body > 0 && s.contentType == nil {
		return fail(400, "Bad Request", reasonContentType, "body without Content-Type")
	}

	// Extensions (§8.2.2.3). Not for ACK or CANCEL, which must not carry
	// Require or Proxy-Require (§8.2.2.3, §9.1).
	if s.unsupported && req.Method != sip.ACK && req.Method != sip.CANCEL {
		tags := c.unsupportedTags(req)
		return fail(420, "Bad Extension", reasonExtension, "unsupported option tags: "+short(tags),
			sip.NewHeader("Unsupported", tags))
	}

	// Content (§8.2.3) and what the caller accepts back (§21.4.7). Only
	// INVITE: the body is the SDP offer the edge must understand.
	if req.Method == sip.INVITE {
		if body > 0 && !c.acceptable(mediaType(string(*s.contentType))) {
			return fail(415, "Unsupported Media Type", reasonMediaType, "INVITE body is not "+c.acceptHeader,
				sip.NewHeader("Accept", c.acceptHeader))
		}
		if s.acceptSeen && !s.acceptOK {
			return fail(406, "Not Acceptable", reasonAccept, "Accept allows none of "+c.acceptHeader)
		}
	}
	return verdict{noMaxForwards: noMF}
}

// validIPv6Reference reports whether host, when it is "[...]", holds an
// IPv6 address; a host without brackets is not its business.
func validIPv6Reference(host string) bool {
	if len(host) < 2 || host[0] != '[' {
		return true
	}
	if host[len(host)-1] != ']' {
		return false
	}
	a, err := netip.ParseAddr(host[1 : len(host)-1])
	return err == nil && a.Is6() && a.Zone() == ""
}

func drop(why reason, detail string) verdict {
	return verdict{res: pipeline.DropResult(Name, detail), reason: why}
}

// scan is one pass over the header fields: it finds the fields the checks
// need, counts and sizes them and looks for forbidden bytes, without
// allocating. The first Via is the top one; for the single-valued fields
// any repeat is reported (sipgo itself keeps the last one).
type scan struct {
	via           *sip.ViaHeader
	from          *sip.FromHeader
	to            *sip.ToHeader
	callID        *sip.CallIDHeader
	cseq          *sip.CSeqHeader
	maxForwards   *sip.MaxForwardsHeader
	contentLength *sip.ContentLengthHeader
	contentType   *sip.ContentTypeHeader
	acceptSeen    bool // a non-empty Accept field is present
	acceptOK      bool // an Accept field allows one of BodyTypes

	headers     int
	size        int    // approximate size of start line and header section
	longest     int    // approximate size of the largest header field
	duplicate   string // name of a repeated single-valued field
	badByte     bool
	badWhere    string // name of the field holding the bad byte
	unsupported bool   // Require or Proxy-Require names a tag not in Supported

	cur int      // size of the field being measured
	c   *Checker // for the Supported option tags
}

// walk fills s from req. c supplies the Supported option tags.
func (s *scan) walk(c *Checker, req *sip.Request) {
	s.c = c
	// Start line: method SP Request-URI SP version CRLF.
	s.cur = 0
	s.str(string(req.Method))
	s.uri(&req.Recipient)
	s.str(req.SipVersion)
	if s.badByte && s.badWhere == "" {
		s.badWhere = "the request line"
	}
	s.size = s.cur + 4

	hs := req.Headers()
	s.headers = len(hs)
	for _, h := range hs {
		s.cur = len(h.Name()) + 4 // ": " and CRLF
		bad := s.badByte
		switch h := h.(type) {
		case *sip.ViaHeader:
			if s.via == nil {
				s.via = h
			}
			s.str(h.ProtocolName)
			s.str(h.ProtocolVersion)
			s.str(h.Transport)
			s.str(h.Host)
			s.cur += 8 // slashes, space, port
			s.params(h.Params)
		case *sip.FromHeader:
			if s.from != nil {
				s.dup("From")
			}
			s.from = h
			s.nameAddr(h.DisplayName, &h.Address, h.Params)
		case *sip.ToHeader:
			if s.to != nil {
				s.dup("To")
			}
			s.to = h
			s.nameAddr(h.DisplayName, &h.Address, h.Params)
		case *sip.ContactHeader:
			s.nameAddr(h.DisplayName, &h.Address, h.Params)
		case *sip.CallIDHeader:
			if s.callID != nil {
				s.dup("Call-ID")
			}
			s.callID = h
			s.str(string(*h))
		case *sip.CSeqHeader:
			if s.cseq != nil {
				s.dup("CSeq")
			}
			s.cseq = h
			s.str(string(h.MethodName))
			s.cur += 11
		case *sip.MaxForwardsHeader:
			if s.maxForwards != nil {
				s.dup("Max-Forwards")
			}
			s.maxForwards = h
			s.cur += 3
		case *sip.ContentLengthHeader:
			if s.contentLength != nil {
				s.dup("Content-Length")
			}
			s.contentLength = h
			s.cur += 10
		case *sip.ContentTypeHeader:
			if s.contentType != nil {
				s.dup("Content-Type")
			}
			s.contentType = h
			s.str(string(*h))
		case *sip.RouteHeader:
			s.uri(&h.Address)
		case *sip.RecordRouteHeader:
			s.uri(&h.Address)
		case *sip.ReferToHeader:
			s.uri(&h.Address)
		case *sip.ReferredByHeader:
			s.nameAddr(h.DisplayName, &h.Address, h.Params)
		default:
			// Generic header: name and value are kept as received.
			name, value := h.Name(), h.Value()
			s.str(name)
			s.str(value)
			s.generic(name, value)
		}
		if !bad && s.badByte {
			s.badWhere = h.Name()
			if !isPrintable(s.badWhere) {
				s.badWhere = "a header name"
			}
		}
		s.size += s.cur
		if s.cur > s.longest {
			s.longest = s.cur
		}
	}
	s.size += 2 // empty line
}

func (s *scan) dup(name string) {
	if s.duplicate == "" {
		s.duplicate = name
	}
}

// str measures v and looks for bytes no header value may hold: CR or LF
// (quoted-pair excludes them, and folding is already undone by the parser)
// and NUL outside a quoted-pair (RFC 3261 §25.1; RFC 4475 intmeth has
// "\<NUL>" in a display name).
func (s *scan) str(v string) {
	s.cur += len(v)
	if s.badByte {
		return
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b <= '\r' && (b == '\r' || b == '\n' || b == 0 && (i == 0 || v[i-1] != '\\')) {
			s.badByte = true
			return
		}
	}
}

func (s *scan) params(p sip.HeaderParams) {
	for _, kv := range p {
		s.str(kv.K)
		s.str(kv.V)
		s.cur += 2
	}
}

func (s *scan) uri(u *sip.Uri) {
	s.str(u.Scheme)
	s.str(u.Raw())
	s.str(u.User)
	s.str(u.Password)
	s.str(u.Host)
	s.cur += 10 // ":", "@", port
	s.params(u.UriParams)
	s.params(u.Headers)
}

func (s *scan) nameAddr(display string, u *sip.Uri, p sip.HeaderParams) {
	s.str(display)
	s.cur += 5 // quotes, space, angle brackets
	s.uri(u)
	s.params(p)
}

// generic notes the generic header fields the checks use.
func (s *scan) generic(name, value string) {
	switch {
	case strings.EqualFold(name, "Accept"):
		// An empty Accept is ignored: RFC 3261 §20.1 reads it as "nothing
		// acceptable", which no INVITE sender means.
		if strings.TrimSpace(value) != "" {
			s.acceptSeen = true
			s.acceptOK = s.acceptOK || s.c.accepts(value)
		}
	case strings.EqualFold(name, "Require"), strings.EqualFold(name, "Proxy-Require"):
		if value != "" {
			s.unsupported = s.unsupported || !s.c.allSupported(value)
		}
	}
}

// allSupported reports whether every option tag in the comma-separated
// value is in Supported.
func (c *Checker) allSupported(value string) bool {
	for value != "" {
		var tag string
		tag, value, _ = strings.Cut(value, ",")
		if tag = strings.TrimSpace(tag); tag != "" && !c.supports(tag) {
			return false
		}
	}
	return true
}

func (c *Checker) supports(tag string) bool {
	for _, t := range c.supported {
		if strings.EqualFold(t, tag) {
			return true
		}
	}
	return false
}

// unsupportedTags lists, comma-separated and without repeats, the tags of
// req's Require and Proxy-Require fields that are not in Supported. It is
// only called to build a 420, so it may allocate.
func (c *Checker) unsupportedTags(req *sip.Request) string {
	var tags []string
	for _, h := range req.Headers() {
		name := h.Name()
		if !strings.EqualFold(name, "Require") && !strings.EqualFold(name, "Proxy-Require") {
			continue
		}
		for _, tag := range strings.Split(h.Value(), ",") {
			tag = strings.TrimSpace(tag)
			if tag == "" || c.supports(tag) || !isToken(tag) {
				continue
			}
			seen := false
			for _, t := range tags {
				seen = seen || strings.EqualFold(t, tag)
			}
			if !seen {
				tags = append(tags, tag)
			}
		}
	}
	if len(tags) == 0 {
		// Only non-token garbage was named; say so rather than echo it.
		return "unknown"
	}
	return strings.Join(tags, ", ")
}

// acceptable reports whether the media type mt is one of BodyTypes.
func (c *Checker) acceptable(mt string) bool {
	for _, t := range c.bodyTypes {
		if strings.EqualFold(t, mt) {
			return true
		}
	}
	return false
}

// accepts reports whether an Accept value allows one of BodyTypes,
// directly or by a wildcard.
func (c *Checker) accepts(value string) bool {
	for value != "" {
		var r string
		r, value, _ = strings.Cut(value, ",")
		r = mediaType(r)
		if r == "*/*" {
			return true
		}
		typ, sub, _ := strings.Cut(r, "/")
		for _, t := range c.bodyTypes {
			ttyp, tsub, _ := strings.Cut(t, "/")
			if strings.EqualFold(typ, ttyp) && (sub == "*" || strings.EqualFold(sub, tsub)) {
				return true
			}
		}
	}
	return false
}

// mediaType returns the type/subtype of a Content-Type or Accept value,
// without parameters or surrounding space.
func mediaType(v string) string {
	v, _, _ = strings.Cut(v, ";")
	return strings.TrimSpace(v)
}

func isScheme(scheme, want string) bool { return strings.EqualFold(scheme, want) }

// isToken reports whether s is an RFC 3261 token (§25.1).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("-.!%*_+`'~", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// isPrintable reports whether s is visible ASCII, safe for a log line.
func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// short cuts s for an operator-facing explanation; callers quote it.
func short(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
