package firewall

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// ErrBanned is what ReadFilter returns for a read from a banned source on
// a stream transport (TCP, TLS, WS, WSS), so that sipgo closes the
// connection. sipgo logs it once per connection at Error ("Read filter
// error"); route sipgo's logger through a rate-limited handler.
var ErrBanned = errors.New("stage/firewall: source banned")

// ReadFilter is a sip.TransportReadFilter: install it with
//
//	sipgo.NewUA(sipgo.WithUserAgentTransportLayerOptions(
//		sip.WithTransportLayerReadFilter(fw.ReadFilter)))
//
// sipgo calls it with each datagram (UDP) or each read of a stream
// connection, before parsing. It drops:
//
//   - a datagram from a banned source, returning (nil, nil);
//   - a datagram past RatePerSource in the current second, unless the
//     source is trusted or authenticated within TrustAuthenticated,
//     returning (nil, nil);
//   - a stream read from a banned source, returning ErrBanned, which makes
//     sipgo close the connection (dropping one read of a stream would
//     corrupt its framing).
//
// A ban does not apply to a trusted source (Config.Trusted). Anything else
// is passed on unchanged, without allocating. It never returns an error for
// a datagram: sipgo stops reading the whole UDP socket on one.
func (f *Firewall) ReadFilter(info sip.TransportReadProps, data []byte) ([]byte, error) {
	addr, ok := remoteAddr(info.RemoteAddr)
	if !ok {
		return data, nil
	}
	datagram := info.Transport == "UDP" || info.Transport == "udp"
	switch f.verdict(addr, datagram, f.now()) {
	case dropBanned:
		f.metrics.dropped[dropBanned].Inc()
		if !datagram {
			return nil, ErrBanned
		}
		return nil, nil
	case dropRate:
		f.metrics.dropped[dropRate].Inc()
		return nil, nil
	}
	return data, nil
}

// verdict decides on a message from addr (canonical) at now. The rate
// guard only counts datagrams.
func (f *Firewall) verdict(addr netip.Addr, datagram bool, now time.Time) dropReason {
	if f.bans.banned(addr, now) && !f.trusted(addr) {
		return dropBanned
	}
	if datagram && f.rate != nil && !f.rate.allow(addr, now) && !f.trusted(addr) &&
		(f.authed == nil || !f.authed.recent(addr, now)) {
		return dropRate
	}
	return dropNone
}

// remoteAddr extracts the canonical source address without allocating for
// the address types sipgo's transports use.
func remoteAddr(a net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		if a == nil {
			return netip.Addr{}, false
		}
		ip = a.IP
	case *net.TCPAddr:
		if a == nil {
			return netip.Addr{}, false
		}
		ip = a.IP
	case nil:
		return netip.Addr{}, false
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}, false
		}
		return canon(ap.Addr()), true
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, false
	}
	return canon(addr), true
}

// rateGuard counts datagrams per source per second in a fixed-size table:
// sources hash (with a random seed, so slots cannot be aimed at) into
// slots, and a source that lands on a slot held by another takes it over
// with a fresh count. The table never grows; a collision only makes the
// guard more lenient.
type rateGuard struct {
	limit        uint32
	mask         uint64
	seed0, seed1 uint64
	locks        [rateShards]paddedMutex
	slots        []rateSlot
}

const rateShards = 64

type paddedMutex struct {
	sync.Mutex
	_ [56]byte // one cache line each
}

type rateSlot struct {
	tag uint64 // hash of the source holding the slot
	sec int64  // the second counted
	n   uint32 // datagrams in sec
}

func newRateGuard(limit, slots int) *rateGuard {
	size := 1
	for size < slots {
		size <<= 1
	}
	if size < rateShards {
		size = rateShards
	}
	return &rateGuard{
		limit: uint32(min(limit, math32)),
		mask:  uint64(size - 1),
		seed0: rand.Uint64(),
		seed1: rand.Uint64(),
		slots: make([]rateSlot, size),
	}
}

const math32 = 1<<32 - 1

// allow counts one datagram from addr at now and reports whether it is
// within the limit.
func (g *rateGuard) allow(addr netip.Addr, now time.Time) bool {
	b := addr.As16()
	h := mix(binary.LittleEndian.Uint64(b[:8])^g.seed0, binary.LittleEndian.Uint64(b[8:])^g.seed1)
	h |= 1 // 0 marks an unused slot
	i := h & g.mask
	sec := now.Unix()
	mu := &g.locks[i%rateShards]
	mu.Lock()
	s := &g.slots[i]
	if s.tag != h || s.sec != sec {
		s.tag, s.sec, s.n = h, sec, 0
	}
	if s.n < g.limit {
		s.n++
		mu.Unlock()
		return true
	}
	mu.Unlock()
	return false
}

// mix is a 128-bit multiply folded to 64 bits (as in wyhash).
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b^0x9e3779b97f4a7c15)
	return hi ^ lo
}
