package cluster

import (
	"context"
	"sync/atomic"
	"time"
)

// Bounds of a Redis call on a request path, and what follows a failure.
const (
	// CallTimeout bounds one round trip to Redis made on a request path;
	// past it the caller falls back to the node's own state. A second: on
	// a stalled host (a load of 10 on 2 cores) round trips took over 250 ms
	// and nodes fell back for nothing; a dead Redis usually refuses the
	// connection at once anyway.
	CallTimeout = time.Second
	// RetryAfter is how long after a failed call Redis is not tried at all
	// (the node's own state answers at once), so that a flood of requests
	// does not wait CallTimeout each while Redis is away.
	RetryAfter = time.Second
	// DegradedFor is how long Degraded reports a fallback.
	DegradedFor = time.Minute
)

// fallback guards the Redis calls of one shared state: it gives each call
// its timeout, skips Redis while the node's Health says it is down (or,
// without one, for RetryAfter after a failure), tells Health of failures,
// and remembers when the state last fell back to the node's own, for
// Degraded. Times are the callers' now, as everywhere in this package.
type fallback struct {
	last   atomic.Int64 // Unix nanoseconds of the last failure or skip; 0: none
	health *Health      // nil: RetryAfter decides
}

// try returns the context of one call, or ok false while Redis is skipped.
func (f *fallback) try(now time.Time) (ctx context.Context, cancel context.CancelFunc, ok bool) {
	if f.health != nil {
		if !f.health.Up() {
			f.last.Store(now.UnixNano())
			return nil, nil, false
		}
	} else if last := f.last.Load(); last != 0 && now.UnixNano()-last < int64(RetryAfter) && now.UnixNano() >= last {
		return nil, nil, false
	}
	ctx, cancel = context.WithTimeout(context.Background(), CallTimeout)
	return ctx, cancel, true
}

// failed records that a call failed (or was skipped) at now.
func (f *fallback) failed(now time.Time) {
	if f.last.Load() < now.UnixNano() {
		f.last.Store(now.UnixNano())
	}
	if f.health != nil {
		f.health.Fail(now)
	}
}

// degraded reports whether the state fell back within DegradedFor before now.
func (f *fallback) degraded(now time.Time) bool {
	last := f.last.Load()
	return last != 0 && now.UnixNano()-last < int64(DegradedFor)
}
