// Package gcfloor keeps the Go collector's heap goal at or above a floor.
//
// With GOGC alone the collector runs whenever the heap has grown by GOGC % of
// what the last cycle found live. An edge's live heap is small (120 MB at
// 2,500 digest calls/s) and its allocation rate high (30 KB per call), so at
// load a cycle comes every second or two, and each one marks with every idle
// core for ~100 ms — the cores the edge shares with whatever else runs on the
// machine (docs/performance.md § 8). Right after a start or an idle spell the
// live heap is a few MB and cycles come many times a second while it grows.
//
// A Floor re-tunes the GC percentage after every cycle so that the next goal
// is max(floor, what GOGC alone would give): below the floor the collector
// waits, above it GOGC applies unchanged. Memory is what it costs: a node at
// load holds up to the floor in heap (Kamailio, for comparison, reserves its
// whole shared-memory pool at start). The soft memory limit (GOMEMLIMIT)
// still wins over the floor.
package gcfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// heapMinimum is the runtime's smallest heap goal at GOGC 100
// (defaultHeapMinimum in runtime/mgcpacer.go). The runtime scales it with
// the percentage: at GOGC p no goal is below heapMinimum·p/100. So a
// percentage above floor·100/heapMinimum would hold the collector off far
// beyond the floor (before the first cycle, with nothing marked live yet,
// that is no collection at all until the memory limit).
const heapMinimum = 4 << 20

// Percent is the GC percentage that puts the next heap goal at floor for a
// heap with live bytes found live by the last cycle and scan bytes of stacks
// and globals — never below base (the operator's GOGC). Go's goal is
// max(live + (live+scan)·p/100, heapMinimum·p/100) (runtime/mgcpacer.go);
// with nothing live yet, the second term alone puts it at floor.
func Percent(live, scan, floor uint64, base int) int {
	if base < 0 || live >= floor {
		return base
	}
	p := floor * 100 / heapMinimum // heapMinimum·p/100 = floor
	if roots := live + scan; roots > 0 {
		p = min(p, (floor-live)*100/roots)
	}
	return max(int(p), base)
}

// Floor re-tunes the collector after every cycle. Stop it to hand GOGC
// back to the base percentage.
type Floor struct {
	floor   uint64
	base    int
	stopped atomic.Bool
	stop    sync.Once
	cycles  atomic.Uint64 // cycles seen; for tests
	percent atomic.Int64  // last percentage set
	samples []metrics.Sample
	mu      sync.Mutex // samples, and the order of SetGCPercent calls
}

// Start sets the GC percentage from now on so the heap goal is never below
// floor bytes, with base as the percentage above it (the process's GOGC, as
// GOGC() reads it). A floor of 0 or a base of -1 (GOGC
// off) starts nothing and returns nil; Stop on nil is a no-op.
func Start(floor uint64, base int) *Floor {
	if floor == 0 || base < 0 {
		return nil
	}
	f := &Floor{floor: floor, base: base, samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}}
	f.tune()
	f.arm()
	return f
}

// sentinel is garbage the collector finds dead in every cycle; its finalizer
// runs after the cycle's mark, when the live heap of that cycle is known.
type sentinel struct {
	f *Floor
	_ [16]byte // not a tiny allocation: those share a block and die late
}

func (f *Floor) arm() {
	s := &sentinel{f: f}
	runtime.SetFinalizer(s, func(s *sentinel) {
		if s.f.stopped.Load() {
			return
		}
		s.f.cycles.Add(1)
		s.f.tune()
		s.f.arm()
	})
}

// tune sets the percentage for the cycle that comes next.
func (f *Floor) tune() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped.Load() {
		return
	}
	metrics.Read(f.samples)
	live := f.samples[0].Value.Uint64()
	scan := f.samples[1].Value.Uint64() + f.samples[2].Value.Uint64()
	p := Percent(live, scan, f.floor, f.base)
	if int64(p) != f.percent.Load() {
		debug.SetGCPercent(p)
		f.percent.Store(int64(p))
	}
}

// GOGC is the process's GC percentage now: GOGC or debug.SetGCPercent's
// last value, -1 when the collector is off.
func GOGC() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if v := s[0].Value.Uint64(); v <= math.MaxInt32 {
		return int(v)
	}
	return -1
}

// Percent is the GC percentage the floor set last.
func (f *Floor) Percent() int {
	if f == nil {
		return -1
	}
	return int(f.percent.Load())
}

// Stop ends the tuning and sets the base percentage back.
func (f *Floor) Stop() {
	if f == nil {
		return
	}
	f.stop.Do(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.stopped.Store(true)
		debug.SetGCPercent(f.base)
	})
}
