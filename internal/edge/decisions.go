package edge

import (
	"strings"
	"sync"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/pipeline"
)

// Decision is the record of how one INVITE or REGISTER was decided.
type Decision = live.Decision

// DecisionFilter selects decisions; zero fields do not filter.
type DecisionFilter = live.DecisionFilter

// entry is one decision in the log. trace holds the passed stages by
// value, so recording a decision does not allocate a slice; list turns it
// into Passed.
type entry struct {
	d     Decision
	trace pipeline.Trace
}

// decisionLog keeps the last N decisions in a ring.
type decisionLog struct {
	mu   sync.Mutex
	ring []entry
	next uint64
}

func newDecisionLog(n int) *decisionLog {
	if n <= 0 {
		n = 10000
	}
	return &decisionLog{ring: make([]entry, 0, n)}
}

func (l *decisionLog) add(d Decision) { l.addTrace(d, pipeline.Trace{}) }

// addTrace records d, whose passed stages are trace's when it has any.
func (l *decisionLog) addTrace(d Decision, trace pipeline.Trace) {
	l.mu.Lock()
	l.next++
	d.Seq = l.next
	e := entry{d: d, trace: trace}
	if len(l.ring) < cap(l.ring) {
		l.ring = append(l.ring, e)
	} else {
		l.ring[int((d.Seq-1)%uint64(cap(l.ring)))] = e
	}
	l.mu.Unlock()
}

// list returns matching decisions, newest first.
func (l *decisionLog) list(f DecisionFilter) []Decision {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []Decision{}
	n := len(l.ring)
	for i := 0; i < n && len(out) < f.Limit; i++ {
		idx := int((l.next - 1 - uint64(i)) % uint64(cap(l.ring)))
		if idx >= n {
			continue
		}
		e := l.ring[idx]
		d := e.d
		if f.Source != "" && d.Source != f.Source && !strings.HasPrefix(d.Source, f.Source+":") && !strings.HasPrefix(d.Source, "["+f.Source+"]:") {
			continue
		}
		if f.AccountID != 0 && d.AccountID != f.AccountID {
			continue
		}
		if f.Result != "" && d.Result != f.Result {
			continue
		}
		if f.CallID != "" && d.CallID != f.CallID {
			continue
		}
		if !f.Matches(d.Time) {
			continue
		}
		if e.trace.N > 0 {
			d.Passed = append([]string(nil), e.trace.Stages()...)
		} else {
			d.Passed = append([]string(nil), d.Passed...)
		}
		out = append(out, d)
	}
	return out
}
