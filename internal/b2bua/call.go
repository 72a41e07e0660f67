package b2bua

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/live"
)

// call is one B2BUA call: the caller's leg a (whose INVITE sipward answers
// as a UAS) and the far leg b (to which it sends its own INVITE as a UAC).
// Nothing of one leg's topology is copied onto the other.
type call struct {
	mu sync.Mutex // guards the legs' dialog state, aReq, view and confirmed

	id      string // internal, for logs and the API
	started time.Time
	view    CallView // what the API shows

	a, b   *leg   // the caller's leg and the far leg; a transfer replaces one (callTable.swap)
	inline [2]leg // where a and b point until then (one allocation per call)

	aReq     *sip.Request  // the caller's INVITE as received (never mutated); nil once it acknowledged our 2xx
	aAcked   chan struct{} // closed when the caller ACKs our 2xx
	aAckOnce sync.Once

	interceptReinvite bool
	timers            bool                            // session timers on (sessiontimer.go)
	expires           time.Duration                   // the session interval offered
	codecs            func(sdp []byte) ([]byte, bool) // filters SDP for the caller; nil passes it

	confirmed    bool
	listed       bool // in the table; set and read only by the INVITE's goroutine (invite.go)
	ended        atomic.Bool
	relayed      atomic.Bool // the media relay holds a session of the call (relay.go)
	transferring atomic.Bool // a transfer of the call is under way (transfer.go)
	hold         string      // the Call-ID the limits stage took the call's channels by
	release      func()
	releaseOnce  sync.Once
	lastSeen     atomic.Int64 // unix nanos of the last keepalive answer from both legs
}

// free releases the call's channels, exactly once.
func (c *call) free() {
	c.releaseOnce.Do(func() {
		if c.release != nil {
			c.release()
		}
	})
}

// legs returns the leg a request came on and the other one.
func (c *call) legs(fromA bool) (in, out *leg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fromA {
		return c.a, c.b
	}
	return c.b, c.a
}

// request builds a request inside l's dialog (leg.request) under the lock.
func (c *call) request(l *leg, method sip.RequestMethod, body []byte, contact sip.Uri) *sip.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return l.request(method, body, contact)
}

// acked records the caller's ACK of our 2xx: the call is set up, and its
// INVITE (parsed, with its SDP) is no longer needed.
func (c *call) acked() {
	c.aAckOnce.Do(func() { close(c.aAcked) })
	c.mu.Lock()
	c.aReq = nil
	c.mu.Unlock()
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// CallView is what the API shows of an active call.
type CallView = live.Call

// callTable finds calls by the Call-ID of either leg.
type callTable struct {
	mu    sync.RWMutex
	byA   map[string]*call
	byB   map[string]*call
	count atomic.Int64
}

func newCallTable() *callTable {
	return &callTable{byA: map[string]*call{}, byB: map[string]*call{}}
}

func (t *callTable) add(c *call) {
	t.mu.Lock()
	t.byA[c.a.callID] = c
	t.byB[c.b.callID] = c
	t.mu.Unlock()
	t.count.Add(1)
}

// setB re-keys the far leg (a failover target gets a new Call-ID).
func (t *callTable) setB(c *call, old string) {
	t.mu.Lock()
	delete(t.byB, old)
	t.byB[c.b.callID] = c
	t.mu.Unlock()
}

// swap puts the new leg n in place of the call's leg a (or b) and re-keys
// the table, returning the leg it replaced; nil when the call has left the
// table (it ended), then n is not put in.
func (t *callTable) swap(c *call, a bool, n *leg) (old *leg) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	keys, slot := t.byB, &c.b
	if a {
		keys, slot = t.byA, &c.a
	}
	old = *slot
	if keys[old.callID] != c {
		return nil
	}
	delete(keys, old.callID)
	keys[n.callID] = c
	*slot = n
	return old
}

func (t *callTable) remove(c *call) {
	t.mu.Lock()
	_, ok := t.byA[c.a.callID]
	if ok {
		delete(t.byA, c.a.callID)
		delete(t.byB, c.b.callID)
	}
	t.mu.Unlock()
	if ok {
		t.count.Add(-1)
	}
}

// find returns the call a request belongs to and whether it came on the
// caller's leg.
func (t *callTable) find(callID string) (c *call, fromA bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if c := t.byA[callID]; c != nil {
		return c, true
	}
	return t.byB[callID], false
}

func (t *callTable) all() []*call {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*call, 0, len(t.byA))
	for _, c := range t.byA {
		out = append(out, c)
	}
	return out
}
