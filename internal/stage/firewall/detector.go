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
	// are wrong (unknown user, bad response, replayed nonce count,
	// disallowed source address). A request without credentials that gets
	// challenged, or one with a stale nonce, is not a failure. A success
	// from the same source does not forgive it: a guesser who holds one
	// good account must not reset the count with it.
	AuthFailure Kind = iota + 1
	// UnknownSourceInvite is an INVITE from an address that matches no IP
	// endpoint, challenged because it carried no credentials. It is what
	// every digest call starts with, so it counts only against a source
	// that does not answer its challenges: one that authenticated within
	// Config.TrustAuthenticated is not counted at all, and a source's
	// challenges ban it only when none of them was answered with good
	// credentials within Config.ChallengeGrace of the first one counted
	// (a success forgives them).
	UnknownSourceInvite
	// Scanner is a request whose User-Agent names a known SIP scanner
	// (SIPVicious' "friendly-scanner", sipcli, …). One bans the source: no
	// customer's device says so.
	Scanner
	// StreamFlood is a TCP or TLS connection refused for a per-source limit
	// (too many open, or opened too fast), or a TLS handshake that failed:
	// a connection or handshake flood is banned like an authentication
	// flood. Customers are not counted.
	StreamFlood
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
	case Scanner:
		return "scanner"
	case StreamFlood:
		return "stream_flood"
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
	case Scanner:
		return "a SIP scanner's User-Agent"
	case StreamFlood:
		return fmt.Sprintf("%d refused TCP/TLS connections or failed TLS handshakes in %s", threshold, w)
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
//
// With Config.Shared, failed authentications and unanswered challenges are
// counted across the cluster: the shared count decides when a source is
// banned, and the local count (kept in step) decides while the shared one
// fails.
//
// Unanswered challenges (UnknownSourceInvite) are judged late: a pair that
// reaches the threshold before ChallengeGrace has passed since its first
// challenge is "due", and bans its source when the grace ends (in Sweep,
// or at the source's next challenge) unless the source authenticated in
// the meantime.
type Detector struct {
	f         *Firewall
	threshold uint32       // 0: detection off
	window    int64        // nanoseconds
	grace     int64        // nanoseconds a challenge has to be answered in
	shared    SharedCounts // nil: this node counts alone

	mu    sync.Mutex
	index map[trackKey]int32 // pair → slot in ring
	ring  []track            // grows to max, then wraps
	max   int
	head  int // oldest slot
	n     int // slots in use, including dead ones
	due   map[trackKey]struct{}
}

type trackKey struct {
	addr netip.Addr
	kind Kind
}

type track struct {
	key   trackKey
	start int64  // first failure of the window, Unix nanoseconds
	count uint32 // failures since start
	dead  bool   // removed (banned or forgiven); skipped when reached
	due   bool   // at the threshold, waiting for its grace to end
}

func (d *Detector) init(f *Firewall, threshold int, window, grace time.Duration, maxTracked int, sh SharedCounts) {
	d.f = f
	d.shared = sh
	if threshold > 0 {
		d.threshold = uint32(min(threshold, math32))
	}
	d.window = int64(window)
	d.grace = int64(min(grace, window))
	d.max = maxTracked
	d.index = make(map[trackKey]int32)
	d.due = make(map[trackKey]struct{})
}

// Detector returns the firewall's failure detector.
func (f *Firewall) Detector() *Detector { return &f.det }

// Failure records one failure of kind from addr at now. When it bans the
// source — the Threshold-th failure within Window; the first for Scanner;
// for UnknownSourceInvite only once ChallengeGrace has passed unanswered —
// the source is banned at once (BanFor from now), the ban is queued for
// Config.Persist, logged at Warn, and Failure reports true. Trusted
// sources, sources already banned and invalid addresses are not counted,
// nor are UnknownSourceInvite and Scanner from a source that authenticated
// within TrustAuthenticated. now should not go backwards by more than a
// little between calls (concurrent callers are fine).
func (d *Detector) Failure(addr netip.Addr, kind Kind, now time.Time) bool {
	if d.threshold == 0 || kind == 0 || kind >= numKinds || !addr.IsValid() {
		return false
	}
	addr = canon(addr)
	f := d.f
	if kind != AuthFailure && kind != StreamFlood && f.authed != nil && f.authed.recent(addr, now) {
		return false
	}
	if f.trusted(addr) || f.bans.banned(addr, now) {
		return false
	}
	key := trackKey{addr, kind}
	var banned bool
	if d.shared != nil && shared(kind) {
		banned = d.countShared(key, now)
	} else {
		banned = d.count(key, now.UnixNano(), 0)
	}
	return banned && f.ban(addr, kind, now)
}

// count records a failure and reports whether the pair bans its source now
// (and is no longer tracked). total is the cluster's count including this
// failure (SharedCounts.Add), which decides instead of the local count; 0
// means there is none.
func (d *Detector) count(key trackKey, now int64, total int) bool {
	d.mu.Lock()
	banned := d.countLocked(key, now, total)
	d.f.metrics.tracked.Set(float64(len(d.index)))
	d.mu.Unlock()
	return banned
}

func (d *Detector) countLocked(key trackKey, now int64, total int) bool {
	d.prune(now)
	i, ok := d.index[key]
	if !ok {
		i = d.push(key, now)
	}
	t := &d.ring[i]
	if !t.due && (now-t.start >= d.window || now < t.start-d.window) {
		t.start, t.count = now, 0
	}
	t.count++
	reached := t.count >= d.threshold || key.kind == Scanner
	if total > 0 { // the cluster's count decides; a due pair has reached it already
		reached = t.due || total >= int(d.threshold)
	}
	if !reached {
		return false
	}
	if key.kind == UnknownSourceInvite && now-t.start < d.grace {
		if !t.due {
			t.due = true
			d.due[key] = struct{}{}
		}
		return false
	}
	d.drop(i)
	return true
}

// push starts counting key at now and returns its slot.
func (d *Detector) push(key trackKey, now int64) int32 {
	if d.n == d.max {
		d.popHead(true)
	}
	i := (d.head + d.n) % d.max
	t := track{key: key, start: now}
	if i == len(d.ring) {
		d.ring = append(d.ring, t)
	} else {
		d.ring[i] = t
	}
	d.n++
	d.index[key] = int32(i)
	return int32(i)
}

// drop stops counting the pair in slot i; its slot stays until it reaches
// the front of the ring.
func (d *Detector) drop(i int32) {
	t := &d.ring[i]
	t.dead = true
	delete(d.index, t.key)
	if t.due {
		delete(d.due, t.key)
	}
}

// prune drops expired and dead pairs from the front of the ring. Pairs
// enter the ring in the order of their start, so the first live pair that
// has not expired, or that waits for its grace, ends the scan.
func (d *Detector) prune(now int64) {
	for d.n > 0 {
		t := &d.ring[d.head]
		if !t.dead && (t.due || now-t.start < d.window) {
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
		delete(d.due, t.key)
		if evict {
			d.f.metrics.evicted.Inc()
		}
	}
	*t = track{}
	d.head = (d.head + 1) % d.max
	d.n--
}

// Sweep bans the sources whose unanswered challenges reached the threshold
// and whose grace has ended by now, and returns how many it banned. The
// firewall calls it every second; tests call it with their own clock.
func (d *Detector) Sweep(now time.Time) int {
	ns := now.UnixNano()
	var ripe []netip.Addr
	d.mu.Lock()
	for key := range d.due {
		i := d.index[key]
		if ns-d.ring[i].start < d.grace {
			continue
		}
		d.drop(i)
		ripe = append(ripe, key.addr)
	}
	d.f.metrics.tracked.Set(float64(len(d.index)))
	d.mu.Unlock()
	n := 0
	for _, addr := range ripe {
		f := d.f
		if f.trusted(addr) || f.bans.banned(addr, now) || (f.authed != nil && f.authed.recent(addr, now)) {
			continue
		}
		if f.ban(addr, UnknownSourceInvite, now) {
			n++
		}
	}
	return n
}

// Tracked returns how many (source, kind) pairs are being counted.
func (d *Detector) Tracked() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.index)
}

// Authenticated records that addr has just authenticated at now: its
// unanswered challenges are forgiven, and for TrustAuthenticated its
// credential-less INVITEs are not counted and the rate guard lets it
// through. Failed authentications stay counted.
func (d *Detector) Authenticated(addr netip.Addr, now time.Time) {
	if !addr.IsValid() {
		return
	}
	addr = canon(addr)
	if d.f.authed != nil && d.f.authed.mark(addr, now) {
		return // remembered already: nothing of it is being counted
	}
	key := trackKey{addr, UnknownSourceInvite}
	d.mu.Lock()
	i, ok := d.index[key]
	if ok {
		d.drop(i)
		d.f.metrics.tracked.Set(float64(len(d.index)))
	}
	d.mu.Unlock()
	if ok && d.shared != nil { // only when this node counted its challenges: rare
		d.forgive(addr, now)
	}
}
