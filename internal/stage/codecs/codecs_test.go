package codecs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/sdpfilter"
	"github.com/sipward/sipward/internal/siptest"
)

func mustSet(t testing.TB, names ...string) Set {
	t.Helper()
	s, err := sdpfilter.ParseSet(names)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readSDP(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".sdp"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// invite parses a request of method with body of Content-Type ct (none
// without a body; application/sdp when empty with one).
func invite(t testing.TB, method, ct string, body []byte) *sip.Request {
	t.Helper()
	return siptest.Req{Method: sip.RequestMethod(method), User: "+442071234567",
		From: "1001", FromHost: "198.51.100.7", CallID: "a84b4c76e66710@198.51.100.7", CSeq: 314159,
		Via: "198.51.100.7:5060", Contact: "sip:1001@198.51.100.7:5060", ContentType: ct, Body: body}.Msg(t)
}

type recorder struct {
	called int
}

func (n *recorder) Name() string { return "next" }

func (n *recorder) ServeSIP(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
	n.called++
	return pipeline.Answered("next", 200), nil
}

// policy is a fixed Policy that counts its calls.
type policy struct {
	set   Set
	srtp  bool
	calls int
}

func (p *policy) get(*pipeline.Request) (Set, bool) {
	p.calls++
	return p.set, p.srtp
}

func TestStage(t *testing.T) {
	g729 := readSDP(t, "offer-g729")
	golden, err := os.ReadFile(filepath.Join("testdata", "g729-removed.golden"))
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		Status   int
		Reason   string
		Stage    string
		Headers  []string
		Next     bool
		Offer    string
		Policy   int    // calls
		Outcome  string // counted outcome, "" for none
		WhyParts []string
	}
	tests := []struct {
		name   string
		method string
		ct     string
		body   []byte
		offer  []byte // r.Offer set by an earlier stage
		pol    policy
		want   got
	}{
		{
			name: "G729 removed", method: "INVITE", ct: "application/sdp", body: g729,
			pol:  policy{set: mustSet(t, "G729")},
			want: got{Next: true, Offer: string(golden), Policy: 1, Outcome: "changed"},
		},
		{
			name: "content type with parameters, upper case", method: "INVITE", ct: "Application/SDP ; charset=utf-8", body: g729,
			pol:  policy{set: mustSet(t, "G729")},
			want: got{Next: true, Offer: string(golden), Policy: 1, Outcome: "changed"},
		},
		{
			name: "nothing matched", method: "INVITE", ct: "application/sdp", body: g729,
			pol:  policy{set: mustSet(t, "opus")},
			want: got{Next: true, Policy: 1, Outcome: "unchanged"},
		},
		{
			name: "nothing left", method: "INVITE", ct: "application/sdp", body: g729,
			pol: policy{set: mustSet(t, "PCMU", "PCMA", "G729")},
			want: got{Status: 488, Reason: "Not Acceptable Here", Stage: "codecs", Policy: 1, Outcome: "nothing_left",
				Headers:  []string{`Warning: 305 sipward "Incompatible media format"`},
				WhyParts: []string{"audio stream 1", "PCMU,PCMA,G729"}},
		},
		{
			name: "no SRTP", method: "INVITE", ct: "application/sdp", body: g729,
			pol: policy{srtp: true},
			want: got{Status: 488, Reason: "Not Acceptable Here", Stage: "codecs", Policy: 1, Outcome: "no_srtp",
				Headers:  []string{`Warning: 302 sipward "Incompatible transport protocol"`},
				WhyParts: []string{"audio stream 1", `"RTP/AVP"`}},
		},
		{
			name: "SRTP offered", method: "INVITE", ct: "application/sdp", body: readSDP(t, "offer-savp"),
			pol:  policy{srtp: true},
			want: got{Next: true, Policy: 1, Outcome: "unchanged"},
		},
		{
			name: "malformed passes unchanged", method: "INVITE", ct: "application/sdp", body: readSDP(t, "malformed-port"),
			pol:  policy{set: mustSet(t, "G729")},
			want: got{Next: true, Policy: 1, Outcome: "malformed"},
		},
		{
			name: "nothing restricted: not counted", method: "INVITE", ct: "application/sdp", body: g729,
			want: got{Next: true, Policy: 1},
		},
		{
			name: "late offer", method: "INVITE",
			pol:  policy{set: mustSet(t, "G729")},
			want: got{Next: true},
		},
		{
			name: "not SDP", method: "INVITE", ct: "text/plain", body: g729,
			pol:  policy{set: mustSet(t, "G729")},
			want: got{Next: true},
		},
		{
			name: "not an INVITE", method: "OPTIONS", ct: "application/sdp", body: g729,
			pol:  policy{set: mustSet(t, "G729")},
			want: got{Next: true},
		},
		{
			name: "offer set by an earlier stage is filtered", method: "INVITE", ct: "application/sdp",
			body:  readSDP(t, "offer-opus"),
			offer: g729,
			pol:   policy{set: mustSet(t, "G729")},
			want:  got{Next: true, Offer: string(golden), Policy: 1, Outcome: "changed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			pol := tt.pol
			stage, err := New(Config{Policy: pol.get, Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			next := &recorder{}
			chain := pipeline.Build(next, stage)
			msg := invite(t, tt.method, tt.ct, tt.body)
			before := msg.String()
			bodyBefore := bytes.Clone(msg.Body())
			r := &pipeline.Request{Msg: msg, Transport: pipeline.UDP, Offer: tt.offer}
			res, err := chain.ServeSIP(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			g := got{Next: next.called > 0, Policy: pol.calls}
			if !res.Answered() {
				g.Status, g.Reason, g.Stage = res.Status, res.Reason, res.Stage
				for _, h := range res.Headers {
					g.Headers = append(g.Headers, h.Name()+": "+h.Value())
				}
				for _, part := range tt.want.WhyParts {
					if strings.Contains(res.Why, part) {
						g.WhyParts = append(g.WhyParts, part)
					}
				}
				if res.Why == "" {
					t.Error("rejection without a Why")
				}
			}
			if r.Offer != nil && !bytes.Equal(r.Offer, tt.offer) {
				g.Offer = string(r.Offer)
			}
			g.Outcome = countedOutcome(t, reg)
			if diff := cmp.Diff(tt.want, g); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if msg.String() != before || !bytes.Equal(msg.Body(), bodyBefore) {
				t.Error("the stage modified the inbound request")
			}
			wantTrace := "codecs"
			if !g.Next {
				wantTrace = ""
			}
			if got := strings.Join(r.Trace.Stages(), ","); got != wantTrace {
				t.Errorf("trace %q, want %q", got, wantTrace)
			}
		})
	}
}

// countedOutcome returns the one outcome label counted once in reg, or ""
// when none was counted; it fails on anything else.
func countedOutcome(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := ""
	series := 0
	for _, mf := range mfs {
		if mf.GetName() != "sipward_codecs_filtered_total" {
			t.Errorf("unexpected metric %s", mf.GetName())
			continue
		}
		for _, m := range mf.GetMetric() {
			series++
			switch v := m.GetCounter().GetValue(); v {
			case 0:
			case 1:
				if counted != "" {
					t.Errorf("two outcomes counted: %s and %s", counted, m.GetLabel()[0].GetValue())
				}
				counted = m.GetLabel()[0].GetValue()
			default:
				t.Errorf("outcome %s counted %v times", m.GetLabel()[0].GetValue(), v)
			}
		}
	}
	if series != len(sdpfilter.Outcomes) {
		t.Errorf("%d outcome series, want %d", series, len(sdpfilter.Outcomes))
	}
	return counted
}

func TestNew(t *testing.T) {
	if _, err := New(Config{}); err == nil || err.Error() != "stage/codecs: config: policy: is required" {
		t.Errorf("New without Policy: %v", err)
	}
	pol := &policy{}
	reg := prometheus.NewRegistry()
	for i := range 2 { // a chain rebuilt on reload registers again
		if _, err := New(Config{Policy: pol.get, Registerer: reg}); err != nil {
			t.Fatalf("New #%d: %v", i+1, err)
		}
	}
	if _, err := New(Config{Policy: pol.get}); err != nil {
		t.Errorf("New without Registerer: %v", err)
	}
	clash := prometheus.NewRegistry()
	clash.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "sipward_codecs_filtered_total", Help: "other"}))
	if _, err := New(Config{Policy: pol.get, Registerer: clash}); err == nil {
		t.Error("New registered over a clashing collector")
	}
}

// TestStageAllocs: an INVITE whose offer has nothing restricted passes
// without allocating.
func TestStageAllocs(t *testing.T) {
	pol := &policy{set: mustSet(t, "opus")}
	stage, err := New(Config{Policy: pol.get})
	if err != nil {
		t.Fatal(err)
	}
	chain := pipeline.Build(&recorder{}, stage)
	r := &pipeline.Request{Msg: invite(t, "INVITE", "application/sdp", readSDP(t, "offer-g729")), Transport: pipeline.UDP}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		r.Trace = pipeline.Trace{}
		if _, err := chain.ServeSIP(ctx, r); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || r.Offer != nil {
		t.Errorf("stage allocates %v times per run (Offer %q), want 0", allocs, r.Offer)
	}
}
