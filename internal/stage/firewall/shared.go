package firewall

import (
	"net/netip"
	"time"
)

// SharedCounts counts failures in a place every node of a cluster shares
// (package cluster keeps them in Redis), so that a source spreading its
// failures over the nodes is banned at the same total as a source sending
// them all to one node. Implementations must be safe for concurrent use.
//
// Both methods are called on the request path: they must return within a
// short time (a few hundred milliseconds at most, and at once while the
// shared store is known to be down), and report any failure as an error.
// The Detector then counts on its own for that failure.
type SharedCounts interface {
	// Add counts one failure of kind from addr at now and returns the
	// count, this failure included, of a window of length window anchored
	// at the first failure counted (the Detector's own rule). A count that
	// reaches threshold restarts from zero at once, so that of any number
	// of concurrent Adds on any number of nodes exactly one returns
	// threshold: its caller bans the source.
	Add(addr netip.Addr, kind Kind, threshold int, window time.Duration, now time.Time) (int, error)
	// Forgive forgets addr's count of kind: a source that answered a
	// challenge has its unanswered challenges forgiven on every node.
	Forgive(addr netip.Addr, kind Kind, now time.Time) error
}

// shared reports whether failures of kind are counted in Config.Shared.
// Scanners are banned at their first request anyway. Refused connections
// and failed handshakes (StreamFlood) are reported from a listener's accept
// loop, which must never wait on another machine, and flood this node's
// own resources: each node counts its own.
func shared(kind Kind) bool { return kind == AuthFailure || kind == UnknownSourceInvite }

// countShared counts a failure in d.shared and in the local track (kept in
// step, so that a fallback does not forget this node's recent failures) and
// reports whether it bans the source now. When the shared count fails, the
// local count decides.
func (d *Detector) countShared(key trackKey, now time.Time) bool {
	total, err := d.shared.Add(key.addr, key.kind, int(d.threshold), time.Duration(d.window), now)
	if err != nil {
		d.f.metrics.sharedFallback.Inc()
		return d.count(key, now.UnixNano(), 0)
	}
	return d.count(key, now.UnixNano(), max(total, 1))
}

// forgive forgives addr's unanswered challenges in d.shared.
func (d *Detector) forgive(addr netip.Addr, now time.Time) {
	if err := d.shared.Forgive(addr, UnknownSourceInvite, now); err != nil {
		d.f.metrics.sharedFallback.Inc()
	}
}
