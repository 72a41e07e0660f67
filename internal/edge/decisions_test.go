package edge

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// callIDs returns the Call-IDs of ds, in order.
func callIDs(ds []Decision) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.CallID)
	}
	return out
}

func TestDecisionLogRing(t *testing.T) {
	tests := []struct {
		added    int
		wantIDs  []string
		wantSeqs []uint64
	}{
		{0, []string{}, nil},
		{1, []string{"c1"}, []uint64{1}},
		{3, []string{"c3", "c2", "c1"}, []uint64{3, 2, 1}},
		{4, []string{"c4", "c3", "c2"}, []uint64{4, 3, 2}},
		{7, []string{"c7", "c6", "c5"}, []uint64{7, 6, 5}},
		{9, []string{"c9", "c8", "c7"}, []uint64{9, 8, 7}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.added), func(t *testing.T) {
			l := newDecisionLog(3)
			for i := 1; i <= tt.added; i++ {
				l.add(Decision{CallID: fmt.Sprintf("c%d", i)})
			}
			got := l.list(DecisionFilter{})
			if diff := cmp.Diff(tt.wantIDs, callIDs(got)); diff != "" {
				t.Errorf("call IDs, newest first (-want +got):\n%s", diff)
			}
			var seqs []uint64
			for _, d := range got {
				seqs = append(seqs, d.Seq)
			}
			if diff := cmp.Diff(tt.wantSeqs, seqs); diff != "" {
				t.Errorf("Seq (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecisionLogDefaultSize(t *testing.T) {
	if got := cap(newDecisionLog(0).ring); got != 10000 {
		t.Errorf("newDecisionLog(0) keeps %d, want 10000", got)
	}
	if got := cap(newDecisionLog(-5).ring); got != 10000 {
		t.Errorf("newDecisionLog(-5) keeps %d, want 10000", got)
	}
}

func TestDecisionLogFilter(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	l := newDecisionLog(10)
	for i, d := range []Decision{
		{CallID: "a", Source: "192.0.2.1:5060", AccountID: 1, Result: "accepted"},
		{CallID: "b", Source: "192.0.2.10:5060", AccountID: 2, Result: "rejected"},
		{CallID: "c", Source: "[2001:db8::1]:5060", AccountID: 1, Result: "rejected"},
		{CallID: "d", Source: "192.0.2.1:5070", Result: "dropped"},
		{CallID: "e", Source: "192.0.2.1:5060", AccountID: 1, Result: "failed"},
		{CallID: "f", Source: "192.0.2.100:5060", AccountID: 3, Result: "accepted"},
	} {
		d.Time = t0.Add(time.Duration(i) * time.Second)
		l.add(d)
	}
	tests := []struct {
		name string
		f    DecisionFilter
		want []string
	}{
		{"none", DecisionFilter{}, []string{"f", "e", "d", "c", "b", "a"}},
		{"address without port", DecisionFilter{Source: "192.0.2.1"}, []string{"e", "d", "a"}},
		{"address with port", DecisionFilter{Source: "192.0.2.1:5060"}, []string{"e", "a"}},
		{"address that prefixes others", DecisionFilter{Source: "192.0.2.10"}, []string{"b"}},
		{"partial port", DecisionFilter{Source: "192.0.2.1:50"}, []string{}},
		{"ipv6 without port", DecisionFilter{Source: "2001:db8::1"}, []string{"c"}},
		{"ipv6 with port", DecisionFilter{Source: "[2001:db8::1]:5060"}, []string{"c"}},
		{"unknown source", DecisionFilter{Source: "198.51.100.1"}, []string{}},
		{"account", DecisionFilter{AccountID: 1}, []string{"e", "c", "a"}},
		{"result", DecisionFilter{Result: "rejected"}, []string{"c", "b"}},
		{"call id", DecisionFilter{CallID: "c"}, []string{"c"}},
		{"source and account", DecisionFilter{Source: "192.0.2.1", AccountID: 1}, []string{"e", "a"}},
		{"source and result", DecisionFilter{Source: "192.0.2.1", Result: "accepted"}, []string{"a"}},
		{"limit counts matches, not decisions scanned", DecisionFilter{AccountID: 1, Limit: 2}, []string{"e", "c"}},
		{"since is inclusive", DecisionFilter{Since: t0.Add(4 * time.Second)}, []string{"f", "e"}},
		{"until is exclusive", DecisionFilter{Until: t0.Add(2 * time.Second)}, []string{"b", "a"}},
		{"since and until", DecisionFilter{Since: t0.Add(time.Second), Until: t0.Add(3 * time.Second)}, []string{"c", "b"}},
		{"time range and account", DecisionFilter{Since: t0.Add(time.Second), AccountID: 1}, []string{"e", "c"}},
		{"empty range", DecisionFilter{Since: t0.Add(time.Hour)}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, callIDs(l.list(tt.f))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecisionLogLimit(t *testing.T) {
	l := newDecisionLog(2000)
	for i := range 1500 {
		l.add(Decision{CallID: fmt.Sprint(i)})
	}
	tests := []struct {
		limit int
		want  int
	}{
		{-1, 100},
		{0, 100},
		{1, 1},
		{250, 250},
		{1000, 1000},
		{1001, 100}, // out of range: the default, not the maximum
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			got := l.list(DecisionFilter{Limit: tt.limit})
			if len(got) != tt.want {
				t.Fatalf("%d decisions, want %d", len(got), tt.want)
			}
			if got[0].CallID != "1499" {
				t.Errorf("first is %q, want the newest, 1499", got[0].CallID)
			}
		})
	}
}

// list hands out copies: a caller that changes one does not change the log.
func TestDecisionLogListCopies(t *testing.T) {
	l := newDecisionLog(4)
	l.add(Decision{CallID: "a", Passed: []string{"firewall", "sanity"}})
	got := l.list(DecisionFilter{})
	got[0].Passed[0] = "changed"
	got[0].CallID = "changed"
	again := l.list(DecisionFilter{})
	if diff := cmp.Diff([]string{"firewall", "sanity"}, again[0].Passed); diff != "" {
		t.Errorf("Passed after a caller changed its copy (-want +got):\n%s", diff)
	}
	if again[0].CallID != "a" {
		t.Errorf("CallID = %q after a caller changed its copy", again[0].CallID)
	}
}

func TestRateLimiter(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	type step struct {
		at   time.Duration
		want bool
	}
	tests := []struct {
		name  string
		every time.Duration
		steps []step
	}{
		{"one per interval", 10 * time.Second, []step{
			{0, true}, {time.Second, false}, {10*time.Second - time.Nanosecond, false},
			{10 * time.Second, true}, {15 * time.Second, false}, {25 * time.Second, true},
		}},
		{"a refused event does not restart the interval", 10 * time.Second, []step{
			{0, true}, {9 * time.Second, false}, {10 * time.Second, true},
		}},
		{"clock going backwards", 10 * time.Second, []step{
			{20 * time.Second, true}, {5 * time.Second, false}, {29 * time.Second, false}, {30 * time.Second, true},
		}},
		{"zero interval allows all", 0, []step{{0, true}, {0, true}, {time.Nanosecond, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := rateLimiter{every: tt.every}
			for i, s := range tt.steps {
				if got := l.allow(t0.Add(s.at)); got != s.want {
					t.Errorf("step %d (t0+%v): allow = %v, want %v", i, s.at, got, s.want)
				}
			}
		})
	}
}
