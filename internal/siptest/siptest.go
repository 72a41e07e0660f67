// Package siptest builds SIP requests for tests: parsed messages in the
// shape a real peer sends them (Req), and pipeline requests around them
// (Request, Attach). Stage, B2BUA and registrar tests share it instead of
// each writing its own request builder. It is imported only by tests.
package siptest

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/snapshot"
)

// Req describes a request; the zero value of a field takes its default.
// Raw writes it with CRLF line endings and a Content-Length that matches
// Body.
type Req struct {
	Method   sip.RequestMethod // default INVITE
	URI      string            // Request-URI; default sip:<User>@<Host>
	User     string            // Request-URI and To user (the dialled number); default 442071234567
	Host     string            // Request-URI and To host; default edge.example.net
	From     string            // From user (the CLI); empty: none (sip:@host)
	FromHost string            // default pbx.example.com
	FromTag  string            // default 1928301774
	ToTag    string            // empty: an initial request
	CallID   string            // default a84b4c76e66710@pbx.example.com
	CSeq     uint32            // default 1
	Via      string            // the top Via's sent-by, with any parameters before branch (";rport"); default 192.0.2.10:5060
	Branch   string            // default z9hG4bK776asdhds
	Contact  string            // Contact URI; empty: none
	Headers  []string          // extra header lines, before Content-Type
	// Transport is the top Via's transport, upper-cased (pipeline.TCP gives
	// SIP/2.0/TCP); default UDP.
	Transport string
	// ContentType is the body's type; empty with a Body means application/sdp.
	ContentType string
	Body        []byte
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Raw returns the request as a peer would send it.
func (q Req) Raw() string {
	method := q.Method
	if method == "" {
		method = sip.INVITE
	}
	user, host := or(q.User, "442071234567"), or(q.Host, "edge.example.net")
	uri := or(q.URI, "sip:"+user+"@"+host)
	cseq := q.CSeq
	if cseq == 0 {
		cseq = 1
	}
	to := "<sip:" + user + "@" + host + ">"
	if q.ToTag != "" {
		to += ";tag=" + q.ToTag
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, uri)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=%s\r\n", strings.ToUpper(or(q.Transport, "UDP")), or(q.Via, "192.0.2.10:5060"), or(q.Branch, "z9hG4bK776asdhds"))
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", q.From, or(q.FromHost, "pbx.example.com"), or(q.FromTag, "1928301774"))
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", or(q.CallID, "a84b4c76e66710@pbx.example.com"))
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", cseq, method)
	if q.Contact != "" {
		fmt.Fprintf(&b, "Contact: <%s>\r\n", q.Contact)
	}
	for _, h := range q.Headers {
		b.WriteString(h + "\r\n")
	}
	if len(q.Body) > 0 || q.ContentType != "" {
		b.WriteString("Content-Type: " + or(q.ContentType, "application/sdp") + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(q.Body)) + "\r\n\r\n")
	b.Write(q.Body)
	return b.String()
}

// Msg parses Raw; the test fails if it does not parse.
func (q Req) Msg(t testing.TB) *sip.Request {
	t.Helper()
	return Parse(t, q.Raw())
}

// Parse parses raw as a request; the test fails if it is not one.
func Parse(t testing.TB, raw string) *sip.Request {
	t.Helper()
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatalf("siptest: parse: %v\n%s", err, raw)
	}
	req, ok := m.(*sip.Request)
	if !ok {
		t.Fatalf("siptest: not a request:\n%s", raw)
	}
	return req
}

// Request wraps msg as the edge hands it to the chain: from src (an
// address:port) over UDP, arriving at now.
func Request(msg *sip.Request, src string, now time.Time) *pipeline.Request {
	return &pipeline.Request{Msg: msg, Source: netip.MustParseAddrPort(src), Transport: pipeline.UDP, Now: now}
}

// Attach sets r.Principal as identify or authn would from r.Auth: the IP
// endpoint or SIP user of r.Auth in r.Snap (nil when r.Auth names neither
// or r.Snap has no such object). It returns r.
func Attach(r *pipeline.Request) *pipeline.Request {
	r.Principal = Principal(r.Snap, r.Auth)
	return r
}

// Principal returns the principal that auth names in s, or nil.
func Principal(s *snapshot.Snapshot, auth pipeline.Identity) *snapshot.Principal {
	if s == nil {
		return nil
	}
	switch {
	case auth.EndpointID != 0:
		if ep := s.Endpoint(auth.EndpointID); ep != nil {
			return &ep.Principal
		}
	case auth.SIPUserID != 0:
		if u := s.UserByID(auth.SIPUserID); u != nil {
			return &u.Principal
		}
	}
	return nil
}
