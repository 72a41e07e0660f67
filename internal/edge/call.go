package edge

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// call is one B2BUA call: leg A (the caller, whose INVITE we answer as a
// UAS) and leg B (the callee, to whom we send our own INVITE as a UAC).
// Nothing of leg A's topology is copied onto leg B and back.
type call struct {
	mu sync.Mutex

	id      string // internal, for logs and the API
	started time.Time
	view    CallView // what the API shows

	// Leg A: we are its UAS.
	aReq     *sip.Request   // the INVITE as received (never mutated); nil once A acknowledged our 2xx
	aTo      sip.FromHeader // A's To as received, without params: our From on leg A
	aCallID  string
	aTag     string // our To tag towards A
	aFromTag string // A's From tag
	aFrom    sip.FromHeader
	aContact sip.Uri   // A's Contact: remote target of requests we send on leg A
	aRoute   []sip.Uri // A's Record-Route, in order: our route set on leg A
	aDest    string    // where requests to A go: the source they came from (NAT-safe)
	aTrans   string    // transport of leg A
	aCSeq    atomic.Uint32
	aAcked   chan struct{} // closed when A ACKs our 2xx
	aAckOnce sync.Once
	lastAnsA []byte // SDP we last sent to A (for intercepted re-INVITEs)

	// Leg B: we are its UAC.
	bFrom    sip.FromHeader // our From on leg B, without the tag
	bCallID  string
	bTag     string // our From tag towards B
	bToTag   string // B's To tag, once it answered
	bTo      sip.ToHeader
	bContact sip.Uri
	bRoute   []sip.Uri // B's Record-Route, reversed: our route set on leg B
	bDest    string    // fixed destination for leg B (a NAT binding), or ""
	bTrans   string
	bCSeq    atomic.Uint32
	lastAnsB []byte // SDP we last sent to B

	interceptReinvite bool
	codecs            func(sdp []byte) ([]byte, bool)

	confirmed   bool
	ended       atomic.Bool
	release     func()
	releaseOnce sync.Once
	lastSeen    atomic.Int64 // unix nanos of the last keepalive answer from both legs
}

// free releases the call's channels, exactly once.
func (c *call) free() {
	c.releaseOnce.Do(func() {
		if c.release != nil {
			c.release()
		}
	})
}

// CallView is what the API shows of an active call.
type CallView struct {
	ID        string    `json:"id"`
	AccountID int64     `json:"account_id"`
	Account   string    `json:"account"`
	Auth      string    `json:"auth"` // ip | digest | core
	Endpoint  int64     `json:"endpoint_id,omitempty"`
	SIPUser   int64     `json:"sip_user_id,omitempty"`
	Username  string    `json:"username,omitempty"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Source    string    `json:"source"`
	Start     time.Time `json:"start"`
	Answered  time.Time `json:"answered,omitempty"`
	State     string    `json:"state"` // early | confirmed
}

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
	t.byA[c.aCallID] = c
	t.byB[c.bCallID] = c
	t.mu.Unlock()
	t.count.Add(1)
}

// setB re-keys leg B (a failover target gets a new Call-ID).
func (t *callTable) setB(c *call, old string) {
	t.mu.Lock()
	delete(t.byB, old)
	t.byB[c.bCallID] = c
	t.mu.Unlock()
}

func (t *callTable) remove(c *call) {
	t.mu.Lock()
	_, ok := t.byA[c.aCallID]
	if ok {
		delete(t.byA, c.aCallID)
		delete(t.byB, c.bCallID)
	}
	t.mu.Unlock()
	if ok {
		t.count.Add(-1)
	}
}

// find returns the call a request belongs to and whether it came on leg A.
func (t *callTable) find(callID string) (c *call, legA bool) {
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
