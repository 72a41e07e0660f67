package signin

import (
	"sync"
	"time"
)

// LockoutPolicy says when failed sign-ins lock a username (from one source
// address) or a source address (whatever the username) out, and for how
// long. Where the counts are kept is the Lockouts' business: in memory on
// each node (LocalLockouts, the default), or in Redis for every node that
// shares it (cluster.RedisLockouts).
type LockoutPolicy struct {
	PerUser int           // failures of one username from one address that lock it out
	PerAddr int           // failures from one address, any username, that lock it out
	Window  time.Duration // failures older than this are forgotten
	LockFor time.Duration // how long a lockout lasts
}

// DefaultLockout: 5 failures of a username from one address, or 30 from one
// address in all, within 15 minutes lock them out for 15 minutes.
var DefaultLockout = LockoutPolicy{PerUser: 5, PerAddr: 30, Window: 15 * time.Minute, LockFor: 15 * time.Minute}

// Lockouts counts failed sign-ins and says who is locked out. Implementations
// are safe for concurrent use and never fail a sign-in: one that cannot
// reach a shared store counts on this node instead.
type Lockouts interface {
	// Locked returns how long username from addr must still wait at now
	// (0: it may try).
	Locked(username, addr string, now time.Time) time.Duration
	// Fail records a failed sign-in of username from addr at now.
	Fail(username, addr string, now time.Time)
	// Succeed forgets username's failures from addr (not addr's).
	Succeed(username, addr string, now time.Time)
}

var _ Lockouts = (*LocalLockouts)(nil)

// LocalLockouts counts failed sign-ins in memory, on this node alone.
type LocalLockouts struct {
	p  LockoutPolicy
	mu sync.Mutex
	m  map[string]*failures
}

type failures struct {
	n      int
	first  time.Time // start of the window
	locked time.Time // locked until (zero: not locked)
}

// NewLocalLockouts returns in-memory lockouts under policy p.
func NewLocalLockouts(p LockoutPolicy) *LocalLockouts {
	return &LocalLockouts{p: p, m: map[string]*failures{}}
}

func userKey(username, addr string) string { return "u\x00" + username + "\x00" + addr }
func addrKey(addr string) string           { return "a\x00" + addr }

// Locked implements Lockouts.
func (l *LocalLockouts) Locked(username, addr string, now time.Time) time.Duration {
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

// Fail implements Lockouts.
func (l *LocalLockouts) Fail(username, addr string, now time.Time) {
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

// Succeed implements Lockouts.
func (l *LocalLockouts) Succeed(username, addr string, _ time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, userKey(username, addr))
}

// maxLockoutEntries bounds the memory failed sign-ins can take.
const maxLockoutEntries = 100_000

// prune forgets counts that expired; if that is not enough (a spray of
// usernames from many addresses), it forgets usernames' counts that are not
// locked out, keeping the addresses'.
func (l *LocalLockouts) prune(now time.Time) {
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
