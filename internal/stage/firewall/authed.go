package firewall

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"time"
)

// authTable remembers which sources authenticated recently: a source that
// answers its challenges is a customer, whatever its rate. Its credential-
// less INVITEs (the first half of every digest call) are not counted by the
// Detector, and the read filter's rate guard lets its datagrams through.
//
// Like the rate guard it is a fixed table that never grows: sources hash
// (with a random seed) into slots, and a source that lands on a slot held
// by another takes it over. A source that loses its slot so is counted
// again until its next success — which forgives its challenges at once —
// so a collision can cost a customer the guard's exemption for a moment,
// never a ban. Entries come only from successful authentications, which an
// attacker cannot forge without a password.
type authTable struct {
	keep         int64 // nanoseconds a success is remembered
	mask         uint64
	seed0, seed1 uint64
	locks        [rateShards]paddedMutex
	slots        []authSlot
}

type authSlot struct {
	tag uint64 // hash of the source holding the slot; 0: free
	at  int64  // its last success, Unix nanoseconds
}

func newAuthTable(keep time.Duration, slots int) *authTable {
	size := rateShards
	for size < slots {
		size <<= 1
	}
	return &authTable{
		keep:  int64(keep),
		mask:  uint64(size - 1),
		seed0: rand.Uint64(),
		seed1: rand.Uint64(),
		slots: make([]authSlot, size),
	}
}

func (t *authTable) hash(addr netip.Addr) uint64 {
	b := addr.As16()
	return mix(binary.LittleEndian.Uint64(b[:8])^t.seed0, binary.LittleEndian.Uint64(b[8:])^t.seed1) | 1
}

// mark records a success of addr (canonical) at now and reports whether
// the source was already remembered as authenticated.
func (t *authTable) mark(addr netip.Addr, now time.Time) (was bool) {
	h := t.hash(addr)
	i := h & t.mask
	ns := now.UnixNano()
	mu := &t.locks[i%rateShards]
	mu.Lock()
	s := &t.slots[i]
	was = s.tag == h && ns-s.at < t.keep
	if s.tag != h {
		s.tag, s.at = h, ns
	} else if ns > s.at {
		s.at = ns
	}
	mu.Unlock()
	return was
}

// recent reports whether addr (canonical) authenticated within keep of now.
func (t *authTable) recent(addr netip.Addr, now time.Time) bool {
	h := t.hash(addr)
	i := h & t.mask
	mu := &t.locks[i%rateShards]
	mu.Lock()
	s := t.slots[i]
	mu.Unlock()
	return s.tag == h && now.UnixNano()-s.at < t.keep
}
