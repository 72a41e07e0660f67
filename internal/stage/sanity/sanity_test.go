package sanity

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/sipward/sipward/internal/pipeline"
)

// parseFile parses testdata/<name>.sip as one datagram into a request.
func parseFile(t testing.TB, name string) *sip.Request {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".sip"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sip.ParseMessage(data)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		t.Fatalf("%s is not a request", name)
	}
	return req
}

// got is the part of a verdict the golden tests compare.
type got struct {
	Status  int
	Phrase  string
	Drop    bool
	Headers []string // "Name: value"
	Label   string   // metric reason label; "none" when passed
	MFNoted bool     // passed without Max-Forwards
}

func gotOf(v verdict) got {
	g := got{Status: v.res.Status, Phrase: v.res.Reason, Drop: v.res.Drop, Label: v.reason.String(), MFNoted: v.noMaxForwards}
	for _, h := range v.res.Headers {
		g.Headers = append(g.Headers, h.Name()+": "+h.Value())
	}
	return g
}

var passed = got{Label: "none"}

func badRequest(label string) got { return got{Status: 400, Phrase: "Bad Request", Label: label} }

// TestGolden runs Check on the messages in testdata/*.sip, with one row per
// check. mutate, when set, edits the parsed request for faults sipgo's
// parser would not let through.
func TestGolden(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		transport string // default UDP
		cfg       Config
		mutate    func(*sip.Request)
		want      got
	}{
		{name: "valid INVITE", file: "invite-valid", want: passed},
		{name: "valid INVITE over TCP", file: "invite-valid", transport: pipeline.TCP, want: passed},
		{name: "valid INVITE over TLS", file: "invite-valid", transport: pipeline.TLS, want: passed},
		{name: "tel Request-URI", file: "invite-tel-uri", want: passed},

		// Max-Forwards.
		{name: "no Max-Forwards passes, noted", file: "invite-no-max-forwards", want: got{Label: "none", MFNoted: true}},
		{name: "Max-Forwards 0 on INVITE", file: "invite-max-forwards-zero",
			want: got{Status: 483, Phrase: "Too Many Hops", Label: "too_many_hops"}},
		{name: "Max-Forwards 0 on OPTIONS", file: "options-max-forwards-zero", want: passed},
		{name: "Max-Forwards 256", file: "invite-max-forwards-256", want: badRequest("max_forwards")},

		// CSeq.
		{name: "CSeq method mismatch", file: "invite-cseq-mismatch", want: badRequest("cseq")},
		{name: "CSeq over 2**31-1", file: "invite-valid",
			mutate: func(r *sip.Request) { r.CSeq().SeqNo = maxCSeq + 1 }, want: badRequest("cseq")},
		{name: "CSeq method in lower case", file: "invite-valid",
			mutate: func(r *sip.Request) { r.CSeq().MethodName = "invite" }, want: passed},
		{name: "no CSeq", file: "bye-no-cseq", want: got{Drop: true, Label: "missing_header"}},

		// Via.
		{name: "no Via", file: "invite-no-via", want: got{Drop: true, Label: "missing_header"}},
		{name: "top Via without branch (RFC 2543)", file: "invite-via-no-branch", want: passed},
		{name: "top Via SIP/3.0", file: "invite-via-version", want: badRequest("via")},
		{name: "top Via without host", file: "invite-valid",
			mutate: func(r *sip.Request) { r.Via().Host = "" }, want: badRequest("via")},

		// From, To, Call-ID.
		{name: "From without tag (RFC 2543)", file: "invite-from-no-tag", want: passed},
		{name: "From tag in upper case", file: "invite-valid",
			mutate: func(r *sip.Request) { r.From().Params = sip.HeaderParams{{K: "TAG", V: "x"}} }, want: passed},
		{name: "no Call-ID", file: "invite-no-call-id", want: got{Drop: true, Label: "missing_header"}},
		{name: "two From", file: "invite-two-from", want: badRequest("duplicate_header")},
		{name: "REGISTER To tel:", file: "register-tel-to", want: badRequest("aor_scheme")},

		// IPv6 references (RFC 5118 §4.3, §4.10).
		{name: "IPv6 Request-URI", file: "invite-valid",
			mutate: func(r *sip.Request) { r.Recipient.Host = "[2001:db8::10:5070]" }, want: passed},
		{name: "IPv6 Request-URI with embedded IPv4", file: "invite-valid",
			mutate: func(r *sip.Request) { r.Recipient.Host = "[2001:db8::192.0.2.1]" }, want: passed},
		{name: "IPv6 Request-URI, three colons", file: "invite-valid",
			mutate: func(r *sip.Request) { r.Recipient.Host = "[2001:db8:::192.0.2.1]" }, want: badRequest("ipv6_reference")},
		{name: "IPv4 in brackets in To", file: "invite-valid",
			mutate: func(r *sip.Request) { r.To().Address.Host = "[192.0.2.1]" }, want: badRequest("ipv6_reference")},
		{name: "unclosed bracket in From", file: "invite-valid",
			mutate: func(r *sip.Request) { r.From().Address.Host = "[2001:db8::1" }, want: badRequest("ipv6_reference")},

		// Content-Length and body.
		{name: "no Content-Length over TCP", file: "options-no-content-length", transport: pipeline.TCP,
			want: badRequest("content_length")},
		{name: "no Content-Length over UDP", file: "options-no-content-length", want: passed},
		// sipgo's datagram parser adds the Content-Length a body lacks.
		{name: "no Content-Length, with body, over UDP", file: "invite-no-content-length", want: passed},
		{name: "Content-Length above body over TCP", file: "invite-valid", transport: pipeline.TCP,
			mutate: func(r *sip.Request) { *r.ContentLength() = 500 }, want: badRequest("content_length")},
		{name: "Content-Length below body over TCP", file: "invite-valid", transport: pipeline.TCP,
			mutate: func(r *sip.Request) { *r.ContentLength() = 10 }, want: badRequest("content_length")},
		{name: "Content-Length above body over UDP", file: "invite-valid",
			mutate: func(r *sip.Request) { *r.ContentLength() = 500 }, want: badRequest("content_length")},
		{name: "Content-Length below body over UDP", file: "invite-valid",
			mutate: func(r *sip.Request) { *r.ContentLength() = 10 }, want: passed},
		{name: "body without Content-Type", file: "message-no-content-type", want: badRequest("content_type")},

		// Forbidden bytes.
		{name: "bare LF in a header value", file: "invite-lf-in-header", want: badRequest("bad_char")},
		{name: "NUL in a header value", file: "invite-nul-in-header", want: badRequest("bad_char")},
		{name: "LF in Call-ID", file: "invite-valid",
			mutate: func(r *sip.Request) { *r.CallID() = "abc\nX-Injected: 1" }, want: badRequest("bad_char")},
		{name: "CR in a URI parameter", file: "invite-valid",
			mutate: func(r *sip.Request) { r.To().Address.UriParams = sip.HeaderParams{{K: "user", V: "phone\r"}} },
			want:   badRequest("bad_char")},
		{name: "escaped NUL in a display name", file: "invite-valid",
			mutate: func(r *sip.Request) { r.From().DisplayName = `NUL:\` + "\x00" }, want: passed},

		// Start line and Request-URI.
		{name: "SIP/3.0", file: "options-version-3", want: got{Status: 505, Phrase: "Version Not Supported", Label: "version"}},
		{name: "http Request-URI", file: "options-http-uri",
			want: got{Status: 416, Phrase: "Unsupported URI Scheme", Label: "uri_scheme"}},
		{name: "method not a token", file: "invite-valid",
			mutate: func(r *sip.Request) { r.Method = "IN(VITE"; r.CSeq().MethodName = "IN(VITE" }, want: badRequest("method")},

		// Size limits.
		{name: "header count", file: "invite-valid", cfg: Config{MaxHeaders: 5}, want: badRequest("header_count")},
		{name: "header size", file: "invite-valid", cfg: Config{MaxHeaderBytes: 40}, want: badRequest("header_size")},
		{name: "message size", file: "invite-valid", cfg: Config{MaxMessageBytes: 400},
			want: got{Status: 513, Phrase: "Message Too Large", Label: "message_size"}},
		{name: "message size at the limit", file: "invite-valid", cfg: Config{MaxMessageBytes: 1024}, want: passed},

		// Extensions.
		{name: "Require 100rel", file: "invite-require-100rel",
			want: got{Status: 420, Phrase: "Bad Extension", Label: "bad_extension", Headers: []string{"Unsupported: 100rel"}}},
		{name: "Require 100rel, supported", file: "invite-require-100rel", cfg: Config{Supported: []string{"100REL"}}, want: passed},
		{name: "Require on CANCEL is ignored", file: "cancel-require", want: passed},

		// INVITE body and Accept.
		{name: "INVITE with text/plain body", file: "invite-text-body",
			want: got{Status: 415, Phrase: "Unsupported Media Type", Label: "media_type", Headers: []string{"Accept: application/sdp"}}},
		{name: "INVITE with text/plain body, accepted", file: "invite-text-body",
			cfg: Config{BodyTypes: []string{"application/sdp", "text/plain"}}, want: passed},
		{name: "INVITE accepting only text/html", file: "invite-accept-text",
			want: got{Status: 406, Phrase: "Not Acceptable", Label: "not_acceptable"}},

		// ACK is never answered.
		{name: "ACK with CSeq mismatch", file: "ack-cseq-mismatch", want: got{Drop: true, Label: "cseq"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewChecker(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			req := parseFile(t, tc.file)
			if tc.mutate != nil {
				tc.mutate(req)
			}
			transport := tc.transport
			if transport == "" {
				transport = pipeline.UDP
			}
			v := c.check(req, transport)
			if diff := cmp.Diff(tc.want, gotOf(v)); diff != "" {
				t.Errorf("check(%s) mismatch (-want +got):\n%s\nwhy: %s", tc.file, diff, v.res.Why)
			}
			res, ok := c.Check(req, transport)
			if ok != (v.reason == reasonNone) {
				t.Errorf("Check ok = %v, want %v", ok, v.reason == reasonNone)
			}
			if !ok {
				if res.Stage != Name {
					t.Errorf("Result.Stage = %q, want %q", res.Stage, Name)
				}
				if res.Why == "" {
					t.Error("Result.Why is empty")
				}
				if !isPrintableText(res.Why) {
					t.Errorf("Result.Why %q holds control bytes", res.Why)
				}
			}
		})
	}
}

// isPrintableText reports whether s has no control bytes (it may hold UTF-8).
func isPrintableText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

func TestCheckNil(t *testing.T) {
	c, err := NewChecker(Config{})
	if err != nil {
		t.Fatal(err)
	}
	res, ok := c.Check(nil, pipeline.UDP)
	if ok || !res.Drop {
		t.Errorf("Check(nil) = %+v, %v; want a drop", res, ok)
	}
}

func TestUnsupportedTags(t *testing.T) {
	c, err := NewChecker(Config{Supported: []string{"replaces"}})
	if err != nil {
		t.Fatal(err)
	}
	req := parseFile(t, "invite-valid")
	req.AppendHeader(sip.NewHeader("Require", "timer, replaces,100rel"))
	req.AppendHeader(sip.NewHeader("Proxy-Require", "TIMER, sec-agree"))
	req.AppendHeader(sip.NewHeader("Require", ""))
	res, ok := c.Check(req, pipeline.UDP)
	if ok {
		t.Fatal("Check passed a request with unsupported Require")
	}
	want := got{Status: 420, Phrase: "Bad Extension", Headers: []string{"Unsupported: timer, 100rel, sec-agree"}}
	g := gotOf(verdict{res: res})
	g.Label = ""
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" means valid
	}{
		{name: "zero", cfg: Config{}},
		{name: "negative max message", cfg: Config{MaxMessageBytes: -1}, wantErr: "max_message_bytes: -1"},
		{name: "negative max headers", cfg: Config{MaxHeaders: -1}, wantErr: "max_headers: -1"},
		{name: "negative max header", cfg: Config{MaxHeaderBytes: -5}, wantErr: "max_header_bytes: -5"},
		{name: "bad option tag", cfg: Config{Supported: []string{"100rel", "a b"}}, wantErr: `supported[1]: "a b"`},
		{name: "empty option tag", cfg: Config{Supported: []string{""}}, wantErr: `supported[0]: ""`},
		{name: "empty body types", cfg: Config{BodyTypes: []string{}}, wantErr: "body_types: empty"},
		{name: "wildcard body type", cfg: Config{BodyTypes: []string{"application/*"}}, wantErr: `body_types[0]: "application/*"`},
		{name: "body type with params", cfg: Config{BodyTypes: []string{"application/sdp;x=1"}}, wantErr: "body_types[0]"},
		{name: "two errors", cfg: Config{MaxHeaders: -1, BodyTypes: []string{"sdp"}}, wantErr: "max_headers: -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewChecker(tc.cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("NewChecker: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("NewChecker accepted %+v", tc.cfg)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("NewChecker error %q does not name %q", err, tc.wantErr)
			case tc.wantErr != "" && !strings.HasPrefix(err.Error(), "stage/sanity: "):
				t.Fatalf("NewChecker error %q lacks the stage prefix", err)
			}
			if _, err := New(tc.cfg); (err == nil) != (tc.wantErr == "") {
				t.Fatalf("New error = %v, NewChecker error = %q", err, tc.wantErr)
			}
			if err == nil && (c.maxMessage != DefaultMaxMessageBytes || c.maxHeaders != DefaultMaxHeaders ||
				c.maxHeader != DefaultMaxHeaderBytes || c.acceptHeader != "application/sdp") {
				t.Errorf("defaults not applied: %+v", c)
			}
		})
	}
}

// recorder is the next handler of the stage tests.
type recorder struct {
	called int
}

func (n *recorder) Name() string { return "next" }

func (n *recorder) ServeSIP(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
	n.called++
	return pipeline.Answered("next", 200), nil
}

func TestStage(t *testing.T) {
	reg := prometheus.NewRegistry()
	stage, err := New(Config{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file       string
		transport  string
		wantNext   bool
		wantStatus int
		wantDrop   bool
	}{
		{file: "invite-valid", transport: pipeline.UDP, wantNext: true, wantStatus: 200},
		{file: "invite-no-max-forwards", transport: pipeline.TCP, wantNext: true, wantStatus: 200},
		{file: "invite-cseq-mismatch", transport: pipeline.UDP, wantStatus: 400},
		{file: "invite-max-forwards-zero", transport: pipeline.TLS, wantStatus: 483},
		{file: "invite-no-via", transport: pipeline.UDP, wantDrop: true},
		{file: "options-no-content-length", transport: pipeline.TCP, wantStatus: 400},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			next := &recorder{}
			chain := pipeline.Build(next, stage)
			if chain.Name() != Name {
				t.Errorf("Name() = %q, want %q", chain.Name(), Name)
			}
			r := &pipeline.Request{Msg: parseFile(t, tc.file), Transport: tc.transport}
			res, err := chain.ServeSIP(context.Background(), r)
			if err != nil {
				t.Fatalf("ServeSIP error: %v", err)
			}
			if (next.called == 1) != tc.wantNext {
				t.Errorf("next called %d times, want called = %v", next.called, tc.wantNext)
			}
			if res.Status != tc.wantStatus || res.Drop != tc.wantDrop {
				t.Errorf("Result = %+v, want status %d drop %v", res, tc.wantStatus, tc.wantDrop)
			}
			if tc.wantNext {
				if !res.Answered() || res.Stage != "next" {
					t.Errorf("Result %+v is not next's, unchanged", res)
				}
				if diff := cmp.Diff([]string{Name}, r.Trace.Stages()); diff != "" {
					t.Errorf("trace (-want +got):\n%s", diff)
				}
			} else {
				if res.Stage != Name {
					t.Errorf("Result.Stage = %q, want %q", res.Stage, Name)
				}
				if r.Trace.N != 0 {
					t.Errorf("trace %v records a stopped request as passed", r.Trace.Stages())
				}
			}
		})
	}

	wantCounts := map[string]float64{
		`sipward_sanity_rejected_total{reason="cseq"}`:           1,
		`sipward_sanity_rejected_total{reason="too_many_hops"}`:  1,
		`sipward_sanity_rejected_total{reason="missing_header"}`: 1,
		`sipward_sanity_rejected_total{reason="content_length"}`: 1,
		`sipward_sanity_rejected_total{reason="via"}`:            0,
		`sipward_sanity_max_forwards_absent_total`:               1,
	}
	counts := gather(t, reg)
	for k, want := range wantCounts {
		if got, ok := counts[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if n := len(counts); n != int(numReasons)-1+1 {
		t.Errorf("%d series, want one per reason plus max_forwards_absent (%d)", n, int(numReasons))
	}
}

// gather returns every series of reg as "name{label="value"}" → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[seriesName(mf, m)] = m.GetCounter().GetValue()
		}
	}
	return out
}

func seriesName(mf *dto.MetricFamily, m *dto.Metric) string {
	name := mf.GetName()
	var labels []string
	for _, l := range m.GetLabel() {
		labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
	}
	if len(labels) > 0 {
		name += "{" + strings.Join(labels, ",") + "}"
	}
	return name
}

// TestNewTwice: a chain rebuilt on reload registers on the same registry
// again and shares the counters.
func TestNewTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	for i := 0; i < 2; i++ {
		stage, err := New(Config{Registerer: reg})
		if err != nil {
			t.Fatalf("New #%d: %v", i+1, err)
		}
		chain := pipeline.Build(&recorder{}, stage)
		r := &pipeline.Request{Msg: parseFile(t, "invite-cseq-mismatch"), Transport: pipeline.UDP}
		if _, err := chain.ServeSIP(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if got := gather(t, reg)[`sipward_sanity_rejected_total{reason="cseq"}`]; got != 2 {
		t.Errorf("cseq rejections = %v, want 2", got)
	}
}

func TestNilRegisterer(t *testing.T) {
	stage, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	chain := pipeline.Build(&recorder{}, stage)
	r := &pipeline.Request{Msg: parseFile(t, "invite-cseq-mismatch"), Transport: pipeline.UDP}
	if res, err := chain.ServeSIP(context.Background(), r); err != nil || res.Status != 400 {
		t.Fatalf("ServeSIP = %+v, %v", res, err)
	}
}

// TestReadme: the README has the stage sections and lists every metric the
// stage exports; the metric names pass promlint and follow
// sipward_<stage>_<thing>_total.
func TestReadme(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, section := range []string{"Name", "Description", "Configuration", "Examples", "Metrics", "SIP responses"} {
		if !strings.Contains(readme, "\n## "+section+"\n") {
			t.Errorf("README.md lacks the section %q", section)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "sipward_sanity_") || !strings.HasSuffix(name, "_total") {
			t.Errorf("metric %s is not sipward_sanity_<thing>_total", name)
		}
		if !strings.Contains(readme, "`"+name+"`") {
			t.Errorf("README.md does not list metric %s", name)
		}
	}
	for r := reasonNone + 1; r < numReasons; r++ {
		if !strings.Contains(readme, "`"+r.String()+"`") {
			t.Errorf("README.md does not list reason label %q", r.String())
		}
	}
}
