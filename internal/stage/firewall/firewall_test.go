package firewall

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/store"
)

// next is the stub rest of the chain.
var next = pipeline.HandlerFunc{N: "next", F: func(context.Context, *pipeline.Request) (pipeline.Result, error) {
	return pipeline.Reject("next", 200, "OK", "reached next"), nil
}}

func TestStage(t *testing.T) {
	f, _, _, _ := newTest(t, Config{Trusted: netip.MustParsePrefix("192.0.2.0/24").Contains})
	if err := f.SetBans([]store.Ban{
		{Address: "203.0.113.0/24"},
		{Address: "192.0.2.9/32"},
		{Address: "198.51.100.9/32", ExpiresAt: t0.Add(time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	h := pipeline.Build(next, f.Stage())
	if h.Name() != "firewall" {
		t.Errorf("Name() = %q", h.Name())
	}
	reached := pipeline.Reject("next", 200, "OK", "reached next")
	tests := []struct {
		name       string
		src        string
		now        time.Time
		want       pipeline.Result
		wantPassed []string
	}{
		{"banned", "203.0.113.7:5060", t0, pipeline.DropResult("firewall", "source is banned"), nil},
		{"banned v4-mapped", "[::ffff:203.0.113.7]:5060", t0, pipeline.DropResult("firewall", "source is banned"), nil},
		{"not banned", "198.51.100.7:5060", t0, reached, []string{"firewall"}},
		{"banned but trusted", "192.0.2.9:5060", t0, reached, []string{"firewall"}},
		{"ban in force", "198.51.100.9:5060", t0.Add(59 * time.Second), pipeline.DropResult("firewall", "source is banned"), nil},
		{"ban expired", "198.51.100.9:5060", t0.Add(time.Minute), reached, []string{"firewall"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &pipeline.Request{Source: netip.MustParseAddrPort(tt.src), Transport: pipeline.UDP, Now: tt.now}
			got, err := h.ServeSIP(context.Background(), r)
			if err != nil {
				t.Fatalf("ServeSIP: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(pipeline.Result{})); diff != "" {
				t.Errorf("Result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPassed, r.Trace.Stages(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("trace (-want +got):\n%s", diff)
			}
		})
	}
	if got := value(f.metrics.dropped[dropBanned]); got != 3 {
		t.Errorf("dropped_total{reason=banned} = %v, want 3", got)
	}
}

// A ban made between the read filter and the stage stops the request.
func TestStageBanAfterRead(t *testing.T) {
	f, _, _, _ := newTest(t, Config{Threshold: 1})
	h := pipeline.Build(next, f.Stage())
	src := netip.MustParseAddrPort("203.0.113.7:5060")
	if got, _ := f.ReadFilter(props("UDP", src.String()), datagram); len(got) == 0 {
		t.Fatal("read filter dropped an unbanned source")
	}
	f.Detector().Failure(src.Addr(), AuthFailure, t0)
	res, err := h.ServeSIP(context.Background(), &pipeline.Request{Source: src, Now: t0})
	if err != nil || !res.Drop {
		t.Fatalf("ServeSIP = %+v, %v; want a drop", res, err)
	}
}

// TestStageScanner: a request whose User-Agent names a scanner is dropped
// and bans its source; a trusted source's passes.
func TestStageScanner(t *testing.T) {
	f, _, _, _ := newTest(t, Config{Trusted: netip.MustParsePrefix("192.0.2.0/24").Contains})
	h := pipeline.Build(next, f.Stage())
	req := func(src, ua string) *pipeline.Request {
		m := sip.NewRequest(sip.OPTIONS, sip.Uri{Host: "edge"})
		if ua != "" {
			m.AppendHeader(sip.NewHeader("User-Agent", ua))
		}
		return &pipeline.Request{Msg: m, Source: netip.MustParseAddrPort(src), Now: t0}
	}
	for _, tt := range []struct {
		src, ua string
		drop    bool
	}{
		{"203.0.113.1:5060", "friendly-scanner", true},
		{"203.0.113.2:5060", "SIPVicious 0.3.4", true},
		{"203.0.113.3:5060", "Linphone/5.2 (belle-sip/5.2)", false},
		{"203.0.113.4:5060", "", false},
		{"192.0.2.1:5060", "friendly-scanner", false},
	} {
		res, err := h.ServeSIP(context.Background(), req(tt.src, tt.ua))
		if err != nil {
			t.Fatal(err)
		}
		if res.Drop != tt.drop || f.Banned(netip.MustParseAddrPort(tt.src).Addr(), t0) != tt.drop {
			t.Errorf("%s %q: dropped %v, banned %v; want %v", tt.src, tt.ua, res.Drop, f.Banned(netip.MustParseAddrPort(tt.src).Addr(), t0), tt.drop)
		}
	}
	if got := value(f.metrics.dropped[dropScanner]); got != 2 {
		t.Errorf("dropped_total{reason=scanner} = %v, want 2", got)
	}
}

func TestStageAllocs(t *testing.T) {
	f, _, _, _ := newTest(t, Config{})
	if err := f.SetBans([]store.Ban{{Address: "203.0.113.0/24"}}); err != nil {
		t.Fatal(err)
	}
	h := pipeline.Build(next, f.Stage())
	m := sip.NewRequest(sip.INVITE, sip.Uri{Host: "edge"})
	m.AppendHeader(sip.NewHeader("X-Custom", "1"))
	m.AppendHeader(sip.NewHeader("User-Agent", "Linphone/5.2"))
	r := &pipeline.Request{Msg: m, Source: netip.MustParseAddrPort("198.51.100.7:5060"), Now: t0}
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() {
		r.Trace.N = 0
		_, _ = h.ServeSIP(ctx, r)
	}); n != 0 {
		t.Errorf("ServeSIP pass path allocates %v times, want 0", n)
	}
}

func BenchmarkStage(b *testing.B) {
	f, _, _, _ := newTest(b, Config{})
	if err := f.SetBans([]store.Ban{{Address: "203.0.113.0/24"}}); err != nil {
		b.Fatal(err)
	}
	h := pipeline.Build(next, f.Stage())
	r := &pipeline.Request{Source: netip.MustParseAddrPort("198.51.100.7:5060"), Now: t0}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.Trace.N = 0
		_, _ = h.ServeSIP(ctx, r)
	}
}

func TestNewConfigErrors(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // "" = valid
	}{
		{Config{}, ""},
		{Config{Threshold: -1, RatePerSource: -1}, ""},
		{Config{Window: -time.Second}, "window: -1000000000: must not be negative"},
		{Config{MaxTracked: -1, PersistQueue: -2}, "max_tracked: -1"},
		{Config{RateSlots: 1 << 25}, "rate_slots: 33554432: must be at most 16777216"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("New(%+v): %v", tt.cfg, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("New(%+v) error = %v, want it to contain %q", tt.cfg, err, tt.want)
		}
	}
}

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	for range 2 { // a second Firewall on the same registry reuses the collectors
		if _, err := New(Config{Registerer: reg}); err != nil {
			t.Fatal(err)
		}
	}
	names := map[string]bool{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{
		"sipward_firewall_dropped_total",
		"sipward_firewall_bans_total",
		"sipward_firewall_tracked_sources",
		"sipward_firewall_tracked_evicted_total",
		"sipward_firewall_ban_prefixes",
		"sipward_firewall_local_bans_overflow_total",
		"sipward_firewall_persist_dropped_total",
		"sipward_firewall_persist_failed_total",
	} {
		if !names[want] {
			t.Errorf("metric %s not registered", want)
		}
	}
}

// Bans from a flood of sources do not become a flood of log lines.
func TestBanLogsRateLimited(t *testing.T) {
	f, _, _, logs := newTest(t, Config{Threshold: 1})
	for i := range 1000 {
		f.Detector().Failure(netipFromInt(0x0a000000+uint32(i)), AuthFailure, t0)
	}
	if n := len(logs.Records()); n != 20 {
		t.Errorf("1000 bans in one instant logged %d lines, want the burst of 20", n)
	}
	// A second later, ten more lines; the first says what was suppressed.
	f.Detector().Failure(mustAddr("192.0.2.1"), AuthFailure, t0.Add(time.Second))
	recs := logs.Records()
	if got := recs[len(recs)-1].Attrs["suppressed"]; got != "980" {
		t.Errorf("suppressed = %s, want 980", got)
	}
}

// Readers, the detector and SetBans run concurrently (for -race).
func TestConcurrent(t *testing.T) {
	f, _, _, _ := newTest(t, Config{Threshold: 3, Persist: func(context.Context, store.Ban) error { return nil }})
	h := pipeline.Build(next, f.Stage())
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 2000 {
				a := netipFromInt(0x0a000000 + uint32(w<<16+i%300))
				_, _ = f.ReadFilter(props("UDP", netip.AddrPortFrom(a, 5060).String()), datagram)
				f.Detector().Failure(a, Kind(1+i%2), t0)
				_, _ = h.ServeSIP(context.Background(), &pipeline.Request{Source: netip.AddrPortFrom(a, 5060), Now: t0})
			}
		}()
	}
	go func() {
		defer func() { done <- struct{}{} }()
		for i := range 200 {
			_ = f.SetBans([]store.Ban{{Address: netipFromInt(0xc0000200 + uint32(i)).String()}})
		}
	}()
	for range 5 {
		<-done
	}
}
