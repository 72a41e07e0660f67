package web

import (
	"sync"
	"time"
)

// LockoutPolicy says when failed sign-ins lock a username (from one source
// address) or a source address (whatever the username) out, and for how
// long. Counts are kept in memory on each node.
type LockoutPolicy struct {
	PerUser int           // failures of one username from one address that lock it out
	PerAddr int           // failures from one address, any username, that lock it out
	Window  time.Duration // failures older than this are forgotten
	LockFor time.Duration // how long a lockout lasts
}

// DefaultLockout: 5 failures of a username from one address, or 30 from one
// address in all, within 15 minutes lock them out for 15 minutes.
var DefaultLockout = LockoutPolicy{PerUser: 5, PerAddr: 30, Window: 15 * time.Minute, LockFor: 15 * time.Minute}

// lockout counts failed sign-ins.
type lockout struct {
	p  LockoutPolicy
	mu sync.Mutex
	m  map[string]*failures
}

type failures struct {
	n      int
	first  time.Time // start of the window
	locked time.Time // locked until (zero: not locked)
}

func newLockout(p LockoutPolicy) *lockout { return &lockout{p: p, m: map[string]*failures{}} }

func userKey(username, addr string) string { return "u\x00" + username + "\x00" + addr }
func addrKey(addr string) string           { return "a\x00" + addr }

// locked returns how long username from addr must still wait (0: it may try).
func (l *lockout) locked(username, addr string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range []string{userKey(username, addr), addrKey(addr)} {
		if f := l.m[k]; f != nil && now.Before(f.locked) {
			wait = max(wait, f.locked.Sub(now))
		}
	}
	return wait
}

// fail records a failed sign-in.
func (l *lockout) fail(username, addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) > maxLockoutEntries {
		l.prune(now)
	}
	for _, c := range []struct {
		key   string
		limit int
	}{{userKey(username, addr), l.p.PerUser}, {addrKey(addr), l.p.PerAddr}} {
		f := l.m[c.key]
		if f == nil || now.Sub(f.first) > l.p.Window {
			f = &failures{first: now}
			l.m[c.key] = f
		}
		f.n++
		if c.limit > 0 && f.n >= c.limit {
			f.locked = now.Add(l.p.LockFor)
			f.n, f.first = 0, now
		}
	}
}

// succeed forgets a username's failures from addr (not the address's).
func (l *lockout) succeed(username, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, userKey(username, addr))
}

// maxLockoutEntries bounds the memory failed sign-ins can take.
const maxLockoutEntries = 100_000

// prune forgets counts that expired; if that is not enough (a spray of
// usernames from many addresses), it forgets usernames' counts that are not
// locked out, keeping the addresses'.
func (l *lockout) prune(now time.Time) {
	for k, f := range l.m {
		if now.Sub(f.first) > l.p.Window && !now.Before(f.locked) {
			delete(l.m, k)
		}
	}
	for k, f := range l.m {
		if len(l.m) <= maxLockoutEntries/2 {
			return
		}
		if k[0] == 'u' && !now.Before(f.locked) {
			delete(l.m, k)
		}
	}
}
