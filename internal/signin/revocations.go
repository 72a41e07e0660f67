package signin

import (
	"sync"
	"time"
)

// Revocations remembers sessions that were signed out until they expire,
// so that a copy of a signed-out cookie is refused. Implementations are safe
// for concurrent use and never fail a request: one that cannot reach a
// shared store remembers on this node instead.
type Revocations interface {
	// Revoke refuses the session sid from now until it expires at until.
	Revoke(sid string, until, now time.Time)
	// Revoked reports whether sid was revoked and has not expired by now.
	Revoked(sid string, now time.Time) bool
}

var _ Revocations = (*LocalRevocations)(nil)

// LocalRevocations remembers signed-out sessions in memory, on this node
// alone.
type LocalRevocations struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// maxRevocations is how many revocations LocalRevocations holds before it
// forgets the expired ones.
const maxRevocations = 10000

// NewLocalRevocations returns empty in-memory revocations.
func NewLocalRevocations() *LocalRevocations { return &LocalRevocations{m: map[string]time.Time{}} }

// Revoke implements Revocations.
func (v *LocalRevocations) Revoke(sid string, until, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.m) > maxRevocations {
		for k, t := range v.m {
			if !t.After(now) {
				delete(v.m, k)
			}
		}
	}
	v.m[sid] = until
}

// Revoked implements Revocations.
func (v *LocalRevocations) Revoked(sid string, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	until, ok := v.m[sid]
	return ok && now.Before(until)
}
