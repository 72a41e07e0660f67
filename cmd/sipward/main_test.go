package main

import "testing"

// TestMemTotal reads this machine's memory, which the soft memory limit is half of.
func TestMemTotal(t *testing.T) {
	if got := memTotal(); got < 64<<20 {
		t.Errorf("memTotal() = %d bytes; want this machine's memory from /proc/meminfo", got)
	}
}

func TestHeapFloor(t *testing.T) {
	const gib = 1 << 30
	for _, c := range []struct {
		mib   int
		total int64
		want  uint64
	}{
		{-1, 24 * gib, gib},       // auto on a large machine: capped at 1 GiB
		{-1, 2 * gib, gib / 4},    // auto on a small one: an eighth
		{-1, 0, 0},                // memory unknown: no floor
		{0, 24 * gib, 0},          // off
		{300, 2 * gib, 300 << 20}, // the operator's size, as given
	} {
		if got := heapFloor(c.mib, c.total); got != c.want {
			t.Errorf("heapFloor(%d, %d) = %d, want %d", c.mib, c.total, got, c.want)
		}
	}
}
