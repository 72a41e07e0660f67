package signin

import (
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// TestLocalLockouts: the policy's count of failures of a username from one
// address locks it out for LockFor; a success forgets the username's count.
func TestLocalLockouts(t *testing.T) {
	p := LockoutPolicy{PerUser: 3, PerAddr: 10, Window: time.Minute, LockFor: 5 * time.Minute}
	l := NewLocalLockouts(p)
	l.Fail("ann", "192.0.2.1", t0)
	l.Succeed("ann", "192.0.2.1", t0)
	for range 2 {
		l.Fail("ann", "192.0.2.1", t0)
	}
	if w := l.Locked("ann", "192.0.2.1", t0); w != 0 {
		t.Fatalf("locked after 2 failures since a success: %v", w)
	}
	l.Fail("ann", "192.0.2.1", t0)
	if w := l.Locked("ann", "192.0.2.1", t0); w != 5*time.Minute {
		t.Errorf("after 3 failures: wait %v, want 5m", w)
	}
	if w := l.Locked("ann", "192.0.2.2", t0); w != 0 {
		t.Errorf("another address is locked too: %v", w)
	}
	if w := l.Locked("ann", "192.0.2.1", t0.Add(5*time.Minute)); w != 0 {
		t.Errorf("still locked after LockFor: %v", w)
	}
}

// TestLocalRevocations: a revoked session is refused until it would have
// expired.
func TestLocalRevocations(t *testing.T) {
	v := NewLocalRevocations()
	v.Revoke("s1", t0.Add(time.Hour), t0)
	if !v.Revoked("s1", t0.Add(time.Minute)) || v.Revoked("s2", t0) {
		t.Error("Revoked does not report s1 alone")
	}
	if v.Revoked("s1", t0.Add(time.Hour)) {
		t.Error("s1 still revoked after it would have expired")
	}
}
