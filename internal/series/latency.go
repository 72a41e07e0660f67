package series

import (
	"slices"
	"time"
)

// LatencyStep is the width of a step of a SIP user's ping latency series.
const LatencyStep = 10 * time.Minute

const latencySlots = int(Span / LatencyStep) // 144

// latency is one SIP user's ping round trips.
type latency struct {
	last time.Time // its last ping, for forgetting it after Span
	ring [latencySlots]latBucket
}

type latBucket struct {
	k             uint32 // step+1; 0: never used
	n             uint32
	min, max, sum float32 // milliseconds
}

// Ping records a SIP user's NAT-ping round trip answered at now.
func (r *Recorder) Ping(sipUserID int64, rtt time.Duration, now time.Time) {
	ms := float32(rtt.Microseconds()) / 1000
	k := step(now, LatencyStep)
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.users[sipUserID]
	if u == nil {
		u = new(latency)
		r.users[sipUserID] = u
	}
	u.last = now
	b := &u.ring[k%int64(latencySlots)]
	if b.k != uint32(k+1) {
		*b = latBucket{k: uint32(k + 1), min: ms, max: ms}
	}
	b.n++
	b.sum += ms
	b.min, b.max = min(b.min, ms), max(b.max, ms)
}

// Latency returns a SIP user's ping round trips over the span before now
// (at most Span), oldest first, one point per step that had an answer.
func (r *Recorder) Latency(sipUserID int64, span time.Duration, now time.Time) []LatencyPoint {
	span = min(max(span, LatencyStep), Span)
	k := step(now, LatencyStep)
	n := int64((span + LatencyStep - 1) / LatencyStep)
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.users[sipUserID]
	if u == nil {
		return nil
	}
	var out []LatencyPoint
	for i := k - n + 1; i <= k; i++ {
		b := u.ring[i%int64(latencySlots)]
		if i < 0 || b.k != uint32(i+1) || b.n == 0 {
			continue
		}
		out = append(out, LatencyPoint{Time: time.Unix(0, i*int64(LatencyStep)).UTC(),
			MinMS: float64(b.min), AvgMS: float64(b.sum) / float64(b.n), MaxMS: float64(b.max), Count: int64(b.n)})
	}
	return out
}

func sortPoints(ps []LatencyPoint) {
	slices.SortFunc(ps, func(a, b LatencyPoint) int { return a.Time.Compare(b.Time) })
}
