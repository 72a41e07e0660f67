package series

import (
	"net/netip"
	"sync"
	"time"
)

// Event is one INVITE or REGISTER decided by the edge.
type Event struct {
	Method    string     // "INVITE" or "REGISTER"
	AccountID int64      // the account it was attributed to; 0: none (an unknown source)
	Source    netip.Addr // the source address (no port)
	Stage     string     // the stage that decided
	Status    int        // the SIP status answered; 0: dropped
	Reason    string     // the SIP reason phrase (not the per-request details)
	// Accepted: an INVITE passed on to the core (whatever the far end then
	// answered), a REGISTER accepted.
	Accepted bool
}

// Counter indices of a bucket, in Totals' order.
const (
	cCalls = iota
	cRejected
	cChallenges
	cRegistrations
	cRegisterRejects
	cBans
	nCounters
)

// Bounds of the recorder's memory.
const (
	slots          = int(Span / Bucket) // node buckets: 8,640
	MaxKinds       = 256                // reject kinds kept; later ones count as "other"
	maxKindEntries = 64                 // (account, kind) pairs per bucket; later ones as (its account, other)
	maxSources     = 32                 // refused sources per bucket; later ones in an "other" count
)

// Recorder keeps one node's series. Its methods are safe for concurrent
// use; time is passed in, and buckets roll on write and read, so it needs
// no goroutine. The zero Recorder is not usable; use NewRecorder.
type Recorder struct {
	mu       sync.Mutex
	ring     []nodeBucket // 10-second buckets, slot = step % slots
	kinds    kindTable
	accounts map[int64]*account
	users    map[int64]*latency
	lifetime lifetime // since start, for /metrics
	// challenges since start, of INVITEs [0] and REGISTERs [1]
	challenges [2]int64
	swept      int64 // the step of the last sweep of idle accounts and users
}

// nodeBucket is one 10-second step of the node: its counters, its refusals
// by (account, kind), and its refused sources.
type nodeBucket struct {
	k        int64 // step+1 it holds; 0: never used
	c        [nCounters]uint32
	kinds    []kindCount
	srcs     []srcCount
	srcOther uint32 // refusals from sources past maxSources
}

type kindCount struct {
	account int64
	n       uint32
	kind    uint16
}

type srcCount struct {
	addr    netip.Addr
	account int64
	n       uint32
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	r := &Recorder{ring: make([]nodeBucket, slots), accounts: map[int64]*account{}, users: map[int64]*latency{}}
	r.kinds.init()
	return r
}

// step returns the index of the d-wide step holding t.
func step(t time.Time, d time.Duration) int64 { return t.UnixNano() / int64(d) }

// bucket returns the node bucket of step k, emptied if it held an older one.
func (r *Recorder) bucket(k int64) *nodeBucket {
	b := &r.ring[k%int64(slots)]
	if b.k != k+1 {
		b.k, b.c, b.kinds, b.srcs, b.srcOther = k+1, [nCounters]uint32{}, b.kinds[:0], b.srcs[:0], 0
	}
	return b
}

// Record counts e at now. It does not allocate once the account, the kind
// and the bucket slots it touches have been seen.
func (r *Recorder) Record(e Event, now time.Time) {
	c := classify(e)
	k := step(now, Bucket)
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bucket(k)
	b.c[c]++
	r.lifetime.count(c)
	if c == cChallenges {
		r.challenges[boolIndex(e.Method == "REGISTER")]++
	}
	if c == cRejected || c == cRegisterRejects {
		kind := r.kinds.intern(e.Method, e.Stage, e.Status, e.Reason)
		r.lifetime.kinds[kind]++
		b.addKind(e.AccountID, kind)
		b.addSource(e.Source, e.AccountID)
	}
	if e.AccountID != 0 {
		r.account(e.AccountID).add(c, now)
	}
	r.sweep(k, now)
}

// classify returns the counter e goes to.
func classify(e Event) int {
	register := e.Method == "REGISTER"
	switch {
	case e.Accepted && register:
		return cRegistrations
	case e.Accepted:
		return cCalls
	case e.Status == 401 || e.Status == 407:
		return cChallenges
	case register:
		return cRegisterRejects
	}
	return cRejected
}

// Ban counts one ban made at now on this node (by detection or an operator).
func (r *Recorder) Ban(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bucket(step(now, Bucket)).c[cBans]++
	r.lifetime.count(cBans)
}

func (b *nodeBucket) addKind(account int64, kind uint16) {
	for i := range b.kinds {
		if b.kinds[i].account == account && b.kinds[i].kind == kind {
			b.kinds[i].n++
			return
		}
	}
	if len(b.kinds) >= maxKindEntries { // full: counted as (no account, other)
		account, kind = 0, otherKind
		for i := range b.kinds {
			if b.kinds[i].account == 0 && b.kinds[i].kind == otherKind {
				b.kinds[i].n++
				return
			}
		}
	}
	b.kinds = append(b.kinds, kindCount{account: account, kind: kind, n: 1})
}

func (b *nodeBucket) addSource(addr netip.Addr, account int64) {
	for i := range b.srcs {
		if b.srcs[i].addr == addr && b.srcs[i].account == account {
			b.srcs[i].n++
			return
		}
	}
	if len(b.srcs) >= maxSources {
		b.srcOther++
		return
	}
	b.srcs = append(b.srcs, srcCount{addr: addr, account: account, n: 1})
}

// sweep forgets, once an hour, the accounts without traffic and the users
// without a ping for Span.
func (r *Recorder) sweep(k int64, now time.Time) {
	if k-r.swept < int64(time.Hour/Bucket) {
		return
	}
	r.swept = k
	for id, a := range r.accounts {
		if now.Sub(a.last) > Span {
			delete(r.accounts, id)
		}
	}
	for id, u := range r.users {
		if now.Sub(u.last) > Span {
			delete(r.users, id)
		}
	}
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}
