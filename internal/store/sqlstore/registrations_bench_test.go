package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// BenchmarkApplyRegistrations measures the registrar's write-behind flush:
// one batch of 4,000 refreshed bindings (the bench's rate for one second),
// of which every second one is new. ns/op is per batch; us/binding per row.
//
//	go test -run XXX -bench ApplyRegistrations ./internal/store/sqlstore/
func BenchmarkApplyRegistrations(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "sipward.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 4000
	now := time.Now()
	regs := make([]store.Registration, batch)
	for i := range regs {
		regs[i] = store.Registration{Username: fmt.Sprintf("user%05d", i), Contact: fmt.Sprintf("<sip:u%d@10.0.0.1:5060>", i),
			SIPUserID: int64(i + 1), AccountID: 1, Source: "10.0.0.1:5060", Transport: "udp", Expires: now.Add(time.Hour),
			Registered: now, CallID: fmt.Sprintf("call-%d", i), CSeq: 1, UserAgent: "bench"}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range regs {
			regs[j].CSeq++
			regs[j].Expires = regs[j].Expires.Add(time.Second)
			if j%2 == 0 {
				regs[j].Contact = fmt.Sprintf("<sip:u%d-%d@10.0.0.1:5060>", j, i)
			}
		}
		if err := s.ApplyRegistrations(ctx, regs, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batch), "us/binding")
}
