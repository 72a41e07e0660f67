package series

import (
	"net/netip"
	"testing"
	"time"
)

// fillDay records a day of traffic ending at t0+Span: in every 10-second
// step, a call of each of perStep accounts (cycling through accounts), a
// refusal of several kinds and sources, a challenge and a registration.
func fillDay(r *Recorder, accounts int64, perStep int) {
	stages := []string{"identify", "authn", "limits", "route", "sanity", "firewall"}
	k := 0
	for i := range slots {
		now := t0.Add(time.Duration(i) * Bucket)
		for range perStep {
			id := int64(k)%accounts + 1
			r.Record(Event{Method: "INVITE", AccountID: id, Stage: "b2bua", Status: 200, Accepted: true}, now)
			r.Record(Event{Method: "REGISTER", AccountID: id, Stage: "registrar", Status: 200, Accepted: true}, now)
			k++
		}
		src := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		r.Record(Event{Method: "INVITE", AccountID: int64(i)%accounts + 1, Source: src, Stage: stages[i%len(stages)], Status: 403 + i%7, Reason: "Forbidden"}, now)
		r.Record(Event{Method: "INVITE", Source: src.Next(), Stage: "identify", Status: 403, Reason: "Forbidden"}, now)
		r.Record(Event{Method: "INVITE", AccountID: 1, Stage: "authn", Status: 407, Reason: "Proxy Authentication Required"}, now)
	}
}

// BenchmarkDashboardView computes the operator's view of a node with a day
// of data for 1,000 accounts, for the 1-hour and 24-hour windows.
func BenchmarkDashboardView(b *testing.B) {
	r := NewRecorder()
	fillDay(r, 1000, 4)
	now := t0.Add(Span - Bucket)
	for _, w := range []time.Duration{time.Hour, Span} {
		b.Run(w.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.View(Query{Window: w}, now, PeerSources); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecord is the call path's cost.
func BenchmarkRecord(b *testing.B) {
	r := NewRecorder()
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		r.Record(call, now)
		now = now.Add(time.Millisecond)
	}
}
