package limits

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// Guards: the local implementations meet the contracts.
var (
	_ Channels = (*LocalChannels)(nil)
	_ Rates    = (*LocalRates)(nil)
)

// LocalChannels is the in-process Channels of a single node. One mutex
// guards it: a critical section is a few map operations, far below the
// cost of the SIP transaction around it.
//
// Memory: one entry per key that held channels since the last Reap, and one
// per held call. Keys at zero stay in the map until Reap drops them, so that
// a key seen before costs no allocation. An Acquire or Release of known keys
// allocates nothing; a new callID may grow the holds map (amortised, and
// never once the map has held as many calls before; Go maps do not shrink,
// so it keeps room for the peak number of concurrent calls). The callID
// string is kept, not copied: it must not be a view of a reused buffer.
type LocalChannels struct {
	lease int64 // nanoseconds

	mu sync.Mutex
	// counts holds a map per Kind, keyed by ID: an int64 key hashes
	// several times faster than a Key struct.
	counts [numKinds]map[int64]int
	holds  map[string]localHold
	// nextExp is a lower bound of the earliest expiry among holds
	// (math.MaxInt64 when there are none): an Acquire refused while
	// now >= nextExp reaps first, so an expired hold never refuses a call.
	nextExp int64
}

// localHold is what one call holds.
type localHold struct {
	keys [MaxKeys]Key
	n    uint8
	exp  int64 // unix nanoseconds; expired when now >= exp
}

// NewLocalChannels returns an empty LocalChannels whose holds last lease
// unless refreshed. lease <= 0 means DefaultLease.
func NewLocalChannels(lease time.Duration) *LocalChannels {
	if lease <= 0 {
		lease = DefaultLease
	}
	c := &LocalChannels{
		lease:   int64(lease),
		holds:   make(map[string]localHold),
		nextExp: math.MaxInt64,
	}
	for _, k := range Kinds {
		c.counts[k] = make(map[int64]int)
	}
	return c
}

// Lease returns the lease of a hold.
func (c *LocalChannels) Lease() time.Duration { return time.Duration(c.lease) }

// Acquire implements Channels.
func (c *LocalChannels) Acquire(_ context.Context, limits []Limit, callID string, now time.Time) (Denied, error) {
	if err := CheckAcquire(limits, callID); err != nil {
		return Denied{}, fmt.Errorf("limits: acquire: %w", err)
	}
	t := now.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.holds[callID]; ok {
		if t < h.exp {
			return Denied{}, ErrHeld
		}
		c.freeLocked(callID, h)
	}
	if len(limits) == 0 {
		return Denied{}, nil
	}
	d := c.checkLocked(limits)
	if !d.Granted() && t >= c.nextExp {
		c.reapLocked(t)
		d = c.checkLocked(limits)
	}
	if !d.Granted() {
		return d, nil
	}
	h := localHold{n: uint8(len(limits)), exp: t + c.lease}
	for i, l := range limits {
		h.keys[i] = l.Key
		c.counts[l.Kind][l.ID]++
	}
	c.holds[callID] = h
	if h.exp < c.nextExp {
		c.nextExp = h.exp
	}
	return Denied{}, nil
}

// checkLocked returns the first limit of limits at its max.
func (c *LocalChannels) checkLocked(limits []Limit) Denied {
	for _, l := range limits {
		if l.Max > 0 {
			if n := c.counts[l.Kind][l.ID]; n >= l.Max {
				return Denied{Limit: l, InUse: n}
			}
		}
	}
	return Denied{}
}

// freeLocked gives back what h holds and forgets callID.
func (c *LocalChannels) freeLocked(callID string, h localHold) {
	for _, k := range h.keys[:h.n] {
		m := c.counts[k.Kind]
		if n := m[k.ID]; n > 0 {
			m[k.ID] = n - 1
		}
	}
	delete(c.holds, callID)
}

// Release implements Channels.
func (c *LocalChannels) Release(_ context.Context, callID string) error {
	c.mu.Lock()
	if h, ok := c.holds[callID]; ok {
		c.freeLocked(callID, h)
	}
	c.mu.Unlock()
	return nil
}

// Refresh implements Channels.
func (c *LocalChannels) Refresh(_ context.Context, callID string, now time.Time) (bool, error) {
	t := now.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.holds[callID]
	if !ok {
		return false, nil
	}
	if t >= h.exp {
		c.freeLocked(callID, h)
		return false, nil
	}
	h.exp = t + c.lease
	c.holds[callID] = h
	// nextExp stays a lower bound: the refreshed expiry is later.
	return true, nil
}

// InUse implements Channels. It never fails and does not allocate.
func (c *LocalChannels) InUse(_ context.Context, k Key) (int, error) {
	if !k.Kind.Valid() {
		return 0, nil
	}
	c.mu.Lock()
	n := c.counts[k.Kind][k.ID]
	c.mu.Unlock()
	return n, nil
}

// All implements Channels. It never fails.
func (c *LocalChannels) All(context.Context) ([]Count, error) { return c.Snapshot(), nil }

// Snapshot lists every key that holds channels, in no particular order.
func (c *LocalChannels) Snapshot() []Count {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Count
	for _, kind := range Kinds {
		for id, n := range c.counts[kind] {
			if n > 0 {
				out = append(out, Count{Key: Key{Kind: kind, ID: id}, InUse: n})
			}
		}
	}
	return out
}

// Reap implements Channels: it frees the holds expired at now and drops
// keys that hold nothing from memory. It never fails. It walks every hold
// and key, so run it periodically (every minute), not per request.
func (c *LocalChannels) Reap(_ context.Context, now time.Time) (int, error) {
	c.mu.Lock()
	n := c.reapLocked(now.UnixNano())
	for _, m := range c.counts {
		for id, v := range m {
			if v == 0 {
				delete(m, id)
			}
		}
	}
	c.mu.Unlock()
	return n, nil
}

// reapLocked frees the holds expired at t and recomputes nextExp.
func (c *LocalChannels) reapLocked(t int64) int {
	n := 0
	next := int64(math.MaxInt64)
	for id, h := range c.holds {
		if t >= h.exp {
			c.freeLocked(id, h)
			n++
		} else if h.exp < next {
			next = h.exp
		}
	}
	c.nextExp = next
	return n
}

// Holds returns the number of calls holding channels (expired holds
// included until reaped).
func (c *LocalChannels) Holds() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.holds)
}

// DefaultIdle is how long LocalRates keeps an untouched bucket when no idle
// time is configured. Any idle time of a second or more is invisible to
// callers: a bucket refills completely within one second (burst =
// perSecond), and a dropped bucket comes back full.
const DefaultIdle = 10 * time.Second

// numShards is the number of LocalRates shards (a power of two).
const numShards = 32

// LocalRates is the in-process Rates of a single node: a GCRA (the token
// bucket written as one "theoretical arrival time" per key) in 32 shards,
// each under its own mutex. Allow allocates nothing once a key has a bucket
// in its shard's map. Buckets untouched for longer than the idle time are
// dropped lazily: a shard sweeps its map at most once per idle time, from
// within Allow.
type LocalRates struct {
	idle   int64 // nanoseconds
	shards [numShards]rateShard
}

type rateShard struct {
	mu sync.Mutex
	// tat is the theoretical arrival time (unix nanoseconds) per Kind and
	// ID: an int64 key hashes several times faster than a Key struct.
	tat       [numKinds]map[int64]int64
	lastSweep int64
	_         [64]byte // keeps neighbouring shards' mutexes off one cache line
}

// NewLocalRates returns an empty LocalRates that drops buckets idle for
// longer than idle. idle <= 0 means DefaultIdle; less than a second is
// raised to a second.
func NewLocalRates(idle time.Duration) *LocalRates {
	if idle <= 0 {
		idle = DefaultIdle
	}
	idle = max(idle, time.Second)
	r := &LocalRates{idle: int64(idle)}
	for i := range r.shards {
		for _, k := range Kinds {
			r.shards[i].tat[k] = make(map[int64]int64)
		}
	}
	return r
}

// shard picks the shard of k by a multiplicative hash of its fields.
func (r *LocalRates) shard(k Key) *rateShard {
	h := (uint64(k.ID) ^ uint64(k.Kind)<<56) * 0x9E3779B97F4A7C15
	return &r.shards[h>>(64-5)]
}

// Allow implements Rates. It never fails.
func (r *LocalRates) Allow(_ context.Context, k Key, perSecond int, now time.Time) (bool, error) {
	if perSecond <= 0 {
		return true, nil
	}
	if !k.Kind.Valid() {
		return false, fmt.Errorf("limits: allow: %v: %w", k.Kind, ErrInvalid)
	}
	t := now.UnixNano()
	s := r.shard(k)
	s.mu.Lock()
	if t-s.lastSweep > r.idle {
		s.sweepLocked(t - r.idle)
		s.lastSweep = t
	}
	m := s.tat[k.Kind]
	tat, ok := gcra(m[k.ID], t, perSecond)
	if ok {
		m[k.ID] = tat
	}
	s.mu.Unlock()
	return ok, nil
}

// sweepLocked drops buckets whose theoretical arrival time is before
// cutoff: they have been full since then.
func (s *rateShard) sweepLocked(cutoff int64) {
	for _, m := range s.tat {
		for id, tat := range m {
			if tat < cutoff {
				delete(m, id)
			}
		}
	}
}

// Len returns the number of buckets held (for tests and debugging).
func (r *LocalRates) Len() int {
	n := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for _, m := range s.tat {
			n += len(m)
		}
		s.mu.Unlock()
	}
	return n
}

// gcra is the token bucket of capacity perSecond refilled at perSecond per
// second, as a GCRA: tat is the time at which the bucket would be full
// again (0 or past: it is full). A call is allowed when taking its token
// leaves the bucket within capacity, i.e. when the new tat is at most one
// second (perSecond emission intervals) ahead of now. It returns the new tat
// and whether the call is allowed; on refusal tat is unchanged.
func gcra(tat, now int64, perSecond int) (int64, bool) {
	interval := int64(time.Second) / int64(perSecond)
	if interval == 0 {
		interval = 1 // more than 1e9 per second: as good as unlimited
	}
	window := interval * int64(perSecond)
	if tat < now {
		tat = now
	}
	next := tat + interval
	if next-now > window {
		return tat, false
	}
	return next, true
}
