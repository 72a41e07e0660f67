package firewall

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaissmai/bart"

	"github.com/sipward/sipward/internal/store"
)

// never is the expiry of a ban without one.
const never = math.MaxInt64

// banTable maps banned prefixes to their expiry (Unix nanoseconds). It is
// read lock-free through an atomic pointer; writers (SetBans, a detection
// ban) hold mu and publish a new table.
//
// The value stored at a prefix is its effective expiry: the latest expiry
// of all bans covering it (itself and every shorter prefix holding it). A
// longest-prefix match then answers "is any ban on this address still in
// force" with one lookup, even when a longer ban expired inside a shorter
// one still in force.
type banTable struct {
	cur atomic.Pointer[bart.Table[int64]]

	mu    sync.Mutex
	local map[netip.Addr]int64 // detection bans not (yet) in the stored set
	// persisted marks local bans the store has accepted: from then on the
	// store rules, so the next SetBans drops them whether it holds them or
	// not (an operator may have lifted the ban before any reload saw it).
	persisted map[netip.Addr]bool
	maxLocal  int
	metrics   *metrics
}

func (b *banTable) init(maxLocal int, m *metrics) {
	b.local = make(map[netip.Addr]int64)
	b.persisted = make(map[netip.Addr]bool)
	b.maxLocal = maxLocal
	b.metrics = m
	b.cur.Store(new(bart.Table[int64]))
}

// banned reports whether a ban in force covers addr (already canonical).
func (b *banTable) banned(addr netip.Addr, now time.Time) bool {
	exp, ok := b.cur.Load().Lookup(addr)
	return ok && now.UnixNano() < exp
}

// Banned reports whether a ban in force at now covers addr: a stored ban
// (from SetBans) or a detection ban made here. Expired bans are ignored. It
// does not consult Config.Trusted (the read filter and the stage do). It
// does not allocate.
func (f *Firewall) Banned(addr netip.Addr, now time.Time) bool {
	return f.bans.banned(canon(addr), now)
}

// Blocks reports whether a ban in force at now covers addr and addr is not
// trusted: what the read filter and the stage drop.
func (f *Firewall) Blocks(addr netip.Addr, now time.Time) bool {
	addr = canon(addr)
	return f.bans.banned(addr, now) && !f.trusted(addr)
}

// Customer reports whether addr is a known customer at now: trusted (an IP
// endpoint, the core) or authenticated within TrustAuthenticated. Limits
// meant for strangers (per-source connection limits) spare it.
func (f *Firewall) Customer(addr netip.Addr, now time.Time) bool {
	addr = canon(addr)
	return f.trusted(addr) || f.authed != nil && f.authed.recent(addr, now)
}

// SetBans replaces the stored bans with bans, the complete current list
// (operator and detection): a ban missing from it is lifted at once. Call
// it whenever the configuration snapshot changes.
//
// Detection bans made here but not yet seen in a SetBans stay in force
// (they may not be persisted yet) until they expire or a stored ban on the
// same address, or one covering it for at least as long, replaces them.
//
// An entry whose Address is not a CIDR or IP address is skipped and named
// in the returned error; the others are applied all the same, so that a bad
// row never keeps a lifted ban in force.
func (f *Firewall) SetBans(bans []store.Ban) error {
	b := &f.bans
	b.mu.Lock() // for the whole call: concurrent calls apply in call order
	defer b.mu.Unlock()

	type entry struct {
		pfx netip.Prefix
		exp int64
	}
	entries := make([]entry, 0, len(bans))
	var errs []error
	for i, bn := range bans {
		pfx, err := parseBanAddress(bn.Address)
		if err != nil {
			errs = append(errs, fmt.Errorf("bans[%d] (id %d): %q: %w", i, bn.ID, bn.Address, err))
			continue
		}
		entries = append(entries, entry{pfx, expiryNanos(bn.ExpiresAt)})
	}
	// Shorter prefixes first, so that a prefix's covers are in the table
	// (with their effective expiry) when it is inserted.
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.pfx.Bits(), b.pfx.Bits()) })
	stored := new(bart.Table[int64])
	for _, e := range entries {
		exp := e.exp
		if _, cover, ok := stored.LookupPrefixLPM(e.pfx); ok {
			exp = max(exp, cover)
		}
		stored.Insert(e.pfx, exp)
	}

	now := f.now().UnixNano()
	type host struct {
		pfx netip.Prefix
		exp int64
	}
	var keep []host
	for addr, exp := range b.local {
		hostPfx := netip.PrefixFrom(addr, addr.BitLen())
		if exp <= now {
			delete(b.local, addr)
			continue
		}
		if b.persisted[addr] {
			delete(b.local, addr)
			delete(b.persisted, addr)
			continue
		}
		if _, ok := stored.Get(hostPfx); ok {
			delete(b.local, addr) // persisted (or replaced by the operator): the store rules
			continue
		}
		cover, ok := stored.Lookup(addr)
		if ok && cover >= exp {
			delete(b.local, addr)
			continue
		}
		keep = append(keep, host{hostPfx, max(exp, cover)})
	}
	// stored is not published yet: it may still be mutated.
	for _, h := range keep {
		stored.Insert(h.pfx, h.exp)
	}
	b.publish(stored)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stage/firewall: set bans: %w", err)
	}
	return nil
}

// markPersisted records that the store holds the detection ban on addr.
func (b *banTable) markPersisted(addr netip.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.local[addr]; ok {
		b.persisted[addr] = true
	}
}

// addLocal puts a detection ban on addr (canonical) in force until exp.
// It reports false when MaxLocalBans are already pending, and dup when a
// detection ban made here on addr is in force at now already (another
// failure of the same burst banned it first: this one must not ban again).
func (b *banTable) addLocal(addr netip.Addr, now, exp time.Time) (ok, dup bool) {
	e := expiryNanos(exp)
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.local[addr]; ok {
		if old > now.UnixNano() {
			return true, true
		}
		e = max(e, old)
	} else if len(b.local) >= b.maxLocal {
		return false, false
	}
	b.local[addr] = e
	t := b.cur.Load()
	if cover, ok := t.Lookup(addr); ok {
		e = max(e, cover)
	}
	b.publish(t.InsertPersist(netip.PrefixFrom(addr, addr.BitLen()), e))
	return true, false
}

// publish makes t the table in force. b.mu must be held.
func (b *banTable) publish(t *bart.Table[int64]) {
	b.cur.Store(t)
	b.metrics.banPrefixes.Set(float64(t.Size()))
}

// parseBanAddress accepts a CIDR or a bare IP address (a host ban).
func parseBanAddress(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not a CIDR")
		}
		if p.Addr().Is4In6() {
			a := p.Addr().Unmap()
			if p.Bits() < 96 {
				return netip.Prefix{}, errors.New("IPv4-mapped prefix shorter than /96")
			}
			p = netip.PrefixFrom(a, p.Bits()-96)
		}
		return netip.PrefixFrom(p.Addr().WithZone(""), p.Bits()).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not an IP address or CIDR")
	}
	a = canon(a)
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// expiryNanos turns a ban's ExpiresAt into Unix nanoseconds, the zero time
// (no expiry) and times past 2262 into never.
func expiryNanos(t time.Time) int64 {
	if t.IsZero() || t.Year() >= 2262 {
		return never
	}
	if t.Year() < 1678 {
		return math.MinInt64
	}
	return t.UnixNano()
}

// canon returns addr as the tables key it: IPv4-mapped IPv6 unmapped,
// without zone.
func canon(addr netip.Addr) netip.Addr {
	return addr.Unmap().WithZone("")
}

// hostBan is the stored form of a detection ban's address.
func hostBan(addr netip.Addr) string {
	return netip.PrefixFrom(addr, addr.BitLen()).String()
}
