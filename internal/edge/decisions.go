package edge

import (
	"strings"
	"sync"
	"time"

	"github.com/sipward/sipward/internal/pipeline"
)

// Decision is the record of how one INVITE or REGISTER was decided: which
// stages passed it, which stopped it and why ("why was this call rejected?").
type Decision struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Method    string    `json:"method"`
	CallID    string    `json:"call_id"`
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	AccountID int64     `json:"account_id,omitempty"`
	Account   string    `json:"account,omitempty"`
	Auth      string    `json:"auth"`
	Endpoint  int64     `json:"endpoint_id,omitempty"`
	SIPUser   int64     `json:"sip_user_id,omitempty"`
	Passed    []string  `json:"passed"`
	Stage     string    `json:"stage"`  // the stage that decided
	Status    int       `json:"status"` // the answer (0 when dropped)
	Result    string    `json:"result"` // accepted | rejected | dropped | failed
	Why       string    `json:"why"`

	// trace holds the passed stages by value, so recording a decision does
	// not allocate a slice; list turns it into Passed.
	trace pipeline.Trace
}

// decisionLog keeps the last N decisions in a ring.
type decisionLog struct {
	mu   sync.Mutex
	ring []Decision
	next uint64
}

func newDecisionLog(n int) *decisionLog {
	if n <= 0 {
		n = 10000
	}
	return &decisionLog{ring: make([]Decision, 0, n)}
}

func (l *decisionLog) add(d Decision) {
	l.mu.Lock()
	l.next++
	d.Seq = l.next
	if len(l.ring) < cap(l.ring) {
		l.ring = append(l.ring, d)
	} else {
		l.ring[int((d.Seq-1)%uint64(cap(l.ring)))] = d
	}
	l.mu.Unlock()
}

// DecisionFilter selects decisions; zero fields do not filter.
type DecisionFilter struct {
	Source    string // IP address (with or without port)
	AccountID int64
	Result    string
	CallID    string
	Limit     int
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
		d := l.ring[idx]
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
		if d.trace.N > 0 {
			d.Passed = append([]string(nil), d.trace.Stages()...)
		} else {
			d.Passed = append([]string(nil), d.Passed...)
		}
		out = append(out, d)
	}
	return out
}
