package edge

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/siptest"
)

// recordingTx is a sip.ServerTransaction that records the responses sent on
// it, and fails them with err when set.
type recordingTx struct {
	mu    sync.Mutex
	resps []*sip.Response
	err   error
}

var _ sip.ServerTransaction = (*recordingTx)(nil)

func (tx *recordingTx) Respond(r *sip.Response) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.resps = append(tx.resps, r)
	return tx.err
}
func (tx *recordingTx) Acks() <-chan *sip.Request          { return nil }
func (tx *recordingTx) OnCancel(sip.FnTxCancel) bool       { return false }
func (tx *recordingTx) Terminate()                         {}
func (tx *recordingTx) OnTerminate(sip.FnTxTerminate) bool { return false }
func (tx *recordingTx) Done() <-chan struct{}              { return nil }
func (tx *recordingTx) Err() error                         { return nil }

func (tx *recordingTx) sent() []*sip.Response {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return append([]*sip.Response(nil), tx.resps...)
}

// parseRequest parses a request of method (an INVITE's ACK carries CSeq 1 ACK).
func parseRequest(t *testing.T, method string) *sip.Request {
	t.Helper()
	return siptest.Req{Method: sip.RequestMethod(method), From: "441110000001", Via: "192.0.2.1:5060"}.Msg(t)
}

// sentResponse is what a test compares of a response.
type sentResponse struct {
	Status  int
	Reason  string
	CallID  string
	CSeq    string
	Headers []string // the extra headers, "Name: value"
}

// extraHeaders are the names answer may add to a response built from a request.
var extraHeaders = []string{"Proxy-Authenticate", "WWW-Authenticate", "Retry-After", "Min-Expires", "Allow", "Contact"}

func sentOf(r *sip.Response) sentResponse {
	s := sentResponse{Status: r.StatusCode, Reason: r.Reason, CallID: r.CallID().Value(), CSeq: r.CSeq().Value()}
	for _, name := range extraHeaders {
		for _, h := range r.GetHeaders(name) {
			s.Headers = append(s.Headers, h.Name()+": "+h.Value())
		}
	}
	return s
}

func TestAnswer(t *testing.T) {
	const callID = "a84b4c76e66710@pbx.example.com"
	answered := func(status int, reason string, hdrs ...string) []sentResponse {
		return []sentResponse{{Status: status, Reason: reason, CallID: callID, CSeq: "1 INVITE", Headers: hdrs}}
	}
	tests := []struct {
		name   string
		method string
		res    pipeline.Result
		want   []sentResponse
	}{
		{"reject", "INVITE", pipeline.Reject("identify", 403, "Forbidden", "unknown source"),
			answered(403, "Forbidden")},
		{"reject with headers, in order", "INVITE",
			pipeline.Reject("authn", 407, "Proxy Authentication Required", "no credentials",
				sip.NewHeader("Proxy-Authenticate", `Digest realm="sipward", nonce="n", algorithm=SHA-256, qop="auth"`),
				sip.NewHeader("Proxy-Authenticate", `Digest realm="sipward", nonce="n", algorithm=MD5, qop="auth"`)),
			answered(407, "Proxy Authentication Required",
				`Proxy-Authenticate: Digest realm="sipward", nonce="n", algorithm=SHA-256, qop="auth"`,
				`Proxy-Authenticate: Digest realm="sipward", nonce="n", algorithm=MD5, qop="auth"`)},
		{"reply", "INVITE", pipeline.Reply("options", 200, "OK", "keepalive", sip.NewHeader("Allow", allow)),
			answered(200, "OK", "Allow: "+allow)},
		{"over a limit", "INVITE", pipeline.Reject("limits", 503, "Service Unavailable", "cps", sip.NewHeader("Retry-After", "1")),
			answered(503, "Service Unavailable", "Retry-After: 1")},
		{"drop sends nothing", "INVITE", pipeline.DropResult("firewall", "banned"), nil},
		{"answered sends nothing", "INVITE", pipeline.Answered("route", 200), nil},
		{"ack is never answered", "ACK", pipeline.Reject("identify", 403, "Forbidden", "unknown source"), nil},
		{"zero result", "INVITE", pipeline.Result{}, answered(500, "Server Internal Error")},
		{"status below 100", "INVITE", pipeline.Reject("x", 99, "Odd", ""), answered(500, "Server Internal Error")},
		{"status above 699", "INVITE", pipeline.Reject("x", 700, "Odd", ""), answered(500, "Server Internal Error")},
		{"negative status", "INVITE", pipeline.Reject("x", -403, "Forbidden", ""), answered(500, "Server Internal Error")},
		{"a 1xx is no final answer: 500", "INVITE", pipeline.Reject("x", 100, "Trying", ""), answered(500, "Server Internal Error")},
		{"status 699", "INVITE", pipeline.Reject("x", 699, "Custom", ""), answered(699, "Custom")},
		{"out-of-range status drops its reason, keeps headers", "INVITE",
			pipeline.Reject("x", 42, "secret detail", "", sip.NewHeader("Retry-After", "5")),
			answered(500, "Server Internal Error", "Retry-After: 5")},
		{"empty reason", "INVITE", pipeline.Reject("x", 486, "", ""), answered(486, "Error")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Edge{log: slog.New(slog.DiscardHandler)}
			tx := &recordingTx{}
			r := &pipeline.Request{Msg: parseRequest(t, tt.method), Source: netip.MustParseAddrPort("192.0.2.1:5060"),
				Transport: pipeline.UDP, Now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), Tx: tx}
			e.Answer(r, tt.res)
			var got []sentResponse
			for _, resp := range tx.sent() {
				got = append(got, sentOf(resp))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("responses (-want +got):\n%s", diff)
			}
		})
	}
}

// A transaction that cannot send is logged, not retried, and does not panic.
func TestAnswerSendFailure(t *testing.T) {
	e := &Edge{log: slog.New(slog.DiscardHandler)}
	tx := &recordingTx{err: errors.New("transport closed")}
	r := &pipeline.Request{Msg: parseRequest(t, "INVITE"), Source: netip.MustParseAddrPort("192.0.2.1:5060"), Tx: tx}
	e.Answer(r, pipeline.Reject("identify", 403, "Forbidden", ""))
	if n := len(tx.sent()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}
