package siptcp

import (
	"net/netip"
	"sync"
	"time"
)

// sources counts open connections and this second's new ones per address.
type sources struct {
	mu     sync.Mutex
	m      map[netip.Addr]*source
	n      int // open connections, all sources
	admits int // since the last sweep
}

type source struct {
	open int
	sec  int64 // the second new counts
	new  int   // connection attempts in sec
}

// admit counts a connection attempt from addr at now and admits it unless
// it is over a limit (customers are counted, never refused).
func (s *sources) admit(addr netip.Addr, now time.Time, customer bool, maxOpen, rate int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admits++; s.admits >= 1024 {
		s.sweep(now.Unix())
	}
	src := s.m[addr]
	if src == nil {
		src = &source{}
		s.m[addr] = src
	}
	if sec := now.Unix(); src.sec != sec {
		src.sec, src.new = sec, 0
	}
	src.new++ // every attempt counts: a source hammering connect stays refused
	if !customer && (maxOpen > 0 && src.open >= maxOpen || rate > 0 && src.new > rate) {
		return false
	}
	src.open++
	s.n++
	return true
}

// closed counts a connection of addr closed at now. The source is
// forgotten once it has none open and opened none this second (its rate
// must outlive a connection closed at once).
func (s *sources) closed(addr netip.Addr, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if src := s.m[addr]; src != nil {
		src.open--
		s.n--
		if src.open <= 0 && src.sec != now.Unix() {
			delete(s.m, addr)
		}
	}
}

// sweep forgets the sources with nothing open that opened nothing in sec.
// s.mu is held.
func (s *sources) sweep(sec int64) {
	s.admits = 0
	for a, src := range s.m {
		if src.open <= 0 && src.sec != sec {
			delete(s.m, a)
		}
	}
}

func (s *sources) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// keeps are the connections that carry a registration, by remote address.
type keeps struct {
	mu sync.Mutex
	m  map[netip.AddrPort]time.Time
}

func (k *keeps) set(remote netip.AddrPort, until time.Time) {
	k.mu.Lock()
	k.m[remote] = until
	k.mu.Unlock()
}

func (k *keeps) get(remote netip.AddrPort) time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m[remote]
}

func (k *keeps) drop(remote netip.AddrPort) {
	k.mu.Lock()
	delete(k.m, remote)
	k.mu.Unlock()
}
