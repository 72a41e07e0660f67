package series

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func invite(account int64, src string, stage string, status int, reason string) Event {
	return Event{Method: "INVITE", AccountID: account, Source: netip.MustParseAddr(src), Stage: stage, Status: status, Reason: reason}
}

var (
	call      = Event{Method: "INVITE", AccountID: 7, Source: netip.MustParseAddr("192.0.2.1"), Stage: "b2bua", Status: 200, Accepted: true}
	challenge = invite(7, "192.0.2.1", "authn", 407, "Proxy Authentication Required")
	unknown   = invite(0, "198.51.100.9", "identify", 403, "Forbidden")
	overLimit = invite(7, "192.0.2.1", "limits", 503, "Service Unavailable")
	register  = Event{Method: "REGISTER", AccountID: 7, Source: netip.MustParseAddr("192.0.2.1"), Stage: "registrar", Status: 200, Accepted: true}
	regReject = Event{Method: "REGISTER", AccountID: 0, Source: netip.MustParseAddr("198.51.100.9"), Stage: "authn", Status: 403, Reason: "Forbidden"}
)

func mustView(t *testing.T, r *Recorder, q Query, now time.Time) View {
	t.Helper()
	v, err := r.View(q, now, TopSources)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCountsByKind(t *testing.T) {
	r := NewRecorder()
	for i, e := range []Event{call, call, call, challenge, unknown, unknown, overLimit, register, regReject} {
		r.Record(e, t0.Add(time.Duration(i)*time.Second))
	}
	r.Ban(t0)
	v := mustView(t, r, Query{}, t0.Add(50*time.Second))
	want := Totals{Calls: 3, Rejected: 3, Challenges: 1, Registrations: 1, RegisterRejects: 1, Bans: 1}
	if v.Totals != want {
		t.Errorf("totals = %+v; want %+v", v.Totals, want)
	}
	if len(v.Rejects) != 3 || v.Rejects[0] != (Reject{Method: "INVITE", Stage: "identify", Status: 403, Reason: "Forbidden", Count: 2}) {
		t.Errorf("rejects = %+v", v.Rejects)
	}
	if len(v.TopSources) != 2 || v.TopSources[0] != (Source{Source: "198.51.100.9", Count: 3}) {
		t.Errorf("top sources = %+v", v.TopSources)
	}
	if len(v.Accounts) != 1 || v.Accounts[0] != (Account{ID: 7, Calls: 3, Rejected: 1, Challenges: 1, Registrations: 1}) {
		t.Errorf("accounts = %+v", v.Accounts)
	}
	if v.CPS != 3.0/60 {
		t.Errorf("cps = %v; want 3/60", v.CPS)
	}
}

func TestAccountViewSeesOnlyItsOwn(t *testing.T) {
	r := NewRecorder()
	for _, e := range []Event{call, challenge, unknown, overLimit, regReject} {
		r.Record(e, t0)
	}
	other := call
	other.AccountID = 8
	r.Record(other, t0)
	v := mustView(t, r, Query{AccountID: 7}, t0.Add(time.Second))
	if want := (Totals{Calls: 1, Rejected: 1, Challenges: 1}); v.Totals != want {
		t.Errorf("totals = %+v; want %+v", v.Totals, want)
	}
	if len(v.Rejects) != 1 || v.Rejects[0].Stage != "limits" {
		t.Errorf("rejects = %+v; want only the account's own (limits)", v.Rejects)
	}
	if len(v.TopSources) != 1 || v.TopSources[0].Source != "192.0.2.1" || v.OtherSources != 0 {
		t.Errorf("sources = %+v other %d; want only the account's own", v.TopSources, v.OtherSources)
	}
	if len(v.Accounts) != 1 || v.Accounts[0].ID != 7 {
		t.Errorf("accounts = %+v", v.Accounts)
	}
	if got := v.Hour.Lines[0].Values[len(v.Hour.Lines[0].Values)-1]; got != 1 {
		t.Errorf("hour chart's last step = %d calls; want 1", got)
	}
}

// TestRolling steps a fake clock over hours and days: old buckets leave
// the window and the ring, reused slots start from zero.
func TestRolling(t *testing.T) {
	r := NewRecorder()
	r.Record(call, t0)
	r.Record(call, t0.Add(30*time.Minute))
	r.Record(call, t0.Add(2*time.Hour))
	at := t0.Add(2*time.Hour + time.Second)
	if got := mustView(t, r, Query{Window: time.Hour}, at).Totals.Calls; got != 1 {
		t.Errorf("1h window: %d calls; want 1", got)
	}
	if got := mustView(t, r, Query{Window: 3 * time.Hour}, at).Totals.Calls; got != 3 {
		t.Errorf("3h window: %d calls; want 3", got)
	}
	if got := mustView(t, r, Query{AccountID: 7, Window: 3 * time.Hour}, at).Totals.Calls; got != 3 {
		t.Errorf("3h window of the account: %d calls; want 3", got)
	}
	// A day later, t0's slot is reused: it holds only the new call.
	r.Record(call, t0.Add(Span))
	v := mustView(t, r, Query{Window: Span}, t0.Add(Span))
	if v.Totals.Calls != 3 { // t0+30m, t0+2h, t0+24h; t0 left the ring
		t.Errorf("24h window a day later: %d calls; want 3", v.Totals.Calls)
	}
	if got := mustView(t, r, Query{Window: Span}, t0.Add(3*Span)).Totals.Calls; got != 0 {
		t.Errorf("three days later: %d calls; want 0", got)
	}
}

func TestCharts(t *testing.T) {
	r := NewRecorder()
	r.Record(call, t0)                                    // the last hour's first step… and day step
	r.Record(call, t0.Add(59*time.Minute+50*time.Second)) // the hour's last step
	r.Record(unknown, t0.Add(59*time.Minute+50*time.Second))
	now := t0.Add(59*time.Minute + 55*time.Second)
	v := mustView(t, r, Query{}, now)
	if len(v.Hour.Lines) != nCounters || len(v.Hour.Lines[0].Values) != 360 || v.Hour.Step != Bucket {
		t.Fatalf("hour chart: %d lines of %d steps of %s", len(v.Hour.Lines), len(v.Hour.Lines[0].Values), v.Hour.Step)
	}
	calls := v.Hour.Lines[0].Values
	if calls[0] != 1 || calls[359] != 1 || v.Hour.Lines[1].Values[359] != 1 {
		t.Errorf("hour chart: calls[0]=%d calls[359]=%d rejected[359]=%d; want 1 1 1", calls[0], calls[359], v.Hour.Lines[1].Values[359])
	}
	if !v.Hour.Start.Equal(t0) {
		t.Errorf("hour chart starts %s; want %s", v.Hour.Start, t0)
	}
	day := v.Day.Lines[0].Values
	if len(day) != 288 || day[287] != 1 || day[287-11] != 1 {
		t.Errorf("day chart: %d steps, last %d, 11 before %d; want 288, 1, 1", len(day), day[287], day[287-11])
	}
}

func TestWindowBounds(t *testing.T) {
	r := NewRecorder()
	for _, w := range []time.Duration{time.Second, 59 * time.Second, Span + time.Second} {
		if _, err := r.View(Query{Window: w}, t0, TopSources); err == nil {
			t.Errorf("window %s: no error", w)
		}
	}
	if v := mustView(t, r, Query{}, t0); v.Window != DefaultWindow {
		t.Errorf("window 0 = %s; want %s", v.Window, DefaultWindow)
	}
}

// TestBounds: a scan from 100,000 addresses and 1,000 kinds keeps each
// bucket bounded; the overflow is counted, not lost.
func TestBounds(t *testing.T) {
	r := NewRecorder()
	for i := range 100_000 {
		e := invite(0, netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String(), "identify", 403, fmt.Sprint("reason ", i%1000))
		r.Record(e, t0)
	}
	b := &r.ring[step(t0, Bucket)%int64(slots)]
	if len(b.srcs) > maxSources || len(b.kinds) > maxKindEntries+1 || len(r.kinds.keys) > MaxKinds {
		t.Errorf("bucket holds %d sources, %d kind entries; %d kinds known", len(b.srcs), len(b.kinds), len(r.kinds.keys))
	}
	v := mustView(t, r, Query{}, t0)
	var sum int64
	for _, s := range v.TopSources {
		sum += s.Count
	}
	if sum+v.OtherSources != 100_000 {
		t.Errorf("sources %d + other %d; want 100000", sum, v.OtherSources)
	}
	sum = 0
	for _, k := range v.Rejects {
		sum += k.Count
	}
	if sum != 100_000 || v.Totals.Rejected != 100_000 {
		t.Errorf("rejects by kind sum to %d, rejected %d; want 100000", sum, v.Totals.Rejected)
	}
}

// TestRecordDoesNotAllocate: once an account, kind and source were seen,
// recording allocates nothing, also when buckets roll over.
func TestRecordDoesNotAllocate(t *testing.T) {
	r := NewRecorder()
	events := []Event{call, challenge, unknown, overLimit, register, regReject}
	now := t0
	for range 2 * slots { // every slot used twice: slices have their capacity
		for _, e := range events {
			r.Record(e, now)
		}
		now = now.Add(Bucket)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, e := range events {
			r.Record(e, now)
		}
		now = now.Add(Bucket)
	})
	if allocs != 0 {
		t.Errorf("Record allocates %v times per run; want 0", allocs)
	}
	if a := testing.AllocsPerRun(100, func() { r.Ping(1, time.Millisecond, now) }); a != 0 {
		t.Errorf("Ping allocates %v times; want 0", a)
	}
}

func TestLatency(t *testing.T) {
	r := NewRecorder()
	r.Ping(5, 10*time.Millisecond, t0)
	r.Ping(5, 30*time.Millisecond, t0.Add(time.Minute))
	r.Ping(5, 50*time.Millisecond, t0.Add(LatencyStep))
	ps := r.Latency(5, Span, t0.Add(LatencyStep))
	if len(ps) != 2 {
		t.Fatalf("points = %+v; want 2", ps)
	}
	if p := ps[0]; p.MinMS != 10 || p.AvgMS != 20 || p.MaxMS != 30 || p.Count != 2 || !p.Time.Equal(t0) {
		t.Errorf("first point = %+v", p)
	}
	if ps := r.Latency(6, Span, t0); ps != nil {
		t.Errorf("unknown user: %+v", ps)
	}
	// Forgotten a day after its last ping, at the next sweep.
	r.Record(call, t0.Add(LatencyStep+Span+2*time.Hour))
	if len(r.users) != 0 || len(r.accounts) != 1 {
		t.Errorf("after a day: %d users, %d accounts kept; want 0 and 1", len(r.users), len(r.accounts))
	}
}

func TestMerge(t *testing.T) {
	a, b := NewRecorder(), NewRecorder()
	a.Record(call, t0)
	a.Record(unknown, t0)
	b.Record(call, t0.Add(20*time.Second))
	b.Record(unknown, t0)
	b.Record(regReject, t0)
	b.Ban(t0)
	now := t0.Add(30 * time.Second)
	va, vb := mustView(t, a, Query{}, now), mustView(t, b, Query{}, now)
	va.Nodes, vb.Nodes, vb.MissingNodes = []string{"a"}, []string{"b"}, []string{"c"}
	m := Merge(va, vb)
	if want := (Totals{Calls: 2, Rejected: 2, RegisterRejects: 1, Bans: 1}); m.Totals != want {
		t.Errorf("totals = %+v; want %+v", m.Totals, want)
	}
	if m.Rejects[0].Count != 2 || len(m.Rejects) != 2 {
		t.Errorf("rejects = %+v", m.Rejects)
	}
	if m.TopSources[0] != (Source{Source: "198.51.100.9", Count: 3}) {
		t.Errorf("top sources = %+v", m.TopSources)
	}
	if len(m.Accounts) != 1 || m.Accounts[0].Calls != 2 {
		t.Errorf("accounts = %+v", m.Accounts)
	}
	hour := m.Hour.Lines[0].Values
	if hour[356] != 1 || hour[358] != 1 || va.Hour.Lines[0].Values[358] != 0 {
		t.Errorf("merged hour chart ends %v; want [1 0 1 0] (and the parts untouched)", hour[356:])
	}
	if fmt.Sprint(m.Nodes, m.MissingNodes) != "[a b] [c]" {
		t.Errorf("nodes %v missing %v", m.Nodes, m.MissingNodes)
	}
}

// TestMemory measures the recorder's heap with 1,000 accounts and 10,000
// pinged users, every step used, for the package doc.
func TestMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a day of buckets")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := NewRecorder()
	fillDay(r, 1000, 4)
	runtime.GC()
	var mid runtime.MemStats
	runtime.ReadMemStats(&mid)
	for u := range int64(10_000) {
		for i := range latencySlots {
			r.Ping(u, time.Duration(u%50)*time.Millisecond, t0.Add(time.Duration(i)*LatencyStep))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("recorder with a day of 10-s buckets and 1,000 accounts: %.1f MB; 10,000 pinged users add %.1f MB",
		float64(mid.HeapAlloc-before.HeapAlloc)/1e6, float64(after.HeapAlloc-mid.HeapAlloc)/1e6)
	runtime.KeepAlive(r)
}
