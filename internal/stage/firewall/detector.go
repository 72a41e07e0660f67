package firewall

import (
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Kind is a kind of failure the Detector counts.
type Kind uint8

// Kinds of failure. Each is counted, and reaches Config.Threshold,
// separately.
const (
	// AuthFailure is a request whose digest credentials were checked and
	// are wrong (unknown user, bad response, disallowed source address).
	// A request without credentials that gets challenged, or one with a
	// stale nonce, is not a failure.
	AuthFailure Kind = iota + 1
	// UnknownSourceInvite is an INVITE from an address that matches no IP
	// endpoint and that does not authenticate (it is challenged and never
	// answers, or answers wrongly).
	UnknownSourceInvite
	numKinds
)

// String returns the metric label of k: "auth_failure" or
// "unknown_source_invite".
func (k Kind) String() string {
	switch k {
	case AuthFailure:
		return "auth_failure"
	case UnknownSourceInvite:
		return "unknown_source_invite"
	}
	return "unknown"
}

// reason is the Ban.Reason of a ban made for k.
func (k Kind) reason(threshold int, window time.Duration) string {
	w := window.String()
	if window%time.Second == 0 {
		w = fmt.Sprintf("%ds", window/time.Second)
	}
	switch k {
	case AuthFailure:
		return fmt.Sprintf("%d failed authentications in %s", threshold, w)
	case UnknownSourceInvite:
		return fmt.Sprintf("%d INVITEs from an unknown source in %s", threshold, w)
	}
	return ""
}

// Detector counts failures per source and bans a source that reaches the
// threshold. Get it from Firewall.Detector. It is safe for concurrent use.
//
// Counting uses a fixed window anchored at a source's first failure of a
// kind: Threshold failures within Window of that one ban the source;
// otherwise the count restarts with the first failure after Window. The
// (source, kind) pairs sit in a FIFO ring of MaxTracked slots indexed by a
// map: expired pairs fall off the front, and when the ring is full the
// oldest pair is evicted, so memory stays bounded under a flood of spoofed
// sources.
type Detector struct {
	f         *Firewall
	threshold uint32 // 0: detection off
	window    int64  // nanoseconds

	mu    sync.Mutex
	index map[trackKey]int32 // pair → slot in ring
	ring  []track            // grows to max, then wraps
	max   int
	head  int // oldest slot
	n     int // slots in use, including dead ones
}

type trackKey struct {
	addr netip.Addr
	kind Kind
}

type track struct {
	key   trackKey
	start int64  // first failure of the window, Unix nanoseconds
	count uint32 // failures since start
	dead  bool   // removed (the source was banned); skipped when reached
}

func (d *Detector) init(f *Firewall, threshold int, window time.Duration, maxTracked int) {
	d.f = f
	if threshold > 0 {
		d.threshold = uint32(min(threshold, math32))
	}
	d.window = int64(window)
	d.max = maxTracked
	d.index = make(map[trackKey]int32)
}

// Detector returns the firewall's failure detector.
func (f *Firewall) Detector() *Detector { return &f.det }

// Failure records one failure of kind from addr at now. When it is the
// Threshold-th within Window, the source is banned at once (BanFor from
// now), the ban is queued for Config.Persist, logged at Warn, and Failure
// reports true. Trusted sources, sources already banned and invalid
// addresses are not counted. now should not go backwards by more than a
// little between calls (concurrent callers are fine).
func (d *Detector) Failure(addr netip.Addr, kind Kind, now time.Time) bool {
	if d.threshold == 0 || kind == 0 || kind >= numKinds || !addr.IsValid() {
		return false
	}
	addr = canon(addr)
	f := d.f
	if f.trusted(addr) || f.bans.banned(addr, now) {
		return false
	}
	if !d.count(trackKey{addr, kind}, now.UnixNano()) {
		return false
	}
	f.ban(addr, kind, now)
	return true
}

// count records a failure and reports whether the pair reached the
// threshold (and is no longer tracked).
func (d *Detector) count(key trackKey, now int64) bool {
	d.mu.Lock()
	banned := d.countLocked(key, now)
	d.f.metrics.tracked.Set(float64(len(d.index)))
	d.mu.Unlock()
	return banned
}

func (d *Detector) countLocked(key trackKey, now int64) bool {
	d.prune(now)
	if i, ok := d.index[key]; ok {
		t := &d.ring[i]
		if now-t.start >= d.window || now < t.start-d.window {
			t.start, t.count = now, 0
		}
		t.count++
		if t.count < d.threshold {
			return false
		}
		t.dead = true
		delete(d.index, key)
		return true
	}
	if d.threshold <= 1 {
		return true
	}
	if d.n == d.max {
		d.popHead(true)
	}
	i := (d.head + d.n) % d.max
	t := track{key: key, start: now, count: 1}
	if i == len(d.ring) {
		d.ring = append(d.ring, t)
	} else {
		d.ring[i] = t
	}
	d.n++
	d.index[key] = int32(i)
	return false
}

// prune drops expired and dead pairs from the front of the ring. Pairs
// enter the ring in the order of their start, so the first live pair that
// has not expired ends the scan.
func (d *Detector) prune(now int64) {
	for d.n > 0 {
		t := &d.ring[d.head]
		if !t.dead && now-t.start < d.window {
			return
		}
		d.popHead(false)
	}
}

// popHead removes the oldest slot; evict says the ring was full, so a live
// pair is counted as evicted.
func (d *Detector) popHead(evict bool) {
	t := &d.ring[d.head]
	if !t.dead {
		delete(d.index, t.key)
		if evict {
			d.f.metrics.evicted.Inc()
		}
	}
	*t = track{}
	d.head = (d.head + 1) % d.max
	d.n--
}

// Tracked returns how many (source, kind) pairs are being counted.
func (d *Detector) Tracked() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.index)
}

// Forgive forgets the failures counted for addr: a source that has just
// authenticated is a customer, and the credential-less INVITE every digest
// call starts with must not add up to a ban over a busy day.
func (d *Detector) Forgive(addr netip.Addr) {
	if !addr.IsValid() {
		return
	}
	addr = canon(addr)
	d.mu.Lock()
	for k := Kind(1); k < numKinds; k++ {
		key := trackKey{addr, k}
		if i, ok := d.index[key]; ok {
			d.ring[i].dead = true
			delete(d.index, key)
		}
	}
	d.f.metrics.tracked.Set(float64(len(d.index)))
	d.mu.Unlock()
}
