package limits_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/siptest"
	"github.com/sipward/sipward/internal/stage/limits"
)

// invite parses an INVITE with the given Call-ID; toTag != "" makes it an
// in-dialog (re-)INVITE.
func invite(t testing.TB, callID, toTag string) *sip.Request {
	return parse(t, "INVITE", callID, toTag)
}

// parse parses a request of method with the given Call-ID from endpoint 7's
// PBX; toTag != "" makes it in-dialog.
func parse(t testing.TB, method, callID, toTag string) *sip.Request {
	t.Helper()
	return siptest.Req{Method: sip.RequestMethod(method), User: "4420", Host: "sipward.example",
		From: "100", FromHost: "192.0.2.10", FromTag: "f1", ToTag: toTag, CallID: callID,
		Via: "192.0.2.10:5060", Branch: "z9hG4bK" + callID, Contact: "sip:100@192.0.2.10:5060"}.Msg(t)
}

// request wraps msg as identified by IP as endpoint 7 of account 3.
func request(msg *sip.Request) *pipeline.Request {
	r := siptest.Request(msg, "192.0.2.10:5060", t0)
	r.Auth = pipeline.Identity{Method: pipeline.AuthIP, AccountID: 3, EndpointID: 7}
	return r
}

// next is a stub terminal stage: it answers with res/err and counts calls.
type next struct {
	res   pipeline.Result
	err   error
	panic bool
	calls int
}

func (n *next) Name() string { return "route" }

func (n *next) ServeSIP(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
	n.calls++
	if n.panic {
		panic("route exploded")
	}
	return n.res, n.err
}

// result is the comparable projection of a pipeline.Result.
type result struct {
	Status   int
	Reason   string
	Headers  []string
	Drop     bool
	Stage    string
	Why      string
	Answered bool
}

func project(r pipeline.Result) result {
	out := result{Status: r.Status, Reason: r.Reason, Drop: r.Drop, Stage: r.Stage, Why: r.Why, Answered: r.Answered()}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, h.String())
	}
	return out
}

// setup is a chain of the limits stage and a stub next over local state.
type setup struct {
	chain    pipeline.Handler
	next     *next
	channels *limits.LocalChannels
	reg      *prometheus.Registry
}

func newSetup(t *testing.T, lims []limits.Limit, rate limits.Rate) *setup {
	t.Helper()
	s := &setup{
		next:     &next{res: pipeline.Answered("route", 200)},
		channels: limits.NewLocalChannels(0),
		reg:      prometheus.NewRegistry(),
	}
	stage, err := limits.New(limits.Config{
		Channels:   s.channels,
		Rates:      limits.NewLocalRates(0),
		Limits:     func(*pipeline.Request) []limits.Limit { return lims },
		Rate:       func(*pipeline.Request) limits.Rate { return rate },
		Registerer: s.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.chain = pipeline.Build(s.next, stage)
	return s
}

func (s *setup) serve(t *testing.T, r *pipeline.Request) (pipeline.Result, error) {
	t.Helper()
	return s.chain.ServeSIP(context.Background(), r)
}

func (s *setup) inUse(k limits.Key) int {
	n, _ := s.channels.InUse(context.Background(), k)
	return n
}

var answered = result{Status: 200, Stage: "route", Answered: true}

func TestThreeInvitesMaxTwo(t *testing.T) {
	s := newSetup(t, []limits.Limit{{Key: ep7, Max: 2}, {Key: acct3, Max: 10}}, limits.Rate{})
	var got []result
	for i := range 3 {
		res, err := s.serve(t, request(invite(t, fmt.Sprint("call-", i), "")))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, project(res))
	}
	want := []result{answered, answered, {
		Status:  503,
		Reason:  "Channel limit reached",
		Headers: []string{`Reason: SIP;cause=503;text="channel limit reached (endpoint 7: 2)"`},
		Stage:   "limits",
		Why:     "channel limit reached: endpoint 7 holds 2 of 2 channels",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if s.next.calls != 2 {
		t.Errorf("next called %d times, want 2", s.next.calls)
	}
	if n := s.inUse(ep7); n != 2 {
		t.Errorf("endpoint in use %d, want 2 (the B2BUA releases answered calls)", n)
	}
	if v := metricValue(t, s.reg, "sipward_limits_rejected_total", "limit", "channels"); v != 1 {
		t.Errorf("rejected_total{limit=channels} = %v, want 1", v)
	}
}

func TestRejections(t *testing.T) {
	user12 := limits.Key{Kind: limits.SIPUser, ID: 12}
	for _, tc := range []struct {
		name  string
		lims  []limits.Limit
		rate  limits.Rate
		auth  pipeline.Identity
		label string
		want  result
	}{{
		name:  "account channels",
		lims:  []limits.Limit{{Key: ep7, Max: 5}, {Key: acct3, Max: 1}},
		label: "account_channels",
		want: result{Status: 503, Reason: "Account channel limit reached", Stage: "limits",
			Headers: []string{`Reason: SIP;cause=503;text="account channel limit reached (account 3: 1)"`},
			Why:     "account channel limit reached: account 3 holds 1 of 1 channels"},
	}, {
		name:  "sip user channels",
		lims:  []limits.Limit{{Key: user12, Max: 1}, {Key: acct3}},
		auth:  pipeline.Identity{Method: pipeline.AuthDigest, AccountID: 3, SIPUserID: 12},
		label: "channels",
		want: result{Status: 503, Reason: "Channel limit reached", Stage: "limits",
			Headers: []string{`Reason: SIP;cause=503;text="channel limit reached (SIP user 12: 1)"`},
			Why:     "channel limit reached: SIP user 12 holds 1 of 1 channels"},
	}, {
		name:  "cps",
		lims:  []limits.Limit{{Key: ep7, Max: 5}},
		rate:  limits.Rate{Key: ep7, PerSecond: 1},
		label: "cps",
		want: result{Status: 503, Reason: "CPS limit reached", Stage: "limits",
			Headers: []string{`Reason: SIP;cause=503;text="cps limit reached (endpoint 7: 1/s)"`},
			Why:     "cps limit reached: endpoint 7 over 1 new calls per second"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, tc.lims, tc.rate)
			var last pipeline.Result
			for i := range 2 {
				r := request(invite(t, fmt.Sprint("call-", i), ""))
				if tc.auth.Method != pipeline.AuthNone {
					r.Auth = tc.auth
				}
				var err error
				if last, err = s.serve(t, r); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tc.want, project(last)); diff != "" {
				t.Errorf("second INVITE (-want +got):\n%s", diff)
			}
			if v := metricValue(t, s.reg, "sipward_limits_rejected_total", "limit", tc.label); v != 1 {
				t.Errorf("rejected_total{limit=%s} = %v, want 1", tc.label, v)
			}
			if s.next.calls != 1 {
				t.Errorf("next called %d times, want 1", s.next.calls)
			}
		})
	}
}

// TestRejectedByNextReleases: when next does not take the call on, the
// stage gives the channels back; when it answered, the B2BUA owns them.
func TestRejectedByNextReleases(t *testing.T) {
	boom := errors.New("upstream: connection refused")
	for _, tc := range []struct {
		name     string
		next     next
		wantErr  error
		held     int
		panicked bool
	}{
		{name: "rejection", next: next{res: pipeline.Reject("route", 404, "Not Found", "no route")}},
		{name: "drop", next: next{res: pipeline.DropResult("route", "silent")}},
		{name: "error", next: next{err: boom}, wantErr: boom},
		{name: "panic", next: next{panic: true}, panicked: true},
		{name: "answered failure", next: next{res: pipeline.Answered("route", 486)}, held: 1},
		{name: "answered", next: next{res: pipeline.Answered("route", 200)}, held: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, []limits.Limit{{Key: ep7, Max: 1}, {Key: acct3, Max: 1}}, limits.Rate{})
			*s.next = tc.next
			var err error
			func() {
				defer func() {
					if p := recover(); (p != nil) != tc.panicked {
						t.Errorf("panic %v, want panic %v", p, tc.panicked)
					}
				}()
				_, err = s.serve(t, request(invite(t, "call-1", "")))
			}()
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err %v, want %v", err, tc.wantErr)
			}
			if n, m := s.inUse(ep7), s.inUse(acct3); n != tc.held || m != tc.held {
				t.Errorf("in use: endpoint %d account %d, want %d", n, m, tc.held)
			}
			if tc.held == 0 {
				// The channel is really free: the next call gets it.
				s.next.res, s.next.err, s.next.panic = pipeline.Answered("route", 200), nil, false
				res, err := s.serve(t, request(invite(t, "call-2", "")))
				if err != nil || res.Status != 200 {
					t.Errorf("next call: %+v, %v; want answered", project(res), err)
				}
			}
		})
	}
}

// TestPassesUnlimited: requests the stage does not limit reach next with
// nothing acquired, and carry the stage in their trace.
func TestPassesUnlimited(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  func(t *testing.T) *pipeline.Request
	}{
		{"options", func(t *testing.T) *pipeline.Request { return request(parse(t, "OPTIONS", "o1", "")) }},
		{"bye", func(t *testing.T) *pipeline.Request { return request(parse(t, "BYE", "b1", "t1")) }},
		{"re-invite", func(t *testing.T) *pipeline.Request { return request(invite(t, "r1", "t1")) }},
		{"from core", func(t *testing.T) *pipeline.Request {
			r := request(invite(t, "c1", ""))
			r.Auth = pipeline.Identity{Method: pipeline.AuthCore}
			return r
		}},
		{"unidentified", func(t *testing.T) *pipeline.Request {
			r := request(invite(t, "u1", ""))
			r.Auth = pipeline.Identity{}
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, []limits.Limit{{Key: ep7, Max: 1}}, limits.Rate{Key: ep7, PerSecond: 1})
			for range 3 {
				r := tc.req(t)
				res, err := s.serve(t, r)
				if err != nil || !res.Answered() {
					t.Fatalf("got %+v, %v; want answered by next", project(res), err)
				}
				if diff := cmp.Diff([]string{"limits"}, r.Trace.Stages()); diff != "" {
					t.Errorf("trace (-want +got):\n%s", diff)
				}
			}
			if n := s.inUse(ep7); n != 0 {
				t.Errorf("in use %d, want 0", n)
			}
		})
	}
}

func TestNoLimitsPasses(t *testing.T) {
	s := newSetup(t, nil, limits.Rate{})
	for i := range 5 {
		if res, err := s.serve(t, request(invite(t, fmt.Sprint("c", i), ""))); err != nil || !res.Answered() {
			t.Fatalf("got %+v, %v; want answered", project(res), err)
		}
	}
	if s.channels.Holds() != 0 {
		t.Errorf("holds %d, want 0", s.channels.Holds())
	}
}

func TestDuplicateCallID(t *testing.T) {
	s := newSetup(t, []limits.Limit{{Key: ep7, Max: 5}}, limits.Rate{})
	if _, err := s.serve(t, request(invite(t, "same", ""))); err != nil {
		t.Fatal(err)
	}
	res, err := s.serve(t, request(invite(t, "same", "")))
	if err != nil {
		t.Fatal(err)
	}
	want := result{Status: 482, Reason: "Loop Detected", Stage: "limits",
		Why: "Call-ID already holds channels: merged or looped request, or Call-ID reused during its call"}
	if diff := cmp.Diff(want, project(res)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := s.inUse(ep7); n != 1 {
		t.Errorf("in use %d, want 1: the first call keeps its hold", n)
	}
}

// failing is state whose store is down.
type failing struct{ limits.Channels }

var errDown = errors.New("dial tcp 127.0.0.1:6379: connection refused")

func (failing) Acquire(context.Context, []limits.Limit, string, time.Time) (limits.Denied, error) {
	return limits.Denied{}, errDown
}

func (failing) Allow(context.Context, limits.Key, int, time.Time) (bool, error) {
	return false, errDown
}

func TestStateDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  limits.Config
	}{
		{"channels", limits.Config{Channels: failing{}}},
		{"rates", limits.Config{Channels: limits.NewLocalChannels(0), Rates: failing{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Limits = func(*pipeline.Request) []limits.Limit { return []limits.Limit{{Key: ep7, Max: 1}} }
			cfg.Rate = func(*pipeline.Request) limits.Rate { return limits.Rate{Key: ep7, PerSecond: 10} }
			stage, err := limits.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			n := &next{res: pipeline.Answered("route", 200)}
			_, err = pipeline.Build(n, stage).ServeSIP(context.Background(), request(invite(t, "x", "")))
			if !errors.Is(err, errDown) || !strings.HasPrefix(err.Error(), "stage/limits: ") {
				t.Errorf("err %v, want stage/limits: …: %v", err, errDown)
			}
			if n.calls != 0 {
				t.Error("next called while the state is down")
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := limits.New(limits.Config{}); err == nil {
		t.Error("New without Channels: no error")
	}
	reg := prometheus.NewRegistry()
	for range 2 { // a rebuilt chain registers again
		if _, err := limits.New(limits.Config{Channels: limits.NewLocalChannels(0), Registerer: reg}); err != nil {
			t.Fatalf("New: %v", err)
		}
	}
}

func TestMetrics(t *testing.T) {
	s := newSetup(t, []limits.Limit{{Key: ep7, Max: 5}, {Key: acct3, Max: 5}}, limits.Rate{})
	for i := range 3 {
		if _, err := s.serve(t, request(invite(t, fmt.Sprint("m", i), ""))); err != nil {
			t.Fatal(err)
		}
	}
	for kind, want := range map[string]float64{"endpoint": 3, "account": 3, "sip_user": 0} {
		if v := metricValue(t, s.reg, "sipward_limits_channels_in_use", "kind", kind); v != want {
			t.Errorf("channels_in_use{kind=%s} = %v, want %v", kind, v, want)
		}
	}
	names := map[string]bool{}
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"sipward_limits_rejected_total", "sipward_limits_release_failures_total", "sipward_limits_channels_in_use"} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
	if probs, err := promlint.NewWithMetricFamilies(mfs).Lint(); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
}

// metricValue returns the value of the counter or gauge name{label=value}
// gathered from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// TestStageAllocs: a call that passes (CPS checked, channels acquired,
// next answers, the B2BUA releases) allocates nothing in the stage.
func TestStageAllocs(t *testing.T) {
	lims := []limits.Limit{{Key: ep7, Max: 10}, {Key: acct3, Max: 10}}
	ch := limits.NewLocalChannels(0)
	stage, err := limits.New(limits.Config{
		Channels: ch,
		Rates:    limits.NewLocalRates(0),
		Limits:   func(*pipeline.Request) []limits.Limit { return lims },
		Rate:     func(*pipeline.Request) limits.Rate { return limits.Rate{Key: ep7, PerSecond: 1000} },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b2bua := pipeline.HandlerFunc{N: "route", F: func(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
		ch.Release(ctx, r.Msg.CallID().Value()) // the call ends at once
		return pipeline.Answered("route", 200), nil
	}}
	chain := pipeline.Build(b2bua, stage)
	r := request(invite(t, "alloc", ""))
	chain.ServeSIP(ctx, r) // parses Call-ID and To once
	allocs := testing.AllocsPerRun(1000, func() {
		r.Now = r.Now.Add(time.Second)
		r.Trace.N = 0
		if res, err := chain.ServeSIP(ctx, r); err != nil || res.Status != 200 {
			panic(fmt.Sprint(res, err))
		}
	})
	if allocs != 0 {
		t.Errorf("ServeSIP: %v allocs/op, want 0", allocs)
	}
}

func BenchmarkStage(b *testing.B) {
	lims := []limits.Limit{{Key: ep7, Max: 10}, {Key: acct3, Max: 10}}
	ch := limits.NewLocalChannels(0)
	stage, err := limits.New(limits.Config{
		Channels: ch,
		Rates:    limits.NewLocalRates(0),
		Limits:   func(*pipeline.Request) []limits.Limit { return lims },
		Rate:     func(*pipeline.Request) limits.Rate { return limits.Rate{Key: ep7, PerSecond: 1_000_000} },
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	chain := pipeline.Build(pipeline.HandlerFunc{N: "route", F: func(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
		ch.Release(ctx, r.Msg.CallID().Value())
		return pipeline.Answered("route", 200), nil
	}}, stage)
	r := request(invite(b, "bench", ""))
	b.ReportAllocs()
	for b.Loop() {
		r.Now = r.Now.Add(time.Microsecond)
		r.Trace.N = 0
		chain.ServeSIP(ctx, r)
	}
}
